//! Two IKE managers wired to each other in memory (no sockets, no dataplane): what the
//! appliance does with several VPNs to one peer identity, INITIAL_CONTACT (RFC 7296 section
//! 2.4) and the operator's `request security ike initiate`.

use control::ike_manager::{IkeManager, Initiate};
use std::net::Ipv4Addr;
use std::time::Instant;

#[path = "common/managers.rs"]
mod managers;
use managers::*;

#[test]
fn several_vpns_to_one_identity_say_initial_contact_once() {
    let mut p = Pair::new(3);
    p.run(500);
    let (a, b) = (up(&p.a, p.now), up(&p.b, p.now));
    assert_eq!(a.len(), 3, "initiator: {a:?}");
    // The same three IKE SAs on both sides: none was taken for stale by another's
    // INITIAL_CONTACT (the responder drops every other IKE SA with the identities on one).
    assert_eq!(a, b);
    assert_eq!(
        a.iter().filter(|s| s.2).count(),
        1,
        "exactly the first says INITIAL_CONTACT: {a:?}"
    );
    // Nothing more happens: no SA replaced, none closed.
    p.run(2000);
    assert_eq!(up(&p.a, p.now), a);
    assert_eq!(up(&p.b, p.now), b);
}

#[test]
fn a_restarted_initiator_replaces_every_old_sa_of_its_identity() {
    let mut p = Pair::new(2);
    p.run(500);
    let old = up(&p.b, p.now);
    assert_eq!(old.len(), 2);
    // Initiator restarted: it has forgotten everything; its first IKE SA says INITIAL_CONTACT.
    p.a = IkeManager::default();
    p.a.configure(&config(true, 2), p.now);
    p.run(500);
    let new = up(&p.b, p.now);
    assert_eq!(new.len(), 2, "responder: {new:?}");
    assert!(
        new.iter().all(|n| old.iter().all(|o| o.1 != n.1)),
        "old SAs left: {old:?} -> {new:?}"
    );
    assert_eq!(new, up(&p.a, p.now));
    // Not one left over in any state on the responder (they went without a delete).
    assert_eq!(p.b.view(p.now).len(), 2, "{:?}", p.b.view(p.now));
}

#[test]
fn initiate_refuses_a_vpn_that_is_up_and_not_one_being_deleted() {
    let mut p = Pair::new(1);
    assert_eq!(p.a.initiate("nope", p.now), Initiate::NoSuchVpn);
    p.run(300);
    let before = up(&p.a, p.now);
    assert_eq!(before.len(), 1);
    assert_eq!(p.a.initiate("vpn0", p.now), Initiate::Busy);
    p.run(300);
    assert_eq!(
        up(&p.a, p.now),
        before,
        "a second IKE SA replaced the first"
    );
    // The peer goes silent: our delete stays unanswered (DELETING) for its whole
    // retransmission schedule, which must not hold the VPN down.
    let index = p.a.view(p.now)[0].index;
    assert_eq!(p.a.clear(Some(index), p.now), 1);
    let _ = p.a.take_out();
    assert_eq!(p.a.initiate("vpn0", p.now), Initiate::Started);
    let states: Vec<String> = p.a.view(p.now).into_iter().map(|s| s.state).collect();
    assert!(
        states.contains(&"deleting".to_string()) && states.contains(&"connecting".to_string()),
        "{states:?}"
    );
}

/// A negotiated SA's hard volume lifetime (the VPN's `lifetime_packets`, `lifetime_bytes`)
/// comes with a soft one at 85-90 % of it, so that the dataplane's soft event starts the
/// rekey while the SA still carries traffic; the same for both directions of a child.
#[test]
fn negotiated_sas_get_a_soft_volume_lifetime_before_the_hard_one() {
    let now = Instant::now();
    let edit = |v: &mut serde_json::Value| {
        v["ike"]["vpns"][0]["lifetime_packets"] = 1_000_000.into();
        v["ike"]["vpns"][0]["lifetime_bytes"] = 2_000_000_000u64.into();
    };
    let mut p = Pair {
        a: IkeManager::default(),
        b: IkeManager::default(),
        now,
    };
    p.b.configure(&config_with(false, 1, edit), now);
    p.a.configure(&config_with(true, 1, edit), now);
    p.run(300);
    let mut changes = Vec::new();
    p.a.overlay(&mut changes);
    let lifetimes: Vec<(channel::Lifetime, channel::Lifetime)> = changes
        .iter()
        .filter_map(|c| match c {
            channel::Change::SetInboundSa(s) => Some((s.sa.soft, s.sa.hard)),
            channel::Change::SetOutboundSa(s) => Some((s.sa.soft, s.sa.hard)),
            _ => None,
        })
        .collect();
    assert_eq!(lifetimes.len(), 2, "{changes:?}");
    assert_eq!(lifetimes[0], lifetimes[1]);
    let (soft, hard) = lifetimes[0];
    assert_eq!(hard.packets, Some(1_000_000));
    assert_eq!(hard.bytes, Some(2_000_000_000));
    assert!(
        soft.packets
            .is_some_and(|n| (850_000..=900_000).contains(&n)),
        "{soft:?}"
    );
    assert!(
        soft.bytes
            .is_some_and(|n| (1_700_000_000..=1_800_000_000).contains(&n)),
        "{soft:?}"
    );
}

/// `ike.cookie_threshold: 0`: the responder asks every IKE_SA_INIT for a COOKIE (RFC 7296
/// section 2.6), keeps no state for it, and the initiator's request with the cookie goes on.
#[test]
fn a_responder_asking_for_cookies_still_gets_every_tunnel_up() {
    let now = Instant::now();
    let mut p = Pair {
        a: IkeManager::default(),
        b: IkeManager::default(),
        now,
    };
    p.b.configure(
        &config_with(false, 3, |v| v["ike"]["cookie_threshold"] = 0.into()),
        now,
    );
    p.a.configure(&config(true, 3), now);
    p.run(500);
    assert_eq!(up(&p.a, p.now).len(), 3);
    assert_eq!(up(&p.b, p.now), up(&p.a, p.now));
    assert_eq!(p.b.state(p.now).cookies_sent, 3);
}

/// The responder's gateway is a dial-up one (`remote_address: "%any"`): the peer calls in
/// from whatever address it has, is known by its identity, and the bound tunnel's peer is
/// where its IKE SA is; when it calls again from a new address, the new IKE SA replaces the
/// old and the tunnel follows.
#[test]
fn a_dial_up_peer_calls_in_from_any_address() {
    let now = Instant::now();
    let dial_up = |v: &mut serde_json::Value| {
        v["ike"]["gateways"][0]["remote_address"] = "%any".into();
        v["tunnels"][0]["remote"] = "%any".into();
    };
    let b_cfg = config_with(false, 1, dial_up);
    let mut p = Pair {
        a: IkeManager::default(),
        b: IkeManager::default(),
        now,
    };
    p.b.configure(&b_cfg, now);
    p.a.configure(&config(true, 1), now);
    p.run(300);
    assert_eq!(up(&p.a, p.now).len(), 1);
    assert_eq!(up(&p.b, p.now), up(&p.a, p.now));
    let tunnel_remote = |m: &IkeManager| {
        let mut changes = config::changes(&b_cfg);
        m.overlay(&mut changes);
        changes.iter().find_map(|c| match c {
            channel::Change::SetTunnel(t) => Some((t.remote, t.dynamic)),
            _ => None,
        })
    };
    assert_eq!(tunnel_remote(&p.b), Some((A.into(), true)));
    // `request security ike initiate` has no address to call.
    assert_eq!(p.b.initiate("vpn0", p.now), Initiate::DialUp);
    // The peer comes back from another address (its DHCP lease changed).
    let moved = Ipv4Addr::new(192, 0, 2, 9);
    p.a = IkeManager::default();
    p.a.configure(
        &config_with(true, 1, |v| {
            v["interfaces"][0]["address"] = "192.0.2.9/24".into();
            v["tunnels"][0]["local"] = "192.0.2.9".into();
            v["ike"]["gateways"][0]["local_address"] = "192.0.2.9".into();
        }),
        p.now,
    );
    p.run(300);
    let b = up(&p.b, p.now);
    assert_eq!(b.len(), 1, "{b:?}");
    assert_eq!(b, up(&p.a, p.now));
    assert_eq!(p.b.view(p.now).len(), 1, "the old IKE SA is gone");
    assert_eq!(tunnel_remote(&p.b), Some((moved.into(), true)));
}

/// Two dial-up peers on one address with the same selectors, told apart by their identities
/// (each its own gateway and key): each gets its own VPN, whichever calls first.
#[test]
fn dial_up_peers_with_the_same_selectors_are_told_apart_by_identity() {
    let now = Instant::now();
    let gateways: Vec<serde_json::Value> = (0..2)
        .map(|i| {
            serde_json::json!({
                "name": format!("branch{i}"), "local_address": "192.0.2.2", "remote_address": "%any",
                "local_id": "b.example", "remote_id": format!("branch{i}.example"),
                "psk": format!("key of branch {i}"), "proposals": ["aes128gcm16-prfsha256-x25519"],
                "dpd": {"action": "none"}})
        })
        .collect();
    let vpns: Vec<serde_json::Value> = (0..2)
        .map(|i| {
            serde_json::json!({
                "name": format!("vpn{i}"), "gateway": format!("branch{i}"),
                "bind_interface": format!("st0.{i}"),
                "local_ts": ["10.2.0.0/24"], "remote_ts": ["10.1.0.0/24"]})
        })
        .collect();
    let responder = serde_json::json!({
        "dataplane": {"eal": [], "workers": [1]},
        "interfaces": [{"name": "wan0", "port": 0, "address": "192.0.2.2/24"}],
        "tunnels": [{"name": "st0.0", "local": "192.0.2.2", "remote": "%any"},
                    {"name": "st0.1", "local": "192.0.2.2", "remote": "%any"}],
        "ike": {"gateways": gateways, "vpns": vpns}
    });
    let branch = |i: u8| {
        let addr = format!("192.0.2.{}", 10 + i);
        let v = serde_json::json!({
            "dataplane": {"eal": [], "workers": [1]},
            "interfaces": [{"name": "wan0", "port": 0, "address": format!("{addr}/24")}],
            "tunnels": [{"name": "st0.0", "local": addr, "remote": "192.0.2.2"}],
            "ike": {
                "gateways": [{"name": "hub", "local_address": addr, "remote_address": "192.0.2.2",
                              "local_id": format!("branch{i}.example"), "remote_id": "b.example",
                              "psk": format!("key of branch {i}"),
                              "proposals": ["aes128gcm16-prfsha256-x25519"], "dpd": {"action": "none"}}],
                "vpns": [{"name": "hub", "gateway": "hub", "bind_interface": "st0.0",
                          "local_ts": ["10.1.0.0/24"], "remote_ts": ["10.2.0.0/24"]}],
            }
        });
        config::Config::parse(&v.to_string()).unwrap()
    };
    let mut hub = IkeManager::default();
    hub.configure(&config::Config::parse(&responder.to_string()).unwrap(), now);
    // The second branch calls first: its VPN is vpn1, not the first that would fit.
    for i in [1u8, 0] {
        let mut p = Pair {
            a: IkeManager::default(),
            b: std::mem::take(&mut hub),
            now,
        };
        p.a.configure(&branch(i), now);
        p.run(300);
        assert_eq!(up(&p.a, p.now).len(), 1, "branch {i}");
        hub = p.b;
    }
    let mut vpns: Vec<String> = up(&hub, now).into_iter().map(|s| s.0).collect();
    vpns.sort();
    assert_eq!(vpns, ["vpn0", "vpn1"]);
    let failures: u64 = hub
        .state(now)
        .gateways
        .iter()
        .flat_map(|g| g.failures.values())
        .sum();
    assert_eq!(failures, 0, "no branch was tried with the other's key");
}

/// The test PKI's files (scripts/make-test-pki.sh) copied where a configuration may name
/// them: private keys mode 0600.
fn pki_dir() -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let from = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ike/fixtures/pki");
    let dir = std::env::temp_dir().join(format!("espgw-pki-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(&from).unwrap() {
        let e = e.unwrap();
        let to = dir.join(e.file_name());
        std::fs::copy(e.path(), &to).unwrap();
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    dir
}

/// `config` with certificates: `me` (gw1 .. gw4) trusting the test root, expecting `peer`,
/// known as `id` (by default the certificate's subject).
fn with_certs(initiator: bool, me: &str, id: Option<&str>, peer: &str) -> config::Config {
    let dir = pki_dir();
    let f = |n: &str| dir.join(n).to_str().unwrap().to_string();
    config_with(initiator, 1, |v| {
        let g = &mut v["ike"]["gateways"][0];
        let o = g.as_object_mut().unwrap();
        o.remove("psk");
        o.remove("local_id");
        g["certificate"] = f(&format!("{me}.pem")).into();
        g["private_key"] = f(&format!("{me}.key")).into();
        g["ca_certificates"] = serde_json::json!([f("root.crt")]);
        g["remote_id"] = peer.into();
        if let Some(id) = id {
            g["local_id"] = id.into();
        }
    })
}

/// Two managers authenticating by certificates (gw1's RSA chain, gw2's ECDSA key; IDs a DN
/// and an FQDN), and what a commit refuses: a key that is not the certificate's, an ID the
/// certificate does not carry, a CA file that holds no certificate.
#[test]
fn certificates_authenticate_through_the_manager_and_bad_files_fail_the_commit() {
    let now = Instant::now();
    let (ca, cb) = (
        with_certs(true, "gw1", None, "gw2.example"),
        with_certs(
            false,
            "gw2",
            Some("gw2.example"),
            "C=CH, O=espgw test, CN=gw1.example",
        ),
    );
    assert_eq!(control::ike_manager::validate(&ca), Ok(()));
    assert_eq!(control::ike_manager::validate(&cb), Ok(()));
    let mut p = Pair {
        a: IkeManager::default(),
        b: IkeManager::default(),
        now,
    };
    p.b.configure(&cb, now);
    p.a.configure(&ca, now);
    p.run(500);
    assert_eq!(up(&p.a, p.now).len(), 1, "{:?}", p.a.view(p.now));
    assert_eq!(up(&p.a, p.now), up(&p.b, p.now));

    let dir = pki_dir();
    let f = |n: &str| dir.join(n).to_str().unwrap().to_string();
    let refused = |edit: &dyn Fn(&mut serde_json::Value)| {
        let c = config_with(true, 1, |v| {
            let g = &mut v["ike"]["gateways"][0];
            let o = g.as_object_mut().unwrap();
            o.remove("psk");
            o.remove("local_id");
            g["certificate"] = f("gw1.pem").into();
            g["private_key"] = f("gw1.key").into();
            g["ca_certificates"] = serde_json::json!([f("root.crt")]);
            edit(v);
        });
        control::ike_manager::validate(&c).unwrap_err()
    };
    let (field, why) = refused(&|v| v["ike"]["gateways"][0]["private_key"] = f("gw2.key").into());
    assert_eq!(field, "ike.gateways[0].certificate");
    assert!(why.contains("is not the private key"), "{why}");
    let (field, why) = refused(&|v| v["ike"]["gateways"][0]["local_id"] = "CN=gw1.example".into());
    assert_eq!(field, "ike.gateways[0].local_id");
    assert!(why.contains("not the subject"), "{why}");
    let (field, _) = refused(&|v| {
        v["ike"]["gateways"][0]["ca_certificates"] = serde_json::json!([f("gw1.key")])
    });
    assert_eq!(field, "ike.gateways[0].ca_certificates");
    let (field, _) = refused(&|v| v["ike"]["gateways"][0]["remote_id"] = "C=CH, XX=1".into());
    assert_eq!(field, "ike.gateways[0].remote_id");
    let _ = std::fs::remove_dir_all(&dir);
}

/// One VPN with two children (two tunnels) under one IKE SA: the second is asked for by
/// CREATE_CHILD_SA, and the dataplane gets each tunnel's SAs, with its own selectors.
#[test]
fn a_vpn_with_two_children_keys_both_tunnels_under_one_ike_sa() {
    let now = Instant::now();
    let edit = |initiator: bool| {
        move |v: &mut serde_json::Value| {
            let (mine, theirs) = if initiator { (1, 2) } else { (2, 1) };
            let vpns = v["ike"]["vpns"].as_array_mut().unwrap();
            vpns.pop();
            vpns[0]["children"] = serde_json::json!([{
                "bind_interface": "st0.1",
                "local_ts": [format!("10.{mine}.0.1/32")],
                "remote_ts": [format!("10.{theirs}.0.1/32")],
            }]);
        }
    };
    let mut p = Pair {
        a: IkeManager::default(),
        b: IkeManager::default(),
        now,
    };
    p.b.configure(&config_with(false, 2, edit(false)), now);
    p.a.configure(&config_with(true, 2, edit(true)), now);
    p.run(500);
    let (a, b) = (p.a.view(p.now), p.b.view(p.now));
    assert_eq!((a.len(), b.len()), (1, 1), "one IKE SA: {a:?}");
    assert_eq!(a[0].children.len(), 2, "{a:?}");
    assert_eq!(b[0].children.len(), 2, "{b:?}");
    for m in [&p.a, &p.b] {
        let mut changes = Vec::new();
        m.overlay(&mut changes);
        let mut keyed: Vec<(String, &str)> = changes
            .iter()
            .filter_map(|c| match c {
                channel::Change::SetInboundSa(s) => Some((s.sa.tunnel.to_string(), "in")),
                channel::Change::SetOutboundSa(s) => Some((s.sa.tunnel.to_string(), "out")),
                _ => None,
            })
            .collect();
        keyed.sort();
        assert_eq!(
            keyed,
            [
                ("st0.0".to_string(), "in"),
                ("st0.0".to_string(), "out"),
                ("st0.1".to_string(), "in"),
                ("st0.1".to_string(), "out")
            ]
        );
    }
    let mut ts: Vec<_> = a[0].children.iter().map(|c| c.remote_ts.clone()).collect();
    ts.sort();
    assert_eq!(ts, [["10.2.0.0/32"], ["10.2.0.1/32"]]);
}

/// IPv6 traffic selectors beside IPv4 ones in one child (RFC 7296 section 3.13: both
/// families in one TSi/TSr): narrowed and agreed like IPv4's.
#[test]
fn a_child_carries_ipv4_and_ipv6_selectors() {
    let now = Instant::now();
    let edit = |initiator: bool| {
        move |v: &mut serde_json::Value| {
            let (mine, theirs) = if initiator { (1, 2) } else { (2, 1) };
            v["ike"]["vpns"][0]["local_ts"] =
                serde_json::json!([format!("10.{mine}.0.0/32"), format!("2001:db8:{mine}::/64")]);
            // The responder allows a wider IPv6 net: narrowed to the initiator's /64.
            let far6 = if initiator {
                format!("2001:db8:{theirs}::/64")
            } else {
                format!("2001:db8:{theirs}::/48")
            };
            v["ike"]["vpns"][0]["remote_ts"] =
                serde_json::json!([format!("10.{theirs}.0.0/32"), far6]);
        }
    };
    let mut p = Pair {
        a: IkeManager::default(),
        b: IkeManager::default(),
        now,
    };
    p.b.configure(&config_with(false, 1, edit(false)), now);
    p.a.configure(&config_with(true, 1, edit(true)), now);
    p.run(300);
    let (a, b) = (p.a.view(p.now), p.b.view(p.now));
    assert_eq!(
        a[0].children[0].remote_ts,
        ["10.2.0.0/32", "2001:db8:2::/64"],
        "{a:?}"
    );
    assert_eq!(
        b[0].children[0].remote_ts,
        ["10.1.0.0/32", "2001:db8:1::/64"],
        "{b:?}"
    );
    assert_eq!(
        b[0].children[0].local_ts,
        ["10.2.0.0/32", "2001:db8:2::/64"],
        "{b:?}"
    );
}
