//! The SGR pen (colours and attributes) and how a run of text in one style opens its `<span>`.

use super::parse::Csi;

/// The attribute bits of a [`Style`], each with its CSS class.
const BOLD: u8 = 1;
const DIM: u8 = 1 << 1;
const ITALIC: u8 = 1 << 2;
const UNDERLINE: u8 = 1 << 3;
const STRIKE: u8 = 1 << 4;
const INVERSE: u8 = 1 << 5;
const FLAG_CLASSES: [(u8, &str); 6] = [
    (BOLD, "c-bold"),
    (DIM, "c-dim"),
    (ITALIC, "c-italic"),
    (UNDERLINE, "c-underline"),
    (STRIKE, "c-strike"),
    (INVERSE, "c-inverse"),
];

/// The levels of the 6×6×6 colour cube of the 256-colour palette (indices 16 to 231).
const CUBE_LEVELS: [u8; 6] = [0, 95, 135, 175, 215, 255];

/// A colour: the terminal's default, one of the 16 themed colours (a CSS class), or an exact
/// value that we computed (256-colour indices from 16 on, and truecolor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Color {
    #[default]
    Default,
    Named(u8),
    Rgb(u8, u8, u8),
}

impl Color {
    /// A 256-colour palette index: the first 16 are themed, the rest fixed values.
    fn indexed(index: u16) -> Option<Color> {
        let i = u8::try_from(index).ok()?;
        Some(match i {
            0..=15 => Color::Named(i),
            16..=231 => {
                let i = i - 16;
                let level = |n: u8| CUBE_LEVELS[usize::from(n)];
                Color::Rgb(level(i / 36), level(i / 6 % 6), level(i % 6))
            }
            _ => {
                let gray = 8 + (i - 232) * 10;
                Color::Rgb(gray, gray, gray)
            }
        })
    }

    fn rgb(r: u16, g: u16, b: u16) -> Option<Color> {
        Some(Color::Rgb(u8::try_from(r).ok()?, u8::try_from(g).ok()?, u8::try_from(b).ok()?))
    }
}

/// The pen: what SGR sets, and what every character written carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Style {
    fg: Color,
    bg: Color,
    flags: u8,
}

impl Style {
    /// No colour, no attribute (`Default::default()`, usable in constants).
    pub(super) const DEFAULT: Style = Style { fg: Color::Default, bg: Color::Default, flags: 0 };

    /// Applies an SGR sequence (`CSI … m`), parameter by parameter as terminals do.
    pub(super) fn apply_sgr(&mut self, csi: &Csi) {
        let mut i = 0;
        while i < csi.len() {
            let code = csi.param(i);
            let mut end = i + 1;
            while csi.is_sub(end) {
                end += 1;
            }
            if end > i + 1 {
                // `38:2::r:g:b`, `4:3` and the like: the sub-parameters belong to this code only.
                self.apply_colon(code, &csi.params_from(i + 1)[..end - i - 1]);
                i = end;
            } else {
                i += 1 + self.apply_code(code, csi.params_from(i + 1));
            }
        }
    }

    /// Applies one code; returns how many of the following parameters it used (38, 48, 58).
    fn apply_code(&mut self, code: u16, rest: &[u16]) -> usize {
        match code {
            0 => *self = Style::default(),
            1 => self.flags |= BOLD,
            2 => self.flags |= DIM,
            3 => self.flags |= ITALIC,
            4 => self.flags |= UNDERLINE,
            7 => self.flags |= INVERSE,
            9 => self.flags |= STRIKE,
            22 => self.flags &= !(BOLD | DIM),
            23 => self.flags &= !ITALIC,
            24 => self.flags &= !UNDERLINE,
            27 => self.flags &= !INVERSE,
            29 => self.flags &= !STRIKE,
            30..=37 => self.fg = Color::Named((code - 30) as u8),
            39 => self.fg = Color::Default,
            40..=47 => self.bg = Color::Named((code - 40) as u8),
            49 => self.bg = Color::Default,
            90..=97 => self.fg = Color::Named((code - 90 + 8) as u8),
            100..=107 => self.bg = Color::Named((code - 100 + 8) as u8),
            38 | 48 | 58 => {
                let (color, used) = extended_color(rest);
                self.set_extended(code, color);
                return used;
            }
            // Blink, hidden, fonts, overline, …: nothing we show.
            _ => {}
        }
        0
    }

    fn apply_colon(&mut self, code: u16, subs: &[u16]) {
        match code {
            4 => {
                let on = subs.first() != Some(&0);
                self.flags = if on { self.flags | UNDERLINE } else { self.flags & !UNDERLINE };
            }
            38 | 48 | 58 => {
                let color = match subs {
                    [5, index, ..] => Color::indexed(*index),
                    // With a colour-space id (`38:2::r:g:b`, the standard form) or without it.
                    [2, _, r, g, b, ..] | [2, r, g, b] => Color::rgb(*r, *g, *b),
                    _ => None,
                };
                self.set_extended(code, color);
            }
            _ => {
                self.apply_code(code, &[]);
            }
        }
    }

    fn set_extended(&mut self, code: u16, color: Option<Color>) {
        match (code, color) {
            (38, Some(c)) => self.fg = c,
            (48, Some(c)) => self.bg = c,
            // 58 is the underline colour, which we do not show; invalid values change nothing.
            _ => {}
        }
    }

    /// Writes the opening `<span>` for text in this style; false (and nothing written) when the
    /// style is the default one. Every attribute value is made here from the style's numbers.
    pub(super) fn open_span(&self, out: &mut String) -> bool {
        if *self == Style::default() {
            return false;
        }
        // Inverse swaps the colours here; `c-inverse` supplies the swapped defaults in CSS.
        let (fg, bg) =
            if self.flags & INVERSE != 0 { (self.bg, self.fg) } else { (self.fg, self.bg) };
        let mark = out.len();
        out.push_str("<span class=\"");
        let start = out.len();
        for (bit, class) in FLAG_CLASSES {
            if self.flags & bit != 0 {
                push_separated(out, start, class);
            }
        }
        for (color, prefix) in [(fg, "c-fg-"), (bg, "c-bg-")] {
            if let Color::Named(n) = color {
                push_separated(out, start, prefix);
                push_decimal(out, n);
            }
        }
        if out.len() == start {
            out.truncate(mark);
            out.push_str("<span");
        } else {
            out.push('"');
        }
        push_rgb_style(out, fg, bg);
        out.push('>');
        true
    }
}

/// `38;5;n` or `38;2;r;g;b` after the 38/48/58: the colour if valid, and the parameters used.
fn extended_color(rest: &[u16]) -> (Option<Color>, usize) {
    match rest {
        [5, index, ..] => (Color::indexed(*index), 2),
        [2, r, g, b, ..] => (Color::rgb(*r, *g, *b), 4),
        // Incomplete: the sequence is used up, as xterm does.
        [5] | [2, ..] => (None, rest.len()),
        [] => (None, 0),
        [_, ..] => (None, 1),
    }
}

fn push_rgb_style(out: &mut String, fg: Color, bg: Color) {
    let mut sep = " style=\"";
    for (color, property) in [(fg, "color:#"), (bg, "background-color:#")] {
        if let Color::Rgb(r, g, b) = color {
            out.push_str(sep);
            out.push_str(property);
            for byte in [r, g, b] {
                push_hex(out, byte);
            }
            sep = ";";
        }
    }
    if sep == ";" {
        out.push('"');
    }
}

fn push_separated(out: &mut String, start: usize, word: &str) {
    if out.len() > start {
        out.push(' ');
    }
    out.push_str(word);
}

fn push_hex(out: &mut String, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(char::from(HEX[usize::from(byte >> 4)]));
    out.push(char::from(HEX[usize::from(byte & 0xf)]));
}

fn push_decimal(out: &mut String, n: u8) {
    if n >= 10 {
        out.push(char::from(b'0' + n / 10));
    }
    out.push(char::from(b'0' + n % 10));
}
