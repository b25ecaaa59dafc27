//! A secret never reaches the reader, end to end: a check on a real runner prints its value
//! whole, interrupted by escapes and split across stdout and stderr; neither the raw log, nor the
//! run page, nor the live events, nor the check run on GitHub holds any piece of it.

use std::time::Duration;

use crate::live::SseReader;
use crate::world::*;

const STEP_LIMIT: Duration = Duration::from_secs(30);
/// The value, and two pieces of it that must not show either.
const VALUE: &str = "s3cr3t-v4lue-0042";
const PIECES: [&str; 2] = ["s3cr3t", "v4lue"];

/// Prints the value plainly, with SGR, EL and an OSC 8 link inside it, and split across stdout
/// and stderr, once `release` exists.
fn check(release: &std::path::Path) -> String {
    let script = format!(
        r#"k="$DEPLOY_KEY"; a=$(printf %s "$k" | cut -c1-6); b=$(printf %s "$k" | cut -c7-)
while [ ! -e {release} ]; do sleep 0.05; done
printf 'plain %s\n' "$k"
printf 'bold \033[1m%s\033[0m%s end\n' "$a" "$b"
printf 'erase %s\033[K%s end\n' "$a" "$b"
printf 'link \033]8;;https://x.test/\033\\%s\033]8;;\033\\%s end\n' "$a" "$b"
printf 'split %s' "$a"; sleep 0.3; printf '%s end\n' "$b" >&2; sleep 0.3
echo done"#,
        release = release.display()
    );
    format!("[checks.leaky]\nrun = {script:?}\nsecrets = [\"DEPLOY_KEY\"]\n")
}

fn assert_no_secret(what: &str, text: &str) {
    for piece in [VALUE].iter().chain(&PIECES) {
        assert!(!text.contains(piece), "{what} shows {piece:?}: {text}");
    }
}

#[tokio::test]
async fn no_piece_of_a_secret_reaches_the_log_the_page_the_live_events_or_github() {
    let world = World::new().await;
    let secrets = world.dir.path().join("secrets.toml");
    std::fs::write(&secrets, format!("DEPLOY_KEY = {VALUE:?}\n")).unwrap();
    let _runner =
        world.connect_runner_with("alice", &["--secrets", secrets.to_str().unwrap()]).await;
    let release = world.dir.path().join("release");
    let sha = world.commit_config(&check(&release));
    world.deliver("push", "delivery-secret", &world.push_payload(&sha)).await;
    let runs = world
        .wait_for_check_runs(STEP_LIMIT, |rs| rs.len() == 1 && rs[0]["status"] == "in_progress")
        .await;
    let run_id = runs[0]["external_id"].as_str().unwrap().to_string();
    let mut events = SseReader::open(&world.server, &format!("/runs/{run_id}/events"), None).await;
    std::fs::write(&release, "").unwrap();
    let mut live = String::new();
    while let Some(event) = events.next().await {
        if event.event.as_deref() == Some("end") {
            break;
        }
        live.push_str(&event.data);
        live.push('\n');
    }
    assert!(live.contains("done"), "{live}");
    assert_no_secret("the live events", &live);

    let runs = world.wait_for_check_runs(STEP_LIMIT, |rs| completed(rs, 1)).await;
    assert_eq!(runs[0]["conclusion"], "success", "{runs:#?}");
    let text = output(&runs[0], "text");
    assert_eq!(text.matches("***").count(), 5, "{text}");
    assert_no_secret("the check run's text on GitHub", text);
    let (_, raw) = world.server.get(&format!("/runs/{run_id}/raw")).await;
    assert_eq!(raw.matches("***").count(), 5, "{raw}");
    assert_no_secret("the raw log", &raw);
    let (_, page) = world.server.get(&format!("/runs/{run_id}")).await;
    assert!(page.contains("plain ***") && page.contains("done"), "{page}");
    assert_no_secret("the run page", &page);
}
