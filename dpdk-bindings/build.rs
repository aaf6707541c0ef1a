//! Probes DPDK with pkg-config, generates bindings with bindgen and compiles
//! the C shim that exposes DPDK's static-inline fast-path functions.

use std::env;
use std::path::PathBuf;
use std::process::{self, Command};

/// Types that are both packed and aligned in C; rustc cannot represent them,
/// so bindgen emits them as opaque blobs of the right size and alignment.
const OPAQUE_TYPES: &[&str] = &[
    "rte_ether_addr",
    "rte_ether_hdr",
    "rte_arp_hdr",
    "rte_l2tpv2_combined_msg_hdr",
    "rte_gtp_psc_generic_hdr",
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=shim");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    // Emits the link flags (shared libs); the EAL then loads PMDs such as
    // net_null or net_ring from its plugin directory at init.
    if let Err(e) = pkg_config::Config::new()
        .atleast_version("22.11")
        .probe("libdpdk")
    {
        fail(&format!(
            "libdpdk (>= 22.11) not found via pkg-config: {e}\n\
             install it with `apt-get install libdpdk-dev` (Debian/Ubuntu)"
        ));
    }
    // rte_vdev_init (creating a crypto vdev at run time) lives in the vdev bus driver, which
    // `pkg-config --libs libdpdk` does not list.
    println!("cargo:rustc-link-lib=dylib=rte_bus_vdev");
    let cflags = dpdk_cflags();
    build_shim(&cflags);
    generate_bindings(&cflags);
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    process::exit(1);
}

/// Raw `pkg-config --cflags libdpdk`: the `pkg-config` crate only keeps
/// include paths and defines, but DPDK also needs `-include rte_config.h`
/// and `-march=...` for its inline headers to compile.
fn dpdk_cflags() -> Vec<String> {
    let bin = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_owned());
    let out = match Command::new(&bin).args(["--cflags", "libdpdk"]).output() {
        Ok(out) if out.status.success() => out,
        Ok(out) => fail(&format!(
            "`{bin} --cflags libdpdk` failed: {}\ninstall it with `apt-get install libdpdk-dev`",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => fail(&format!("cannot run `{bin}`: {e}")),
    };
    // DPDK's flags contain no quoted spaces, so whitespace splitting is exact.
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn build_shim(cflags: &[String]) {
    let mut build = cc::Build::new();
    build.file("shim/shim.c").include("shim").opt_level(3);
    for flag in cflags {
        build.flag(flag);
    }
    build.compile("espgw_shim");
}

fn generate_bindings(cflags: &[String]) {
    let out_dir = match env::var("OUT_DIR") {
        Ok(dir) => PathBuf::from(dir),
        Err(_) => fail("OUT_DIR is not set (build.rs must run under cargo)"),
    };

    let mut builder = bindgen::Builder::default()
        .header("shim/wrapper.h")
        .clang_arg("-Ishim")
        .clang_args(cflags.iter().cloned())
        .allowlist_function("rte_.*|espgw_.*")
        .allowlist_type("rte_.*|espgw_.*")
        .allowlist_var("rte_.*|RTE_.*|RING_F_.*|SOCKET_ID_ANY|LCORE_ID_ANY")
        // Inline functions have no symbol in the shared libraries; the shim
        // exports the ones we need.
        .generate_inline_functions(false)
        .derive_default(true)
        .layout_tests(true)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    for ty in OPAQUE_TYPES {
        builder = builder.opaque_type(ty);
    }

    let bindings = match builder.generate() {
        Ok(b) => b,
        Err(e) => fail(&format!("bindgen failed on shim/wrapper.h: {e}")),
    };
    if let Err(e) = bindings.write_to_file(out_dir.join("bindings.rs")) {
        fail(&format!("cannot write bindings.rs: {e}"));
    }
}
