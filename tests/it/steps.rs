//! Issue 15's server side: a run's steps stored, in the runs API and in the check run.

use std::time::Duration;

use crate::world::*;

const SECTIONED: &str = "echo hi; echo ::group::Build; echo compiling; echo ::endgroup::; \
    echo \"::group::Test it\"; echo testing; exit 3";

#[tokio::test]
async fn steps_reach_the_api_and_the_check_run_names_the_failing_one() {
    let world = World::new().await;
    let (_runner, _ssh) = world.connect_runner().await;
    let sha = world.commit_config(&format!("[checks.sections]\nrun = '{SECTIONED}'\n"));
    world.deliver("push", "delivery-1", &world.push_payload(&sha)).await;
    let runs = world.wait_for_check_runs(Duration::from_secs(30), |rs| completed(rs, 1)).await;
    assert!(completed(&runs, 1), "{runs:#?}");
    let output = &runs[0]["output"];
    assert_eq!(output["title"], "Failed in Test it (exit 3)", "{output:#}");
    let summary = output["summary"].as_str().unwrap();
    assert!(summary.contains("| ↳ `Build` | success |"), "{summary}");
    assert!(summary.contains("| ↳ `Test it` | failure |"), "{summary}");

    let run_id = runs[0]["external_id"].as_str().unwrap();
    let (status, body) = world.server.get(&format!("/api/v1/runs/{run_id}")).await;
    assert_eq!(status, 200, "{body}");
    let run: serde_json::Value = serde_json::from_str(&body).unwrap();
    let steps = run["steps"].as_array().unwrap();
    let rows: Vec<(&str, &str, &str, u64, u64)> = steps
        .iter()
        .map(|s| {
            let text = |k: &str| s[k].as_str().unwrap();
            let line = |k: &str| s[k].as_u64().unwrap();
            (text("name"), text("kind"), text("status"), line("first_line"), line("last_line"))
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("checkout", "checkout", "success", 1, 1),
            ("run", "run", "failure", 1, 6),
            ("Build", "section", "success", 2, 4),
            ("Test it", "section", "failure", 5, 6),
        ]
    );
    for step in steps {
        assert!(step["duration_ms"].is_u64() && step["finished_at"].is_string(), "{step:#}");
        assert!(step["started_at"].as_str().unwrap().ends_with('Z'));
    }
    let (_, list) = world.server.get("/api/v1/runs").await;
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list[0]["steps"].as_array().unwrap().len(), 4, "{list:#}");
}

#[tokio::test]
async fn a_step_after_a_line_split_for_length_links_to_its_line_on_the_page() {
    let world = World::new().await;
    let (_runner, _ssh) = world.connect_runner().await;
    // Line 1 is 70,000 bytes, past the renderer's limit (64 KiB): it takes two lines of the page.
    let script = "head -c 70000 /dev/zero | tr \"\\\\0\" x; echo; echo ::group::After; echo in; \
        echo ::endgroup::";
    let sha = world.commit_config(&format!("[checks.long]\nrun = '{script}'\n"));
    world.deliver("push", "delivery-1", &world.push_payload(&sha)).await;
    let runs = world.wait_for_check_runs(Duration::from_secs(30), |rs| completed(rs, 1)).await;
    assert_eq!(runs[0]["conclusion"], "success", "{runs:#?}");
    let run_id = runs[0]["external_id"].as_str().unwrap();
    let (_, body) = world.server.get(&format!("/api/v1/runs/{run_id}")).await;
    let run: serde_json::Value = serde_json::from_str(&body).unwrap();
    let section = run["steps"].as_array().unwrap().iter().find(|s| s["name"] == "After");
    let section = section.expect("the section");
    assert_eq!((section["first_line"].as_u64(), section["last_line"].as_u64()), (Some(3), Some(5)));
    let (_, page) = world.server.get(&format!("/runs/{run_id}")).await;
    let line3 = page.split("id=\"L3\"").nth(1).expect("line 3 on the page");
    let line3 = line3.split("</div>").next().unwrap();
    assert!(line3.starts_with("><a href=\"#L3\">3</a>") && line3.contains("::group::After"));
}

#[tokio::test]
async fn a_timed_out_run_ends_its_page_with_tethers_last_word_and_not_its_raw_log() {
    let world = World::new().await;
    let (_runner, _ssh) = world.connect_runner().await;
    let sha =
        world.commit_config("[checks.slow]\nrun = 'echo begin; sleep 31415926'\ntimeout = '1s'\n");
    world.deliver("push", "delivery-1", &world.push_payload(&sha)).await;
    let runs = world.wait_for_check_runs(Duration::from_secs(30), |rs| completed(rs, 1)).await;
    assert_eq!(runs[0]["conclusion"], "timed_out", "{runs:#?}");
    let run_id = runs[0]["external_id"].as_str().unwrap();
    let (_, raw) = world.server.get(&format!("/runs/{run_id}/raw")).await;
    assert_eq!(raw, "begin\n");
    let (_, page) = world.server.get(&format!("/runs/{run_id}")).await;
    let word = page.split("<div class=\"line tether\" id=\"L2\">").nth(1).expect("the last word");
    let word = word.split("</div>").next().unwrap();
    assert!(word.contains("tether: timed out after 1.0s: sent SIGTERM</span>"), "{word}");
    assert!(!page.contains("id=\"L3\""));
}
