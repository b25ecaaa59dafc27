//! The server's files are its own: started with a permissive umask, as a shell often gives it,
//! it still makes the database, its WAL files, the host key and the blobs readable by nobody
//! else.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use crate::serve::ProcessSetup;
use crate::world::*;

/// Every file and directory under `dir` with its mode.
fn modes(dir: &Path, out: &mut Vec<(String, u32)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let metadata = std::fs::symlink_metadata(&path).unwrap();
        out.push((path.display().to_string(), metadata.permissions().mode() & 0o777));
        if metadata.is_dir() {
            modes(&path, out);
        }
    }
}

#[tokio::test]
async fn with_umask_022_the_database_keys_and_blobs_are_private() {
    let process = ProcessSetup { umask: Some(0o022), ..ProcessSetup::default() };
    let world = World::with_process(&[], process).await;
    let (_runner, _ssh) = world.connect_runner().await;
    let sha = world.commit_config("[checks.hello]\nrun = \"echo hello\"\n");
    world.deliver("push", "delivery-1", &world.push_payload(&sha)).await;
    let runs = world.wait_for_check_runs(Duration::from_secs(30), |rs| completed(rs, 1)).await;
    assert!(completed(&runs, 1), "{runs:#?}");

    let data = &world.server.data_dir;
    let mut found = Vec::new();
    modes(data, &mut found);
    let names: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
    for expected in ["tether.db", "tether.db-wal", "tether.db-shm", "ssh_host_ed25519_key", "raw"] {
        assert!(names.iter().any(|n| n.ends_with(expected)), "no {expected} in {names:#?}");
    }
    let open: Vec<_> = found.iter().filter(|(_, mode)| mode & 0o077 != 0).collect();
    assert!(open.is_empty(), "readable by others: {open:#?}");
}
