//! A run's steps, pure: the built-in ones (`checkout`, `image`, `run`) as the runner begins and
//! ends them, the sections a check opens with `::group::TITLE` and closes with `::endgroup::`,
//! and the log lines each covers. Times come in as arguments.

use std::time::SystemTime;

/// The line that opens a section (GitHub Actions' syntax); the rest of the line is its title.
pub const GROUP_MARKER: &[u8] = b"::group::";
/// The line that closes the open section.
pub const ENDGROUP_MARKER: &[u8] = b"::endgroup::";
/// The most bytes of a line looked at for a marker; a longer title is cut.
pub const MARKER_LINE_MAX_BYTES: usize = 512;
/// The most characters of a section's title.
pub const SECTION_TITLE_MAX_CHARS: usize = 200;
/// The most sections one run gets; later markers stay plain lines of the log.
pub const SECTIONS_MAX: usize = 1000;
/// The most steps of one run a server keeps: the built-in ones and every section.
pub const STEPS_PER_RUN_MAX: usize = SECTIONS_MAX + 3;

/// What a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepKind {
    Checkout,
    Image,
    Run,
    Section,
}

/// Where a step is, or how it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepStatus {
    Running,
    Success,
    Failure,
    Cancelled,
    /// Not run, because an earlier step failed.
    Skipped,
}

impl StepKind {
    pub const ALL: [StepKind; 4] =
        [StepKind::Checkout, StepKind::Image, StepKind::Run, StepKind::Section];

    /// The kind named `name` (as [`StepKind::as_str`] spells it).
    pub fn from_name(name: &str) -> Option<StepKind> {
        StepKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Checkout => "checkout",
            StepKind::Image => "image",
            StepKind::Run => "run",
            StepKind::Section => "section",
        }
    }
}

impl StepStatus {
    pub const ALL: [StepStatus; 5] = [
        StepStatus::Running,
        StepStatus::Success,
        StepStatus::Failure,
        StepStatus::Cancelled,
        StepStatus::Skipped,
    ];

    /// The status named `name` (as [`StepStatus::as_str`] spells it).
    pub fn from_name(name: &str) -> Option<StepStatus> {
        StepStatus::ALL.into_iter().find(|s| s.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Running => "running",
            StepStatus::Success => "success",
            StepStatus::Failure => "failure",
            StepStatus::Cancelled => "cancelled",
            StepStatus::Skipped => "skipped",
        }
    }
}

/// One step, as sent when it begins and again when it ends (same `index`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Its position in the run's list: 0, 1, 2, … in the order the steps began.
    pub index: u32,
    pub name: String,
    pub kind: StepKind,
    pub status: StepStatus,
    pub started: SystemTime,
    /// `None` while it runs.
    pub finished: Option<SystemTime>,
    /// Lines of the log from 1, a line being what ends with `\n` in the raw log.
    pub first_line: u64,
    pub last_line: u64,
}

impl Step {
    /// How long it took, once it ended.
    pub fn duration(&self) -> Option<std::time::Duration> {
        self.finished.map(|end| end.duration_since(self.started).unwrap_or_default())
    }
}

/// The steps of one run and the position in its log.
#[derive(Debug, Default)]
pub struct Steps {
    steps: Vec<Step>,
    /// Newlines seen so far: the current line is this plus one.
    newlines: u64,
    /// The line of the last byte written so far (0 before any).
    last_written: u64,
    /// The first bytes of the current line of the command's output, for markers.
    pending: Vec<u8>,
    run: Option<usize>,
    section: Option<usize>,
    sections: usize,
}

impl Steps {
    pub fn new() -> Steps {
        Steps::default()
    }

    /// Every step so far.
    pub fn all(&self) -> &[Step] {
        &self.steps
    }

    fn current_line(&self) -> u64 {
        self.newlines + 1
    }

    /// Begins a step at the current line; returns it as it is now.
    pub fn begin(&mut self, kind: StepKind, name: &str, at: SystemTime) -> Step {
        let line = self.current_line();
        self.push(kind, name, at, line)
    }

    fn push(&mut self, kind: StepKind, name: &str, at: SystemTime, line: u64) -> Step {
        let index = self.steps.len();
        self.steps.push(Step {
            index: index as u32,
            name: name.to_string(),
            kind,
            status: StepStatus::Running,
            started: at,
            finished: None,
            first_line: line,
            last_line: line,
        });
        if kind == StepKind::Run {
            self.run = Some(index);
        }
        self.steps[index].clone()
    }

    /// A step that did not run because an earlier one failed.
    pub fn skip(&mut self, kind: StepKind, name: &str, at: SystemTime) -> Step {
        let mut step = self.begin(kind, name, at);
        if kind == StepKind::Run {
            self.run = None;
        }
        step = self.close(step.index as usize, StepStatus::Skipped, at, None);
        step
    }

    /// Ends step `index` (a built-in one); ending `run` also ends its open section, which
    /// gets the same status. Returns every step that ended, in order.
    pub fn end(&mut self, index: u32, status: StepStatus, at: SystemTime) -> Vec<Step> {
        let index = index as usize;
        let mut ended = Vec::new();
        if self.run == Some(index) {
            ended.extend(self.section_ends(status, at, None));
            self.run = None;
        }
        if self.steps.get(index).is_some_and(|s| s.status == StepStatus::Running) {
            ended.push(self.close(index, status, at, None));
        }
        ended
    }

    /// Ends a step at line `last`, or by default at the last line written.
    fn close(
        &mut self,
        index: usize,
        status: StepStatus,
        at: SystemTime,
        last: Option<u64>,
    ) -> Step {
        let last = last.unwrap_or(self.last_written);
        let step = &mut self.steps[index];
        step.status = status;
        step.finished = Some(at);
        step.last_line = last.max(step.first_line);
        step.clone()
    }

    /// Counts the lines of a chunk of the log. With `command` (the check's own output while
    /// `run` is open) it also opens and closes sections; returns the sections that began or
    /// ended, in order.
    pub fn output(&mut self, data: &[u8], command: bool, at: SystemTime) -> Vec<Step> {
        let mut changed = Vec::new();
        let command = command && self.run.is_some();
        let mut rest = data;
        while !rest.is_empty() {
            let (line, newline) = match rest.iter().position(|&b| b == b'\n') {
                Some(end) => (&rest[..end], true),
                None => (rest, false),
            };
            rest = &rest[line.len() + usize::from(newline)..];
            self.last_written = self.current_line();
            if command {
                let room = MARKER_LINE_MAX_BYTES.saturating_sub(self.pending.len());
                self.pending.extend_from_slice(&line[..line.len().min(room)]);
            }
            if newline {
                if command {
                    changed.extend(self.marker_line(at));
                }
                self.newlines += 1;
                self.pending.clear();
            }
        }
        changed
    }

    /// Acts on the completed line in `pending`, if it is a marker.
    fn marker_line(&mut self, at: SystemTime) -> Vec<Step> {
        let line = self.pending.strip_suffix(b"\r").unwrap_or(&self.pending);
        let line_no = self.current_line();
        if let Some(title) = line.strip_prefix(GROUP_MARKER) {
            if self.sections >= SECTIONS_MAX {
                return Vec::new();
            }
            let title = section_title(title);
            let mut changed = self.section_ends(StepStatus::Success, at, Some(line_no - 1));
            self.sections += 1;
            let step = self.push(StepKind::Section, &title, at, line_no);
            self.section = Some(step.index as usize);
            changed.push(step);
            return changed;
        }
        if line == ENDGROUP_MARKER {
            return self.section_ends(StepStatus::Success, at, Some(line_no));
        }
        Vec::new()
    }

    fn section_ends(&mut self, status: StepStatus, at: SystemTime, last: Option<u64>) -> Vec<Step> {
        match self.section.take() {
            Some(index) => vec![self.close(index, status, at, last)],
            None => Vec::new(),
        }
    }
}

/// The steps a server keeps of one run as its runner reports them: a new step only next in
/// order and within [`STEPS_PER_RUN_MAX`], and a step's end only once, so that a runner sending
/// events without end changes each step at most twice.
#[derive(Debug, Default)]
pub struct KeptSteps {
    steps: Vec<Step>,
}

impl KeptSteps {
    /// Takes a step event; returns the step as kept when it changed something.
    pub fn take(&mut self, step: Step) -> Option<Step> {
        let index = step.index as usize;
        if index == self.steps.len() && index < STEPS_PER_RUN_MAX {
            self.steps.push(step.clone());
            return Some(step);
        }
        let known = self.steps.get_mut(index)?;
        if known.status != StepStatus::Running || step.status == StepStatus::Running {
            return None;
        }
        // What began stays as it began: only the end is new.
        known.status = step.status;
        known.finished = step.finished;
        known.last_line = step.last_line.max(known.first_line);
        Some(known.clone())
    }

    /// Ends every step still running with `status`, at `at` and line `last`: the run ended
    /// without its runner saying so. Returns the steps it ended.
    pub fn end_running(&mut self, status: StepStatus, at: SystemTime, last: u64) -> Vec<Step> {
        let running = self.steps.iter_mut().filter(|s| s.status == StepStatus::Running);
        running
            .map(|step| {
                step.status = status;
                step.finished = Some(at.max(step.started));
                step.last_line = last.max(step.first_line);
                step.clone()
            })
            .collect()
    }
}

/// A section's title: the marker line's rest, trimmed, as text without control characters, at most
/// [`SECTION_TITLE_MAX_CHARS`]; `section` when it is empty.
fn section_title(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    // Control characters (escapes above all) have no place in a title shown as plain text.
    let title: String =
        text.trim().chars().filter(|c| !c.is_control()).take(SECTION_TITLE_MAX_CHARS).collect();
    if title.is_empty() { "section".into() } else { title }
}

#[cfg(test)]
mod tests;
