//! Log rendering throughput: MiB/s of raw log through `tether::render`, median of several runs.
//!
//! Two inputs of about 64 MiB, fed in 64 KiB chunks as a run's log arrives: the recorded `cargo
//! build` error log repeated, and a worst case that changes colour every few bytes.

use std::hint::black_box;
use std::time::Instant;

use tether::render::Renderer;

use crate::{Row, median};

const INPUT_BYTES: usize = 64 * 1024 * 1024;
const CHUNK_BYTES: usize = 64 * 1024;
const RUNS: usize = 5;
const RECORDED: &[u8] = include_bytes!("../tests/fixtures/logs/cargo-build-error.log");

pub async fn run() -> anyhow::Result<Vec<Row>> {
    let worst: Vec<u8> = (0..256u32)
        .flat_map(|i| format!("\x1b[{};{}mab", 31 + i % 7, 41 + i / 7 % 7).into_bytes())
        .chain(*b"\n")
        .collect();
    let mut rows = Vec::new();
    for (name, unit) in [
        ("a recorded `cargo build` log repeated to ~64 MiB", RECORDED),
        ("worst case (a colour change every 2 bytes)", &worst),
    ] {
        let input = unit.repeat(INPUT_BYTES / unit.len());
        // Rendering is CPU work: off the runtime's threads.
        let (mib_per_s, lines) = tokio::task::spawn_blocking(move || median_run(&input)).await?;
        rows.push(Row::new(
            format!("log renderer, {name}, {lines} lines (median of {RUNS})"),
            format!("{mib_per_s:.1} MiB/s"),
            "none set",
        ));
    }
    Ok(rows)
}

/// The median throughput of `RUNS` renders of `input`, and how many lines it has.
fn median_run(input: &[u8]) -> (f64, usize) {
    let mut rates = Vec::with_capacity(RUNS);
    let mut lines = 0;
    for _ in 0..RUNS {
        let start = Instant::now();
        let mut renderer = Renderer::new();
        // The HTML is measured, not kept: its bytes are summed so the work cannot be skipped.
        let mut html_bytes = 0usize;
        lines = 0;
        for chunk in input.chunks(CHUNK_BYTES) {
            for line in renderer.push(chunk) {
                html_bytes += line.html.len();
                lines += 1;
            }
        }
        lines += usize::from(renderer.finish().is_some());
        black_box(html_bytes);
        let mib = input.len() as f64 / (1024.0 * 1024.0);
        rates.push(mib / start.elapsed().as_secs_f64());
    }
    (median(rates), lines)
}
