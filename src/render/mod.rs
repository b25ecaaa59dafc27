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
//!   URLs (percent-encoded and escaped), around such spans.
//!
//! As a terminal shows it: `\r` returns to the line's start and later text overwrites it, EL
//! (`CSI K`), cursor left/right (`CSI D`, `CSI C`, `CSI G`) and backspace act within the line,
//! styles carry across line ends. Other cursor movement, erase-display, modes and every other
//! escape (OSC but 8, DCS, SOS, PM, APC, charset selections) are swallowed whole. Tabs stay, other
//! C0 and C1 controls are dropped, invalid UTF-8 shows as U+FFFD.

mod line;
mod parse;
mod style;

#[cfg(test)]
mod fixture_tests;
#[cfg(test)]
mod prop_tests;
#[cfg(test)]
mod tests;

pub use line::LINE_MAX_BYTES;

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
    next_number: u64,
    done: Vec<Line>,
    finishing: bool,
}

impl Screen {
    fn take_line(&mut self) -> Line {
        let number = self.next_number;
        self.next_number += 1;
        Line { number, html: self.line.take_html() }
    }

    fn write(&mut self, c: char) {
        if !self.line.fits(c) && !self.finishing {
            let line = self.take_line();
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
            for &byte in text {
                self.write(char::from(byte));
            }
        }
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
