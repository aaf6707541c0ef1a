//! espgw-dataplane: the ESP tunnel gateway's DPDK poll-mode dataplane.

use clap::Parser;
use dataplane::app::{self, Options};
use dataplane::config::Config;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "espgw-dataplane",
    version,
    about = "ESP tunnel gateway dataplane (DPDK)"
)]
struct Cli {
    /// Configuration file (JSON; see docs/configuration.md).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Stop after MS milliseconds without a packet received on any port.
    #[arg(long, value_name = "MS")]
    exit_when_idle: Option<u64>,
    /// Write the counters as JSON to FILE at every clean stop.
    #[arg(long, value_name = "FILE")]
    stats_file: Option<PathBuf>,
    /// EAL arguments; when given they replace the configuration file's `dataplane.eal`.
    #[arg(last = true, value_name = "EAL ARGS")]
    eal: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cfg = match Config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("espgw-dataplane: {}: {e}", cli.config.display());
            return ExitCode::from(2);
        }
    };
    warn_if_readable(&cli.config, &cfg);
    let eal = if cli.eal.is_empty() {
        cfg.dataplane.eal.clone()
    } else {
        cli.eal.clone()
    };
    let opts = Options {
        exit_when_idle: cli.exit_when_idle.map(Duration::from_millis),
        stats_file: cli.stats_file,
    };
    match app::run(&cfg, &eal, &opts) {
        Ok(snap) => {
            eprint!("{}", snap.render());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("espgw-dataplane: {e}");
            ExitCode::from(1)
        }
    }
}

/// Key material must not be readable by others (as sshd insists for private keys, we warn).
fn warn_if_readable(path: &std::path::Path, cfg: &Config) {
    use std::os::unix::fs::PermissionsExt;
    if cfg.manual_sas.is_empty() {
        return;
    }
    if let Ok(m) = std::fs::metadata(path) {
        if m.permissions().mode() & 0o077 != 0 {
            eprintln!("espgw-dataplane: warning: {} holds SA keys and is readable by others; chmod 600 it", path.display());
        }
    }
}
