//! The last lines of a run's log, for its check run's text.

/// The last lines of a log, with bounded memory, for the check run's text.
#[derive(Default)]
pub struct Tail {
    lines: std::collections::VecDeque<String>,
    partial: Vec<u8>,
}

impl Tail {
    pub fn push(&mut self, data: &[u8]) {
        let keep = crate::core::report::LOG_TAIL_LINES;
        // Only the last `keep` lines can stay: a chunk that ends more lines than that replaces
        // everything, and only its last ones are looked at.
        let mut start = 0;
        let mut ends = 0;
        for (i, &byte) in data.iter().enumerate().rev() {
            if byte == b'\n' {
                ends += 1;
                if ends > keep {
                    start = i + 1;
                    self.lines.clear();
                    self.partial.clear();
                    break;
                }
            }
        }
        for piece in data[start..].split_inclusive(|&b| b == b'\n') {
            let (text, ended) = match piece.strip_suffix(b"\n") {
                Some(text) => (text, true),
                None => (piece, false),
            };
            let room = crate::core::report::TAIL_LINE_MAX_BYTES.saturating_sub(self.partial.len());
            self.partial.extend_from_slice(&text[..text.len().min(room)]);
            if ended {
                self.lines.push_back(String::from_utf8_lossy(&self.partial).into_owned());
                self.partial.clear();
                if self.lines.len() > keep {
                    self.lines.pop_front();
                }
            }
        }
    }

    pub fn text(&self) -> String {
        let mut text: String = self.lines.iter().map(|l| format!("{l}\n")).collect();
        text.push_str(&String::from_utf8_lossy(&self.partial));
        crate::core::report::strip_ansi(&text)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::core::report::{LOG_TAIL_LINES, TAIL_LINE_MAX_BYTES};

    /// The rule, a byte at a time: lines cut at the byte limit, the last `LOG_TAIL_LINES` kept.
    fn by_bytes(chunks: &[Vec<u8>]) -> (Vec<String>, Vec<u8>) {
        let (mut lines, mut partial) = (Vec::new(), Vec::new());
        for &byte in chunks.iter().flatten() {
            if byte == b'\n' {
                lines.push(String::from_utf8_lossy(&partial).into_owned());
                partial.clear();
            } else if partial.len() < TAIL_LINE_MAX_BYTES {
                partial.push(byte);
            }
        }
        let first = lines.len().saturating_sub(LOG_TAIL_LINES);
        (lines.split_off(first), partial)
    }

    fn chunk() -> impl Strategy<Value = Vec<u8>> {
        // Mostly newlines and short lines, now and then one past the byte limit.
        prop_oneof![
            8 => proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'x'), any::<u8>()], 0..200),
            1 => (TAIL_LINE_MAX_BYTES..TAIL_LINE_MAX_BYTES + 50).prop_map(|n| vec![b'y'; n]),
            1 => (0..3 * LOG_TAIL_LINES).prop_map(|n| b"z\n".repeat(n)),
        ]
    }

    proptest! {
        #[test]
        fn keeps_what_the_byte_rule_keeps(chunks in proptest::collection::vec(chunk(), 0..12)) {
            let mut tail = Tail::default();
            for chunk in &chunks {
                tail.push(chunk);
            }
            let (lines, partial) = by_bytes(&chunks);
            prop_assert_eq!(Vec::from(tail.lines.clone()), lines);
            prop_assert_eq!(tail.partial, partial);
        }
    }
}
