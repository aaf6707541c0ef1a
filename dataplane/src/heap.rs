//! The process heap on transparent huge pages.
//!
//! With thousands of tunnels every packet reaches its SA, its counters and its table entries
//! on pages no other packet of the burst shares. On 4 KB pages those translations miss the
//! TLB, and the look ahead's prefetches wait on page walks: 10 000 tunnels ran 13 to 15 %
//! slower with the heap on 4 KB pages than on 2 MB ones, one tunnel the same
//! (docs/performance.md). DPDK's own memory (mbufs, crypto sessions) is on huge pages
//! already; this is about the Rust heap. glibc puts its heap on transparent huge pages when
//! the tunable `glibc.malloc.hugetlb=1` is set (it then madvises what it maps), and reads its
//! tunables only at start-up. So the dataplane starts itself again, once, with the tunable
//! added, before anything else runs.

use std::ffi::OsString;

const TUNABLE: &str = "glibc.malloc.hugetlb";
const THP_ENABLED: &str = "/sys/kernel/mm/transparent_hugepage/enabled";

/// Where the heap is, as `prepare` left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heap {
    /// `glibc.malloc.hugetlb=1` is in force.
    HugePages,
    /// On the kernel's base pages, and why.
    BasePages(String),
}

impl std::fmt::Display for Heap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Heap::HugePages => write!(f, "heap on transparent huge pages ({TUNABLE}=1)"),
            Heap::BasePages(why) => write!(f, "heap on base pages: {why}"),
        }
    }
}

/// What to do, from `GLIBC_TUNABLES` and the kernel's THP mode (the contents of
/// `THP_ENABLED`, e.g. `always [madvise] never`): `Ok(Some(v))` re-execute with
/// `GLIBC_TUNABLES=v`; `Ok(None)` the heap is on huge pages already; `Err(why)` stay on base
/// pages. A tunable already naming `glibc.malloc.hugetlb` is left as it is: that keeps this to
/// one re-execution, and lets `glibc.malloc.hugetlb=0` opt out.
pub fn plan(tunables: Option<&str>, thp: Option<&str>) -> Result<Option<String>, String> {
    let tunables = tunables.unwrap_or("");
    let given = tunables
        .split(':')
        .find_map(|t| t.strip_prefix(TUNABLE)?.strip_prefix('='));
    match (given, thp) {
        (Some("1"), _) => Ok(None),
        (Some(v), _) => Err(format!("GLIBC_TUNABLES sets {TUNABLE}={v}")),
        (None, None) => Err(format!("no {THP_ENABLED}")),
        (None, Some(mode)) if mode.contains("[never]") => {
            Err("transparent huge pages are off in the kernel".into())
        }
        (None, Some(_)) if tunables.is_empty() => Ok(Some(format!("{TUNABLE}=1"))),
        (None, Some(_)) => Ok(Some(format!("{tunables}:{TUNABLE}=1"))),
    }
}

/// Puts the heap on transparent huge pages where the kernel has them: re-executes the
/// process with the tunable added (and so returns only if it did not), or reports why the
/// heap stays where it is. Call first in `main`, before any thread starts.
pub fn prepare() -> Heap {
    let tunables = std::env::var("GLIBC_TUNABLES").ok();
    let thp = std::fs::read_to_string(THP_ENABLED).ok();
    match plan(tunables.as_deref(), thp.as_deref()) {
        Ok(None) => Heap::HugePages,
        Err(why) => Heap::BasePages(why),
        Ok(Some(value)) => Heap::BasePages(reexec(value)),
    }
}

/// Replaces the process image with itself, same arguments, `GLIBC_TUNABLES=value`; returns
/// only on failure, with the reason.
fn reexec(value: String) -> String {
    use std::os::unix::process::CommandExt;
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return format!("cannot find this executable to restart it: {e}"),
    };
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| OsString::from(&exe));
    let err = std::process::Command::new(&exe)
        .arg0(arg0)
        .args(args)
        .env("GLIBC_TUNABLES", value)
        .exec();
    format!("restarting {} with {TUNABLE}=1: {err}", exe.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MADVISE: Option<&str> = Some("always [madvise] never\n");

    #[test]
    fn the_tunable_is_added_once_and_kept_as_given() {
        assert_eq!(
            plan(None, MADVISE),
            Ok(Some("glibc.malloc.hugetlb=1".into()))
        );
        assert_eq!(
            plan(Some(""), MADVISE),
            Ok(Some("glibc.malloc.hugetlb=1".into()))
        );
        assert_eq!(
            plan(
                Some("glibc.malloc.arena_max=2"),
                Some("[always] madvise never")
            ),
            Ok(Some(
                "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1".into()
            ))
        );
        // After the re-execution: nothing more to do.
        assert_eq!(
            plan(
                Some("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"),
                MADVISE
            ),
            Ok(None)
        );
        // An operator's own value stands, and says why the heap is where it is.
        assert_eq!(
            plan(Some("glibc.malloc.hugetlb=0"), MADVISE),
            Err("GLIBC_TUNABLES sets glibc.malloc.hugetlb=0".into())
        );
        // A tunable whose name only starts the same is another tunable.
        assert_eq!(
            plan(Some("glibc.malloc.hugetlbx=0"), MADVISE),
            Ok(Some(
                "glibc.malloc.hugetlbx=0:glibc.malloc.hugetlb=1".into()
            ))
        );
    }

    #[test]
    fn no_restart_without_the_kernels_huge_pages() {
        assert!(plan(None, Some("always madvise [never]")).is_err());
        assert!(plan(None, None).is_err());
    }
}
