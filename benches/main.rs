//! Every benchmark of issue 6 in one program, one table: `cargo bench --bench bench [-- SECTION…]`.
//!
//! Each section is a module with `run() -> Vec<Row>`, run on a tokio runtime of its own that is
//! dropped when it ends, so nothing a section started (servers, fakes, child processes killed on
//! drop) outlives it. With no SECTION named, all run, in the order of the issue.

mod big_log;
mod dispatch;
mod e2e;
mod gateway;
mod pipeline;
mod render;
mod webhook;

// The integration tests' world (fake GitHub, real `tether serve`, runners behind `ssh -R`,
// Chromium), reused as it is: a bench target gets `CARGO_BIN_EXE_tether` as tests do.
#[allow(dead_code, unused_imports)]
#[path = "../tests/it/browser.rs"]
mod browser;
#[allow(dead_code, unused_imports)]
#[path = "../tests/it/fake_github/mod.rs"]
mod fake_github;
#[allow(dead_code, unused_imports)]
#[path = "../tests/it/harness.rs"]
mod harness;
#[allow(dead_code, unused_imports)]
#[path = "../tests/it/serve.rs"]
mod serve;
#[allow(dead_code, unused_imports)]
#[path = "../tests/it/sshd.rs"]
mod sshd;
#[allow(dead_code, unused_imports)]
#[path = "../tests/it/world.rs"]
mod world;

/// The sections, in the order the issue lists them.
const SECTIONS: [&str; 6] = ["pipeline", "render", "webhook", "dispatch", "gateway", "big_log"];

/// One figure: what was measured, its value, and the goal from design.md (or "none set").
pub struct Row {
    pub measure: String,
    pub value: String,
    pub goal: String,
}

impl Row {
    pub fn new(measure: impl Into<String>, value: impl Into<String>, goal: &str) -> Row {
        Row { measure: measure.into(), value: value.into(), goal: goal.into() }
    }

    fn print(&self) {
        println!("| {} | {} | {} |", self.measure, self.value, self.goal);
    }
}

async fn run_section(name: &str) -> anyhow::Result<Vec<Row>> {
    match name {
        "pipeline" => pipeline::run().await,
        "render" => render::run().await,
        "webhook" => webhook::run().await,
        "dispatch" => dispatch::run().await,
        "gateway" => gateway::run().await,
        "big_log" => big_log::run().await,
        _ => Ok(vec![Row::new(name, "not written yet", "")]),
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("client") {
        return runtime()?.block_on(gateway::hold_sessions(&args[1..]));
    }
    // cargo passes `--bench`; anything else is a section name.
    let wanted: Vec<&str> =
        args.iter().map(String::as_str).filter(|a| !a.starts_with('-')).collect();
    if let Some(unknown) = wanted.iter().find(|w| !SECTIONS.contains(w)) {
        anyhow::bail!("no section {unknown:?}; the sections are {SECTIONS:?}");
    }
    let mut table = Vec::new();
    for name in SECTIONS.into_iter().filter(|s| wanted.is_empty() || wanted.contains(s)) {
        println!("\n## {name}\n");
        print_head();
        let rows = run_alone(name)?;
        rows.iter().for_each(Row::print);
        table.extend(rows);
    }
    println!("\n## all\n");
    print_head();
    table.iter().for_each(Row::print);
    Ok(())
}

/// Runs one section on a runtime of its own; its failure or panic becomes its one row.
fn run_alone(name: &str) -> anyhow::Result<Vec<Row>> {
    let runtime = runtime()?;
    let run = std::panic::AssertUnwindSafe(|| runtime.block_on(run_section(name)));
    Ok(match std::panic::catch_unwind(run) {
        Ok(Ok(rows)) => rows,
        Ok(Err(e)) => vec![Row::new(name, format!("failed: {e:#}"), "")],
        Err(_) => vec![Row::new(name, "failed: panicked (see above)", "")],
    })
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()
}

fn print_head() {
    println!("| measure | value | goal |\n| --- | --- | --- |");
}

/// The median of `values` (the upper one of an even count); 0 for none.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// The `p` quantile (0 to 1) of values sorted ascending, nearest rank below; 0 for none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted.get(((sorted.len() as f64 - 1.0) * p) as usize).copied().unwrap_or(0.0)
}

/// A `Vm…:` figure of `/proc/{pid}/status` in bytes (`VmRSS`, `VmHWM`); 0 if unreadable.
pub fn proc_status_bytes(pid: &str, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok());
    kib.unwrap_or(0) * 1024
}
