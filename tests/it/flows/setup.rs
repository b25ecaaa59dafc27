//! The App Manifest flow: a server without an app creates one through `/setup` and acts as it at
//! once, without a restart.

use std::os::unix::fs::PermissionsExt;

use super::LONG;
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

#[tokio::test]
async fn setup_creates_the_app_which_is_used_without_a_restart() {
    let world = World::without_app().await;
    let (status, page) = world.server.get("/setup").await;
    assert_eq!(status, 200, "{page}");
    let manifest: serde_json::Value =
        serde_json::from_str(&attribute(&page, "name=\"manifest\"", "value")).unwrap();
    let hook = &manifest["hook_attributes"]["url"];
    assert_eq!(hook, "https://ci.example.com/integrations/github/events");
    let action = attribute(&page, "<form", "action");
    let state = action.split_once("state=").map(|(_, s)| s.to_string()).expect(&action);
    assert!(!state.is_empty());

    world.github.register_manifest_code("the-code");
    let (status, _) = world.server.get("/setup/callback?code=the-code&state=forged").await;
    assert_eq!(status, 400);
    let app_file = world.server.data_dir.join("github-app.json");
    assert!(!app_file.exists());
    let path = format!("/setup/callback?code=the-code&state={state}");
    let (status, done) = world.server.get(&path).await;
    assert_eq!(status, 200, "{done}");
    let mode = std::fs::metadata(&app_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let sha = world.commit_config("[checks.first]\nrun = \"true\"\n");
    let body = world.push_payload(&sha);
    let (status, _) = deliver_signed(&world.server, SECRET, "push", "forged", &body).await;
    assert_eq!(status, 401, "the old secret is not the app's");
    let (status, _) = deliver_signed(&world.server, NEW_APP_SECRET, "push", "first", &body).await;
    assert_eq!(status, 202);
    let runs = world.wait_for_check_runs(LONG, |rs| !rs.is_empty()).await;
    assert_eq!(runs.len(), 1, "no check run after the app was created");
    assert_eq!((&runs[0]["name"], &runs[0]["head_sha"]), (&"first".into(), &sha.into()));
}
