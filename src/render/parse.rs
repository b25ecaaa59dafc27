//! The byte-level state machine: streaming UTF-8 decoding and the escape sequences of a log, as actions.
//!
//! Our own small parser rather than anstyle-parse or vte: both keep an OSC payload in an unbounded
//! `Vec` (or silently cut it, which would link a truncated URL), and we need every state bounded.

/// The most parameters of one CSI sequence that are kept; later ones are ignored.
pub(super) const CSI_MAX_PARAMS: usize = 32;
/// The longest OSC payload kept (enough for an OSC 8 URL); a longer one is swallowed and ignored.
pub(super) const OSC_MAX_BYTES: usize = 4096;

const BEL: u8 = 0x07;
const CAN: u8 = 0x18;
const SUB: u8 = 0x1a;
const ESC: u8 = 0x1b;
const DEL: u8 = 0x7f;

/// What the parser found, one action at a time.
pub(super) trait Perform {
    /// A character of text (never a C0 control).
    fn print(&mut self, c: char);
    /// A run of printable ASCII (`0x20..=0x7e`), the bulk of most logs; by default one `print`
    /// each.
    fn print_ascii(&mut self, text: &[u8]) {
        for &byte in text {
            self.print(char::from(byte));
        }
    }
    /// A C0 control other than ESC, CAN and SUB.
    fn control(&mut self, byte: u8);
    /// A complete CSI sequence.
    fn csi(&mut self, csi: &Csi);
    /// A complete OSC sequence whose payload fitted in `OSC_MAX_BYTES`.
    fn osc(&mut self, payload: &[u8]);
    /// One byte was read outside a run of printable ASCII, after the action it caused (if any):
    /// with [`Perform::print_ascii`]'s runs, every byte of the input is told once.
    fn consumed(&mut self);
}

/// One CSI sequence: numeric parameters, which of them came after a `:`, and the final byte.
#[derive(Debug, Clone, Default)]
pub(super) struct Csi {
    params: [u16; CSI_MAX_PARAMS],
    /// Bit i is set when parameter i was a `:` sub-parameter of the one before it.
    sub: u32,
    len: usize,
    current: u16,
    next_is_sub: bool,
    /// A private marker (`<=>?`) or an intermediate byte: a sequence we never act on.
    pub(super) private: bool,
    pub(super) final_byte: u8,
}

impl Csi {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Parameter `i`, 0 when absent or empty.
    pub(super) fn param(&self, i: usize) -> u16 {
        if i < self.len { self.params[i] } else { 0 }
    }

    pub(super) fn is_sub(&self, i: usize) -> bool {
        i < self.len && self.sub & (1 << i) != 0
    }

    /// The parameters from `i` on.
    pub(super) fn params_from(&self, i: usize) -> &[u16] {
        &self.params[i.min(self.len)..self.len]
    }

    fn digit(&mut self, byte: u8) {
        self.current = self.current.saturating_mul(10).saturating_add(u16::from(byte - b'0'));
    }

    fn end_param(&mut self) {
        if self.len < CSI_MAX_PARAMS {
            self.params[self.len] = self.current;
            if self.next_is_sub {
                self.sub |= 1 << self.len;
            }
            self.len += 1;
        }
        self.current = 0;
        self.next_is_sub = false;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ground,
    Escape,
    /// `ESC` then intermediates (charset selections and the like), until a final byte.
    EscapeIntermediate,
    Csi,
    Osc,
    /// `ESC` inside an OSC: `\` ends it (ST).
    OscEscape,
    /// DCS, SOS, PM and APC strings: swallowed until ST or BEL.
    Skip,
    SkipEscape,
}

/// A UTF-8 sequence in progress: the code point so far, bytes still needed, and the range the
/// next byte must fall in (narrower after some lead bytes, which rejects overlongs and surrogates).
#[derive(Debug, Clone, Copy)]
struct Utf8 {
    code: u32,
    need: u8,
    low: u8,
    high: u8,
}

#[derive(Debug, Clone)]
pub(super) struct Parser {
    state: State,
    utf8: Utf8,
    csi: Csi,
    osc: Vec<u8>,
    osc_overflow: bool,
}

impl Parser {
    pub(super) fn new() -> Parser {
        Parser {
            state: State::Ground,
            utf8: Utf8 { code: 0, need: 0, low: 0x80, high: 0xbf },
            csi: Csi::default(),
            osc: Vec::new(),
            osc_overflow: false,
        }
    }

    pub(super) fn advance(&mut self, bytes: &[u8], p: &mut impl Perform) {
        let mut rest = bytes;
        while let Some((&byte, after)) = rest.split_first() {
            if self.state == State::Ground && self.utf8.need == 0 {
                let run =
                    rest.iter().position(|b| !(0x20..=0x7e).contains(b)).unwrap_or(rest.len());
                if run > 0 {
                    p.print_ascii(&rest[..run]);
                    rest = &rest[run..];
                    continue;
                }
            }
            // A byte that ends a sequence it does not belong to is looked at again from the new
            // state; every such step lands in Ground or Escape, so this ends.
            while self.step(byte, p) {}
            p.consumed();
            rest = after;
        }
    }

    /// Ends the input: an unfinished UTF-8 sequence is one U+FFFD, an unfinished escape is dropped.
    pub(super) fn finish(&mut self, p: &mut impl Perform) {
        if self.utf8.need > 0 {
            self.utf8.need = 0;
            p.print(char::REPLACEMENT_CHARACTER);
        }
        self.state = State::Ground;
        self.osc = Vec::new();
    }

    /// Handles one byte; true when it must be handled again in the new state.
    fn step(&mut self, byte: u8, p: &mut impl Perform) -> bool {
        match self.state {
            State::Ground => self.ground(byte, p),
            State::Escape => self.escape(byte),
            State::EscapeIntermediate => self.escape_intermediate(byte),
            State::Csi => self.csi(byte, p),
            State::Osc => self.osc(byte, p),
            State::OscEscape => {
                self.dispatch_osc(p);
                self.end_string(byte)
            }
            State::Skip => {
                match byte {
                    BEL | CAN | SUB => self.state = State::Ground,
                    ESC => self.state = State::SkipEscape,
                    _ => {}
                }
                false
            }
            State::SkipEscape => self.end_string(byte),
        }
    }

    /// After `ESC` inside a string: `\\` completes ST, anything else starts a new escape.
    fn end_string(&mut self, byte: u8) -> bool {
        if byte == b'\\' {
            self.state = State::Ground;
            false
        } else {
            self.state = State::Escape;
            true
        }
    }

    fn ground(&mut self, byte: u8, p: &mut impl Perform) -> bool {
        if self.utf8.need > 0 {
            return self.continue_utf8(byte, p);
        }
        match byte {
            0x20..=0x7e => p.print(char::from(byte)),
            ESC => self.state = State::Escape,
            CAN | SUB | DEL => {}
            0x00..=0x1f => p.control(byte),
            _ => self.start_utf8(byte, p),
        }
        false
    }

    fn start_utf8(&mut self, byte: u8, p: &mut impl Perform) {
        let (need, low, high) = match byte {
            0xc2..=0xdf => (1, 0x80, 0xbf),
            0xe0 => (2, 0xa0, 0xbf),
            0xe1..=0xec | 0xee..=0xef => (2, 0x80, 0xbf),
            0xed => (2, 0x80, 0x9f),
            0xf0 => (3, 0x90, 0xbf),
            0xf1..=0xf3 => (3, 0x80, 0xbf),
            0xf4 => (3, 0x80, 0x8f),
            _ => return p.print(char::REPLACEMENT_CHARACTER),
        };
        let lead_bits = u32::from(byte) & (0x7f >> (need + 1));
        self.utf8 = Utf8 { code: lead_bits, need, low, high };
    }

    fn continue_utf8(&mut self, byte: u8, p: &mut impl Perform) -> bool {
        let u = &mut self.utf8;
        if byte < u.low || byte > u.high {
            // The maximal valid prefix becomes one U+FFFD, as `String::from_utf8_lossy` does.
            u.need = 0;
            p.print(char::REPLACEMENT_CHARACTER);
            return true;
        }
        u.code = (u.code << 6) | u32::from(byte & 0x3f);
        u.need -= 1;
        (u.low, u.high) = (0x80, 0xbf);
        if u.need == 0 {
            p.print(char::from_u32(u.code).unwrap_or(char::REPLACEMENT_CHARACTER));
        }
        false
    }

    fn escape(&mut self, byte: u8) -> bool {
        self.state = match byte {
            b'[' => {
                self.csi = Csi::default();
                State::Csi
            }
            b']' => {
                self.osc.clear();
                self.osc_overflow = false;
                State::Osc
            }
            b'P' | b'X' | b'^' | b'_' => State::Skip,
            0x20..=0x2f => State::EscapeIntermediate,
            ESC => State::Escape,
            // Other two-byte escapes (save/restore cursor, keypad modes, …) mean nothing here.
            0x30..=0x7e | CAN | SUB => State::Ground,
            _ => {
                self.state = State::Ground;
                return true;
            }
        };
        false
    }

    fn escape_intermediate(&mut self, byte: u8) -> bool {
        match byte {
            0x20..=0x2f => false,
            0x30..=0x7e | CAN | SUB => {
                self.state = State::Ground;
                false
            }
            ESC => {
                self.state = State::Escape;
                false
            }
            _ => {
                self.state = State::Ground;
                true
            }
        }
    }

    fn csi(&mut self, byte: u8, p: &mut impl Perform) -> bool {
        match byte {
            b'0'..=b'9' => self.csi.digit(byte),
            b';' => self.csi.end_param(),
            b':' => {
                self.csi.end_param();
                self.csi.next_is_sub = true;
            }
            0x3c..=0x3f | 0x20..=0x2f => self.csi.private = true,
            0x40..=0x7e => {
                self.csi.end_param();
                self.csi.final_byte = byte;
                self.state = State::Ground;
                p.csi(&self.csi);
            }
            ESC => self.state = State::Escape,
            CAN | SUB => self.state = State::Ground,
            _ => {
                self.state = State::Ground;
                return true;
            }
        }
        false
    }

    fn osc(&mut self, byte: u8, p: &mut impl Perform) -> bool {
        match byte {
            BEL => {
                self.dispatch_osc(p);
                self.state = State::Ground;
            }
            ESC => self.state = State::OscEscape,
            CAN | SUB => self.state = State::Ground,
            _ if self.osc.len() < OSC_MAX_BYTES => self.osc.push(byte),
            _ => self.osc_overflow = true,
        }
        false
    }

    fn dispatch_osc(&mut self, p: &mut impl Perform) {
        if !self.osc_overflow {
            p.osc(&self.osc);
        }
        self.osc.clear();
    }
}
