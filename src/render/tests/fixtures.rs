//! The renderer on output recorded from real tools (`tests/fixtures/logs/`, see its README).

use super::{render, render_chunks};

const CARGO: &[u8] = include_bytes!("../../../tests/fixtures/logs/cargo-build-error.log");
const GIT_LOG: &[u8] = include_bytes!("../../../tests/fixtures/logs/git-log-graph.log");
const GIT_DIFF: &[u8] = include_bytes!("../../../tests/fixtures/logs/git-diff.log");
const LS: &[u8] = include_bytes!("../../../tests/fixtures/logs/ls-color.log");
const PROGRESS: &[u8] = include_bytes!("../../../tests/fixtures/logs/progress-bar.log");
const ALL: [&[u8]; 5] = [CARGO, GIT_LOG, GIT_DIFF, LS, PROGRESS];

fn lines(log: &[u8]) -> Vec<String> {
    render(log).into_iter().map(|l| l.html).collect()
}

#[test]
fn every_fixture_renders_the_same_in_any_chunks_and_without_escape_residue() {
    for log in ALL {
        let whole = render(log);
        for size in [1, 3, 64] {
            assert_eq!(render_chunks(log, size), whole);
        }
        assert_eq!(whole.len(), log.iter().filter(|&&b| b == b'\n').count());
        for line in &whole {
            assert!(!line.html.contains('\x1b') && !line.html.contains("[0m"), "{}", line.html);
        }
    }
}

#[test]
fn cargo_errors_are_bold_bright_red() {
    let lines = lines(CARGO);
    assert!(
        lines[0].starts_with("<span class=\"c-bold c-fg-10\">   Compiling</span> tinyerr v0.1.0")
    );
    assert_eq!(
        lines[1],
        "<span class=\"c-bold c-fg-9\">error[E0425]</span><span class=\"c-bold\">: cannot find value `y` in this scope</span>"
    );
    let source = "<span class=\"c-bold c-fg-12\">2</span> <span class=\"c-bold c-fg-12\">|</span>     \
                  let x: u32 = &quot;not a number&quot;;";
    assert!(lines.iter().any(|l| l == source), "{lines:#?}");
    let last = lines.last().map(String::as_str);
    assert_eq!(
        last,
        Some(
            "<span class=\"c-bold c-fg-9\">error</span>: could not compile `tinyerr` (bin &quot;tinyerr&quot;) due to 2 previous errors"
        )
    );
}

#[test]
fn git_log_graph_keeps_its_colours_and_escapes_the_subject() {
    let lines = lines(GIT_LOG);
    assert!(lines[0].starts_with("*   <span class=\"c-fg-3\">"), "{}", lines[0]);
    assert!(lines[0].contains(
        "<span class=\"c-bold c-fg-6\">HEAD</span><span class=\"c-fg-3\"> -&gt; </span>"
    ));
    assert!(lines[0].contains("<span class=\"c-bold c-fg-2\">master</span>"));
    assert_eq!(lines[1], "<span class=\"c-fg-1\">|</span><span class=\"c-fg-2\">\\</span>  ");
    assert!(
        lines[5].ends_with("</span> first &lt;commit&gt; &amp; &quot;quotes&quot;"),
        "{}",
        lines[5]
    );
}

#[test]
fn git_diff_lines_are_red_and_green() {
    let lines = lines(GIT_DIFF);
    assert_eq!(lines[0], "<span class=\"c-bold\">diff --git a/f b/f</span>");
    assert_eq!(lines[4], "<span class=\"c-fg-6\">@@ -1,2 +1,2 @@</span>");
    assert_eq!(lines[6], "<span class=\"c-fg-1\">-b</span>");
    assert_eq!(lines[7], "<span class=\"c-fg-2\">+new line</span>");
}

#[test]
fn ls_colours_directories_links_and_executables() {
    assert_eq!(
        lines(LS),
        [
            "<span class=\"c-bold c-fg-2\">exe</span>",
            "<span class=\"c-bold c-fg-6\">link</span>",
            "plain",
            "<span class=\"c-bold c-fg-4\">sub</span>",
        ]
    );
}

#[test]
fn a_progress_bar_shows_its_final_state_only() {
    assert_eq!(lines(PROGRESS), ["progress [####################] 100%", "done"]);
}
