//! IKE_AUTH with certificates between two cores, on the test PKI
//! (`scripts/make-test-pki.sh`, copied to `fixtures/pki`): RSA and ECDSA keys in each format,
//! RFC 7427 and the older methods, chains through an intermediate, and the refusals (another
//! CA, a missing intermediate, an identity the certificate does not name).

use super::auth::{Auth, AUTH_PSK};
use super::identity::{Dn, Identity};
use super::ike_auth::{complete, request, respond, AuthConfig, AuthError, Child};
use super::init::{initiate, respond as respond_init, InitDone};
use super::pki::{load_credential, load_trust, X509_SIGNATURE};
use super::proposal::{parse_esp, parse_ike, ProposalSpec};
use super::signature::{AUTH_DIGITAL_SIGNATURE, AUTH_ECDSA_256, AUTH_ECDSA_384, AUTH_RSA};
use super::sk;
use super::wire::{Id, Message, Payload, TrafficSelector, TS_IPV4_ADDR_RANGE};
use ring::rand::SystemRandom;
use std::net::Ipv4Addr;
use std::sync::Arc;

fn fixture(name: &str) -> String {
    format!("{}/src/ike/fixtures/pki/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Certificate authentication as gateway `gw` (gw1 .. gw4, rogue), trusting `cas`.
fn cert_auth(gw: &str, cas: &[&str]) -> Auth {
    let ours = load_credential(
        &fixture(&format!("{gw}.pem")),
        &fixture(&format!("{gw}.key")),
    )
    .unwrap_or_else(|e| panic!("{gw}: {e}"));
    let cas: Vec<String> = cas.iter().map(|c| fixture(c)).collect();
    Auth::Certificate {
        ours: Arc::new(ours),
        trust: Arc::new(load_trust(&cas).unwrap()),
    }
}

fn ts(net: u8) -> Vec<TrafficSelector> {
    vec![TrafficSelector {
        kind: TS_IPV4_ADDR_RANGE,
        protocol: 0,
        start_port: 0,
        end_port: 65535,
        start: vec![10, net, 0, 0],
        end: vec![10, net, 255, 255],
    }]
}

fn fqdn(s: &str) -> Identity {
    Identity::Fqdn(s.into())
}

fn dn(s: &str) -> Identity {
    Identity::Dn(Dn::parse(s).unwrap())
}

fn fqdn_id(s: &str) -> Id {
    fqdn(s).to_wire().unwrap()
}

/// A side: its authentication, the ID it sends, the identity it expects.
struct Side {
    auth: Auth,
    local_id: Id,
    remote_id: Identity,
}

impl Side {
    fn cfg<'a>(&'a self, esp: &'a [ProposalSpec], net: u8, peer: u8) -> AuthConfig<'a> {
        AuthConfig {
            auth: &self.auth,
            local_id: self.local_id.clone(),
            remote_id: self.remote_id.clone(),
            esp,
            local_ts: ts(net),
            remote_ts: ts(peer),
            initial_contact: false,
        }
    }
}

/// The outcome of IKE_AUTH: the opened request and response, and each side's result.
struct Run {
    req: Option<Message>,
    resp: Option<Message>,
    responder: Result<Child, AuthError>,
    initiator: Result<Child, AuthError>,
}

/// IKE_SA_INIT then IKE_AUTH between `i` and `r`; `rfc7427: false` as if neither had sent
/// SIGNATURE_HASH_ALGORITHMS.
fn run(i: &Side, r: &Side, rfc7427: bool) -> Run {
    let rng = SystemRandom::new();
    let ike = [parse_ike("aes256gcm16-prfsha256-x25519").unwrap()];
    let esp = [parse_esp("aes256gcm16").unwrap()];
    let start = initiate(&ike, Default::default(), &rng).unwrap();
    let mut r_done = respond_init(&ike, &start.request, None, &Default::default(), &rng).unwrap();
    let mut i_done = start.complete(&ike, &r_done.response).unwrap();
    assert_eq!(r_done.peer_hashes, [2, 3, 4], "SHA2-256, 384, 512 offered");
    if !rfc7427 {
        r_done.peer_hashes.clear();
        i_done.peer_hashes.clear();
    }
    let open = |d: &InitDone, b: &[u8], from_i| sk::open(b, &d.keys.sk(from_i).unwrap()).unwrap();
    let (icfg, rcfg) = (i.cfg(&esp, 1, 2), r.cfg(&esp, 2, 1));
    let req = match request(&i_done, &icfg, 0x1111) {
        Ok(b) => open(&r_done, &b, true),
        Err(e) => {
            return Run {
                req: None,
                resp: None,
                responder: Err(e.clone()),
                initiator: Err(e),
            }
        }
    };
    let answer = match respond(&r_done, &rcfg, &req, 0x2222) {
        Ok(a) => a,
        Err(e) => {
            return Run {
                req: Some(req),
                resp: None,
                responder: Err(e.clone()),
                initiator: Err(e),
            }
        }
    };
    let resp = open(&i_done, &answer.response, false);
    let initiator = complete(&i_done, &icfg, &resp, 0x1111)
        .map(|c| c.unwrap_or_else(|n| panic!("child refused: {n}")));
    Run {
        req: Some(req),
        resp: Some(resp),
        responder: answer
            .child
            .map_err(|n| AuthError::Rejected(format!("child {n}"))),
        initiator,
    }
}

fn auth_method(m: &Message) -> u8 {
    m.payloads
        .iter()
        .find_map(|p| match p {
            Payload::Auth { method, .. } => Some(*method),
            _ => None,
        })
        .unwrap()
}

fn certs(m: &Message) -> Vec<&[u8]> {
    m.payloads
        .iter()
        .filter_map(|p| match p {
            Payload::Cert {
                encoding: X509_SIGNATURE,
                data,
            } => Some(&data[..]),
            _ => None,
        })
        .collect()
}

/// gw1: RSA, chain through the intermediate, its subject as its ID.
fn gw1(remote: Identity) -> Side {
    let auth = cert_auth("gw1", &["root.crt"]);
    let local_id = auth.certificate_subject().unwrap().clone();
    Side {
        auth,
        local_id,
        remote_id: remote,
    }
}

/// gw2: ECDSA P-256 (a SEC1 key), issued by the root, known by its FQDN.
fn gw2(remote: Identity) -> Side {
    Side {
        auth: cert_auth("gw2", &["root.crt"]),
        local_id: fqdn_id("gw2.example"),
        remote_id: remote,
    }
}

const GW1_DN: &str = "C=CH, O=espgw test, CN=gw1.example";

#[test]
fn rsa_and_ecdsa_certificates_through_an_intermediate_with_rfc7427() {
    let (a, b) = (gw1(fqdn("gw2.example")), gw2(dn(GW1_DN)));
    let out = run(&a, &b, true);
    let (ic, rc) = (out.initiator.unwrap(), out.responder.unwrap());
    assert_eq!(*ic.outbound_key, *rc.inbound_key);
    let (req, resp) = (out.req.unwrap(), out.resp.unwrap());
    // gw1 sends its certificate, then the intermediate; a CERTREQ naming the root's key;
    // its DN as ID; RFC 7427 signatures both ways.
    assert_eq!(certs(&req).len(), 2);
    assert_eq!(certs(&resp).len(), 1);
    let certreq = req.payloads.iter().find_map(|p| match p {
        Payload::CertReq {
            encoding: X509_SIGNATURE,
            data,
        } => Some(data.len()),
        _ => None,
    });
    assert_eq!(certreq, Some(20), "one SHA-1 hash: the root's public key");
    assert!(matches!(&req.payloads[0], Payload::IdI(id) if id.kind == 9));
    assert_eq!(auth_method(&req), AUTH_DIGITAL_SIGNATURE);
    assert_eq!(auth_method(&resp), AUTH_DIGITAL_SIGNATURE);
}

#[test]
fn without_rfc7427_ecdsa_signs_by_rfc4754_and_rsa_by_method_1() {
    // gw2 (P-256) initiating to gw3 (P-384): methods 9 and 10.
    let gw3 = Side {
        auth: cert_auth("gw3", &["root.crt"]),
        local_id: fqdn_id("gw3.example"),
        remote_id: fqdn("gw2.example"),
    };
    let out = run(&gw2(fqdn("gw3.example")), &gw3, false);
    assert!(out.initiator.is_ok() && out.responder.is_ok());
    assert_eq!(auth_method(&out.req.unwrap()), AUTH_ECDSA_256);
    assert_eq!(auth_method(&out.resp.unwrap()), AUTH_ECDSA_384);
    // With RFC 7427, P-384 signs ecdsa-with-SHA384 in method 14.
    let out = run(&gw2(fqdn("gw3.example")), &gw3, true);
    assert_eq!(auth_method(&out.resp.unwrap()), AUTH_DIGITAL_SIGNATURE);
    // RSA keys (PKCS#8 and PKCS#1) sign by method 1, PKCS#1 v1.5 over SHA-1 (OpenSSL's
    // signature), which the peer verifies with ring's: two implementations agree.
    let out = run(&gw1(fqdn("gw2.example")), &gw2(dn(GW1_DN)), false);
    assert!(out.initiator.is_ok() && out.responder.is_ok());
    assert_eq!(auth_method(&out.req.unwrap()), AUTH_RSA);
    let gw4 = Side {
        auth: cert_auth("gw4", &["root.crt"]),
        local_id: fqdn_id("gw4.example"),
        remote_id: fqdn("gw2.example"),
    };
    let out = run(&gw2(fqdn("gw4.example")), &gw4, false);
    assert!(out.initiator.is_ok() && out.responder.is_ok());
    assert_eq!(auth_method(&out.resp.unwrap()), AUTH_RSA);
}

#[test]
fn an_rsa_pkcs1_key_and_a_ca_bundle_of_several_files() {
    let gw4 = Side {
        auth: cert_auth("gw4", &["other.crt", "root.crt"]),
        local_id: fqdn_id("gw4.example"),
        remote_id: fqdn("gw2.example"),
    };
    let out = run(&gw2(fqdn("gw4.example")), &gw4, true);
    assert!(out.initiator.is_ok() && out.responder.is_ok());
}

#[test]
fn another_cas_certificate_for_the_same_name_is_refused() {
    // rogue has gw2's subject and names, from a CA gw1 does not trust.
    let rogue = Side {
        auth: cert_auth("rogue", &["root.crt"]),
        local_id: fqdn_id("gw2.example"),
        remote_id: dn(GW1_DN),
    };
    let out = run(&rogue, &gw1(fqdn("gw2.example")), true);
    assert!(
        matches!(&out.responder, Err(AuthError::Rejected(e)) if e.contains("not trusted") && e.contains("UnknownIssuer")),
        "{:?}",
        out.responder.err()
    );
    // Either way round.
    let out = run(&gw1(fqdn("gw2.example")), &rogue, true);
    assert!(matches!(&out.initiator, Err(AuthError::Rejected(e)) if e.contains("not trusted")));
}

#[test]
fn identities_the_certificate_does_not_name_are_refused() {
    // gw2 expects gw9.example: gw1 says it is its DN.
    let out = run(&gw1(fqdn("gw2.example")), &gw2(fqdn("gw9.example")), true);
    assert!(matches!(&out.responder, Err(AuthError::Rejected(e)) if e.contains("says it is")));
    // gw2 claims gw9.example, which gw1 expects: gw2's certificate does not name it.
    let mut liar = gw2(dn(GW1_DN));
    liar.local_id = fqdn_id("gw9.example");
    let out = run(&liar, &gw1(fqdn("gw9.example")), true);
    assert!(
        matches!(&out.responder, Err(AuthError::Rejected(e)) if e.contains("does not name gw9.example"))
    );
}

#[test]
fn a_chain_without_its_intermediate_is_refused() {
    let mut a = gw1(fqdn("gw2.example"));
    if let Auth::Certificate { ours, .. } = &mut a.auth {
        let mut c = load_credential(&fixture("gw1.pem"), &fixture("gw1.key")).unwrap();
        c.chain.truncate(1);
        *ours = Arc::new(c);
    }
    let out = run(&a, &gw2(dn(GW1_DN)), true);
    assert!(matches!(&out.responder, Err(AuthError::Rejected(e)) if e.contains("UnknownIssuer")));
}

#[test]
fn a_shared_key_peer_and_a_certificate_peer_do_not_mix() {
    let psk = Side {
        auth: Auth::Psk(zeroize::Zeroizing::new(b"k".to_vec())),
        local_id: fqdn_id("gw2.example"),
        remote_id: dn(GW1_DN),
    };
    let out = run(&gw1(fqdn("gw2.example")), &psk, true);
    assert!(
        matches!(&out.responder, Err(AuthError::Rejected(e)) if e.contains("not a shared key"))
    );
    let out = run(&psk, &gw1(fqdn("gw2.example")), true);
    assert!(
        matches!(&out.responder, Err(AuthError::Rejected(e)) if e.contains(&format!("method {AUTH_PSK}")))
    );
}

#[test]
fn keys_and_certificates_load_only_when_they_belong_together() {
    let err = load_credential(&fixture("gw1.pem"), &fixture("gw2.key")).unwrap_err();
    assert!(err.contains("is not the private key"), "{err}");
    assert!(load_credential(&fixture("gw2.key"), &fixture("gw2.key")).is_err());
    assert!(load_trust(&[fixture("gw1.key")]).is_err());
    assert!(load_trust(&["/nonexistent".into()]).is_err());
    // Each of gw1's names: its DN, its SANs; nothing else.
    let der = &load_credential(&fixture("gw1.pem"), &fixture("gw1.key"))
        .unwrap()
        .chain[0];
    for (id, yes) in [
        (dn(GW1_DN), true),
        (dn("C=CH, O=espgw test, CN=gw2.example"), false),
        (fqdn("gw1.example"), true),
        (Identity::UserFqdn("admin@gw1.example".into()), true),
        (Identity::Ipv4(Ipv4Addr::new(192, 0, 2, 1)), true),
        (fqdn("gw2.example"), false),
        (Identity::Ipv4(Ipv4Addr::new(192, 0, 2, 2)), false),
    ] {
        assert_eq!(id.certified_by(der), yes, "{id}");
    }
}
