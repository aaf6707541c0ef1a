//! The `ike` section: IKEv2 gateways (peers authenticated by a pre-shared key or by X.509
//! certificates; the control reads and checks the certificates) and the IPsec
//! VPNs negotiated with them, each bound to a tunnel whose SAs IKE then keys. The control
//! process runs IKE; the section makes no dataplane changes of its own.

mod vpns;
use vpns::vpns;

use super::file::{DpdFile, IkeFile, IkeGatewayFile, IpsecVpnFile, VpnChildFile};
use super::policies::{Policy, PolicyThen, ANY_PORTS};
use super::{err, parse_endpoint, parse_name, parse_prefix, parse_prefix6, ConfigError};
use super::{is_ours, peer_address, unspecified_like};
use super::{InterfaceConfig, ManualSa, Tunnel};
use channel::{Name, MAX_SELECTORS};
use ipnet::{IpNet, Ipv4Net};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::PermissionsExt;
use zeroize::Zeroizing;

pub const DEFAULT_IKE_PROPOSAL: &str = "aes256gcm16-prfsha256-x25519";
pub const DEFAULT_ESP_PROPOSAL: &str = "aes256gcm16";
pub const DEFAULT_IKE_PORT: u16 = 500;
pub const DEFAULT_IKE_LIFETIME_S: u32 = 14400;
pub const MAX_IKE_LIFETIME_S: u32 = 86400 * 7;
pub const DEFAULT_CHILD_LIFETIME_S: u32 = 3600;
pub const MAX_CHILD_LIFETIME_S: u32 = 86400;
pub const MIN_LIFETIME_S: u32 = 60;
pub const DEFAULT_DPD_INTERVAL_S: u32 = 30;
pub const MAX_DPD_INTERVAL_S: u32 = 3600;
pub const DEFAULT_DPD_THRESHOLD: u32 = 5;
pub const MAX_DPD_THRESHOLD: u32 = 100;
/// IKE fragments as IP datagrams: strongSwan's default size, and the bounds (RFC 7383 section
/// 2.5.1 recommends 576 for IPv4; less only to exercise fragmentation in tests).
pub const DEFAULT_FRAGMENT_SIZE: u16 = 1280;
pub const FRAGMENT_SIZES: std::ops::RangeInclusive<u16> = 256..=9000;
/// The longest FQDN or user FQDN identity.
pub const MAX_ID_LEN: usize = 255;
/// Child SAs of one VPN (one IKE SA), its own binding included.
pub const MAX_CHILDREN: usize = 16;

/// Half-open IKE SAs (answered IKE_SA_INIT, no IKE_AUTH yet) above which the responder asks
/// for a COOKIE (RFC 7296 section 2.6), and beyond which it drops IKE_SA_INIT requests.
pub const DEFAULT_COOKIE_THRESHOLD: u32 = 1000;
pub const DEFAULT_HALF_OPEN_LIMIT: u32 = 10_000;
pub const MAX_HALF_OPEN_LIMIT: u32 = 1_000_000;

/// The `ike` section, validated (empty when the file has none).
#[derive(Debug, Clone)]
pub struct IkeConfig {
    pub gateways: Vec<IkeGateway>,
    pub vpns: Vec<IpsecVpn>,
    /// COOKIEs asked for from this many half-open IKE SAs on (0: always).
    pub cookie_threshold: u32,
    /// Half-open IKE SAs kept at most.
    pub half_open_limit: u32,
}

impl Default for IkeConfig {
    fn default() -> IkeConfig {
        IkeConfig {
            gateways: Vec::new(),
            vpns: Vec::new(),
            cookie_threshold: DEFAULT_COOKIE_THRESHOLD,
            half_open_limit: DEFAULT_HALF_OPEN_LIMIT,
        }
    }
}

/// An IKE peer. `Debug` never shows the pre-shared key.
#[derive(Clone)]
pub struct IkeGateway {
    pub name: Name,
    /// One of our interface addresses (IPv4) or global `address6`es (IPv6).
    pub local: IpAddr,
    /// Of `local`'s family. Unspecified: a dial-up peer (`%any`), from any address, known by
    /// `remote_id`.
    pub remote: IpAddr,
    /// The peer's IKE port.
    pub port: u16,
    pub local_id: IkeId,
    pub remote_id: IkeId,
    pub auth: IkeAuth,
    /// IKE SA proposals as written (`aes256gcm16-prfsha384-ecp384`); the control parses them.
    pub proposals: Vec<String>,
    pub lifetime_s: u32,
    pub dpd: Dpd,
    /// `nat_traversal: "force"`: ESP always in UDP, NAT or not.
    pub force_encap: bool,
    /// IKE fragmentation (RFC 7383) offered and accepted: our fragments' largest IP
    /// datagram; `None`: `fragmentation: false`.
    pub fragment_size: Option<u16>,
}

impl fmt::Debug for IkeGateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IkeGateway")
            .field("name", &self.name)
            .field("local", &self.local)
            .field("remote", &self.remote)
            .field("port", &self.port)
            .field("local_id", &self.local_id)
            .field("remote_id", &self.remote_id)
            .field("auth", &self.auth)
            .field("proposals", &self.proposals)
            .field("lifetime_s", &self.lifetime_s)
            .field("dpd", &self.dpd)
            .field("force_encap", &self.force_encap)
            .field("fragment_size", &self.fragment_size)
            .finish()
    }
}

/// How a gateway and its peer authenticate each other (both the same way).
#[derive(Clone)]
pub enum IkeAuth {
    /// Wiped from memory when dropped.
    Psk(Zeroizing<Vec<u8>>),
    /// X.509: our certificate (PEM, intermediates after it), its private key (PEM, mode
    /// 0600) and the CAs (PEM files) a peer's certificate must chain to. Paths, read and
    /// checked by the control at commit.
    Certificate {
        certificate: String,
        private_key: String,
        ca_certificates: Vec<String>,
    },
}

impl fmt::Debug for IkeAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IkeAuth::Psk(_) => f.write_str("Psk(<redacted>)"),
            IkeAuth::Certificate {
                certificate,
                private_key,
                ca_certificates,
            } => f
                .debug_struct("Certificate")
                .field("certificate", certificate)
                .field("private_key", private_key)
                .field("ca_certificates", ca_certificates)
                .finish(),
        }
    }
}

/// An IKE identity (RFC 7296 section 3.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IkeId {
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
    Fqdn(String),
    UserFqdn(String),
    /// A distinguished name as written (`C=CH, O=espgw, CN=gw1`); the control parses it.
    Dn(String),
    /// Our certificate's subject: the local identity by default with certificates.
    CertificateSubject,
}

impl IkeId {
    /// An IPv4 or IPv6 literal is an address identity, a string with `=` a `Dn`, one with
    /// `@` a `UserFqdn`, anything else an `Fqdn`: 1..=255 bytes without whitespace (a DN may
    /// hold spaces).
    pub fn parse(s: &str) -> Result<IkeId, String> {
        if let Ok(a) = s.parse::<IpAddr>() {
            return Ok(IkeId::from(a));
        }
        if s.is_empty() {
            return Err("an identity cannot be empty".into());
        }
        if s.len() > MAX_ID_LEN {
            return Err(format!("longer than {MAX_ID_LEN} bytes"));
        }
        if s.contains('=') {
            if s.chars().any(char::is_control) {
                return Err(format!("{s:?} holds control characters"));
            }
            return Ok(IkeId::Dn(s.trim().to_string()));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("{s:?} holds whitespace"));
        }
        Ok(if s.contains('@') {
            IkeId::UserFqdn(s.to_string())
        } else {
            IkeId::Fqdn(s.to_string())
        })
    }
}

impl From<IpAddr> for IkeId {
    fn from(a: IpAddr) -> IkeId {
        match a {
            IpAddr::V4(a) => IkeId::Ipv4(a),
            IpAddr::V6(a) => IkeId::Ipv6(a),
        }
    }
}

impl fmt::Display for IkeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IkeId::Ipv4(a) => a.fmt(f),
            IkeId::Ipv6(a) => a.fmt(f),
            IkeId::Fqdn(s) | IkeId::UserFqdn(s) | IkeId::Dn(s) => f.write_str(s),
            IkeId::CertificateSubject => f.write_str("(the certificate's subject)"),
        }
    }
}

/// Dead peer detection (RFC 7296 section 2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dpd {
    /// Seconds without a message from the peer before a liveness check.
    pub interval_s: u32,
    /// Liveness checks (one each interval) unanswered before the peer is dead.
    pub threshold: u32,
    pub action: DpdAction,
}

impl Default for Dpd {
    fn default() -> Dpd {
        Dpd {
            interval_s: DEFAULT_DPD_INTERVAL_S,
            threshold: DEFAULT_DPD_THRESHOLD,
            action: DpdAction::Clear,
        }
    }
}

/// What to do when the peer is found dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DpdAction {
    /// Delete the SAs.
    #[default]
    Clear,
    /// Delete the SAs and negotiate them again.
    Restart,
    /// Nothing: the SAs stay until they expire.
    None,
}

/// An IPsec VPN: the child SAs negotiated with a gateway for one tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpsecVpn {
    pub name: Name,
    /// Index into `IkeConfig::gateways`.
    pub gateway: usize,
    /// Its child SAs, each keying its own tunnel: the first (`bind_interface`, `local_ts`,
    /// `remote_ts`) negotiated in IKE_AUTH, the others (`children`) by CREATE_CHILD_SA under
    /// the same IKE SA.
    pub children: Vec<VpnChild>,
    /// ESP proposals as written (`aes256gcm16`); the control parses them.
    pub esp_proposals: Vec<String>,
    pub establish: Establish,
    /// The child SA's hard lifetime by time.
    pub lifetime_s: u32,
    pub lifetime_bytes: Option<u64>,
    pub lifetime_packets: Option<u64>,
    /// The child SA is rekeyed this long before `lifetime_s`; below `lifetime_s`.
    pub rekey_margin_s: u32,
}

/// One child SA of a VPN: the tunnel it keys and its traffic selectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpnChild {
    pub tunnel: Name,
    /// IPv4 and IPv6 prefixes (IKE negotiates both families in one child).
    pub local_ts: Vec<IpNet>,
    pub remote_ts: Vec<IpNet>,
    /// A policy-based VPN's child also selects by protocol (0: any) and ports (ours, the
    /// peer's), its policy's.
    pub protocol: u8,
    pub local_ports: (u16, u16),
    pub remote_ports: (u16, u16),
}

/// When the VPN's SAs are negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Establish {
    /// At start, and again whenever they go.
    #[default]
    Immediately,
    /// When a packet is routed into the tunnel.
    OnTraffic,
    /// Never by us: the peer initiates.
    ResponderOnly,
}

/// The `ike` section, and the tunnels its policy-based VPNs make (one per policy into one).
pub(super) fn ike(
    f: &IkeFile,
    interfaces: &[InterfaceConfig],
    tunnels: &[Tunnel],
    manual_sas: &[ManualSa],
    policies: &[Policy],
) -> Result<(IkeConfig, Vec<Tunnel>), ConfigError> {
    let mut gateways: Vec<IkeGateway> = Vec::with_capacity(f.gateways.len());
    let mut names: HashSet<Name> = HashSet::with_capacity(f.gateways.len());
    for (i, g) in f.gateways.iter().enumerate() {
        let gw = gateway(i, g, interfaces)?;
        if !names.insert(gw.name) {
            return err(
                format!("ike.gateways[{i}].name"),
                format!("{:?} is defined twice", g.name),
            );
        }
        gateways.push(gw);
    }
    // A dial-up peer is known only after IKE_SA_INIT: the dial-up gateways on one address
    // answer it with one set of IKE proposals.
    for (i, g) in gateways.iter().enumerate() {
        let first = gateways
            .iter()
            .find(|o| o.remote.is_unspecified() && o.local == g.local);
        if let Some(o) = first.filter(|o| g.remote.is_unspecified() && o.proposals != g.proposals) {
            return err(
                format!("ike.gateways[{i}].proposals"),
                format!(
                    "dial-up gateways on {} share their IKE proposals (as gateway {}'s): the peer is known only after IKE_SA_INIT",
                    g.local, o.name
                ),
            );
        }
    }
    let (vpns, made) = vpns(&f.vpns, &gateways, tunnels, manual_sas, policies)?;
    let half_open_limit = match f.half_open_limit {
        None => DEFAULT_HALF_OPEN_LIMIT,
        Some(n) => match u32::try_from(n) {
            Ok(n) if (1..=MAX_HALF_OPEN_LIMIT).contains(&n) => n,
            _ => {
                return err(
                    "ike.half_open_limit",
                    format!("{n} is outside 1..={MAX_HALF_OPEN_LIMIT}"),
                )
            }
        },
    };
    let cookie_threshold = match f.cookie_threshold {
        None => DEFAULT_COOKIE_THRESHOLD.min(half_open_limit),
        Some(n) => match u32::try_from(n) {
            Ok(n) if n <= half_open_limit => n,
            _ => {
                return err(
                    "ike.cookie_threshold",
                    format!("{n} is above half_open_limit ({half_open_limit})"),
                )
            }
        },
    };
    Ok((
        IkeConfig {
            gateways,
            vpns,
            cookie_threshold,
            half_open_limit,
        },
        made,
    ))
}

fn gateway(
    i: usize,
    g: &IkeGatewayFile,
    interfaces: &[InterfaceConfig],
) -> Result<IkeGateway, ConfigError> {
    let field = |x: &str| format!("ike.gateways[{i}].{x}");
    let name = parse_name(&field("name"), &g.name)?;
    let local = parse_endpoint(&field("local_address"), &g.local_address)?;
    if !is_ours(interfaces, local) {
        return err(
            field("local_address"),
            format!("{local} is not the address (or address6) of any interface"),
        );
    }
    // "%any": a dial-up peer, from any address; known by its identity.
    let remote = if g.remote_address.trim() == "%any" {
        if g.remote_id.is_none() {
            return err(
                field("remote_id"),
                "a dial-up peer (remote_address %any) is known by its identity: give remote_id",
            );
        }
        unspecified_like(local)
    } else {
        let remote = parse_endpoint(&field("remote_address"), &g.remote_address)?;
        peer_address(&field("remote_address"), remote, local)?
    };
    let port = match g.port {
        None => DEFAULT_IKE_PORT,
        Some(p) => match u16::try_from(p) {
            Ok(p) if p != 0 => p,
            _ => return err(field("port"), format!("{p} is outside 1..65535")),
        },
    };
    let auth = auth(&field, g)?;
    let id = |f: &str, v: &Option<String>, default: IkeId| match v {
        None => Ok(default),
        Some(s) => IkeId::parse(s).or_else(|e| err(field(f), e)),
    };
    let local_default = match auth {
        IkeAuth::Psk(_) => IkeId::from(local),
        IkeAuth::Certificate { .. } => IkeId::CertificateSubject,
    };
    let local_id = id("local_id", &g.local_id, local_default)?;
    let remote_id = id("remote_id", &g.remote_id, IkeId::from(remote))?;
    if matches!(auth, IkeAuth::Psk(_)) && matches!(local_id, IkeId::Dn(_)) {
        return err(
            field("local_id"),
            "a distinguished name is a certificate's: give certificate and private_key",
        );
    }
    let proposals = strings(
        &field("proposals"),
        g.proposals.as_deref(),
        DEFAULT_IKE_PROPOSAL,
    )?;
    let lifetime_s = seconds(
        &field("lifetime_s"),
        g.lifetime_s,
        DEFAULT_IKE_LIFETIME_S,
        MIN_LIFETIME_S..=MAX_IKE_LIFETIME_S,
    )?;
    let dpd = match &g.dpd {
        None => Dpd::default(),
        Some(d) => dpd(&field("dpd"), d)?,
    };
    if remote.is_unspecified() && dpd.action == DpdAction::Restart {
        return err(
            field("dpd.action"),
            "a dial-up peer cannot be called back: \"clear\" or \"none\"",
        );
    }
    let force_encap = match g.nat_traversal.as_deref() {
        None | Some("auto") => false,
        Some("force") => true,
        Some(x) => {
            return err(
                field("nat_traversal"),
                format!("{x:?} is not \"auto\" or \"force\""),
            )
        }
    };
    let size = match g.fragment_size {
        None => DEFAULT_FRAGMENT_SIZE,
        Some(n) => match u16::try_from(n) {
            Ok(n) if FRAGMENT_SIZES.contains(&n) => n,
            _ => {
                return err(
                    field("fragment_size"),
                    format!(
                        "{n} is outside {}..={} bytes",
                        FRAGMENT_SIZES.start(),
                        FRAGMENT_SIZES.end()
                    ),
                )
            }
        },
    };
    let fragment_size = g.fragmentation.unwrap_or(true).then_some(size);
    Ok(IkeGateway {
        name,
        local,
        remote,
        port,
        local_id,
        remote_id,
        auth,
        proposals,
        lifetime_s,
        dpd,
        force_encap,
        fragment_size,
    })
}

/// A pre-shared key (`psk` or `psk_file`), or certificates (`certificate`, `private_key`,
/// `ca_certificates`): paths checked here (absolute; the key a regular file only its owner
/// can read), contents by the control.
fn auth(field: &dyn Fn(&str) -> String, g: &IkeGatewayFile) -> Result<IkeAuth, ConfigError> {
    let certs = g.certificate.is_some() || g.private_key.is_some() || g.ca_certificates.is_some();
    match (&g.psk, &g.psk_file, certs) {
        (Some(_), Some(_), _) => err(field("psk"), "give psk or psk_file, not both"),
        (Some(_), _, true) | (_, Some(_), true) => err(
            field("certificate"),
            "give a pre-shared key or certificates, not both",
        ),
        (None, None, false) => err(
            field("psk"),
            "give psk, psk_file, or certificate, private_key and ca_certificates",
        ),
        (Some(p), None, false) if p.0.is_empty() => err(field("psk"), "empty"),
        (Some(p), None, false) => Ok(IkeAuth::Psk(Zeroizing::new(p.0.as_bytes().to_vec()))),
        (None, Some(path), false) => Ok(IkeAuth::Psk(read_psk_file(&field("psk_file"), path)?)),
        (None, None, true) => {
            let path = |name: &str, v: &Option<String>| match v {
                None => err(field(name), "required with certificates"),
                Some(p) if !p.starts_with('/') => {
                    err(field(name), format!("{p:?} is not an absolute path"))
                }
                Some(p) => Ok(p.clone()),
            };
            let certificate = path("certificate", &g.certificate)?;
            let private_key = path("private_key", &g.private_key)?;
            let key_field = field("private_key");
            let meta = std::fs::metadata(&private_key)
                .or_else(|e| err(&key_field, format!("{private_key}: {e}")))?;
            if !meta.is_file() {
                return err(key_field, format!("{private_key} is not a regular file"));
            }
            owner_only(&key_field, &private_key, &meta)?;
            let cas = g.ca_certificates.as_deref().unwrap_or_default();
            if cas.is_empty() {
                return err(
                    field("ca_certificates"),
                    "give the CA certificates a peer's certificate must chain to",
                );
            }
            let ca_certificates = cas
                .iter()
                .enumerate()
                .map(|(j, p)| path(&format!("ca_certificates[{j}]"), &Some(p.clone())))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(IkeAuth::Certificate {
                certificate,
                private_key,
                ca_certificates,
            })
        }
    }
}

fn dpd(field: &str, d: &DpdFile) -> Result<Dpd, ConfigError> {
    let interval_s = seconds(
        &format!("{field}.interval_s"),
        d.interval_s,
        DEFAULT_DPD_INTERVAL_S,
        1..=MAX_DPD_INTERVAL_S,
    )?;
    let action = match d.action.as_deref() {
        None | Some("clear") => DpdAction::Clear,
        Some("restart") => DpdAction::Restart,
        Some("none") => DpdAction::None,
        Some(x) => {
            return err(
                format!("{field}.action"),
                format!("{x:?} is not \"clear\", \"restart\" or \"none\""),
            )
        }
    };
    let threshold = seconds(
        &format!("{field}.threshold"),
        d.threshold,
        DEFAULT_DPD_THRESHOLD,
        1..=MAX_DPD_THRESHOLD,
    )?;
    Ok(Dpd {
        interval_s,
        threshold,
        action,
    })
}

/// A non-empty list of non-empty strings, or `[default]` when absent.
fn strings(field: &str, v: Option<&[String]>, default: &str) -> Result<Vec<String>, ConfigError> {
    let Some(v) = v else {
        return Ok(vec![default.to_string()]);
    };
    if v.is_empty() {
        return err(field, "give at least one, or leave the field out");
    }
    for (j, s) in v.iter().enumerate() {
        if s.trim().is_empty() {
            return err(format!("{field}[{j}]"), "empty");
        }
    }
    Ok(v.to_vec())
}

/// A number of seconds in `range`, or `default` when absent.
fn seconds(
    field: &str,
    v: Option<u64>,
    default: u32,
    range: std::ops::RangeInclusive<u32>,
) -> Result<u32, ConfigError> {
    let Some(v) = v else {
        return Ok(default);
    };
    match u32::try_from(v) {
        Ok(s) if range.contains(&s) => Ok(s),
        _ => err(
            field,
            format!("{v} is outside {}..{}", range.start(), range.end()),
        ),
    }
}

/// The pre-shared key in `path`: a file only its owner can read (as the control insists for
/// its token and TLS key), a trailing newline trimmed.
fn read_psk_file(field: &str, path: &str) -> Result<Zeroizing<Vec<u8>>, ConfigError> {
    if !path.starts_with('/') {
        return err(field, format!("{path:?} is not an absolute path"));
    }
    let mut file = std::fs::File::open(path).or_else(|e| err(field, format!("{path}: {e}")))?;
    // The mode of the file opened, not of whatever the path names a moment later.
    let meta = file
        .metadata()
        .or_else(|e| err(field, format!("{path}: {e}")))?;
    if !meta.is_file() {
        return err(field, format!("{path} is not a regular file"));
    }
    owner_only(field, path, &meta)?;
    let len = usize::try_from(meta.len()).unwrap_or(0);
    // Room for the whole file up front: a reallocation would leave a copy of the key behind.
    let mut psk = Zeroizing::new(Vec::with_capacity(len.saturating_add(1)));
    file.read_to_end(&mut psk)
        .or_else(|e| err(field, format!("{path}: {e}")))?;
    while matches!(psk.last(), Some(b'\n' | b'\r')) {
        psk.pop();
    }
    if psk.is_empty() {
        return err(field, format!("{path} is empty"));
    }
    Ok(psk)
}

/// A secret file must be readable by its owner only.
fn owner_only(field: &str, path: &str, meta: &std::fs::Metadata) -> Result<(), ConfigError> {
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return err(
            field,
            format!(
                "{path}: mode {:o}; it must be readable by its owner only (chmod 600)",
                mode & 0o777
            ),
        );
    }
    Ok(())
}
