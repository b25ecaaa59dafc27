//! Cancel and re-run, end to end: the run page's forms (CSRF, same-site, who may), a queued and
//! a running run cancelled, re-runs on the original sender's runner, the check run's "Cancel"
//! button from a maintainer and from a stranger, and Chromium cancelling from the page.

use std::time::Duration;

use serde_json::Value;

use crate::auth::{Session, csrf_of, signed_in};
use crate::flows::{unique_sleep, wait_for_process};
use crate::harness::*;
use crate::serve::*;
use crate::world::*;

const LONG: Duration = Duration::from_secs(30);
/// A maintainer of `octo/repo` with no runner.
const MAINTAINER: (&str, i64) = ("carol", 1003);
/// A user of the fake with no role on `octo/repo`.
const STRANGER: (&str, i64) = ("dave", 1004);

/// A push by alice of one check running `run`; the run's id, once its check run exists.
async fn one_run(world: &World, run: &str, delivery: &str) -> String {
    let sha = world.commit_config(&format!("[checks.job]\nrun = \"{run}\"\n"));
    world.deliver("push", delivery, &world.push_payload(&sha)).await;
    let runs = world.wait_for_check_runs(LONG, |rs| !rs.is_empty()).await;
    runs.last().unwrap()["external_id"].as_str().unwrap().to_string()
}

/// The run's check run, once `done` holds for it.
async fn check_run(world: &World, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let found = |rs: &[Value]| rs.iter().any(|r| r["external_id"] == id && done(r));
    let runs = world.wait_for_check_runs(LONG, found).await;
    let run = runs.iter().find(|r| r["external_id"] == id).unwrap().clone();
    assert!(done(&run), "{run:#}");
    run
}

fn cancelled(run: &Value) -> bool {
    run["conclusion"] == "cancelled"
}

/// The run as the API shows it to `session`.
async fn api_run(world: &World, session: &mut Session, id: &str) -> Value {
    let reply = session.get(&world.server.http_url, &format!("/api/v1/runs/{id}")).await;
    serde_json::from_str(&reply.body).unwrap()
}

/// Posts a form with the session's cookie and these extra headers.
async fn post_with(
    world: &World,
    session: &Session,
    path: &str,
    form: &str,
    extra: &[(&str, &str)],
) -> Reply {
    let cookie = session.header();
    let mut headers =
        vec![("Cookie", cookie.as_str()), ("Content-Type", "application/x-www-form-urlencoded")];
    headers.extend_from_slice(extra);
    http_request(&world.server.http_url, "POST", path, &headers, form.as_bytes()).await
}

#[tokio::test]
async fn cancel_and_rerun_need_the_csrf_token_a_same_site_request_and_write_access() {
    let world = World::new().await;
    world.github.add_user(MAINTAINER.0, MAINTAINER.1, &[]);
    world.github.set_permission(REPO, MAINTAINER.0, "maintain");
    world.github.set_permission(REPO, "bob", "read");
    // No runner: the run stays queued, with its Cancel button.
    let id = one_run(&world, "true", "push-1").await;
    let queued = check_run(&world, &id, |r| r["status"] == "queued").await;
    let button = serde_json::json!([{"label": "Cancel", "description": "Stop this run on its runner", "identifier": "cancel"}]);
    assert_eq!(queued["actions"], button, "{queued:#}");
    let server = world.server.http_url.clone();
    let (page, cancel, rerun) =
        (format!("/runs/{id}"), format!("/runs/{id}/cancel"), format!("/runs/{id}/rerun"));

    // Signed out: no form, and a post is refused.
    let mut anonymous = Session::default();
    assert!(!anonymous.get(&server, &page).await.body.contains("cancel-run"));
    assert_eq!(anonymous.post_form(&server, &cancel, "csrf=x").await.status, 403);

    // A reader sees no form, and is refused with his own valid token.
    let mut bob = signed_in(&world, "bob").await;
    let bobs = bob.get(&server, &page).await;
    assert!(!bobs.body.contains("cancel-run"), "{}", bobs.body);
    let token = csrf_of(&bobs.body);
    let refused = bob.post_form(&server, &cancel, &format!("csrf={token}")).await;
    assert_eq!(refused.status, 403, "{refused:?}");

    // The maintainer: without the token, with a wrong one, or cross-site, refused.
    let mut carol = signed_in(&world, MAINTAINER.0).await;
    let carols = carol.get(&server, &page).await;
    assert!(carols.body.contains("id=\"cancel-run\""), "{}", carols.body);
    assert!(!carols.body.contains("rerun-run"), "a queued run offers no re-run");
    let token = csrf_of(&carols.body);
    assert_eq!(carol.post_form(&server, &cancel, "").await.status, 403);
    assert_eq!(carol.post_form(&server, &cancel, &format!("csrf={token}")[..20]).await.status, 403);
    let form = format!("csrf={token}");
    let origin =
        post_with(&world, &carol, &cancel, &form, &[("Origin", "https://evil.example")]).await;
    assert_eq!(origin.status, 403, "{origin:?}");
    let site = post_with(&world, &carol, &cancel, &form, &[("Sec-Fetch-Site", "cross-site")]).await;
    assert_eq!(site.status, 403, "{site:?}");
    assert_eq!(api_run(&world, &mut carol, &id).await["status"], "queued", "nothing was cancelled");

    // With the token, same-site: cancelled at once, the button gone, who did it said.
    let done = carol.post_form(&server, &cancel, &form).await;
    assert_eq!((done.status, done.header("location")), (303, Some(page.as_str())), "{done:?}");
    let ended = check_run(&world, &id, cancelled).await;
    assert_eq!(ended["actions"], serde_json::json!([]), "{ended:#}");
    assert!(output(&ended, "summary").starts_with("cancelled by @carol"), "{ended:#}");
    let run = api_run(&world, &mut carol, &id).await;
    assert_eq!((&run["status"], &run["conclusion"]), (&"completed".into(), &"cancelled".into()));

    // Re-run: refused for the reader; the maintainer's goes to alice, the original sender.
    let bobs = bob.get(&server, &page).await;
    assert!(!bobs.body.contains("rerun-run"));
    let token = csrf_of(&bobs.body);
    assert_eq!(bob.post_form(&server, &rerun, &format!("csrf={token}")).await.status, 403);
    let carols = carol.get(&server, &page).await;
    assert!(carols.body.contains("id=\"rerun-run\"") && !carols.body.contains("cancel-run"));
    let again = carol.post_form(&server, &rerun, &form).await;
    assert_eq!(again.status, 303, "{again:?}");
    let new = again.header("location").unwrap().trim_start_matches("/runs/").to_string();
    assert_ne!(new, id);
    let new_run = api_run(&world, &mut carol, &new).await;
    assert_eq!(
        (&new_run["sender"], &new_run["rerun_of"]),
        (&"alice".into(), &id.parse::<i64>().unwrap().into())
    );
    let _alice = world.connect_runner_of("alice").await;
    let rerun_check = check_run(&world, &new, |r| r["conclusion"] == "success").await;
    assert!(output(&rerun_check, "summary").contains("alice/laptop"), "{rerun_check:#}");
}

#[tokio::test]
async fn the_sender_cancels_a_running_run_and_its_process_is_gone() {
    let world = World::new().await;
    let _alice = world.connect_runner_of("alice").await;
    let marker = unique_sleep();
    let id = one_run(&world, &format!("sleep {marker}"), "push-running").await;
    wait_for_process(&marker).await;
    let running = check_run(&world, &id, |r| r["status"] == "in_progress").await;
    assert_eq!(running["actions"][0]["identifier"], "cancel", "{running:#}");

    // alice has no role on the repository: she may cancel as the run's sender.
    let mut alice = signed_in(&world, "alice").await;
    let page = alice.get(&world.server.http_url, &format!("/runs/{id}")).await;
    assert!(page.body.contains("id=\"cancel-run\""), "{}", page.body);
    let form = format!("csrf={}", csrf_of(&page.body));
    let done = alice.post_form(&world.server.http_url, &format!("/runs/{id}/cancel"), &form).await;
    assert_eq!(done.status, 303, "{done:?}");
    let ended = check_run(&world, &id, cancelled).await;
    assert!(output(&ended, "summary").starts_with("cancelled by @alice"), "{ended:#}");
    let gone = eventually(Duration::from_secs(15), || processes_with(&marker).is_empty()).await;
    assert!(gone, "the cancelled run's process survives: {:?}", processes_with(&marker));
}

/// `check_run.requested_action` of run `id`'s check run, clicked by `sender`.
fn button(world: &World, run: &Value, sender: &str, identifier: &str) -> Vec<u8> {
    let mut payload = world.fixture("check_run/requested_action", sender);
    for key in ["external_id", "head_sha", "name", "id"] {
        payload["check_run"][key] = run[key].clone();
    }
    payload["requested_action"]["identifier"] = identifier.into();
    serde_json::to_vec(&payload).unwrap()
}

#[tokio::test]
async fn the_check_runs_cancel_button_cancels_for_a_maintainer_and_not_for_a_stranger() {
    let world = World::new().await;
    world.github.add_user(MAINTAINER.0, MAINTAINER.1, &[]);
    world.github.add_user(STRANGER.0, STRANGER.1, &[]);
    world.github.set_permission(REPO, MAINTAINER.0, "maintain");
    let id = one_run(&world, "true", "push-button").await;
    let queued = check_run(&world, &id, |r| r["status"] == "queued").await;

    // Deliveries are acted on in order: had the stranger's cancelled it, the check run would
    // name him, not the maintainer.
    let stranger = button(&world, &queued, STRANGER.0, "cancel");
    assert_eq!(world.deliver("check_run", "button-1", &stranger).await.0, 202);
    let other = button(&world, &queued, MAINTAINER.0, "lgtm");
    assert_eq!(world.deliver("check_run", "button-2", &other).await.0, 202);
    let maintainer = button(&world, &queued, MAINTAINER.0, "cancel");
    assert_eq!(world.deliver("check_run", "button-3", &maintainer).await.0, 202);
    let ended = check_run(&world, &id, cancelled).await;
    assert!(output(&ended, "summary").starts_with("cancelled by @carol"), "{ended:#}");
}

#[tokio::test]
async fn the_sender_signs_in_with_chromium_and_cancels_a_run_from_its_page() {
    let Some(mut browser) = crate::browser::Browser::start().await else { return };
    let world = World::private_local().await;
    world.github.set_permission(REPO, "alice", "write");
    world.github.sign_in_as("alice");
    let id = one_run(&world, "true", "browser-cancel").await;
    let server = world.server.http_url.clone();
    browser.navigate(&format!("{server}/login")).await;
    let home =
        format!("location.href === '{server}/' && document.body.innerText.includes('alice')");
    assert!(browser.wait_for(LONG, &home).await, "{}", browser.dom().await);
    let run_url = format!("{server}/runs/{id}");
    browser.navigate(&run_url).await;
    let button = "!!document.getElementById('cancel-run')";
    assert!(browser.wait_for(LONG, button).await, "{}", browser.dom().await);
    browser.eval("document.getElementById('cancel-run').click(); true").await;
    check_run(&world, &id, cancelled).await;
    browser.navigate(&run_url).await;
    let shown = "document.body && document.body.innerText.includes('cancelled by @alice')";
    assert!(browser.wait_for(LONG, shown).await, "{}", browser.dom().await);
    browser.screenshot("cancelled-run").await;
}

/// A fork's pull request `number` at `sha`, authored by alice, the event sent by `sender`.
fn fork_pull_request(world: &World, action: &str, sender: &str, sha: &str) -> Vec<u8> {
    let mut payload: Value =
        serde_json::from_slice(&world.pull_request_payload(action, 9, sha)).unwrap();
    payload["sender"] = world.fixture(&format!("pull_request/{action}"), sender)["sender"].clone();
    payload["pull_request"]["user"]["login"] = "alice".into();
    payload["pull_request"]["head"]["repo"]["id"] = 999_999.into();
    payload["pull_request"]["head"]["repo"]["full_name"] = "alice/repo".into();
    serde_json::to_vec(&payload).unwrap()
}

#[tokio::test]
async fn a_maintainer_reopening_a_forks_pull_request_runs_nothing_on_their_runner() {
    let world = World::new().await;
    world.github.set_permission(REPO, "bob", "maintain");
    let _bob = world.connect_runner_of("bob").await;
    let sha = world.commit_config("[checks.fork]\nrun = \"echo from the fork\"\n");
    let reopened = fork_pull_request(&world, "reopened", "bob", &sha);
    assert_eq!(world.deliver("pull_request", "fork-1", &reopened).await.0, 202);
    let runs = world.wait_for_check_runs(LONG, |rs| rs.len() == 1).await;
    assert_eq!(runs[0]["status"], "queued", "{runs:#?}");
    assert!(output(&runs[0], "summary").contains("`/run`"), "{:#}", runs[0]);

    // The author's own push runs, on the author's runner; bob's still ran nothing.
    let _alice = world.connect_runner_of("alice").await;
    let sha2 = world.commit_config("[checks.fork]\nrun = \"echo from the author\"\n");
    let pushed = fork_pull_request(&world, "synchronize", "alice", &sha2);
    assert_eq!(world.deliver("pull_request", "fork-2", &pushed).await.0, 202);
    let ran = |rs: &[Value]| {
        rs.iter().any(|r| r["head_sha"] == sha2.as_str() && r["conclusion"] == "success")
    };
    let runs = world.wait_for_check_runs(LONG, ran).await;
    assert!(ran(&runs), "{runs:#?}");
    let authors = runs.iter().find(|r| r["head_sha"] == sha2.as_str()).unwrap();
    assert!(output(authors, "summary").contains("alice/laptop"), "{authors:#}");
    let held = runs.iter().find(|r| r["head_sha"] == sha.as_str()).unwrap();
    assert!(!output(held, "summary").contains("bob/laptop"), "{held:#}");
}

#[tokio::test]
async fn a_run_comment_lets_a_held_fork_run_go_and_ends_the_held_one() {
    let world = World::new().await;
    world.github.set_permission(REPO, "bob", "maintain");
    let _bob = world.connect_runner_of("bob").await;
    let sha = world.commit_config("[checks.fork]\nrun = \"echo from the fork\"\n");
    world.github.set_pull(REPO, 9, &sha);
    let reopened = fork_pull_request(&world, "reopened", "bob", &sha);
    world.deliver("pull_request", "held-1", &reopened).await;
    let runs = world.wait_for_check_runs(LONG, |rs| rs.len() == 1).await;
    assert_eq!(runs[0]["status"], "queued", "{runs:#?}");

    // bob's `/run` is the consent: his run goes, and the held one ends instead of lingering.
    let body = world.comment_payload("bob", 9, 91, "/run fork");
    world.deliver("issue_comment", "held-2", &body).await;
    let settled = |rs: &[Value]| {
        rs.len() == 2
            && rs.iter().any(|r| r["conclusion"] == "success")
            && rs.iter().any(|r| r["conclusion"] == "cancelled")
    };
    let runs = world.wait_for_check_runs(LONG, settled).await;
    assert!(settled(&runs), "{runs:#?}");
    let ran = runs.iter().find(|r| r["conclusion"] == "success").unwrap();
    assert!(output(ran, "summary").contains("bob/laptop"), "{ran:#}");
    let held = runs.iter().find(|r| r["conclusion"] == "cancelled").unwrap();
    assert!(
        output(held, "title").contains("/run") || output(held, "summary").contains("/run"),
        "{held:#}"
    );
}
