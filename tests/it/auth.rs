//! Sign-in and visibility, end to end: a private repository's runs through every route, for
//! strangers, non-collaborators, readers signed in through the fake GitHub's OAuth flow, and
//! scripts with bearer tokens; sign-in's refusals.

use std::time::Duration;

use serde_json::Value;

use crate::serve::*;
use crate::world::*;

const LONG: Duration = Duration::from_secs(30);
/// A user of the fake who is no collaborator of the private repository.
const STRANGER: (&str, i64) = ("carol", 1003);

/// The routes that show something of run `id`.
fn run_routes(id: &str) -> Vec<String> {
    ["", "/raw", "/events"]
        .iter()
        .map(|rest| format!("/runs/{id}{rest}"))
        .chain([format!("/api/v1/runs/{id}")])
        .collect()
}

/// A browser of the tests: the cookies the server set.
#[derive(Default)]
pub struct Session {
    cookies: Vec<(String, String)>,
}

impl Session {
    pub fn header(&self) -> String {
        let pairs: Vec<String> = self.cookies.iter().map(|(n, v)| format!("{n}={v}")).collect();
        pairs.join("; ")
    }

    fn keep(&mut self, reply: &Reply) {
        for (name, value) in reply.cookies() {
            self.cookies.retain(|(n, _)| *n != name);
            if !value.is_empty() {
                self.cookies.push((name, value));
            }
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.cookies.iter().any(|(n, _)| n == name)
    }

    pub async fn get(&mut self, base: &str, path: &str) -> Reply {
        let cookie = self.header();
        let headers: Vec<(&str, &str)> =
            if cookie.is_empty() { vec![] } else { vec![("Cookie", cookie.as_str())] };
        let reply = http_request(base, "GET", path, &headers, b"").await;
        self.keep(&reply);
        reply
    }

    pub async fn post_form(&mut self, base: &str, path: &str, form: &str) -> Reply {
        let cookie = self.header();
        let headers =
            [("Cookie", cookie.as_str()), ("Content-Type", "application/x-www-form-urlencoded")];
        let reply = http_request(base, "POST", path, &headers, form.as_bytes()).await;
        self.keep(&reply);
        reply
    }
}

/// Path and query of an absolute URL.
fn path_of(url: &str) -> String {
    let url = url::Url::parse(url).unwrap();
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_string(),
    }
}

/// `/login`, the fake's authorize page (as whoever is signed in there), and back to the
/// callback: the callback's answer.
pub async fn sign_in(world: &World, session: &mut Session) -> Reply {
    let server = &world.server.http_url;
    let login = session.get(server, "/login").await;
    assert_eq!(login.status, 303, "{login:?}");
    let authorize = login.header("location").unwrap().to_string();
    assert!(authorize.starts_with(&format!("{}/login/oauth/authorize?", world.github.url)));
    let back = http_request(&world.github.url, "GET", &path_of(&authorize), &[], b"").await;
    assert_eq!(back.status, 303, "{back:?}");
    session.get(server, &path_of(back.header("location").unwrap())).await
}

/// Signs `login` in; the session.
pub async fn signed_in(world: &World, login: &str) -> Session {
    world.github.sign_in_as(login);
    let mut session = Session::default();
    let done = sign_in(world, &mut session).await;
    assert_eq!((done.status, done.header("location")), (303, Some("/")), "{done:?}");
    assert!(session.has("tether_session"));
    let set =
        done.headers.iter().map(|(_, v)| v).find(|v| v.starts_with("tether_session=")).unwrap();
    let secret = set.split(';').next().unwrap().trim_start_matches("tether_session=");
    assert_eq!(secret.len(), 64, "256 bits, hex: {set}");
    // The world's external URL is https: the cookie is Secure.
    for attribute in ["HttpOnly", "SameSite=Lax", "Secure", "Max-Age=1209600", "Path=/"] {
        assert!(set.split("; ").any(|a| a == attribute), "{attribute} in {set}");
    }
    session
}

/// A private world with one completed run of alice's; its id.
async fn private_run() -> (World, String) {
    let world = World::private().await;
    world.github.add_user(STRANGER.0, STRANGER.1, &[]);
    world.github.set_permission(REPO, "bob", "read");
    let connected = world.connect_runner_of("alice").await;
    let sha = world.commit_config("[checks.secret]\nrun = \"echo the private log\"\n");
    world.deliver("push", "private-1", &world.push_payload(&sha)).await;
    let done = |rs: &[Value]| rs.len() == 1 && rs[0]["status"] == "completed";
    let runs = world.wait_for_check_runs(LONG, done).await;
    assert!(done(&runs), "{runs:#?}");
    drop(connected);
    (world, runs[0]["external_id"].as_str().unwrap().to_string())
}

/// What `session` gets on every route of run `id` and on the lists, compared with what it gets
/// for a run and a repository that do not exist: the same 404, and no trace in any list.
async fn assert_hidden(world: &World, session: &mut Session, id: &str, who: &str) {
    let server = &world.server.http_url;
    for (route, missing) in run_routes(id).iter().zip(run_routes("999999")) {
        let hidden = session.get(server, route).await;
        let absent = session.get(server, &missing).await;
        assert_eq!(hidden.status, 404, "{who}: {route}: {hidden:?}");
        assert_eq!(hidden.body, absent.body, "{who}: {route} differs from a missing run");
    }
    let repo = session.get(server, &format!("/repos/{REPO}")).await;
    let none = session.get(server, "/repos/octo/nothing").await;
    assert_eq!((repo.status, &repo.body), (404, &none.body), "{who}: the repository page");
    let signed_out = !session.has("tether_session");
    let offers = repo.body.contains("Sign in with GitHub</a></p>");
    assert_eq!(offers, signed_out, "{who}: the 404 offers sign-in when signed out: {}", repo.body);
    let link = format!("/runs/{id}\"");
    assert!(!session.get(server, "/").await.body.contains(&link), "{who}: listed on /");
    for list in ["/api/v1/runs".to_string(), format!("/api/v1/runs?repo={REPO}")] {
        let reply = session.get(server, &list).await;
        assert_eq!((reply.status, reply.body.as_str()), (200, "[]"), "{who}: {list}");
    }
}

#[tokio::test]
async fn a_private_run_is_hidden_from_strangers_and_shown_to_a_reader_who_signs_in() {
    let (world, id) = private_run().await;
    let server = world.server.http_url.clone();
    assert_hidden(&world, &mut Session::default(), &id, "anonymous").await;
    let mut carol = signed_in(&world, STRANGER.0).await;
    assert_hidden(&world, &mut carol, &id, "a non-collaborator").await;

    let mut bob = signed_in(&world, "bob").await;
    let page = bob.get(&server, &format!("/runs/{id}")).await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.body.contains("the private log") && page.body.contains("bob"), "{}", page.body);
    let raw = bob.get(&server, &format!("/runs/{id}/raw")).await;
    assert_eq!((raw.status, raw.body.as_str()), (200, "the private log\n"));
    let api = bob.get(&server, &format!("/api/v1/runs/{id}")).await;
    assert_eq!(api.status, 200);
    let list: Vec<Value> =
        serde_json::from_str(&bob.get(&server, "/api/v1/runs").await.body).unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert!(bob.get(&server, "/").await.body.contains(&format!("/runs/{id}\"")));
    assert_eq!(bob.get(&server, &format!("/repos/{REPO}")).await.status, 200);
    // Answers are cached: one permission call for bob however many pages he reads.
    let route = format!("GET /repos/{REPO}/collaborators/bob/permission");
    assert_eq!(world.github.calls(&route), 1);

    // Signing out needs the page's CSRF token; then the session reads nothing more.
    let refused = bob.post_form(&server, "/logout", "csrf=wrong").await;
    assert_eq!(refused.status, 403);
    let token = csrf_of(&page.body);
    let cross = http_request(
        &server,
        "POST",
        "/logout",
        &[
            ("Cookie", &bob.header()),
            ("Origin", "https://evil.example"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        format!("csrf={token}").as_bytes(),
    )
    .await;
    assert_eq!(cross.status, 403, "a cross-site POST is refused even with the token");
    let old_cookie = bob.header();
    let out = bob.post_form(&server, "/logout", &format!("csrf={token}")).await;
    assert_eq!(out.status, 303, "{out:?}");
    assert!(!bob.has("tether_session"));
    let replayed =
        http_request(&server, "GET", &format!("/runs/{id}"), &[("Cookie", &old_cookie)], b"").await;
    assert_eq!(replayed.status, 404, "the ended session's cookie reads nothing");
}

/// The CSRF token of the page's sign-out form.
pub fn csrf_of(page: &str) -> String {
    let start = page.find("name=\"csrf\" value=\"").expect("a sign-out form") + 19;
    page[start..start + 64].to_string()
}

#[tokio::test]
async fn sign_in_refuses_forged_used_and_denied_states_and_survives_github_down() {
    let world = World::private().await;
    let server = world.server.http_url.clone();
    world.github.sign_in_as("bob");
    // A state that was never handed out, with a cookie to match: refused.
    let forged = "f".repeat(32) + ".99999999999." + &"0".repeat(64);
    let mut forger = Session { cookies: vec![("tether_login_state".into(), forged.clone())] };
    let reply = forger.get(&server, &format!("/auth/callback?code=x&state={forged}")).await;
    assert_eq!(reply.status, 400, "{reply:?}");
    assert!(!forger.has("tether_session"));
    assert_eq!(world.github.calls("POST /login/oauth/access_token"), 0, "no code was tried");

    // A real state, but in another browser (no cookie): refused, without using up the code, so
    // the browser that started it still finishes.
    let mut victim = Session::default();
    let login = victim.get(&server, "/login").await;
    let authorize = login.header("location").unwrap().to_string();
    let back = http_request(&world.github.url, "GET", &path_of(&authorize), &[], b"").await;
    let callback = path_of(back.header("location").unwrap());
    let state_cookie = format!("tether_login_state={}", victim.cookies[0].1);
    let mut attacker = Session::default();
    let stolen = attacker.get(&server, &callback).await;
    assert_eq!(stolen.status, 400);
    assert!(!attacker.has("tether_session"));
    assert_eq!(world.github.calls("POST /login/oauth/access_token"), 0);
    let done = victim.get(&server, &callback).await;
    assert_eq!(done.status, 303, "{done:?}");
    assert!(victim.has("tether_session") && !victim.has("tether_login_state"));

    // The same callback replayed with the state's cookie (as by someone who copied both): the
    // code is used up at GitHub, so no session.
    let again = http_request(&server, "GET", &callback, &[("Cookie", &state_cookie)], b"").await;
    assert_eq!(again.status, 400, "{again:?}");
    assert!(
        again.cookies().iter().all(|(name, value)| name != "tether_session" || value.is_empty())
    );

    // Denied on GitHub: a page that says so, no session.
    world.github.set_deny(true);
    let mut denied = Session::default();
    let reply = sign_in(&world, &mut denied).await;
    assert_eq!(reply.status, 403);
    assert!(reply.body.contains("did not authorize") && !denied.has("tether_session"));
    world.github.set_deny(false);

    // GitHub down at the exchange: a page that says so, no session.
    let mut unlucky = Session::default();
    let login = unlucky.get(&server, "/login").await;
    let authorize = login.header("location").unwrap().to_string();
    let back = http_request(&world.github.url, "GET", &path_of(&authorize), &[], b"").await;
    world.github.set_down(true);
    let reply = unlucky.get(&server, &path_of(back.header("location").unwrap())).await;
    world.github.set_down(false);
    assert_eq!(reply.status, 503, "{reply:?}");
    assert!(reply.body.contains("GitHub did not answer") && !unlucky.has("tether_session"));

    // A state from before a restart is forgotten, as an expired one is.
    let mut slow = Session::default();
    let login = slow.get(&server, "/login").await;
    let authorize = login.header("location").unwrap().to_string();
    let back = http_request(&world.github.url, "GET", &path_of(&authorize), &[], b"").await;
    let world = world.restart().await;
    let reply = slow.get(&world.server.http_url, &path_of(back.header("location").unwrap())).await;
    assert_eq!(reply.status, 400);
    assert!(!slow.has("tether_session"));
}

#[tokio::test]
async fn bearer_tokens_read_as_their_person_and_a_refused_token_is_401() {
    let (world, id) = private_run().await;
    let server = &world.server.http_url;
    world.github.add_user_token("ghu_bob", "bob");
    world.github.add_user_token("ghu_carol", STRANGER.0);
    let get = |path: String, token: &'static str| {
        let server = server.clone();
        async move {
            let auth = format!("Bearer {token}");
            http_request(&server, "GET", &path, &[("Authorization", auth.as_str())], b"").await
        }
    };
    let raw = get(format!("/runs/{id}/raw"), "ghu_bob").await;
    assert_eq!((raw.status, raw.body.as_str()), (200, "the private log\n"));
    assert_eq!(get(format!("/api/v1/runs/{id}"), "ghu_bob").await.status, 200);
    let list = get("/api/v1/runs".into(), "ghu_bob").await;
    assert_eq!(serde_json::from_str::<Vec<Value>>(&list.body).unwrap().len(), 1);
    assert_eq!(world.github.calls("GET /user"), 1, "the token's login is cached");
    assert_eq!(get(format!("/api/v1/runs/{id}"), "ghu_carol").await.status, 404);
    let refused = get(format!("/api/v1/runs/{id}"), "ghu_forged").await;
    assert_eq!(refused.status, 401, "{refused:?}");
    assert!(refused.header("www-authenticate").is_some_and(|v| v.starts_with("Bearer")));
    assert_eq!(get("/api/v1/runs".into(), "ghu_forged").await.status, 401);
    // bob's, carol's and the forged token's: one call each, a refusal cached too.
    assert_eq!(world.github.calls("GET /user"), 3);
    assert_eq!(get("/api/v1/runs".into(), "not.a.token").await.status, 401);
    assert_eq!(world.github.calls("GET /user"), 3, "an impossible token is not sent");
}

#[tokio::test]
async fn a_reader_signs_in_with_chromium_through_the_fake_and_sees_the_private_run() {
    let Some(mut browser) = crate::browser::Browser::start().await else { return };
    let world = World::private_local().await;
    world.github.set_permission(REPO, "bob", "read");
    world.github.sign_in_as("bob");
    let sha = world.commit_config("[checks.hidden]\nrun = \"true\"\n");
    world.deliver("push", "browser-1", &world.push_payload(&sha)).await;
    let runs = world.wait_for_check_runs(LONG, |rs| rs.len() == 1).await;
    let id = runs[0]["external_id"].as_str().unwrap().to_string();
    let server = &world.server.http_url;
    let run_url = format!("{server}/runs/{id}");

    browser.navigate(&run_url).await;
    let hidden = "document.body && document.body.innerText.includes('Not found')";
    assert!(browser.wait_for(LONG, hidden).await, "{}", browser.dom().await);
    browser.navigate(&format!("{server}/login")).await;
    let home = format!(
        "location.href === '{server}/' && document.body.innerText.includes('bob') \
         && document.body.innerText.includes('sign out')"
    );
    assert!(browser.wait_for(LONG, &home).await, "{}", browser.dom().await);
    browser.navigate(&run_url).await;
    let shown = "document.body && document.body.innerText.includes('hidden') \
                 && document.body.innerText.includes('Waiting for a runner')";
    assert!(browser.wait_for(LONG, shown).await, "{}", browser.dom().await);
    browser.screenshot("signed-in-run").await;
    // The session cookie is out of scripts' reach.
    assert_eq!(browser.eval("document.cookie.includes('tether_session')").await, false);
}

#[tokio::test]
async fn a_session_ends_when_github_refuses_its_token_and_outlives_an_outage() {
    // Answers are not cached here, so that each request asks GitHub as one would every 5 minutes.
    let world = World::private_with_flags(&["--access-cache-ttl", "0s"]).await;
    world.github.set_permission(REPO, "bob", "read");
    let sha = world.commit_config("[checks.queued]\nrun = \"true\"\n");
    world.deliver("push", "revoked-1", &world.push_payload(&sha)).await;
    let runs = world.wait_for_check_runs(LONG, |rs| rs.len() == 1).await;
    let run = format!("/runs/{}", runs[0]["external_id"].as_str().unwrap());
    let server = world.server.http_url.clone();
    let mut bob = signed_in(&world, "bob").await;
    assert_eq!(bob.get(&server, &run).await.status, 200);

    // GitHub down: still signed in (the run itself cannot be vouched for meanwhile).
    world.github.set_down(true);
    let home = bob.get(&server, "/").await;
    world.github.set_down(false);
    assert_eq!(home.status, 200);
    assert!(home.body.contains("<span class=\"login\">bob</span>"), "{}", home.body);
    assert_eq!(bob.get(&server, &run).await.status, 200);

    // Revoked on GitHub: the session ends, and stays ended.
    world.github.revoke_user_tokens_of("bob");
    let after = bob.get(&server, &run).await;
    assert_eq!(after.status, 404);
    assert!(after.body.contains("Sign in with GitHub</a></p>"), "{}", after.body);
    world.github.add_user_token("ghu_again", "bob");
    let home = bob.get(&server, "/").await;
    assert!(!home.body.contains("<span class=\"login\">"), "{}", home.body);
}
