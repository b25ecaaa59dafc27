//! A long log on the run page: served a page at a time from the stored HTML, the last page by
//! default, with links between pages, runner timestamps behind a toggle, and `#L` links that find
//! their page.

use std::time::Duration;

use crate::browser::Browser;
use crate::world::*;

/// Lines per page on the run page (`engine::runlog::LOG_PAGE_LINES`).
const PAGE_LINES: u64 = 10_000;
const LINES: u64 = 2 * PAGE_LINES + 5;
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// Runs a check that prints `LINES` numbered lines; returns the run's id.
async fn long_run(world: &World) -> String {
    let (_runner, _ssh) = world.connect_runner().await;
    let sha = world.commit_config(&format!("[checks.long]\nrun = \"seq -f 'row %g' {LINES}\"\n"));
    world.deliver("push", "delivery-long", &world.push_payload(&sha)).await;
    let runs = world.wait_for_check_runs(RUN_LIMIT, |rs| completed(rs, 1)).await;
    assert_eq!(runs[0]["conclusion"], "success", "{runs:#?}");
    runs[0]["external_id"].as_str().unwrap().to_string()
}

fn line(n: u64) -> String {
    format!("id=\"L{n}\"")
}

#[tokio::test]
async fn a_long_log_is_served_a_page_at_a_time() {
    let world = World::new().await;
    let run = long_run(&world).await;

    // The last page by default: where a failure shows.
    let (status, page) = world.server.get(&format!("/runs/{run}")).await;
    assert_eq!(status, 200);
    assert!(page.contains(&line(2 * PAGE_LINES + 1)) && page.contains(&line(LINES)), "{page}");
    assert!(!page.contains(&line(2 * PAGE_LINES)) && !page.contains(&line(LINES + 1)));
    assert!(page.contains(&format!("Lines 20001–{LINES} of {LINES}, page 3 of 3")), "{page}");
    assert!(page.contains("<a href=\"?page=2\" rel=\"prev\">"), "{page}");
    assert!(page.contains("<span class=\"status status-success\">passed</span>"), "{page}");
    assert!(
        page.trim_end().ends_with("</html>"),
        "not whole after the log: {}",
        &page[page.len() - 300..]
    );
    // Every line carries the runner's time, hidden until the reader asks for it.
    assert_eq!(page.matches("</a><time>").count() as u64, LINES - 2 * PAGE_LINES);

    let (status, first) = world.server.get(&format!("/runs/{run}?page=1")).await;
    assert_eq!(status, 200);
    assert!(first.contains(&line(1)) && first.contains(&line(PAGE_LINES)), "{first}");
    assert!(!first.contains(&line(PAGE_LINES + 1)));
    assert!(first.contains(">row 1</span>") && first.contains("<a href=\"?page=2\" rel=\"next\">"));
    for missing in ["?page=0", "?page=4", "?page=x"] {
        let (status, _) = world.server.get(&format!("/runs/{run}{missing}")).await;
        assert_eq!(status / 100, 4, "{missing}");
    }
}

#[tokio::test]
async fn a_link_to_a_line_finds_its_page_and_timestamps_toggle() {
    let Some(mut browser) = Browser::start().await else { return };
    let world = World::new().await;
    let run = long_run(&world).await;
    let limit = Duration::from_secs(20);

    browser.navigate(&format!("{}/runs/{run}#L5", world.server.http_url)).await;
    let on_line = "location.search === '?page=1' && document.querySelector(':target')?.id === 'L5'";
    assert!(browser.wait_for(limit, on_line).await, "{}", browser.eval("location.href").await);

    let shown = "getComputedStyle(document.querySelector('#L5 > time')).display";
    assert_eq!(browser.eval(shown).await, "none");
    browser.eval("document.getElementById('ts-toggle').click()").await;
    // A flex item: shown as a block.
    assert_eq!(browser.eval(shown).await, "block");
    let stamp = browser.eval("document.querySelector('#L5 > time').textContent").await;
    assert!(stamp.as_str().is_some_and(|s| s.len() == 12 && s.as_bytes()[2] == b':'), "{stamp}");
    browser.screenshot("log-page-1-timestamps").await;
    // The choice is remembered on the next page.
    browser.navigate(&format!("{}/runs/{run}?page=2", world.server.http_url)).await;
    let remembered = "document.getElementById('ts-toggle')?.checked === true \
                      && getComputedStyle(document.querySelector('#L10001 > time')).display === 'block'";
    assert!(browser.wait_for(limit, remembered).await, "{}", browser.dom().await);
    browser.eval("document.getElementById('ts-toggle').click()").await;
    browser.screenshot("log-page-2-top").await;
    browser.eval("document.querySelector('.log-tools').scrollIntoView()").await;
    browser.screenshot("log-page-2-log").await;
}
