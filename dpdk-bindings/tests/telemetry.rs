//! Telemetry commands registered through the safe layer, queried over the
//! real telemetry socket. A separate test binary because it needs its own
//! EAL (with telemetry enabled).

#![warn(clippy::undocumented_unsafe_blocks)]

use std::ffi::{c_char, c_int, CStr};
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use dpdk_sys::telemetry::{self, TelContainer};
use dpdk_sys::{sys, Eal, Error};

extern "C" fn info(_cmd: *const c_char, params: *const c_char, d: *mut sys::rte_tel_data) -> c_int {
    // SAFETY: arguments forwarded exactly as DPDK passed them.
    unsafe {
        telemetry::respond(params, d, |params, t| {
            t.start_dict()?;
            t.add_dict_u64("packets", 42)?;
            t.add_dict_int("delta", -3)?;
            t.add_dict_string("params", params)?;
            // Non-ASCII is replaced (DPDK 22.11 mangles it) and the value is
            // cut to 127 bytes.
            t.add_dict_string("long", &format!("caf\u{e9} {}", "x".repeat(200)))?;
            let mut list = TelContainer::new_array_u64()?;
            list.add_array_u64(1)?;
            list.add_array_u64(u64::MAX)?;
            t.add_dict_container("list", list)?;
            let mut sub = TelContainer::new_dict()?;
            sub.add_dict_u64("x", 7)?;
            t.add_dict_container("sub", sub)
        })
    }
}

extern "C" fn failing(
    _cmd: *const c_char,
    params: *const c_char,
    d: *mut sys::rte_tel_data,
) -> c_int {
    // SAFETY: as in `info`.
    unsafe {
        telemetry::respond(params, d, |_, _| {
            Err(Error::new("espgw_test", libc::ENOENT))
        })
    }
}

extern "C" fn panicking(
    _cmd: *const c_char,
    params: *const c_char,
    d: *mut sys::rte_tel_data,
) -> c_int {
    // SAFETY: as in `info`.
    unsafe { telemetry::respond(params, d, |_, _| panic!("deliberate handler panic")) }
}

#[test]
fn telemetry_commands_over_socket() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 && !ci {
        println!("skipping telemetry_commands_over_socket: needs root (set CI=true to force)");
        return;
    }
    // Registration works before the EAL exists ...
    telemetry::register(c"/espgw_test/info", c"Test dict reply", info).expect("register info");
    let args: Vec<String> = [
        "--no-pci",
        "--no-huge",
        "-m",
        "128",
        "--file-prefix",
        &format!("dpdksys-tel-{}", std::process::id()),
        "-l",
        "0",
        "--log-level=warning",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let eal = Eal::init(&args).expect("EAL init");
    // ... and after.
    telemetry::register(c"/espgw_test/fail", c"Always fails", failing).expect("register fail");
    telemetry::register(c"/espgw_test/panic", c"Always panics", panicking).expect("register panic");
    assert!(telemetry::register(c"no_slash", c"x", info).is_err());

    let runtime_dir = runtime_dir();
    let sock =
        connect(&runtime_dir.join("dpdk_telemetry.v2")).expect("connect to telemetry socket");
    let hello = recv(&sock).expect("greeting");
    assert!(hello.contains("\"version\""), "greeting: {hello}");

    let reply = query(&sock, "/espgw_test/info,hello");
    println!("info reply: {reply}");
    let long = format!("caf? {}", "x".repeat(127 - 5));
    assert_eq!(
        reply,
        format!(
            "{{\"/espgw_test/info\":{{\"packets\":42,\"delta\":-3,\"params\":\"hello\",\
             \"long\":\"{long}\",\"list\":[1,18446744073709551615],\"sub\":{{\"x\":7}}}}}}"
        )
    );

    assert_eq!(
        query(&sock, "/espgw_test/fail"),
        "{\"/espgw_test/fail\":null}"
    );
    println!("(a deliberate handler panic message may follow)");
    assert_eq!(
        query(&sock, "/espgw_test/panic"),
        "{\"/espgw_test/panic\":null}"
    );
    // The telemetry thread survived the panic.
    assert!(query(&sock, "/espgw_test/info").contains("\"params\":\"\""));

    drop(sock);
    drop(eal);
    // rte_eal_cleanup leaves the per-prefix runtime dir (a few MB in /run).
    std::fs::remove_dir_all(&runtime_dir).expect("remove EAL runtime dir");
}

/// EAL's runtime dir for our unique file prefix; holds the telemetry socket.
fn runtime_dir() -> PathBuf {
    // SAFETY: returns a pointer to EAL's static runtime-dir string.
    let dir = unsafe { CStr::from_ptr(sys::rte_eal_get_runtime_dir()) };
    let dir = PathBuf::from(std::ffi::OsStr::from_bytes(dir.to_bytes()));
    assert!(
        dir.ends_with(format!("dpdksys-tel-{}", std::process::id())),
        "{dir:?}"
    );
    dir
}

fn query(sock: &OwnedFd, cmd: &str) -> String {
    // SAFETY: writes cmd.len() bytes from a live buffer to our socket.
    let n = unsafe { libc::send(sock.as_raw_fd(), cmd.as_ptr().cast(), cmd.len(), 0) };
    assert_eq!(n, cmd.len() as isize, "send {cmd}");
    recv(sock).expect("reply")
}

fn recv(sock: &OwnedFd) -> io::Result<String> {
    let mut buf = vec![0u8; 65536];
    // SAFETY: reads at most buf.len() bytes into buf.
    let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Telemetry uses SOCK_SEQPACKET, which std's UnixStream cannot open.
fn connect(path: &Path) -> io::Result<OwnedFd> {
    // SAFETY: plain socket creation; the fd is owned right below.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_un is plain data; zero is a valid starting value.
    let mut addr: libc::sockaddr_un = unsafe { mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() >= addr.sun_path.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "socket path too long",
        ));
    }
    for (dst, &src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = src as c_char;
    }
    // SAFETY: addr is a valid sockaddr_un of the size passed.
    let rc = unsafe {
        libc::connect(
            sock.as_raw_fd(),
            std::ptr::from_ref(&addr).cast(),
            mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sock)
}
