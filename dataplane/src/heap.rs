//! The process heap on transparent huge pages.
//!
//! With thousands of tunnels every packet reaches its SA, its counters and its table entries
//! on pages no other packet of the burst shares. On 4 KB pages those translations miss the
//! TLB, and the look ahead's prefetches wait on page walks. With the heap on 2 MB pages
//! 10 000 tunnels ran 4 to 15 % faster, 100 000 tunnels 11 to 18 %, one tunnel the same
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
    /// `glibc.malloc.hugetlb=1` is in force: glibc asks for huge pages, and the kernel gives
    /// them as far as it has free 2 MB blocks.
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

/// What the decision is made from.
#[derive(Debug, Clone, Copy)]
pub struct Host<'a> {
    /// `GLIBC_TUNABLES`, if set.
    pub tunables: Option<&'a str>,
    /// The kernel's THP mode: the contents of `THP_ENABLED`, e.g. `always [madvise] never`.
    pub thp: Option<&'a str>,
    /// glibc's (major, minor) version.
    pub glibc: Option<(u32, u32)>,
    /// Secure-execution mode (`AT_SECURE`: set-user-ID and the like), where glibc ignores
    /// `GLIBC_TUNABLES`.
    pub secure: bool,
}

/// glibc has the tunable from 2.35 on.
const GLIBC_WITH_TUNABLE: (u32, u32) = (2, 35);

/// What to do: `Ok(Some(v))` re-execute with `GLIBC_TUNABLES=v`; `Ok(None)` the heap is on huge
/// pages already; `Err(why)` stay on base pages. A tunable already naming
/// `glibc.malloc.hugetlb` is left as it is: that keeps this to one re-execution, and lets
/// `glibc.malloc.hugetlb=0` opt out.
pub fn plan(host: &Host<'_>) -> Result<Option<String>, String> {
    if host.secure {
        return Err("secure-execution mode, where glibc ignores GLIBC_TUNABLES".into());
    }
    match host.glibc {
        Some(v) if v >= GLIBC_WITH_TUNABLE => {}
        Some((major, minor)) => {
            return Err(format!("glibc {major}.{minor} has no {TUNABLE} (2.35 has)"));
        }
        None => return Err("not glibc, or of an unknown version".into()),
    }
    let tunables = host.tunables.unwrap_or("");
    let given = tunables
        .split(':')
        .find_map(|t| t.strip_prefix(TUNABLE)?.strip_prefix('='));
    if let Some(v) = given.filter(|&v| v != "1") {
        return Err(format!("GLIBC_TUNABLES sets {TUNABLE}={v}"));
    }
    // The tunable only asks: with THP off, even an operator's `=1` leaves base pages.
    match host.thp {
        None => Err(format!("no {THP_ENABLED}")),
        Some(mode) if mode.contains("[never]") => {
            Err("transparent huge pages are off in the kernel".into())
        }
        Some(_) if given.is_some() => Ok(None),
        Some(_) if tunables.is_empty() => Ok(Some(format!("{TUNABLE}=1"))),
        Some(_) => Ok(Some(format!("{tunables}:{TUNABLE}=1"))),
    }
}

/// Puts the heap on transparent huge pages where the kernel has them: re-executes the
/// process with the tunable added (and so returns only if it did not), or reports why the
/// heap stays where it is. Call first in `main`, before any thread starts.
pub fn prepare() -> Heap {
    let tunables = std::env::var_os("GLIBC_TUNABLES");
    let tunables = match tunables.as_deref().map(|t| t.to_str()) {
        None => None,
        Some(Some(t)) => Some(t),
        // Rewriting what cannot be read would lose the operator's other tunables.
        Some(None) => return Heap::BasePages("GLIBC_TUNABLES is not UTF-8".into()),
    };
    let thp = std::fs::read_to_string(THP_ENABLED).ok();
    let host = Host {
        tunables,
        thp: thp.as_deref(),
        glibc: glibc_version(),
        // SAFETY: getauxval only reads the process's auxiliary vector.
        secure: unsafe { libc::getauxval(libc::AT_SECURE) } != 0,
    };
    match plan(&host) {
        Ok(None) => Heap::HugePages,
        Err(why) => Heap::BasePages(why),
        Ok(Some(value)) => Heap::BasePages(reexec(value)),
    }
}

/// The running glibc's (major, minor) version.
fn glibc_version() -> Option<(u32, u32)> {
    // SAFETY: glibc returns a static NUL-terminated string such as "2.36".
    let v = unsafe { std::ffi::CStr::from_ptr(libc::gnu_get_libc_version()) };
    let mut parts = v.to_str().ok()?.split('.').map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next()??))
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

    fn host(tunables: Option<&str>) -> Host<'_> {
        Host {
            tunables,
            thp: Some("always [madvise] never\n"),
            glibc: Some((2, 36)),
            secure: false,
        }
    }

    #[test]
    fn the_tunable_is_added_once_and_kept_as_given() {
        let added = |t| plan(&host(t));
        assert_eq!(added(None), Ok(Some("glibc.malloc.hugetlb=1".into())));
        assert_eq!(added(Some("")), Ok(Some("glibc.malloc.hugetlb=1".into())));
        assert_eq!(
            added(Some("glibc.malloc.arena_max=2")),
            Ok(Some(
                "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1".into()
            ))
        );
        // After the re-execution: nothing more to do.
        assert_eq!(
            added(Some("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1")),
            Ok(None)
        );
        // An operator's own value stands, and says why the heap is where it is.
        assert_eq!(
            added(Some("glibc.malloc.hugetlb=0")),
            Err("GLIBC_TUNABLES sets glibc.malloc.hugetlb=0".into())
        );
        // A tunable whose name only starts the same is another tunable.
        assert_eq!(
            added(Some("glibc.malloc.hugetlbx=0")),
            Ok(Some(
                "glibc.malloc.hugetlbx=0:glibc.malloc.hugetlb=1".into()
            ))
        );
    }

    #[test]
    fn no_restart_where_the_tunable_would_not_work() {
        let thp_never = Host {
            thp: Some("always madvise [never]"),
            ..host(None)
        };
        assert!(plan(&thp_never).is_err());
        assert!(plan(&Host {
            thp: None,
            ..host(None)
        })
        .is_err());
        assert_eq!(
            plan(&Host {
                glibc: Some((2, 34)),
                ..host(None)
            }),
            Err("glibc 2.34 has no glibc.malloc.hugetlb (2.35 has)".into())
        );
        assert!(plan(&Host {
            glibc: None,
            ..host(None)
        })
        .is_err());
        // The operator's `=1` with THP off in the kernel: no claim of huge pages either.
        assert_eq!(
            plan(&Host {
                thp: Some("always madvise [never]"),
                ..host(Some("glibc.malloc.hugetlb=1"))
            }),
            Err("transparent huge pages are off in the kernel".into())
        );
        // Even with the tunable already set: glibc ignores it there, so no claim of huge pages.
        assert!(plan(&Host {
            secure: true,
            ..host(Some("glibc.malloc.hugetlb=1"))
        })
        .is_err());
    }

    #[test]
    fn this_glibc_is_read() {
        assert!(glibc_version().is_some_and(|v| v >= (2, 17)));
    }
}
