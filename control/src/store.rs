//! Committed configurations, as Junos keeps them: every commit is a file of its own in the
//! state directory (mode 0600: it holds keys), written to a temporary name and renamed into
//! place, so that a crash leaves either the old set or the new one. `rollback 0` is the
//! running configuration, `rollback 1` the one before, and so on, up to `MAX_COMMITS`.

use serde::Serialize;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Commits kept (Junos keeps 50).
pub const MAX_COMMITS: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("rollback {0}: there are only {1} commits")]
    NoSuchCommit(usize, usize),
}

/// One commit, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CommitInfo {
    /// 0 is the running configuration, 1 the one before.
    pub rollback: usize,
    /// The commit's sequence number, for ever increasing.
    pub sequence: u64,
    /// Seconds since the Unix epoch.
    pub time: u64,
}

pub struct Store {
    dir: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.into(),
        source,
    }
}

impl Store {
    /// The store in `dir/commits`, made (mode 0700) if need be.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let dir = dir.join("commits");
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(io(&dir))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(io(&dir))?;
        Ok(Store { dir })
    }

    /// Commits, newest first.
    pub fn list(&self) -> Result<Vec<CommitInfo>, StoreError> {
        let mut seqs: Vec<(u64, u64)> = Vec::new();
        for e in fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let e = e.map_err(io(&self.dir))?;
            let name = e.file_name();
            let Some(seq) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let time = e
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            seqs.push((seq, time));
        }
        seqs.sort_unstable_by(|a, b| b.cmp(a));
        Ok(seqs
            .into_iter()
            .enumerate()
            .map(|(rollback, (sequence, time))| CommitInfo {
                rollback,
                sequence,
                time,
            })
            .collect())
    }

    /// The text of `rollback n`.
    pub fn get(&self, n: usize) -> Result<String, StoreError> {
        let list = self.list()?;
        let c = list.get(n).ok_or(StoreError::NoSuchCommit(n, list.len()))?;
        let path = self.path(c.sequence);
        fs::read_to_string(&path).map_err(io(&path))
    }

    /// The running configuration (the last commit), if any.
    pub fn running(&self) -> Result<Option<String>, StoreError> {
        match self.get(0) {
            Ok(t) => Ok(Some(t)),
            Err(StoreError::NoSuchCommit(..)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Stores `text` as the new running configuration; its sequence number. The oldest commits
    /// beyond `MAX_COMMITS` are removed.
    pub fn commit(&self, text: &str) -> Result<u64, StoreError> {
        let list = self.list()?;
        let seq = list.first().map_or(1, |c| c.sequence + 1);
        let path = self.path(seq);
        let tmp = self.dir.join(format!(".{seq}.json.tmp"));
        {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io(&tmp))?;
            f.write_all(text.as_bytes()).map_err(io(&tmp))?;
            f.sync_all().map_err(io(&tmp))?;
        }
        fs::rename(&tmp, &path).map_err(io(&path))?;
        if let Ok(d) = fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        for old in list.iter().skip(MAX_COMMITS - 1) {
            let _ = fs::remove_file(self.path(old.sequence));
        }
        Ok(seq)
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:08}.json"))
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_are_0600_listed_newest_first_and_rolled_back_by_number() {
        let dir = std::env::temp_dir().join(format!("espgw-store-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let s = Store::open(&dir).unwrap();
        assert_eq!(s.running().unwrap(), None);
        for i in 0..(MAX_COMMITS + 3) {
            s.commit(&format!("{{\"n\": {i}}}")).unwrap();
        }
        let list = s.list().unwrap();
        assert_eq!(list.len(), MAX_COMMITS);
        assert_eq!(list[0].rollback, 0);
        assert_eq!(list[0].sequence, MAX_COMMITS as u64 + 3);
        assert_eq!(
            s.running().unwrap().unwrap(),
            format!("{{\"n\": {}}}", MAX_COMMITS + 2)
        );
        assert_eq!(s.get(2).unwrap(), format!("{{\"n\": {}}}", MAX_COMMITS));
        assert!(matches!(
            s.get(MAX_COMMITS),
            Err(StoreError::NoSuchCommit(..))
        ));
        let f = dir
            .join("commits")
            .join(format!("{:08}.json", list[0].sequence));
        assert_eq!(
            fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let d = fs::metadata(dir.join("commits"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(d, 0o700);
        fs::remove_dir_all(&dir).unwrap();
    }
}
