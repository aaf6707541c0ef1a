//! The configuration file as written: what serde reads, before any check.

use super::CryptoChoice;
use channel::Direction;
use channel::{Algorithm, DfPolicy};
use serde::{Deserialize, Deserializer};
use zeroize::{Zeroize, Zeroizing};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct File {
    pub dataplane: DataplaneFile,
    #[serde(default)]
    pub interfaces: Vec<InterfaceFile>,
    #[serde(default)]
    pub neighbors: Vec<NeighborFile>,
    #[serde(default)]
    pub tunnels: Vec<TunnelFile>,
    #[serde(default)]
    pub routes: Vec<RouteFile>,
    #[serde(default)]
    pub manual_sas: Vec<ManualSaFile>,
    pub control: Option<super::control::ControlFile>,
    #[serde(default)]
    pub ike: IkeFile,
    #[serde(default)]
    pub flow: FlowFile,
    #[serde(default)]
    pub policies: Vec<PolicyFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PolicyFile {
    pub name: String,
    pub source: Option<Vec<String>>,
    pub destination: Option<Vec<String>>,
    pub protocol: Option<String>,
    pub source_ports: Option<String>,
    pub destination_ports: Option<String>,
    pub then: PolicyThenFile,
}

#[derive(Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub(super) enum PolicyThenFile {
    Word(String),
    Vpn { ipsec_vpn: String },
}

/// Junos `security flow`: how traffic through the tunnels is treated.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct FlowFile {
    pub tcp_mss_ipsec_vpn: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DataplaneFile {
    #[serde(default)]
    pub eal: Vec<String>,
    pub workers: Vec<u32>,
    pub anchor_groups: Option<Vec<Vec<u32>>>,
    pub handoff_ring_size: Option<u32>,
    pub mbufs: Option<u32>,
    pub rx_descriptors: Option<u16>,
    pub tx_descriptors: Option<u16>,
    #[serde(default)]
    pub poll_sleep_us: u32,
    #[serde(default)]
    pub crypto: CryptoChoice,
    pub max_tunnels: Option<u32>,
    pub max_sas: Option<u32>,
    pub route_tables: Option<u32>,
    pub max_routes6: Option<u32>,
    pub channel: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct InterfaceFile {
    pub name: String,
    pub port: u16,
    pub address: String,
    pub address6: Option<String>,
    pub mac: Option<String>,
    pub mtu: Option<u16>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NeighborFile {
    pub address: String,
    pub mac: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TunnelFile {
    pub name: String,
    pub local: String,
    pub remote: String,
    pub udp_encap: Option<UdpEncapFile>,
    #[serde(default)]
    pub df: DfPolicy,
    pub dscp: Option<DscpFile>,
    pub ttl: Option<u8>,
    pub mtu: Option<u64>,
    pub traffic_selectors: Option<SelectorsFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UdpEncapFile {
    #[serde(default = "natt_port")]
    pub local_port: u16,
    #[serde(default = "natt_port")]
    pub remote_port: u16,
}

fn natt_port() -> u16 {
    channel::NATT_PORT
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum DscpFile {
    Value(u8),
    Word(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SelectorsFile {
    #[serde(default)]
    pub local: Vec<String>,
    #[serde(default)]
    pub remote: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RouteFile {
    pub prefix: String,
    pub via: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ManualSaFile {
    pub tunnel: String,
    pub direction: Direction,
    pub spi: SpiFile,
    pub algorithm: Algorithm,
    pub key: SecretHex,
    #[serde(default)]
    pub esn: bool,
    pub replay_window: Option<u32>,
    /// Tooling hook (tests of sequence exhaustion and ESN wrap): the first sequence number
    /// the SA sends, or for inbound the highest one already seen.
    pub initial_seq: Option<u64>,
    pub soft_limit: Option<LifetimeFile>,
    pub hard_limit: Option<LifetimeFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LifetimeFile {
    pub packets: Option<u64>,
    pub bytes: Option<u64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum SpiFile {
    Number(u64),
    Text(String),
}

/// Hex key material that is wiped from memory as soon as it is decoded.
pub(super) struct SecretHex(pub Result<Zeroizing<Vec<u8>>, &'static str>);

impl<'de> Deserialize<'de> for SecretHex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut s = String::deserialize(d)?;
        let t = s.trim();
        let t = t.strip_prefix("0x").unwrap_or(t);
        let decoded = hex::decode(t)
            .map(Zeroizing::new)
            .map_err(|_| "not a hex string");
        s.zeroize();
        Ok(SecretHex(decoded))
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct IkeFile {
    #[serde(default)]
    pub gateways: Vec<IkeGatewayFile>,
    #[serde(default)]
    pub vpns: Vec<IpsecVpnFile>,
    pub cookie_threshold: Option<u64>,
    pub half_open_limit: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IkeGatewayFile {
    pub name: String,
    pub local_address: String,
    pub remote_address: String,
    pub local_id: Option<String>,
    pub remote_id: Option<String>,
    pub psk: Option<SecretText>,
    pub psk_file: Option<String>,
    pub certificate: Option<String>,
    pub private_key: Option<String>,
    pub ca_certificates: Option<Vec<String>>,
    pub proposals: Option<Vec<String>>,
    pub lifetime_s: Option<u64>,
    pub dpd: Option<DpdFile>,
    pub nat_traversal: Option<String>,
    pub port: Option<u64>,
    pub fragmentation: Option<bool>,
    pub fragment_size: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DpdFile {
    pub interval_s: Option<u64>,
    pub threshold: Option<u64>,
    pub action: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IpsecVpnFile {
    pub name: String,
    pub gateway: String,
    pub bind_interface: Option<String>,
    pub esp_proposals: Option<Vec<String>>,
    pub local_ts: Option<Vec<String>>,
    pub remote_ts: Option<Vec<String>>,
    pub establish: Option<String>,
    pub lifetime_s: Option<u64>,
    pub lifetime_bytes: Option<u64>,
    pub lifetime_packets: Option<u64>,
    pub rekey_margin_s: Option<u64>,
    pub children: Option<Vec<VpnChildFile>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct VpnChildFile {
    pub bind_interface: String,
    pub local_ts: Option<Vec<String>>,
    pub remote_ts: Option<Vec<String>>,
}

/// A secret string (a pre-shared key) that is wiped from memory when dropped.
pub(super) struct SecretText(pub Zeroizing<String>);

impl<'de> Deserialize<'de> for SecretText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| SecretText(Zeroizing::new(s)))
    }
}
