//! The line being written, as terminal cells with a cursor, and its HTML once it is complete.

use super::autolink;
use super::style::Style;

/// A line whose text would grow past this many bytes (UTF-8, before escaping) is split: what
/// it has is emitted and the text goes on on the next line.
pub const LINE_MAX_BYTES: usize = 64 * 1024;
/// The most distinct hyperlinks one line holds; text linked beyond that renders as plain text.
pub(super) const LINKS_MAX_PER_LINE: usize = 64;
/// The longest `href` written (escaped, as it is in the HTML); a longer link is plain text.
pub const HREF_MAX_BYTES: usize = 2048;
/// In a line written without styles that is still over its bound, runs of blanks longer than
/// this are shortened to it.
const BLANKS_MAX_SHORTENED: usize = 8;

/// How much of a line's markup is written, from all of it down to the least.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Detail {
    Full,
    NoLinks,
    Plain,
    ShortBlanks,
}

/// One character and how it looks; `link` is 0 or an index + 1 into the line's links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cell {
    ch: char,
    style: Style,
    link: u16,
}

const BLANK: Cell = Cell { ch: ' ', style: Style::DEFAULT, link: 0 };

/// The current line: cells, the cursor, and the escaped `href`s its links point to.
#[derive(Debug, Default)]
pub(super) struct LineBuf {
    cells: Vec<Cell>,
    cursor: usize,
    /// UTF-8 length of the cells' text, kept against `LINE_MAX_BYTES`.
    text_bytes: usize,
    /// Something was written (even if erased since): the line exists.
    touched: bool,
    links: Vec<String>,
}

impl LineBuf {
    pub(super) fn is_touched(&self) -> bool {
        self.touched
    }

    /// The UTF-8 length of the line's text.
    pub(super) fn text_bytes(&self) -> usize {
        self.text_bytes
    }

    /// Whether writing `c` at the cursor keeps the line within `LINE_MAX_BYTES`.
    pub(super) fn fits(&self, c: char) -> bool {
        let grows_by = match self.cells.get(self.cursor) {
            Some(old) => c.len_utf8().saturating_sub(old.ch.len_utf8()),
            // Past the end, the gap up to the cursor is filled with blanks.
            None => self.cursor - self.cells.len() + c.len_utf8(),
        };
        self.text_bytes + grows_by <= LINE_MAX_BYTES
    }

    /// Writes `c` at the cursor (overwriting, as a terminal does) and moves the cursor on.
    pub(super) fn write(&mut self, c: char, style: Style, link: u16) {
        self.touched = true;
        let cell = Cell { ch: c, style, link };
        if let Some(old) = self.cells.get_mut(self.cursor) {
            self.text_bytes = self.text_bytes - old.ch.len_utf8() + c.len_utf8();
            *old = cell;
        } else {
            self.text_bytes += self.cursor - self.cells.len() + c.len_utf8();
            self.cells.resize(self.cursor, BLANK);
            self.cells.push(cell);
        }
        self.cursor += 1;
    }

    /// Appends printable ASCII `text` in `style` without a link, when the cursor is at the end
    /// and it fits; false (and nothing written) otherwise, for the caller to write it a character
    /// at a time.
    pub(super) fn append_ascii(&mut self, text: &[u8], style: Style) -> bool {
        if self.cursor != self.cells.len() || self.text_bytes + text.len() > LINE_MAX_BYTES {
            return false;
        }
        self.touched = true;
        self.cells.extend(text.iter().map(|&b| Cell { ch: char::from(b), style, link: 0 }));
        self.text_bytes += text.len();
        self.cursor = self.cells.len();
        true
    }

    pub(super) fn carriage_return(&mut self) {
        self.cursor = 0;
    }

    pub(super) fn back(&mut self, n: usize) {
        self.cursor = self.cursor.saturating_sub(n);
    }

    /// Moves the cursor forward; never past `LINE_MAX_BYTES`, so the blanks it leaves stay bounded.
    pub(super) fn forward(&mut self, n: usize) {
        self.move_to_column(self.cursor.saturating_add(n));
    }

    /// Moves the cursor to column `column` (from 0).
    pub(super) fn move_to_column(&mut self, column: usize) {
        self.cursor = column.min(LINE_MAX_BYTES);
    }

    /// EL (`CSI n K`): 0 erases from the cursor to the end, 1 from the start through the cursor, 2
    /// the whole line. The cursor stays where it is.
    pub(super) fn erase(&mut self, mode: u16) {
        match mode {
            0 => self.cells.truncate(self.cursor),
            1 => {
                let end = (self.cursor + 1).min(self.cells.len());
                self.cells[..end].fill(BLANK);
            }
            2 => self.cells.clear(),
            _ => return,
        }
        self.text_bytes = self.cells.iter().map(|c| c.ch.len_utf8()).sum();
    }

    /// The link id for an escaped `href`, adding it to the line's links; 0 when the line already
    /// has `LINKS_MAX_PER_LINE` others.
    pub(super) fn link_id(&mut self, href: &str) -> u16 {
        if let Some(i) = self.links.iter().rposition(|h| h == href) {
            return i as u16 + 1;
        }
        if self.links.len() >= LINKS_MAX_PER_LINE {
            return 0;
        }
        self.links.push(href.to_owned());
        self.links.len() as u16
    }

    /// Links the plain `http(s)://` URLs in the line's text that no OSC 8 link covers, as OSC 8
    /// links are: the same `href` checks, `HREF_MAX_BYTES` and `LINKS_MAX_PER_LINE`. Only a
    /// URL that starts the line or follows a character other than a letter or digit counts.
    fn link_plain_urls(&mut self) {
        let mut i = 0;
        while i < self.cells.len() {
            let starts = self.cells[i].link == 0
                && matches!(self.cells[i].ch, 'h' | 'H')
                && (i == 0 || !self.cells[i - 1].ch.is_alphanumeric());
            let unlinked = |k: usize| self.cells.get(i + k).filter(|c| c.link == 0).map(|c| c.ch);
            let Some(len) = starts.then(|| autolink::url_len(unlinked)).flatten() else {
                i += 1;
                continue;
            };
            let uri: String = self.cells[i..i + len].iter().map(|c| c.ch).collect();
            if let Some(href) = href(uri.as_bytes()) {
                let id = self.link_id(&href);
                if id == 0 {
                    return;
                }
                self.cells[i..i + len].iter_mut().for_each(|cell| cell.link = id);
            }
            i += len;
        }
    }

    /// The HTML of the line in at most `budget` bytes, with as much detail as fits; leaves the
    /// line empty with the cursor at its start.
    pub(super) fn take_html(&mut self, budget: usize) -> String {
        self.link_plain_urls();
        let mut out = String::with_capacity((self.text_bytes + self.text_bytes / 4).min(budget));
        for detail in [Detail::Full, Detail::NoLinks, Detail::Plain, Detail::ShortBlanks] {
            out.clear();
            if self.push_html(&mut out, detail, budget) {
                break;
            }
        }
        self.cells.clear();
        self.links.clear();
        self.cursor = 0;
        self.text_bytes = 0;
        self.touched = false;
        out
    }

    /// Writes the line's HTML at `detail` into `out`; false as soon as it passes `budget` (the
    /// least detail stops there instead, which its shortened blanks make it never need).
    fn push_html(&self, out: &mut String, detail: Detail, budget: usize) -> bool {
        if detail >= Detail::Plain {
            return push_plain(out, &self.cells, detail == Detail::ShortBlanks, budget);
        }
        // Each link's href is written once, around its first piece on the line.
        let mut written: u64 = 0;
        for run in self.cells.chunk_by(|a, b| a.link == b.link) {
            let link = usize::from(run[0].link).checked_sub(1).filter(|_| detail == Detail::Full);
            let href = link.filter(|i| written & (1 << i) == 0).and_then(|i| self.links.get(i));
            if let Some(href) = href {
                written |= 1 << link.unwrap_or_default();
                out.push_str("<a href=\"");
                out.push_str(href);
                out.push_str("\" rel=\"nofollow noopener\">");
            }
            for styled in run.chunk_by(|a, b| a.style == b.style) {
                let opened = styled[0].style.open_span(out);
                for cell in styled {
                    push_escaped(out, cell.ch);
                }
                if opened {
                    out.push_str("</span>");
                }
                if out.len() > budget {
                    return false;
                }
            }
            if href.is_some() {
                out.push_str("</a>");
            }
        }
        out.len() <= budget
    }
}

/// The text of `cells` alone, escaped; with `short_blanks`, runs of blanks are cut to
/// `BLANKS_MAX_SHORTENED` and the text to `budget`.
fn push_plain(out: &mut String, cells: &[Cell], short_blanks: bool, budget: usize) -> bool {
    let mut blanks = 0;
    for cell in cells {
        blanks = if cell.ch == ' ' { blanks + 1 } else { 0 };
        if short_blanks && (blanks > BLANKS_MAX_SHORTENED || out.len() + 6 > budget) {
            continue;
        }
        push_escaped(out, cell.ch);
        if out.len() > budget {
            return false;
        }
    }
    true
}

/// Pushes `c`, escaped for HTML text or a quoted attribute value.
pub(super) fn push_escaped(out: &mut String, c: char) {
    match c {
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        '&' => out.push_str("&amp;"),
        '"' => out.push_str("&quot;"),
        '\'' => out.push_str("&#39;"),
        _ => out.push(c),
    }
}

/// The escaped `href` for an OSC 8 target: only `http:` and `https:` URLs (scheme lowercased);
/// bytes outside printable ASCII are percent-encoded and the rest HTML-escaped.
pub(super) fn href(uri: &[u8]) -> Option<String> {
    let scheme = ["https:", "http:"]
        .into_iter()
        .find(|s| uri.len() >= s.len() && uri[..s.len()].eq_ignore_ascii_case(s.as_bytes()))?;
    let mut out = String::with_capacity(uri.len() + 16);
    out.push_str(scheme);
    for &byte in &uri[scheme.len()..] {
        if out.len() > HREF_MAX_BYTES {
            return None;
        }
        match byte {
            0x21..=0x7e => push_escaped(&mut out, char::from(byte)),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0xf)]));
            }
        }
    }
    (out.len() <= HREF_MAX_BYTES).then_some(out)
}
