use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;

fn at(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + ms)
}

/// (name, kind, status, first line, last line) of every step.
fn summary(steps: &Steps) -> Vec<(String, &'static str, &'static str, u64, u64)> {
    steps
        .all()
        .iter()
        .map(|s| (s.name.clone(), s.kind.as_str(), s.status.as_str(), s.first_line, s.last_line))
        .collect()
}

fn row(
    name: &str,
    kind: &'static str,
    status: &'static str,
    first: u64,
    last: u64,
) -> (String, &'static str, &'static str, u64, u64) {
    (name.to_string(), kind, status, first, last)
}

#[test]
fn built_in_steps_cover_the_lines_written_while_they_ran() {
    let mut steps = Steps::new();
    let checkout = steps.begin(StepKind::Checkout, "checkout", at(0));
    steps.output(b"tether: fetching\n", false, at(1));
    steps.end(checkout.index, StepStatus::Success, at(10));
    let run = steps.begin(StepKind::Run, "run", at(11));
    assert_eq!(run.first_line, 2);
    steps.output(b"one\ntwo\nthr", true, at(12));
    steps.output(b"ee\n", true, at(13));
    let ended = steps.end(run.index, StepStatus::Failure, at(20));
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].duration(), Some(Duration::from_millis(9)));
    assert_eq!(
        summary(&steps),
        [row("checkout", "checkout", "success", 1, 1), row("run", "run", "failure", 2, 4)]
    );
}

#[test]
fn sections_open_at_their_group_line_and_close_at_endgroup() {
    let mut steps = Steps::new();
    let run = steps.begin(StepKind::Run, "run", at(0));
    let changed =
        steps.output(b"before\n::group::Build it\ncc x\n::endgroup::\nafter\n", true, at(5));
    assert_eq!(changed.len(), 2, "opened, then closed: {changed:?}");
    assert_eq!((changed[0].status, changed[1].status), (StepStatus::Running, StepStatus::Success));
    steps.end(run.index, StepStatus::Success, at(9));
    assert_eq!(
        summary(&steps),
        [row("run", "run", "success", 1, 5), row("Build it", "section", "success", 2, 4)]
    );
}

#[test]
fn a_group_inside_a_section_closes_it_first_and_an_unclosed_one_ends_with_the_run() {
    let mut steps = Steps::new();
    let run = steps.begin(StepKind::Run, "run", at(0));
    steps.output(b"::group::One\r\na\r\n::group::Two\r\nb\r\nboom\r\n", true, at(1));
    let ended = steps.end(run.index, StepStatus::Failure, at(2));
    assert_eq!(ended.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["Two", "run"]);
    assert_eq!(
        summary(&steps),
        [
            row("run", "run", "failure", 1, 5),
            row("One", "section", "success", 1, 2),
            row("Two", "section", "failure", 3, 5),
        ]
    );
}

#[test]
fn markers_split_across_chunks_are_found() {
    let mut steps = Steps::new();
    steps.begin(StepKind::Run, "run", at(0));
    assert!(steps.output(b"::gro", true, at(1)).is_empty());
    let opened = steps.output(b"up::Tests\n", true, at(2));
    assert_eq!(opened[0].name, "Tests");
    assert_eq!(opened[0].started, at(2));
}

#[test]
fn markers_count_only_at_the_start_of_the_commands_own_lines_during_run() {
    let mut steps = Steps::new();
    steps.begin(StepKind::Checkout, "checkout", at(0));
    assert!(steps.output(b"::group::not in run\n", true, at(1)).is_empty());
    steps.begin(StepKind::Run, "run", at(2));
    assert!(steps.output(b"tether: ::group::runner line\n", false, at(3)).is_empty());
    assert!(steps.output(b"::group::from the runner\n", false, at(3)).is_empty());
    assert!(steps.output(b"  ::group::indented\nx ::endgroup::\n", true, at(4)).is_empty());
    assert_eq!(steps.all().len(), 2);
}

#[test]
fn titles_are_trimmed_bounded_and_plain() {
    let mut steps = Steps::new();
    steps.begin(StepKind::Run, "run", at(0));
    let long = format!("::group:: \x1b[31mred{}\n", "x".repeat(5000));
    let opened = steps.output(long.as_bytes(), true, at(1));
    let title = &opened[0].name;
    assert!(title.starts_with("[31mred") && !title.contains('\x1b'), "{title:?}");
    assert_eq!(title.chars().count(), SECTION_TITLE_MAX_CHARS);
    let opened = steps.output(b"::group::\n", true, at(2));
    assert_eq!(opened.last().unwrap().name, "section");
}

#[test]
fn sections_are_bounded() {
    let mut steps = Steps::new();
    steps.begin(StepKind::Run, "run", at(0));
    let many = "::group::s\n".repeat(SECTIONS_MAX + 10);
    steps.output(many.as_bytes(), true, at(1));
    assert_eq!(steps.all().len(), SECTIONS_MAX + 1);
}

#[test]
fn skipped_steps_end_at_once_and_take_no_output() {
    let mut steps = Steps::new();
    let checkout = steps.begin(StepKind::Checkout, "checkout", at(0));
    steps.end(checkout.index, StepStatus::Failure, at(1));
    let run = steps.skip(StepKind::Run, "run", at(1));
    assert_eq!((run.status, run.finished), (StepStatus::Skipped, Some(at(1))));
    assert!(steps.output(b"::group::late\n", true, at(2)).is_empty());
    assert_eq!(steps.all()[1].last_line, 1);
}

#[test]
fn a_server_keeps_each_step_once_begun_and_once_ended() {
    let at = std::time::UNIX_EPOCH;
    let mut kept = KeptSteps::default();
    let mut steps = Steps::new();
    let run = steps.begin(StepKind::Run, "run", at);
    assert_eq!(kept.take(run.clone()), Some(run.clone()));
    // Again, or out of order: nothing changes.
    assert_eq!(kept.take(run.clone()), None);
    let far = Step { index: 7, ..run.clone() };
    assert_eq!(kept.take(far), None);
    let ended = steps.end(0, StepStatus::Failure, at).remove(0);
    assert_eq!(kept.take(ended.clone()).map(|s| s.status), Some(StepStatus::Failure));
    assert_eq!(kept.take(Step { status: StepStatus::Success, ..ended }), None);
    let open = steps.begin(StepKind::Section, "Build", at);
    kept.take(open);
    let ended = kept.end_running(StepStatus::Cancelled, at, 9);
    assert_eq!(ended.len(), 1);
    assert_eq!((ended[0].status, ended[0].last_line), (StepStatus::Cancelled, 9));
}

#[test]
fn a_server_keeps_at_most_the_bound() {
    let at = std::time::UNIX_EPOCH;
    let mut kept = KeptSteps::default();
    let mut steps = Steps::new();
    for _ in 0..STEPS_PER_RUN_MAX + 5 {
        let step = steps.begin(StepKind::Checkout, "x", at);
        kept.take(step);
    }
    assert_eq!(kept.end_running(StepStatus::Failure, at, 1).len(), STEPS_PER_RUN_MAX);
}
