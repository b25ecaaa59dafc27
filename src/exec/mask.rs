//! Streaming secret masking as the reader will see it: a secret's value becomes `***` also when
//! escape sequences interrupt it, when it arrives split across writes, and when it is split
//! across the streams that share one masker (stdout and stderr).
//!
//! Values are matched on the bytes a terminal (and so our renderer) shows: CSI, OSC and other
//! ESC sequences and the invisible controls are skipped. The whole matching span, escapes
//! included, becomes `***`. `\r` and backspace are not skipped: they are shown, as moves.

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, MatchKind};
use bytes::Bytes;

/// What a masked secret is replaced with.
pub const MASK: &[u8] = b"***";
/// The most bytes held back while they may be the start of a secret, unless the longest secret
/// needs more (four times its length); past it, what is held is masked as a whole.
const HELD_MAX_BYTES: usize = 64 * 1024;

const BEL: u8 = 0x07;
const CAN: u8 = 0x18;
const SUB: u8 = 0x1a;
const ESC: u8 = 0x1b;
const DEL: u8 = 0x7f;

/// Masks the output of one run. Bytes that could be the start of a secret are held back until
/// later bytes show whether they are. `T` tells the streams apart (stdout, stderr); each byte
/// leaves tagged with the stream it came from, and a mask with the stream of its first byte.
pub struct Masker<T> {
    matcher: Option<AhoCorasick>,
    secrets: Vec<Vec<u8>>,
    held_max: usize,
    held: Vec<u8>,
    /// Where each stream's piece of `held` starts, in order.
    pieces: Vec<(usize, T)>,
    /// The escape state at the start of `held` (after what was sent, when nothing is held).
    state: Scan,
}

impl<T: Copy + PartialEq> Masker<T> {
    /// A masker for these values; empty values are ignored.
    pub fn new<I, S>(values: I) -> Masker<T>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        let mut secrets: Vec<Vec<u8>> =
            values.into_iter().map(|v| v.as_ref().to_vec()).filter(|v| !v.is_empty()).collect();
        secrets.sort();
        secrets.dedup();
        let matcher = (!secrets.is_empty()).then(|| {
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&secrets)
                .expect("secret patterns are plain bytes")
        });
        let longest = secrets.iter().map(Vec::len).max().unwrap_or(0);
        let held_max = HELD_MAX_BYTES.max(4 * longest);
        Masker {
            matcher,
            secrets,
            held_max,
            held: Vec::new(),
            pieces: Vec::new(),
            state: Scan::Ground,
        }
    }

    /// Masks the next chunk of `stream`; returns what can be sent now, in order (possibly
    /// nothing, possibly bytes of another stream that were held back).
    pub fn push(&mut self, stream: T, chunk: &[u8]) -> Vec<(T, Bytes)> {
        if self.matcher.is_none() {
            return vec![(stream, Bytes::copy_from_slice(chunk))];
        }
        if chunk.is_empty() {
            return Vec::new();
        }
        if self.pieces.last().is_none_or(|(_, last)| *last != stream) {
            self.pieces.push((self.held.len(), stream));
        }
        self.held.extend_from_slice(chunk);
        let mut out = Output::default();
        self.mask(&mut out, false);
        if self.held.len() > self.held_max {
            // Only a prefix of a secret and the escapes inside it are held: mask them all.
            out.push(self.stream_at(0), MASK);
            self.clear();
        }
        out.into_bytes()
    }

    /// Masks and returns whatever is held back; call at the end of the output.
    pub fn finish(&mut self) -> Vec<(T, Bytes)> {
        let mut out = Output::default();
        if self.matcher.is_some() {
            self.mask(&mut out, true);
        }
        out.into_bytes()
    }

    /// Moves to `out` the masked bytes that can go now (all of them at the end), holding back
    /// the longest tail that may be the start of a secret.
    fn mask(&mut self, out: &mut Output<T>, at_end: bool) {
        let Some(matcher) = &self.matcher else { return };
        let (visible, at, end_state) = project(&self.held, self.state);
        let at = |i: usize| at.as_ref().map_or(i, |at| at[i]);
        let held_from = if at_end {
            visible.len()
        } else {
            visible.len() - held_suffix(&self.secrets, &visible)
        };
        let mut sent = 0;
        for found in matcher.find_iter(&visible[..]) {
            // A match that starts in the held tail might be the start of a longer secret.
            if found.start() >= held_from {
                break;
            }
            let (start, end) = (at(found.start()), at(found.end() - 1) + 1);
            self.send(out, sent, start);
            out.push(self.stream_at(start), MASK);
            sent = end;
        }
        let cut = if held_from < visible.len() { at(held_from) } else { self.held.len() };
        if sent < cut {
            self.send(out, sent, cut);
            sent = cut;
        }
        if sent == self.held.len() {
            self.clear();
            self.state = end_state;
        } else {
            // What is held starts at a byte that is shown, which a terminal reads in its ground
            // state whatever came before.
            self.consume(sent);
            self.state = Scan::Ground;
        }
    }

    /// Sends `held[from..to]`, piece by piece.
    fn send(&self, out: &mut Output<T>, from: usize, to: usize) {
        for (i, &(start, stream)) in self.pieces.iter().enumerate() {
            let end = self.pieces.get(i + 1).map_or(self.held.len(), |(next, _)| *next);
            let (a, b) = (start.max(from), end.min(to));
            if a < b {
                out.push(stream, &self.held[a..b]);
            }
        }
    }

    fn stream_at(&self, offset: usize) -> T {
        let i = self.pieces.partition_point(|(start, _)| *start <= offset);
        self.pieces[i.saturating_sub(1)].1
    }

    /// Drops `held[..n]`.
    fn consume(&mut self, n: usize) {
        let keep_from = self.pieces.partition_point(|(start, _)| *start <= n).saturating_sub(1);
        self.pieces.drain(..keep_from);
        for (start, _) in &mut self.pieces {
            *start = start.saturating_sub(n);
        }
        self.held.drain(..n);
    }

    fn clear(&mut self) {
        self.held.clear();
        self.pieces.clear();
        self.state = Scan::Ground;
    }
}

/// Masked output, joined per stream as it goes.
struct Output<T>(Vec<(T, Vec<u8>)>);

impl<T> Default for Output<T> {
    fn default() -> Output<T> {
        Output(Vec::new())
    }
}

impl<T: Copy + PartialEq> Output<T> {
    fn push(&mut self, stream: T, bytes: &[u8]) {
        match self.0.last_mut() {
            Some((last, data)) if *last == stream => data.extend_from_slice(bytes),
            _ => self.0.push((stream, bytes.to_vec())),
        }
    }

    fn into_bytes(self) -> Vec<(T, Bytes)> {
        self.0.into_iter().map(|(stream, data)| (stream, Bytes::from(data))).collect()
    }
}

/// The length of the longest suffix of `visible` that is a proper prefix of some secret.
fn held_suffix(secrets: &[Vec<u8>], visible: &[u8]) -> usize {
    let mut longest = 0;
    for secret in secrets {
        let max = (secret.len() - 1).min(visible.len());
        for len in (longest + 1..=max).rev() {
            if visible[visible.len() - len..] == secret[..len] {
                longest = len;
                break;
            }
        }
    }
    longest
}

/// The bytes of `raw` a terminal shows, read from `state` on; where each is in `raw` (`None`
/// when all are shown, the usual case); and the state after the last byte.
fn project(raw: &[u8], mut state: Scan) -> (Cow<'_, [u8]>, Option<Vec<usize>>, Scan) {
    if state == Scan::Ground && raw.iter().all(|&byte| shown_in_ground(byte)) {
        return (Cow::Borrowed(raw), None, state);
    }
    let mut visible = Vec::with_capacity(raw.len());
    let mut at = Vec::with_capacity(raw.len());
    for (i, &byte) in raw.iter().enumerate() {
        if state.shows(byte) {
            visible.push(byte);
            at.push(i);
        }
    }
    (Cow::Owned(visible), Some(at), state)
}

/// Where a byte stream is in its escape sequences: the states of the renderer's parser
/// (`render::parse`), which decide the same way what a log shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scan {
    Ground,
    Escape,
    /// `ESC` then intermediates, until a final byte.
    EscapeIntermediate,
    Csi,
    Osc,
    /// `ESC` inside an OSC or a string: `\` ends it.
    StringEscape,
    /// DCS, SOS, PM and APC: swallowed until ST or BEL.
    String,
}

impl Scan {
    /// Reads one byte; true when a terminal shows it (text, `\t`, `\n`, `\r`, backspace).
    pub(crate) fn shows(&mut self, byte: u8) -> bool {
        loop {
            let before = *self;
            let (next, again) = before.step(byte);
            *self = next;
            if !again {
                return before == Scan::Ground && shown_in_ground(byte);
            }
        }
    }

    /// The state after `byte`, and whether the byte must be read again in that state (it ends a
    /// sequence it does not belong to).
    fn step(self, byte: u8) -> (Scan, bool) {
        use Scan::*;
        match (self, byte) {
            (Ground, ESC) => (Escape, false),
            (Ground, _) => (Ground, false),
            (Escape, b'[') => (Csi, false),
            (Escape, b']') => (Osc, false),
            (Escape, b'P' | b'X' | b'^' | b'_') => (String, false),
            (Escape, 0x20..=0x2f) => (EscapeIntermediate, false),
            (Escape | EscapeIntermediate | Csi, ESC) => (Escape, false),
            (Escape | EscapeIntermediate, 0x30..=0x7e | CAN | SUB) => (Ground, false),
            (EscapeIntermediate, 0x20..=0x2f) => (EscapeIntermediate, false),
            (Csi, b'0'..=b'9' | b';' | b':' | 0x3c..=0x3f | 0x20..=0x2f) => (Csi, false),
            (Csi, 0x40..=0x7e | CAN | SUB) => (Ground, false),
            (Escape | EscapeIntermediate | Csi, _) => (Ground, true),
            (Osc | String, BEL | CAN | SUB) => (Ground, false),
            (Osc | String, ESC) => (StringEscape, false),
            (Osc | String, _) => (self, false),
            (StringEscape, b'\\') => (Ground, false),
            (StringEscape, _) => (Escape, true),
        }
    }
}

/// What a terminal shows of a byte read in the ground state.
fn shown_in_ground(byte: u8) -> bool {
    match byte {
        b'\t' | b'\n' | b'\r' | 0x08 => true,
        0x00..=0x1f | DEL => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests;
