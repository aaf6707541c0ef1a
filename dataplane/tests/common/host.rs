//! Helpers every integration test that runs real processes shares, in this workspace's
//! packages too (benches/tests includes this file by path): root gating, the repository root,
//! waiting for a process's log line.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Tests that need root (EAL, namespaces) run when root. When not root they are skipped with
/// a message, except under CI (`CI=true`), where they must fail instead.
pub fn require_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test} needs root, and CI=true: refusing to skip");
    }
    eprintln!("SKIPPED {test}: needs root");
    false
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Waits up to 60 s for `text` to appear in the file at `path` (a process's log).
pub fn wait_for(path: &Path, text: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if std::fs::read_to_string(path).is_ok_and(|s| s.contains(text)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{what} did not start: {}",
        std::fs::read_to_string(path).unwrap_or_default()
    );
}
