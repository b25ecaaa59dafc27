//! The App Manifest flow: a server without an app creates one through `/setup` and acts as it at
//! once, without a restart.

use std::os::unix::fs::PermissionsExt;

use super::LONG;
use crate::serve::*;
use crate::world::*;

/// The webhook secret of the app the fake's manifest conversion creates.
const NEW_APP_SECRET: &str = "fake-webhook-secret";

/// The value of the attribute `name` of the first tag that has it, unescaped.
fn attribute(html: &str, tag: &str, name: &str) -> String {
    let start = html.find(tag).unwrap_or_else(|| panic!("no {tag:?} in {html}"));
    let rest = &html[start..];
    let needle = format!("{name}=\"");
    let value = &rest[rest.find(&needle).unwrap() + needle.len()..];
    let value = &value[..value.find('"').unwrap()];
    let entities =
        [("&#34;", "\""), ("&quot;", "\""), ("&#39;", "'"), ("&#x27;", "'"), ("&lt;", "<")];
    let mut text = value.to_string();
    for (entity, c) in entities.iter().chain(&[("&gt;", ">"), ("&amp;", "&")]) {
        text = text.replace(entity, c);
    }
    text
}

/// The setup link's path and query, as `tether serve` printed it.
fn printed_setup_path(world: &World) -> String {
    let link = world.server.setup_link.clone().expect("a setup link on stdout");
    let (base, rest) = link.split_once("/setup").unwrap();
    assert_eq!(base, "https://ci.example.com");
    format!("/setup{rest}")
}

/// The `state` of the setup form, and the cookie that binds it.
async fn setup_form(world: &World, path: &str) -> (String, String) {
    let reply = http_request(&world.server.http_url, "GET", path, &[], b"").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let policy = reply.header("content-security-policy").unwrap();
    assert!(policy.contains(&format!("form-action 'self' {}", world.github.url)), "{policy}");
    let action = attribute(&reply.body, "<form", "action");
    let state = action.split_once("state=").map(|(_, s)| s.to_string()).expect(&action);
    let cookie = reply.cookies().into_iter().find(|(n, _)| n == "tether_setup_state").unwrap();
    assert_eq!(cookie.1, state);
    (state, format!("tether_setup_state={}", cookie.1))
}

async fn callback(world: &World, code: &str, state: &str, cookie: Option<&str>) -> Reply {
    let path = format!("/setup/callback?code={code}&state={state}");
    let headers: Vec<(&str, &str)> = cookie.map(|c| vec![("Cookie", c)]).unwrap_or_default();
    http_request(&world.server.http_url, "GET", &path, &headers, b"").await
}

#[tokio::test]
async fn setup_needs_the_printed_code_and_a_bound_state_and_creates_the_app_once() {
    let world = World::without_app().await;
    for path in ["/setup", "/setup?code=guessed"] {
        let (status, page) = world.server.get(path).await;
        assert_eq!(status, 403, "{path}: {page}");
        assert!(!page.contains("<form method=\"post\" action=\"http"), "{path}: {page}");
        assert!(page.contains("printed"), "{page}");
    }
    let path = printed_setup_path(&world);
    let (status, page) = world.server.get(&path).await;
    assert_eq!(status, 200, "{page}");
    let manifest: serde_json::Value =
        serde_json::from_str(&attribute(&page, "name=\"manifest\"", "value")).unwrap();
    let hook = &manifest["hook_attributes"]["url"];
    assert_eq!(hook, "https://ci.example.com/integrations/github/events");
    let (state, cookie) = setup_form(&world, &path).await;
    let (old_state, old_cookie) = setup_form(&world, &path).await;

    world.github.register_manifest_code("the-code");
    let app_file = world.server.data_dir.join("github-app.json");
    assert_eq!(callback(&world, "the-code", "forged", Some(&cookie)).await.status, 400);
    // The right state in a browser that was not shown the form: refused, and used up.
    assert_eq!(callback(&world, "the-code", &state, None).await.status, 400);
    assert_eq!(callback(&world, "the-code", &state, Some(&cookie)).await.status, 400);
    assert!(!app_file.exists());
    let (state, cookie) = setup_form(&world, &path).await;
    let done = callback(&world, "the-code", &state, Some(&cookie)).await;
    assert_eq!(done.status, 200, "{done:?}");
    let mode = std::fs::metadata(&app_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let saved = std::fs::read(&app_file).unwrap();

    // An old state replayed after setup, with its cookie and a code GitHub would take: refused,
    // and nothing changes.
    world.github.register_manifest_code("attacker-code");
    let conversions = world.github.calls("POST /app-manifests/attacker-code/conversions");
    let replay = callback(&world, "attacker-code", &old_state, Some(&old_cookie)).await;
    assert_eq!(replay.status, 403, "{replay:?}");
    assert_eq!(world.github.calls("POST /app-manifests/attacker-code/conversions"), conversions);
    assert_eq!(std::fs::read(&app_file).unwrap(), saved);
    // The configured server's /setup names the App and its install link, and offers no form.
    let (status, page) = world.server.get(&path).await;
    assert_eq!(status, 200);
    assert!(page.contains("tether-fake") && page.contains("/apps/tether-fake/installations/new"));
    assert!(!page.contains("name=\"manifest\""), "{page}");

    let sha = world.commit_config("[checks.first]\nrun = \"true\"\n");
    let body = world.push_payload(&sha);
    let (status, _) = deliver_signed(&world.server, SECRET, "push", "forged", &body).await;
    assert_eq!(status, 401, "the old secret is not the app's");
    let (status, _) = deliver_signed(&world.server, NEW_APP_SECRET, "push", "first", &body).await;
    assert_eq!(status, 202);
    let runs = world.wait_for_check_runs(LONG, |rs| !rs.is_empty()).await;
    assert_eq!(runs.len(), 1, "no check run after the app was created");
    assert_eq!((&runs[0]["name"], &runs[0]["head_sha"]), (&"first".into(), &sha.into()));

    // After a restart the server is configured from its file: no link, and still no claim.
    let world = world.restart().await;
    assert!(world.server.setup_link.is_none());
    let replay = callback(&world, "attacker-code", &old_state, Some(&old_cookie)).await;
    assert_eq!(replay.status, 403);
    let (_, page) = world.server.get("/setup").await;
    assert!(page.contains("tether-fake") && !page.contains("name=\"manifest\""), "{page}");
}

#[tokio::test]
async fn a_server_configured_by_flags_names_its_app_on_setup_and_refuses_the_callback() {
    let world = World::new().await;
    assert!(world.server.setup_link.is_none(), "no link when an App is configured");
    // The slug is asked of GitHub (`GET /app`) in the background at start.
    let deadline = tokio::time::Instant::now() + LONG;
    let mut page = world.server.get("/setup").await.1;
    while !page.contains("tether-fake") && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        page = world.server.get("/setup").await.1;
    }
    assert!(page.contains("tether-fake"), "{page}");
    assert!(page.contains("/apps/tether-fake/installations/new") && !page.contains("manifest"));
    world.github.register_manifest_code("attacker-code");
    let reply = callback(&world, "attacker-code", "any", Some("tether_setup_state=any")).await;
    assert_eq!(reply.status, 403);
    assert_eq!(world.github.calls("POST /app-manifests/attacker-code/conversions"), 0);
    assert!(!world.server.data_dir.join("github-app.json").exists());
}
