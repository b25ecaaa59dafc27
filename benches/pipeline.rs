//! The log pipeline: 256 MiB of mixed ANSI through tether, OpenSSH `ssh -R` and loopback TCP.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use tether::engine::live::LiveLogs;
use tether::engine::runlog::RunLog;
use tether::exec::process::OUTPUT_CHUNK_BYTES;
use tether::logs::LogStore;
use tether::render::{Renderer, push_line_markup};

use crate::Row;
use crate::sshd::Sshd;
use crate::world::{REPO, World};

const MIB: u64 = 1024 * 1024;
/// What the check writes: 256 MiB, stored whole under the server's 1 GiB `--log-max-bytes`.
const PIPELINE_LOG_BYTES: u64 = 256 * MIB;
/// Rounds of each figure; the medians are reported.
const ROUNDS: usize = 3;
/// How often the run's status is polled; small beside a run of seconds.
const RUN_POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How long one run may take before the benchmark gives up on it.
const RUN_LIMIT: Duration = Duration::from_secs(300);
/// How long `ssh -R` may take to set up its forward.
const FORWARD_LIMIT: Duration = Duration::from_secs(10);
/// The reader's buffer.
const READ_BUFFER_BYTES: usize = 256 * 1024;
/// The recorded logs the check's output is made of, repeated.
const FIXTURE_LOGS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/logs");

const TETHER_MEASURE: &str =
    "log pipeline, tether (256 MiB mixed ANSI, runner → SSH → server → renderer → blobstore)";
const RENDER_MEASURE: &str =
    "where tether's time goes: the renderer alone, in-process (ANSI → HTML lines, one core)";
const LOG_STAGE_MEASURE: &str =
    "where tether's time goes: the server's log stage alone, in-process (+ live log, blobs)";

/// One round's figures: seconds for the tether pipeline and the server's peak RSS in bytes;
/// seconds for the same bytes through OpenSSH (when sshd can run here) and loopback TCP; and
/// seconds for the server's log work alone, in this process, to show where tether's time goes.
struct Round {
    tether: f64,
    server_peak_rss: u64,
    openssh: Option<f64>,
    tcp: f64,
    render: f64,
    log_stage: f64,
}

pub async fn run() -> anyhow::Result<Vec<Row>> {
    let scratch = tempfile::tempdir()?;
    let log = scratch.path().join("mixed-ansi.log");
    write_mixed_ansi(&log)?;
    let bytes = std::fs::read(&log)?;
    let openssh = match Sshd::start(true).await {
        Some(sshd) => Some(ReverseForward::start(sshd).await?),
        None => None,
    };
    let tcp = Reader::start().await?;
    let mut rounds = Vec::new();
    // The rounds interleave, so that load from elsewhere on the machine hits all three alike.
    for n in 1..=ROUNDS {
        let (tether, server_peak_rss) = tether_round(&log, scratch.path()).await?;
        let openssh = match &openssh {
            Some(forward) => Some(forward.reader.time_from(forward.remote_port, &bytes).await?),
            None => None,
        };
        let tcp = tcp.time_from(tcp.port, &bytes).await?;
        let render = render_alone(&bytes);
        let log_stage = log_stage_alone(&bytes, scratch.path()).await?;
        let round = Round { tether, server_peak_rss, openssh, tcp, render, log_stage };
        eprintln!("pipeline round {n}/{ROUNDS}: {}", describe(&round));
        rounds.push(round);
    }
    if let Some(forward) = openssh {
        forward.stop().await?;
    }
    Ok(rows(&rounds))
}

/// A round's figures on one line, for the benchmark's own progress output.
fn describe(round: &Round) -> String {
    let openssh = round.openssh.map_or("n/a".into(), |s| format!("{:.1}", mib_per_s(s)));
    format!(
        "tether {:.1} MiB/s (server peak RSS {:.0} MiB), OpenSSH {openssh} MiB/s, TCP {:.1} \
         MiB/s; in-process: renderer {:.1} MiB/s, log stage {:.1} MiB/s",
        mib_per_s(round.tether),
        round.server_peak_rss as f64 / MIB as f64,
        mib_per_s(round.tcp),
        mib_per_s(round.render),
        mib_per_s(round.log_stage)
    )
}

/// The medians over the rounds, in MiB/s (the server's peak RSS in MiB).
struct Medians {
    tether: f64,
    openssh: Option<f64>,
    tcp: f64,
    server_peak_rss: f64,
    render: f64,
    log_stage: f64,
}

impl Medians {
    fn of(rounds: &[Round]) -> Medians {
        let speed = |seconds: fn(&Round) -> f64| mib_per_s(median(rounds.iter().map(seconds)));
        let openssh = rounds.iter().map(|r| r.openssh).collect::<Option<Vec<_>>>();
        Medians {
            tether: speed(|r| r.tether),
            openssh: openssh.map(|secs| mib_per_s(median(secs.into_iter()))),
            tcp: speed(|r| r.tcp),
            server_peak_rss: median(rounds.iter().map(|r| r.server_peak_rss as f64)) / MIB as f64,
            render: speed(|r| r.render),
            log_stage: speed(|r| r.log_stage),
        }
    }
}

/// The table rows: medians over the rounds, and the ratios of the medians.
fn rows(rounds: &[Round]) -> Vec<Row> {
    let m = Medians::of(rounds);
    let skipped = || "n/a (needs root and openssh-server)".to_string();
    let openssh = m.openssh.map(|v| format!("{v:.1} MiB/s"));
    let ratio = m.openssh.map(|v| format!("{:.2}", m.tether / v));
    [
        (TETHER_MEASURE, format!("{:.1} MiB/s", m.tether), "none set"),
        ("same bytes, OpenSSH `ssh -R`", openssh.unwrap_or_else(skipped), "none set"),
        ("same bytes, loopback TCP", format!("{:.1} MiB/s", m.tcp), "none set"),
        ("tether / OpenSSH", ratio.unwrap_or_else(skipped), "≥ 0.5"),
        ("tether / loopback TCP", format!("{:.3}", m.tether / m.tcp), "none set"),
        (
            "server peak RSS during the tether pipeline",
            format!("{:.0} MiB", m.server_peak_rss),
            "bounded whatever the log's size",
        ),
        (RENDER_MEASURE, format!("{:.1} MiB/s", m.render), "none set"),
        (LOG_STAGE_MEASURE, format!("{:.1} MiB/s", m.log_stage), "none set"),
    ]
    .into_iter()
    .map(|(measure, value, goal)| Row { measure: measure.into(), value, goal: goal.into() })
    .collect()
}

fn mib_per_s(seconds: f64) -> f64 {
    PIPELINE_LOG_BYTES as f64 / MIB as f64 / seconds
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Writes `PIPELINE_LOG_BYTES` of the recorded logs (cargo's errors, git's graph and diff, ls,
/// a progress bar), repeated: colours, cursor moves and carriage returns, as real checks print.
fn write_mixed_ansi(path: &Path) -> anyhow::Result<()> {
    let mut unit = Vec::new();
    let mut logs: Vec<_> = std::fs::read_dir(FIXTURE_LOGS)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    logs.sort();
    for log in logs.iter().filter(|p| p.extension().is_some_and(|e| e == "log")) {
        unit.extend(std::fs::read(log)?);
    }
    ensure!(!unit.is_empty(), "no recorded logs in {FIXTURE_LOGS}");
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut left = PIPELINE_LOG_BYTES as usize;
    while left > 0 {
        let n = left.min(unit.len());
        file.write_all(&unit[..n])?;
        left -= n;
    }
    file.flush()?;
    Ok(())
}

/// One run of a check that cats the log, in a new world: seconds from the script's start to the
/// run being completed with its log stored, and the server's peak RSS in bytes meanwhile.
async fn tether_round(log: &Path, scratch: &Path) -> anyhow::Result<(f64, u64)> {
    let world = World::new().await;
    let (_runner, _ssh) = world.connect_runner().await;
    let stamp = scratch.join("script-started-ns");
    let script = format!("date +%s%N > '{}'; cat '{}'", stamp.display(), log.display());
    let sha = world.commit_config(&format!("[checks.pipeline]\nrun = {script:?}\n"));
    let pid = world.server.pid();
    // Only the run's own peak counts, not the server's start.
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")?;
    let (status, body) = world.deliver("push", "pipeline", &world.push_payload(&sha)).await;
    ensure!(status == 202, "the push was answered {status}: {body}");
    let run = wait_until_completed(&world, &sha).await?;
    let ended = SystemTime::now().duration_since(UNIX_EPOCH)?;
    let peak = peak_rss(pid)?;
    ensure!(run["conclusion"] == "success", "the check failed: {run}");
    let stored = world.server.data_dir.join(format!("blobs/logs/{}/raw", run["id"]));
    let stored = std::fs::metadata(&stored).with_context(|| format!("{}", stored.display()))?;
    ensure!(stored.len() == PIPELINE_LOG_BYTES, "stored {} bytes", stored.len());
    let started: u128 = std::fs::read_to_string(&stamp)?.trim().parse()?;
    std::fs::remove_file(&stamp)?;
    Ok(((ended.as_nanos() - started) as f64 / 1e9, peak))
}

/// Seconds for the renderer alone to turn the bytes into line markup, fed in the runner's
/// chunks: the part of the server's work that no I/O can hide.
fn render_alone(bytes: &[u8]) -> f64 {
    let start = Instant::now();
    let mut renderer = Renderer::new();
    let mut markup = String::new();
    let mut markup_bytes = 0;
    for chunk in bytes.chunks(OUTPUT_CHUNK_BYTES) {
        for line in &renderer.push(chunk) {
            push_line_markup(&mut markup, line, "12:00:00.000");
        }
        markup_bytes += markup.len();
        markup.clear();
    }
    if let Some(line) = renderer.finish() {
        push_line_markup(&mut markup, &line, "12:00:00.000");
    }
    std::hint::black_box(markup_bytes + markup.len());
    start.elapsed().as_secs_f64()
}

/// Seconds for what the server does with each chunk a run sends (`engine::runlog::RunLog`: the
/// raw blob, the renderer, each line to the live log and the HTML blob, the tail), in this
/// process, with no network: the server's ceiling on one log.
async fn log_stage_alone(bytes: &[u8], scratch: &Path) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir_in(scratch)?;
    let logs = LogStore::open(None, dir.path())?;
    let live = LiveLogs::default().start(1);
    let start = Instant::now();
    let mut log = RunLog::open(&logs, live, u64::MAX).await?;
    for chunk in bytes.chunks(OUTPUT_CHUNK_BYTES) {
        log.push(chunk, SystemTime::now()).await?;
    }
    log.finish().await?;
    Ok(start.elapsed().as_secs_f64())
}

/// Polls the runs API until the commit's one run is completed; returns it.
async fn wait_until_completed(world: &World, sha: &str) -> anyhow::Result<Value> {
    let deadline = Instant::now() + RUN_LIMIT;
    while Instant::now() < deadline {
        let (status, body) = world.server.get(&format!("/api/v1/runs?repo={REPO}&sha={sha}")).await;
        ensure!(status == 200, "the runs API answered {status}: {body}");
        let runs: Vec<Value> = serde_json::from_str(&body)?;
        if let Some(run) = runs.into_iter().find(|r| r["status"] == "completed") {
            return Ok(run);
        }
        tokio::time::sleep(RUN_POLL_INTERVAL).await;
    }
    bail!("the run did not complete within {RUN_LIMIT:?}")
}

/// A process's peak resident set (VmHWM) in bytes.
fn peak_rss(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).context("no VmHWM")?;
    let kib: u64 = line.split_whitespace().nth(1).context("empty VmHWM")?.parse()?;
    Ok(kib * 1024)
}

/// A loopback listener that counts what each connection brings until its end, and reports the
/// count and the moment of the last byte.
struct Reader {
    port: u16,
    done: tokio::sync::Mutex<mpsc::Receiver<(u64, Instant)>>,
    task: tokio::task::JoinHandle<()>,
}

impl Reader {
    async fn start() -> anyhow::Result<Reader> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (tx, rx) = mpsc::channel(1);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (count, last) = count_to_end(stream).await;
                // An empty connection is `ReverseForward`'s probe, not a round.
                if count > 0 && tx.send((count, last)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Reader { port, done: tokio::sync::Mutex::new(rx), task })
    }

    /// Seconds from the first byte written to `port` to the last byte read here.
    async fn time_from(&self, port: u16, bytes: &[u8]) -> anyhow::Result<f64> {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        let start = Instant::now();
        stream.write_all(bytes).await?;
        stream.shutdown().await?;
        let (count, last) = self.done.lock().await.recv().await.context("the reader ended")?;
        ensure!(count == bytes.len() as u64, "read {count} of {} bytes", bytes.len());
        Ok((last - start).as_secs_f64())
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn count_to_end(mut stream: TcpStream) -> (u64, Instant) {
    let mut buffer = vec![0; READ_BUFFER_BYTES];
    let mut count = 0;
    while let Ok(n @ 1..) = stream.read(&mut buffer).await {
        count += n as u64;
    }
    (count, Instant::now())
}

/// OpenSSH's own reverse forward: sshd on loopback, `ssh -N -R` to it, and a reader behind it.
/// Both ends use Debian's defaults, as the runner's `ssh -R` to tether does: OpenSSH 9.2 picks
/// chacha20-poly1305@openssh.com (no AES-GCM preference without a config).
struct ReverseForward {
    reader: Reader,
    remote_port: u16,
    ssh: tokio::process::Child,
    sshd: Sshd,
    _dir: tempfile::TempDir,
}

impl ReverseForward {
    async fn start(sshd: Sshd) -> anyhow::Result<ReverseForward> {
        let reader = Reader::start().await?;
        let remote_port = TcpListener::bind("127.0.0.1:0").await?.local_addr()?.port();
        let dir = tempfile::tempdir()?;
        let known_hosts = dir.path().join("known_hosts");
        let host_key = sshd.host_key.to_openssh()?;
        std::fs::write(&known_hosts, format!("[127.0.0.1]:{} {host_key}\n", sshd.port))?;
        let forward = format!("{remote_port}:127.0.0.1:{}", reader.port);
        let ssh = tokio::process::Command::new("ssh")
            .args(["-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"])
            .args(["-o", "StrictHostKeyChecking=yes", "-o", "ExitOnForwardFailure=yes"])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
            .arg("-i")
            .arg(&sshd.user_key)
            .args(["-p", &sshd.port.to_string(), "-N", "-R", &forward, "root@127.0.0.1"])
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        wait_for_listener(remote_port).await?;
        Ok(ReverseForward { reader, remote_port, ssh, sshd, _dir: dir })
    }

    /// Ends `ssh` and sshd and waits for them, so that none outlives the benchmark.
    async fn stop(mut self) -> anyhow::Result<()> {
        self.ssh.kill().await?;
        self.sshd.kill().await;
        Ok(())
    }
}

/// Waits until something accepts on `port` (an empty connection, which the reader ignores).
async fn wait_for_listener(port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + FORWARD_LIMIT;
    while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        ensure!(Instant::now() < deadline, "nothing listens on port {port}");
        tokio::time::sleep(RUN_POLL_INTERVAL).await;
    }
    Ok(())
}
