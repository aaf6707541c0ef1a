//! The `control` section: what the control process needs (where its REST port listens, the
//! file its bearer token is read from, where committed configurations are kept). The dataplane
//! ignores it.

use super::{err, ConfigError};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";
pub const DEFAULT_TOKEN_FILE: &str = "/etc/espgw/api-token";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/espgw";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlConfig {
    pub listen: SocketAddr,
    /// Holds the bearer token every request but `/v1/health` must carry (mode 0600).
    pub token_file: PathBuf,
    /// Committed configurations, one file each (mode 0600), and the candidate.
    pub state_dir: PathBuf,
    /// HTTPS (rustls): the certificate chain and its private key (mode 0600), PEM. Required
    /// for a listen address other than loopback.
    pub tls: Option<TlsFiles>,
    /// IKE's datagrams go through the dataplane (punted and injected), or through the
    /// kernel's UDP sockets (a control without a dataplane: development, IKE-only tests).
    pub ike_transport: IkeTransport,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IkeTransport {
    #[default]
    Dataplane,
    Kernel,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl Default for ControlConfig {
    fn default() -> ControlConfig {
        ControlConfig {
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8443))),
            token_file: DEFAULT_TOKEN_FILE.into(),
            state_dir: DEFAULT_STATE_DIR.into(),
            tls: None,
            ike_transport: IkeTransport::Dataplane,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ControlFile {
    pub listen: Option<String>,
    pub token_file: Option<String>,
    pub state_dir: Option<String>,
    pub tls: Option<TlsFile>,
    pub ike_transport: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TlsFile {
    pub cert_file: String,
    pub key_file: String,
}

pub(super) fn control(f: &ControlFile) -> Result<ControlConfig, ConfigError> {
    let d = ControlConfig::default();
    let listen = match &f.listen {
        None => d.listen,
        Some(s) => s
            .parse::<SocketAddr>()
            .or_else(|_| err("control.listen", format!("{s:?} is not an address:port")))?,
    };
    if !listen.ip().is_loopback() && f.tls.is_none() {
        // Keys and tokens would cross the network in clear.
        return err(
            "control.listen",
            format!("{listen} is not a loopback address: it needs control.tls"),
        );
    }
    let path = |field: &str, v: &Option<String>, default: PathBuf| match v {
        None => Ok(default),
        Some(s) if s.starts_with('/') && !s.ends_with('/') => Ok(PathBuf::from(s)),
        Some(s) => err(
            format!("control.{field}"),
            format!("{s:?} is not an absolute path"),
        ),
    };
    let tls = match &f.tls {
        None => None,
        Some(t) => Some(TlsFiles {
            cert_file: path("tls.cert_file", &Some(t.cert_file.clone()), PathBuf::new())?,
            key_file: path("tls.key_file", &Some(t.key_file.clone()), PathBuf::new())?,
        }),
    };
    let ike_transport = match f.ike_transport.as_deref() {
        None | Some("dataplane") => IkeTransport::Dataplane,
        Some("kernel") => IkeTransport::Kernel,
        Some(x) => {
            return err(
                "control.ike_transport",
                format!("{x:?} is not \"dataplane\" or \"kernel\""),
            )
        }
    };
    Ok(ControlConfig {
        listen,
        token_file: path("token_file", &f.token_file, d.token_file)?,
        state_dir: path("state_dir", &f.state_dir, d.state_dir)?,
        tls,
        ike_transport,
    })
}
