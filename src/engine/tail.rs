//! The last lines of a run's log, for its check run's text.

/// The last lines of a log, with bounded memory, for the check run's text.
#[derive(Default)]
pub struct Tail {
    lines: std::collections::VecDeque<String>,
    partial: Vec<u8>,
}

impl Tail {
    pub fn push(&mut self, data: &[u8]) {
        for &byte in data {
            if byte == b'\n' {
                let line = String::from_utf8_lossy(&self.partial).into_owned();
                self.partial.clear();
                self.lines.push_back(line);
                if self.lines.len() > crate::core::report::LOG_TAIL_LINES {
                    self.lines.pop_front();
                }
            } else if self.partial.len() < crate::core::report::TAIL_LINE_MAX_BYTES {
                self.partial.push(byte);
            }
        }
    }

    pub fn text(&self) -> String {
        let mut text: String = self.lines.iter().map(|l| format!("{l}\n")).collect();
        text.push_str(&String::from_utf8_lossy(&self.partial));
        crate::core::report::strip_ansi(&text)
    }
}
