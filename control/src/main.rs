//! espgw-control: owns the configuration and the keys, pushes them to the dataplane over the
//! shared-memory channel, and serves the REST port.
//!
//! espgw-control --config /etc/espgw/gw.json

use clap::Parser;
use control::api::{self, Api};
use control::daemon::Core;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use zeroize::Zeroizing;

#[derive(Parser)]
#[command(
    version,
    about = "espgw control process: configuration, commits, the dataplane channel, REST"
)]
struct Args {
    /// The configuration file (the first commit, when the state directory has none).
    #[arg(long, short)]
    config: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("espgw-control: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A secret file must be readable by its owner only.
fn owner_only(path: &Path, what: &str) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{what} {}: {e}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "{what} {}: mode {:o}; it must be readable by its owner only (chmod 600)",
            path.display(),
            meta.permissions().mode() & 0o777
        ));
    }
    Ok(())
}

/// The bearer token: the file's first line, from a file only its owner can read.
fn read_token(path: &Path) -> Result<Zeroizing<String>, String> {
    let meta = std::fs::metadata(path).map_err(|e| {
        format!(
            "token file {}: {e} (make one: head -c 32 /dev/urandom | base64 > {0}; chmod 600 {0})",
            path.display()
        )
    })?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "token file {}: mode {:o}; it must be readable by its owner only (chmod 600)",
            path.display(),
            meta.permissions().mode() & 0o777
        ));
    }
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?,
    );
    let token = Zeroizing::new(text.lines().next().unwrap_or("").trim().to_string());
    if token.len() < 16 {
        return Err(format!(
            "token file {}: the token must be at least 16 characters",
            path.display()
        ));
    }
    Ok(token)
}

fn run(args: &Args) -> Result<(), String> {
    let text = Zeroizing::new(
        std::fs::read_to_string(&args.config)
            .map_err(|e| format!("{}: {e}", args.config.display()))?,
    );
    let cfg =
        config::Config::parse(&text).map_err(|e| format!("{}: {e}", args.config.display()))?;
    let token = read_token(&cfg.control.token_file)?;
    let core = Core::start(text.to_string(), &cfg)?;
    eprintln!(
        "espgw-control: channel {}, state in {}, REST on {}://{}",
        core.channel().display(),
        cfg.control.state_dir.display(),
        if cfg.control.tls.is_some() {
            "https"
        } else {
            "http"
        },
        cfg.control.listen
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let core_thread = std::thread::Builder::new()
        .name("core".into())
        .spawn(move || core.run(rx))
        .map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let listen = cfg.control.listen;
    let tls = cfg.control.tls.clone();
    if let Some(t) = &tls {
        owner_only(&t.key_file, "control.tls.key_file")?;
    }
    rt.block_on(async move {
        let app = api::router(Api::new(tx, token));
        match tls {
            None => {
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .map_err(|e| format!("control.listen {listen}: {e}"))?;
                axum::serve(listener, app)
                    .with_graceful_shutdown(stop())
                    .await
                    .map_err(|e| e.to_string())
            }
            Some(t) => {
                // ring, the crypto the rest of the workspace uses. Its provider has no
                // post-quantum key exchange (aws-lc-rs's has, at the cost of a C build): to
                // revisit with IKE's own choices.
                #[allow(deprecated)]
                let provider = rustls::crypto::ring::default_provider();
                let _ = provider.install_default();
                let rustls =
                    axum_server::tls_rustls::RustlsConfig::from_pem_file(&t.cert_file, &t.key_file)
                        .await
                        .map_err(|e| format!("control.tls: {e}"))?;
                let handle = axum_server::Handle::new();
                let h = handle.clone();
                tokio::spawn(async move {
                    stop().await;
                    h.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
                });
                axum_server::bind_rustls(listen, rustls)
                    .handle(handle)
                    .serve(app.into_make_service())
                    .await
                    .map_err(|e| format!("control.listen {listen}: {e}"))
            }
        }
    })?;
    // The API (and with it the last request sender) is gone: the core ends its loop.
    let _ = core_thread.join();
    Ok(())
}

async fn stop() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    eprintln!("espgw-control: stopping");
}
