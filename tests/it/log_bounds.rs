//! A run's log cannot blow up on the server: the amplification input of issue 13 through the
//! real server, whose `log.html` and memory stay bounded.

use std::time::Duration;

use crate::world::*;

/// The most the server process may ever hold in memory while it renders the input.
const SERVER_PEAK_RSS_MAX_BYTES: u64 = 256 << 20;

/// One OSC 8 link with a 4 KB href (of `&`, which escaping makes five times longer) over 8,000
/// cells, then `\r` and `ESC[C` overwrites of every other cell: 84 KB in three lines, which made
/// 240 MB of HTML and 1.9 GB of server memory.
fn amplification() -> Vec<u8> {
    let mut line = format!("\x1b]8;;https://x.test/{}\x1b\\", "&".repeat(4000)).into_bytes();
    line.extend([b'x'; 8000]);
    line.extend(b"\x1b]8;;\x1b\\\r");
    for _ in 0..4000 {
        line.extend(b"y\x1b[C");
    }
    line.push(b'\n');
    line.repeat(3)
}

/// A `Vm…:` figure of `/proc/{pid}/status`, in bytes.
fn proc_status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[tokio::test]
async fn the_amplification_input_stays_bounded_in_html_and_server_memory() {
    let world = World::new().await;
    let (_runner, _ssh) = world.connect_runner().await;
    let input = amplification();
    let toml = "[checks.amplify]\nrun = \"cat amplify.log\"\n";
    let files: [(&str, &[u8]); 2] = [("tether.toml", toml.as_bytes()), ("amplify.log", &input)];
    let sha = world.repo.commit(&files, "amplify");
    world.github.set_file(REPO, &sha, "tether.toml", toml.as_bytes());
    world.deliver("push", "delivery-amplify", &world.push_payload(&sha)).await;
    let runs = world.wait_for_check_runs(Duration::from_secs(120), |rs| completed(rs, 1)).await;
    assert_eq!(runs[0]["conclusion"], "success", "{runs:#?}");
    let run_id = runs[0]["external_id"].as_str().unwrap();

    let (_, raw) = world.server.get(&format!("/runs/{run_id}/raw")).await;
    assert_eq!(raw.len(), input.len());
    let html_path = world.server.data_dir.join(format!("blobs/logs/{run_id}/log.html"));
    let html = std::fs::read_to_string(html_path).unwrap();
    let lines = html.lines().count();
    assert_eq!(lines, 3);
    let bound = 32 * raw.len() + 128 * lines + (1 << 20);
    assert!(html.len() <= bound, "log.html is {} bytes, over {bound}", html.len());
    let (status, page) = world.server.get(&format!("/runs/{run_id}")).await;
    assert_eq!(status, 200);
    assert!(page.contains(&"yx".repeat(4000)), "the text is on the page");

    let peak = proc_status_bytes(world.server.pid(), "VmHWM:");
    assert!(peak < SERVER_PEAK_RSS_MAX_BYTES, "the server's peak RSS was {peak} bytes");
}
