//! tether's benchmarks, one `cargo bench` target (a stand-in main while the pipeline module is
//! developed).

#[allow(dead_code, unused_imports)]
#[path = "../tests/it/fake_github/mod.rs"]
mod fake_github;
#[allow(dead_code, unused_imports)]
#[path = "../tests/it/harness.rs"]
mod harness;
mod pipeline;
#[allow(dead_code, unused_imports)]
#[path = "../tests/it/serve.rs"]
mod serve;
#[allow(dead_code, unused_imports)]
#[path = "../tests/it/sshd.rs"]
mod sshd;
#[allow(dead_code, unused_imports)]
#[path = "../tests/it/world.rs"]
mod world;

/// One line of the results table.
pub struct Row {
    pub measure: String,
    pub value: String,
    pub goal: String,
}

/// cargo passes `--bench`; there are no other arguments to read.
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rows = pipeline::run().await?;
    println!("| measure | value | goal |\n| --- | --- | --- |");
    for row in rows {
        println!("| {} | {} | {} |", row.measure, row.value, row.goal);
    }
    Ok(())
}
