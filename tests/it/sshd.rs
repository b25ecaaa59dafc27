//! An OpenSSH sshd for the `--connect` tests: a free loopback port, its own host key, one
//! authorized user key, and the sockets it binds for runners removed afterwards.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};

use russh::keys::ssh_key::LineEnding;
use russh::keys::{Algorithm, HashAlg, PrivateKey, PublicKey};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::harness::Runner;

pub const SSHD: &str = "/usr/sbin/sshd";

/// An sshd on a free loopback port, with its own host key and one authorized user key.
pub struct Sshd {
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
    pub host_key: PublicKey,
    /// The runner's key, authorized unless the test says otherwise.
    pub user_key: PathBuf,
    /// The sockets sshd bound for runners, removed at the end.
    sockets: Vec<PathBuf>,
}

impl Sshd {
    /// `None`, with a note, where this cannot run: no sshd installed, or not root (sshd binds
    /// `/NAME` at the root of the file system and logs in as root).
    pub async fn start(authorize_user_key: bool) -> Option<Sshd> {
        if !Path::new(SSHD).exists() || !nix::unistd::getuid().is_root() {
            eprintln!("skipping: needs {SSHD} (apt-get install openssh-server) and root");
            return None;
        }
        std::fs::create_dir_all("/run/sshd").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let host_key = write_new_key(&dir.path().join("host_key"));
        let user_key = dir.path().join("user_key");
        let user_public = write_new_key(&user_key);
        std::fs::write(dir.path().join("authorized_keys"), "").unwrap();
        let port = free_port();
        let mut sshd = Sshd { dir, port, child: None, host_key, user_key, sockets: Vec::new() };
        if authorize_user_key {
            sshd.authorize(&user_public);
        }
        sshd.write_config();
        sshd.spawn().await;
        Some(sshd)
    }

    fn write_config(&self) {
        let dir = self.dir.path().display();
        let config = format!(
            "ListenAddress 127.0.0.1\nHostKey {dir}/host_key\nAuthorizedKeysFile {dir}/authorized_keys\n\
             StreamLocalBindUnlink yes\nAllowStreamLocalForwarding yes\nAllowTcpForwarding yes\n\
             PidFile none\nUsePAM no\nStrictModes no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nLogLevel VERBOSE\n"
        );
        std::fs::write(self.dir.path().join("sshd_config"), config).unwrap();
    }

    /// Starts sshd and waits until it listens.
    pub async fn spawn(&mut self) {
        let mut child = Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(self.dir.path().join("sshd_config"))
            .arg("-p")
            .arg(self.port.to_string())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("starting sshd");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        loop {
            let line = lines.next_line().await.unwrap().expect("sshd ended");
            eprintln!("sshd: {line}");
            if line.contains("Server listening") {
                break;
            }
        }
        // Keep reading, so that sshd never blocks on a full pipe; shown when a test fails.
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("sshd: {line}");
            }
        });
        self.child = Some(child);
    }

    /// Kills sshd and every session process it forked (each in a session of its own), as a
    /// server crash would.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id().unwrap();
            for process in descendants(pid).into_iter().chain([pid]) {
                let process = nix::unistd::Pid::from_raw(process as i32);
                let _ = nix::sys::signal::kill(process, nix::sys::signal::SIGKILL);
            }
            let _ = child.wait().await;
        }
    }

    pub fn authorize(&self, key: &PublicKey) {
        let line = format!("{}\n", key.to_openssh().unwrap());
        let path = self.dir.path().join("authorized_keys");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(&line);
        std::fs::write(path, text).unwrap();
    }

    pub fn target(&self) -> String {
        format!("root@127.0.0.1:{}", self.port)
    }

    pub fn fingerprint(&self) -> String {
        self.host_key.fingerprint(HashAlg::Sha256).to_string()
    }

    /// A runner name no other test (or test run) uses, and the socket sshd binds for it.
    pub fn new_runner_name(&mut self) -> (String, PathBuf) {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let name = format!("tether-it-{}-{n}", std::process::id());
        let socket = PathBuf::from(format!("/{name}"));
        self.sockets.push(socket.clone());
        (name, socket)
    }

    /// `tether runner --connect` with the authorized key, waiting until it says it connected.
    pub async fn connect_runner(&mut self, extra: &[&str]) -> Runner {
        let (name, socket) = self.new_runner_name();
        let dir = tempfile::tempdir().unwrap();
        let known_hosts = dir.path().join("known_hosts");
        let target = self.target();
        let mut args = vec![
            "--connect".as_ref(),
            target.as_ref(),
            "--identity".as_ref(),
            self.user_key.as_os_str(),
            "--known-hosts".as_ref(),
            known_hosts.as_os_str(),
            "--name".as_ref(),
            name.as_ref(),
        ];
        args.extend(extra.iter().map(OsStr::new));
        Runner::spawn(dir, socket, &args, &[], "connected to").await
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        if let Some(pid) = self.child.as_ref().and_then(Child::id) {
            for process in descendants(pid).into_iter().chain([pid]) {
                let process = nix::unistd::Pid::from_raw(process as i32);
                let _ = nix::sys::signal::kill(process, nix::sys::signal::SIGKILL);
            }
        }
        for socket in &self.sockets {
            let _ = std::fs::remove_file(socket);
        }
    }
}

/// Writes a new ed25519 private key (mode 0600, as ssh wants it) and returns its public key.
pub fn write_new_key(path: &Path) -> PublicKey {
    let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).unwrap();
    std::fs::write(path, key.to_openssh(LineEnding::LF).unwrap().as_bytes()).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    key.public_key().clone()
}

/// Every process below `pid`, from /proc.
fn descendants(pid: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // The parent pid is the second field after the parenthesised command name.
        let parent = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(parent) = parent {
            parents.push((child, parent));
        }
    }
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(parents.iter().filter(|(_, p)| *p == parent).map(|(c, _)| *c));
        i += 1;
    }
    found.split_off(1)
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
