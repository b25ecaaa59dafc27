//! The pages over real HTTP: runs grouped by commit, statuses in words, the compact run header,
//! a queued run's connect command, commit links from the payload, URLs in logs linked.

use std::time::Duration;

use serde_json::Value;

use crate::world::{REPO, World, completed};

/// A push of `sha` to main whose payload says the repository lives on an Enterprise host.
fn enterprise_push(world: &World, sha: &str, message: &str) -> Vec<u8> {
    let mut payload: Value = serde_json::from_slice(&world.push_payload(sha)).unwrap();
    payload["repository"]["html_url"] = format!("https://ghe.example/{REPO}").into();
    payload["head_commit"]["message"] = message.into();
    serde_json::to_vec(&payload).unwrap()
}

#[tokio::test]
async fn a_queued_run_says_whose_runner_it_waits_for_and_links_nothing_missing() {
    let world = World::new().await;
    let sha = world.commit_config("[checks.later]\nrun = \"echo ran\"\n");
    let body = enterprise_push(&world, &sha, "Fix the widgets\n\nA long explanation.");
    world.deliver("push", "pages-1", &body).await;
    world.wait_for_check_runs(Duration::from_secs(10), |rs| rs.len() == 1).await;
    let (_, index) = world.server.get("/").await;
    let commit = format!("https://ghe.example/{REPO}/commit/{sha}");
    // Grouped by commit: the repository, the branch, the commit linked from the payload, the
    // message's first line; the check is a link, its status in words.
    assert!(index.contains(&format!("<a class=\"repo\" href=\"/repos/{REPO}\">")), "{index}");
    assert!(index.contains("<span class=\"branch\">main</span>"), "{index}");
    assert!(index.contains(&format!("<a class=\"sha\" href=\"{commit}\">")), "{index}");
    assert!(index.contains("<span class=\"message\">Fix the widgets</span>"), "{index}");
    assert!(!index.contains("A long explanation"), "{index}");
    assert!(!index.contains("https://github.com/"), "a hard-coded GitHub link: {index}");
    let id = index.split("<a class=\"check\" href=\"/runs/").nth(1).unwrap();
    let id: i64 = id[..id.find('"').unwrap()].parse().unwrap();
    assert!(index.contains(&format!("href=\"/runs/{id}\">later</a>")), "{index}");
    assert!(index.contains(">queued</a>") && index.contains(">just now</time>"), "{index}");
    // The empty runners list says how to connect one, with the host and port.
    assert!(index.contains("tether runner --connect LOGIN@ci.example.com:6455"), "{index}");

    let (_, repo) = world.server.get(&format!("/repos/{REPO}")).await;
    assert!(!repo.contains("class=\"repo\""), "the repository repeated on its page: {repo}");
    assert!(repo.contains(&format!("href=\"/runs/{id}\">later</a>")), "{repo}");

    let (status, page) = world.server.get(&format!("/runs/{id}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("Waiting for a runner of <strong>alice</strong>"), "{page}");
    assert!(
        page.contains("<code>tether runner --connect alice@ci.example.com:6455</code>"),
        "{page}"
    );
    assert!(page.contains(&format!("href=\"{commit}\"")), "{page}");
    // Every link on the page that stays on this server answers.
    for href in page.split("href=\"").skip(1).map(|rest| &rest[..rest.find('"').unwrap()]) {
        // `/login` goes to GitHub's sign-in, which is not this server's to answer.
        if href.starts_with('/') && href != "/login" {
            let (status, _) = world.server.get(href).await;
            assert_eq!(status, 200, "{href} on the queued run's page");
        }
    }
    assert!(!page.contains("/raw"), "{page}");
}

#[tokio::test]
async fn a_finished_run_has_a_compact_header_and_its_urls_linked() {
    let world = World::new().await;
    let (_runner, _ssh) = world.connect_runner().await;
    let sha = world.commit_config(
        "[checks.docs]\nrun = \"echo 'see https://x.test/a?b=1&c=<2> now.'; exit 1\"\n",
    );
    world.deliver("push", "pages-2", &enterprise_push(&world, &sha, "Docs")).await;
    let runs = world.wait_for_check_runs(Duration::from_secs(30), |rs| completed(rs, 1)).await;
    let id = runs[0]["external_id"].as_str().unwrap().to_owned();
    let (_, page) = world.server.get(&format!("/runs/{id}")).await;
    assert!(page.contains("<span class=\"status status-failure\">failed</span> docs"), "{page}");
    assert!(
        page.contains("<a href=\"https://x.test/a?b=1&amp;c=\" rel=\"nofollow noopener\">https://x.test/a?b=1&amp;c=</a>&lt;2&gt; now."),
        "{page}"
    );
    assert!(page.contains(&format!("href=\"/runs/{id}/raw\">raw log</a>")), "{page}");
    let header = &page[page.find("<header class=\"run-head\">").unwrap()..];
    let header = &header[..header.find("</header>").unwrap()];
    assert!(header.lines().count() <= 5, "{header}");
    let thunk = runs[0]["external_id"].as_str().unwrap();
    let (_, api) = world.server.get(&format!("/api/v1/runs/{thunk}")).await;
    let api: Value = serde_json::from_str(&api).unwrap();
    let full = api["thunk"].as_str().unwrap();
    assert!(header.contains(&format!(">{}</code>", &full[..10])), "{header}");
    let (_, index) = world.server.get("/").await;
    assert!(index.contains(">failed</a>") && index.contains("push by alice"), "{index}");
}

#[tokio::test]
async fn in_chromium_the_log_starts_high_and_the_lists_fit() {
    let Some(mut browser) = crate::browser::Browser::start().await else { return };
    let world = World::new().await;
    let (_runner, _ssh) = world.connect_runner().await;
    let sha = world.commit_config(
        "[checks.docs]\nrun = \"echo see https://x.test/docs; exit 1\"\n\n[checks.unit]\nrun = \"echo ok\"\n",
    );
    world.deliver("push", "pages-3", &enterprise_push(&world, &sha, "Write the docs")).await;
    let runs = world.wait_for_check_runs(Duration::from_secs(30), |rs| completed(rs, 2)).await;
    let failed = runs.iter().find(|r| r["name"] == "docs").unwrap();
    let id = failed["external_id"].as_str().unwrap();
    let base = &world.server.http_url;
    let limit = Duration::from_secs(20);

    browser.navigate(&format!("{base}/runs/{id}")).await;
    assert!(browser.wait_for(limit, "document.getElementById('log') !== null").await);
    // The header is a few rows: the log's first line is in the top half of the window.
    let top = "document.getElementById('L1').getBoundingClientRect().top < innerHeight / 2";
    assert_eq!(browser.eval(top).await, true, "{}", browser.dom().await);
    let link = "document.querySelector('#L1 a[rel=\"nofollow noopener\"]')?.href";
    assert_eq!(browser.eval(link).await, "https://x.test/docs");
    browser.screenshot("pages-failed-run").await;

    browser.navigate(&format!("{base}/")).await;
    assert!(browser.wait_for(limit, "document.querySelector('.commit') !== null").await);
    let fits = "[...document.querySelectorAll('ul.checks li, .commit-head')]\
                .every(e => e.scrollWidth <= e.clientWidth + 1)";
    assert_eq!(browser.eval(fits).await, true);
    let checks = "document.querySelectorAll('.commit ul.checks li').length";
    assert_eq!(browser.eval(checks).await, 2, "both checks under one commit");
    browser.screenshot("pages-index").await;
    browser.navigate(&format!("{base}/repos/{REPO}")).await;
    assert!(browser.wait_for(limit, "document.querySelector('.commit') !== null").await);
    browser.screenshot("pages-repo").await;
}

/// The body's computed background colour.
const BACKGROUND: &str = "getComputedStyle(document.body).backgroundColor";

#[tokio::test]
async fn every_page_in_light_and_dark_for_screenshots() {
    // With TETHER_SCREENSHOTS=DIR this saves `/`, a repository page, a queued run, a failed run
    // and `/setup`, each in light and dark, for a person to look at; the test itself checks each
    // page draws and that dark is not light.
    let Some(mut browser) = crate::browser::Browser::start().await else { return };
    let world = World::new().await;
    let connected = world.connect_runner_of("alice").await;
    let sha =
        world.commit_config("[checks.docs]\nrun = \"echo see https://x.test/docs; exit 1\"\n");
    world.deliver("push", "shots-1", &world.push_payload(&sha)).await;
    let runs = world.wait_for_check_runs(Duration::from_secs(30), |rs| completed(rs, 1)).await;
    let failed = runs[0]["external_id"].as_str().unwrap().to_string();
    drop(connected);
    let sha = world.commit_config("[checks.later]\nrun = \"echo later\"\n");
    world.deliver("push", "shots-2", &world.push_payload(&sha)).await;
    let queued = |rs: &[Value]| rs.iter().any(|r| r["name"] == "later");
    let runs = world.wait_for_check_runs(Duration::from_secs(30), queued).await;
    let waiting = runs.iter().find(|r| r["name"] == "later").unwrap()["external_id"]
        .as_str()
        .unwrap()
        .to_string();
    let base = world.server.http_url.clone();
    let pages = [
        ("index", "/".to_string()),
        ("repo", format!("/repos/{REPO}")),
        ("queued-run", format!("/runs/{waiting}")),
        ("failed-run", format!("/runs/{failed}")),
        ("setup", "/setup".to_string()),
    ];
    for scheme in ["light", "dark"] {
        browser.emulate_color_scheme(scheme).await;
        for (name, path) in &pages {
            browser.navigate(&format!("{base}{path}")).await;
            let drawn =
                "document.readyState === 'complete' && document.querySelector('header') !== null";
            assert!(
                browser.wait_for(Duration::from_secs(20), drawn).await,
                "{name}: {}",
                browser.dom().await
            );
            let background = browser.eval(BACKGROUND).await;
            let light = background == "rgb(255, 255, 255)" || background == "rgba(0, 0, 0, 0)";
            assert_eq!(light, scheme == "light", "{name} in {scheme}: {background}");
            browser.screenshot(&format!("{name}-{scheme}")).await;
        }
    }
}
