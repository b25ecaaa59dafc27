//! Run logs into HTML: an incremental ANSI renderer with memory bounded per run, and no I/O.
//!
//! [`Renderer::push`] takes the raw bytes a check wrote, split anywhere, and returns the lines
//! they complete as HTML fragments; [`line_markup`] wraps one for the run page. The renderer
//! holds the current line (at most [`LINE_MAX_BYTES`] of text) and the style state, so a log of
//! any size renders in constant memory.
//!
//! What a line's HTML may contain, and so what the page's CSS must style:
//! - text, with `<`, `>`, `&`, `"` and `'` escaped;
//! - `<span class="…" style="…">` around text that is not in the default style. Classes:
//!   `c-bold`, `c-dim`, `c-italic`, `c-underline`, `c-strike`, `c-inverse` (swapped default
//!   colours; explicit colours are already swapped), `c-fg-N` and `c-bg-N` for the 16 themed
//!   colours (N from 0 to 15, 8 to 15 the bright ones). `style` holds only `color:#rrggbb` and
//!   `background-color:#rrggbb` for 256-colour and truecolor values, computed from the numbers;
//! - `<a href="http…" rel="nofollow noopener">` for OSC 8 hyperlinks to `http:` and `https:`
//!   URLs (percent-encoded and escaped, at most [`HREF_MAX_BYTES`]), around such spans; once per
//!   link and line: a link's later pieces on the line (after overwrites) are plain text. Plain
//!   `http://` and `https://` URLs in the text are linked the same way, within the same bounds
//!   (a URL that appears twice on a line is linked the first time).
//!
//! The HTML is bounded by what it is made of, whatever the input: a line's HTML is at most
//! [`HTML_BYTES_PER_RAW_BYTE`] times the bytes of the log that made it, and at most
//! [`HTML_BYTES_PER_TEXT_BYTE`] times its text plus [`HTML_BYTES_PER_LINE`]. A line that would
//! pass either is written with less: without links, then without styles, then with its runs of
//! blanks shortened (blanks that cursor jumps made from a few bytes).
//!
//! As a terminal shows it: `\r` returns to the line's start and later text overwrites it, EL
//! (`CSI K`), cursor left/right (`CSI D`, `CSI C`, `CSI G`) and backspace act within the line,
//! styles carry across line ends. Other cursor movement, erase-display, modes and every other
//! escape (OSC but 8, DCS, SOS, PM, APC, charset selections) are swallowed whole. Tabs stay, other
//! C0 and C1 controls are dropped, invalid UTF-8 shows as U+FFFD.

mod autolink;
mod line;
mod line_map;
mod parse;
mod style;

#[cfg(test)]
mod tests;

pub use line::{HREF_MAX_BYTES, LINE_MAX_BYTES};
pub use line_map::{LINE_SHIFTS_MAX, LineMap};

/// A line's HTML is at most this many bytes per byte of the log that made it (its text, the
/// escapes that styled it, the overwrites): so a log's HTML is at most this many times the log.
pub const HTML_BYTES_PER_RAW_BYTE: usize = 32;
/// A line's HTML is at most this many bytes per byte of its text, plus [`HTML_BYTES_PER_LINE`].
pub const HTML_BYTES_PER_TEXT_BYTE: usize = 48;
/// The markup a line's HTML may hold beyond [`HTML_BYTES_PER_TEXT_BYTE`] per byte of its text:
/// room for a link of the longest href around a short text.
pub const HTML_BYTES_PER_LINE: usize = 4096;

use std::time::SystemTime;

use line::LineBuf;
use parse::{Csi, Parser, Perform};
use style::Style;

/// One complete line of a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The line's number, from 1 (a line split for length takes several numbers).
    pub number: u64,
    /// An HTML fragment: escaped text, `<span>`s and `<a>`s only (see the module doc).
    pub html: String,
    /// The log's line goes on in the next `Line`: this one was split at [`LINE_MAX_BYTES`].
    pub wrapped: bool,
}

/// The incremental renderer of one log.
#[derive(Debug)]
pub struct Renderer {
    parser: Parser,
    screen: Screen,
}

impl Default for Renderer {
    fn default() -> Renderer {
        Renderer::new()
    }
}

impl Renderer {
    pub fn new() -> Renderer {
        Renderer { parser: Parser::new(), screen: Screen { next_number: 1, ..Screen::default() } }
    }

    /// Feeds raw bytes (any split, even inside an escape or a UTF-8 sequence); returns the lines
    /// completed by them.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Line> {
        self.parser.advance(bytes, &mut self.screen);
        std::mem::take(&mut self.screen.done)
    }

    /// Ends the log: returns the last, unterminated line if any. The renderer is then as new.
    pub fn finish(&mut self) -> Option<Line> {
        // A truncated last character may take a full line 3 bytes over: one line is returned.
        self.screen.finishing = true;
        self.parser.finish(&mut self.screen);
        let last = self.screen.line.is_touched().then(|| self.screen.take_line());
        *self = Renderer::new();
        last
    }
}

/// The markup of one line on the run page, stamped with the runner's time of day `clock` (see
/// [`clock`]; shown when the reader turns timestamps on), appended to `out`:
/// `<div class="line" id="L{n}"><a href="#L{n}">{n}</a><time>{clock}</time><span>{html}</span></div>`
/// and a newline, so that `#L{n}` links to a line and the page's source reads line by line. Short,
/// because it is written for every line of every log.
pub fn push_line_markup(out: &mut String, line: &Line, clock: &str) {
    // The number appears three times: formatted once.
    let mut digits = [0u8; 20];
    let n = decimal(line.number, &mut digits);
    for part in ["<div class=\"line\" id=\"L", n, "\"><a href=\"#L", n, "\">", n, "</a><time>"] {
        out.push_str(part);
    }
    out.push_str(clock);
    out.push_str("</time><span>");
    out.push_str(&line.html);
    out.push_str("</span></div>\n");
}

/// `n` in decimal, written at the end of `buf`.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &str {
    let mut start = buf.len();
    loop {
        start -= 1;
        buf[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[start..]).expect("ASCII digits")
}

/// The markup of one line (see [`push_line_markup`]) stamped with `at`.
pub fn line_markup(line: &Line, at: SystemTime) -> String {
    let mut out = String::with_capacity(line.html.len() + 96);
    push_line_markup(&mut out, line, &clock(at));
    out
}

/// A time as the log shows it: the time of day in UTC, to the millisecond (`12:00:01.234`).
pub fn clock(at: SystemTime) -> String {
    let stamp = humantime::format_rfc3339_millis(at).to_string();
    // "2026-11-23T12:00:01.234Z"
    stamp.get(11..23).unwrap_or(&stamp).to_owned()
}

/// What the parser's actions do: the current line, the pen, the open hyperlink.
#[derive(Debug, Default)]
struct Screen {
    line: LineBuf,
    pen: Style,
    /// The escaped `href` of the open OSC 8 hyperlink, if it is one we show.
    link: Option<String>,
    /// The bytes of the log read since the current line began, which bound its HTML.
    raw_bytes: usize,
    next_number: u64,
    done: Vec<Line>,
    finishing: bool,
}

impl Screen {
    fn take_line(&mut self) -> Line {
        let number = self.next_number;
        self.next_number += 1;
        let budget = std::cmp::min(
            HTML_BYTES_PER_RAW_BYTE.saturating_mul(std::mem::take(&mut self.raw_bytes)),
            HTML_BYTES_PER_TEXT_BYTE * self.line.text_bytes() + HTML_BYTES_PER_LINE,
        );
        Line { number, html: self.line.take_html(budget), wrapped: false }
    }

    fn write(&mut self, c: char) {
        if !self.line.fits(c) && !self.finishing {
            let line = Line { wrapped: true, ..self.take_line() };
            self.done.push(line);
        }
        let link = self.link.as_deref().map_or(0, |href| self.line.link_id(href));
        self.line.write(c, self.pen, link);
    }
}

impl Perform for Screen {
    fn print(&mut self, c: char) {
        // C1 controls encoded in UTF-8 are as invisible as the C0 ones.
        if !('\u{80}'..='\u{9f}').contains(&c) {
            self.write(c);
        }
    }

    fn print_ascii(&mut self, text: &[u8]) {
        if self.link.is_some() || !self.line.append_ascii(text, self.pen) {
            // Each byte counts for the line it lands on, after a split too.
            for &byte in text {
                self.write(char::from(byte));
                self.raw_bytes += 1;
            }
        } else {
            self.raw_bytes += text.len();
        }
    }

    fn consumed(&mut self) {
        self.raw_bytes = self.raw_bytes.saturating_add(1);
    }

    fn control(&mut self, byte: u8) {
        match byte {
            b'\n' => {
                let line = self.take_line();
                self.done.push(line);
            }
            b'\r' => self.line.carriage_return(),
            b'\t' => self.write('\t'),
            0x08 => self.line.back(1),
            _ => {}
        }
    }

    fn csi(&mut self, csi: &Csi) {
        if csi.private {
            return;
        }
        let count = usize::from(csi.param(0).max(1));
        match csi.final_byte {
            b'm' => self.pen.apply_sgr(csi),
            b'K' => self.line.erase(csi.param(0)),
            b'G' | b'`' => self.line.move_to_column(count - 1),
            b'C' | b'a' => self.line.forward(count),
            b'D' => self.line.back(count),
            // Up/down, positioning, erase display, scrolling, modes: meaningless on one line.
            _ => {}
        }
    }

    fn osc(&mut self, payload: &[u8]) {
        // OSC 8 ; params ; URI — an empty URI closes the link.
        let Some(rest) = payload.strip_prefix(b"8;") else { return };
        let uri = rest.splitn(2, |&b| b == b';').nth(1).unwrap_or_default();
        self.link = line::href(uri);
    }
}
