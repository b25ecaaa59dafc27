//! Where the log's lines are on the page: the runner counts a log's lines by newline, and the
//! renderer splits a line longer than [`super::LINE_MAX_BYTES`] into several, so a line's number
//! on the page is its number in the log plus the splits before it.

use super::Line;

/// The most runs of shifted lines a [`LineMap`] remembers; past them, later lines are placed as
/// if no line before them had been split. A log cannot make the map grow without end this way
/// (splits can be cheap: a cursor jump makes a long line of a few bytes).
pub const LINE_SHIFTS_MAX: usize = 10_000;

/// Log lines (counted by newline, from 1) to page lines, fed every line the renderer completes.
#[derive(Debug, Default, Clone)]
pub struct LineMap {
    /// Log lines completed by a newline so far.
    newlines: u64,
    /// `(line, extra)`: log lines from `line` on are `extra` page lines further down; in order.
    shifts: Vec<(u64, u64)>,
}

impl LineMap {
    pub fn new() -> LineMap {
        LineMap::default()
    }

    /// Takes note of a line the renderer completed.
    pub fn saw(&mut self, line: &Line) {
        if !line.wrapped {
            self.newlines += 1;
            return;
        }
        // The log's line being rendered is `newlines + 1`; the ones after it move down by one.
        let extra = self.shifts.last().map_or(0, |(_, extra)| *extra) + 1;
        let from = self.newlines + 2;
        let room = self.shifts.len() < LINE_SHIFTS_MAX;
        match self.shifts.last_mut() {
            Some(last) if last.0 == from => last.1 = extra,
            _ if room => self.shifts.push((from, extra)),
            _ => {}
        }
    }

    fn extra_before(&self, line: u64) -> u64 {
        let at = self.shifts.partition_point(|(from, _)| *from <= line);
        at.checked_sub(1).map_or(0, |i| self.shifts[i].1)
    }

    /// The page line where log line `line` starts.
    pub fn first(&self, line: u64) -> u64 {
        line + self.extra_before(line)
    }

    /// The page line where log line `line` ends.
    pub fn last(&self, line: u64) -> u64 {
        self.first(line + 1) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{LINE_MAX_BYTES, Renderer};

    fn map_of(log: &[u8]) -> LineMap {
        let mut renderer = Renderer::new();
        let mut map = LineMap::new();
        let lines = renderer.push(log);
        lines.iter().chain(renderer.finish().iter()).for_each(|l| map.saw(l));
        map
    }

    #[test]
    fn lines_after_a_split_line_move_down() {
        // Log line 2 is two and a bit times the limit: three page lines.
        let long = vec![b'x'; 2 * LINE_MAX_BYTES + 5];
        let log = [b"one\n".as_slice(), &long, b"\nthree\nfour\n"].concat();
        let map = map_of(&log);
        assert_eq!((map.first(1), map.last(1)), (1, 1));
        assert_eq!((map.first(2), map.last(2)), (2, 4));
        assert_eq!((map.first(3), map.last(3)), (5, 5));
        assert_eq!(map.first(4), 6);
        let plain = map_of(b"a\nb\nc\n");
        assert_eq!((plain.first(3), plain.last(3)), (3, 3));
    }

    #[test]
    fn the_map_is_bounded() {
        let mut map = LineMap::new();
        let wrapped = Line { number: 0, html: String::new(), wrapped: true };
        let ended = Line { wrapped: false, ..wrapped.clone() };
        for _ in 0..LINE_SHIFTS_MAX + 50 {
            map.saw(&wrapped);
            map.saw(&ended);
        }
        assert_eq!(map.shifts.len(), LINE_SHIFTS_MAX);
        assert_eq!(map.first(2), 3);
    }
}
