//! IKE with certificates between espgw and strongSwan's charon (the lab of
//! `common/charon.rs`), on a PKI each case makes with openssl (scripts/make-test-pki.sh): both
//! roles, RSA and ECDSA keys, a chain through an intermediate in IKE fragments, RFC 7427 and
//! the older AUTH methods, and the refusals.

#[path = "common/charon.rs"]
#[allow(dead_code)] // each strongswan_* test uses part of the lab
mod charon;
#[path = "common/gateways.rs"]
mod gateways;
#[path = "../../dataplane/tests/common/host.rs"]
#[allow(dead_code)]
mod host;
use charon::*;
use gateways::*;

/// Certificates both ways, espgw initiating: espgw's RSA certificate and the intermediate CA
/// it was issued by (its ID: the subject's DN), charon's ECDSA P-256 one from the root. The
/// chain makes espgw's IKE_AUTH bigger than an IKE fragment (1280 bytes): charon puts it back
/// together; espgw's CERTREQ names the root, RFC 7427 signatures both ways; then traffic.
#[test]
fn certificates_espgw_initiates_with_an_rsa_chain_in_ike_fragments() {
    let certs = Certs {
        espgw: "gw1",
        charon: "gw2",
        charon_id: "gw2.example",
        espgw_expects: "gw2.example",
    };
    let Some(lab) = certificate_case("c", true, certs, "") else {
        return;
    };
    let charon = lab.charon_log();
    for said in [
        "received cert request for \"C=CH, O=espgw test, CN=espgw test root\"",
        "received end entity cert \"C=CH, O=espgw test, CN=gw1.example\"",
        "received issuer cert \"C=CH, O=espgw test, CN=espgw test intermediate\"",
        "authentication of 'C=CH, O=espgw test, CN=gw1.example' with RSA_EMSA_PKCS1_SHA2_256 successful",
        "reassembled fragmented IKE message",
    ] {
        assert!(charon.contains(said), "charon did not say {said}: {charon}");
    }
    let token = std::fs::read_to_string(lab.p("token")).unwrap();
    let (code, body) = http(&lab.ns("gw1"), "/v1/ike", Some(token.trim()));
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["security_associations"][0]["fragmented"].as_u64() >= Some(1),
        "{v}"
    );
}

/// charon initiating with an ECDSA P-384 certificate under the intermediate (which it sends),
/// espgw answering with an RSA-3072 certificate whose key is PKCS#1 ("RSA PRIVATE KEY").
#[test]
fn certificates_strongswan_initiates_with_ecdsa_p384_through_an_intermediate() {
    let certs = Certs {
        espgw: "gw4",
        charon: "gw3",
        charon_id: "gw3.example",
        espgw_expects: "gw3.example",
    };
    let Some(lab) = certificate_case("d", false, certs, "") else {
        return;
    };
    let charon = lab.charon_log();
    assert!(
        charon.contains("authentication of 'gw4.example' with RSA_EMSA_PKCS1_SHA2_256 successful")
            || charon.contains("authentication of 'C=CH, O=espgw test, CN=gw4.example' with RSA_EMSA_PKCS1_SHA2_256 successful"),
        "{charon}"
    );
    assert!(charon.contains("sending issuer cert"), "{charon}");
}

/// Without RFC 7427 (charon's `signature_authentication = no`): charon signs with its RSA key
/// by AUTH method 1 (PKCS#1 v1.5, SHA-1), which espgw verifies, and espgw with its ECDSA key
/// by method 9 (RFC 4754).
#[test]
fn certificates_without_rfc7427_rsa_method_1_and_ecdsa_method_9() {
    let certs = Certs {
        espgw: "gw2",
        charon: "gw1",
        charon_id: "gw1.example",
        espgw_expects: "gw1.example",
    };
    let Some(lab) = certificate_case("e", true, certs, "signature_authentication = no") else {
        return;
    };
    let charon = lab.charon_log();
    assert!(
        charon.contains("with ECDSA-256 signature successful"),
        "charon did not take method 9: {charon}"
    );
    assert!(
        charon.contains("authentication of 'gw1.example' (myself) with RSA signature successful"),
        "charon did not sign by method 1: {charon}"
    );
    assert!(
        !charon.contains("SIGNATURE_HASH_ALGORITHMS"),
        "charon offered RFC 7427: {charon}"
    );
}

/// The other way round: espgw's RSA key signs by AUTH method 1 for charon without RFC 7427
/// (OpenSSL's SHA-1 signature), which charon verifies; charon's ECDSA key signs by method 9.
#[test]
fn certificates_without_rfc7427_espgw_signs_rsa_method_1() {
    let certs = Certs {
        espgw: "gw1",
        charon: "gw2",
        charon_id: "gw2.example",
        espgw_expects: "gw2.example",
    };
    let Some(lab) = certificate_case("r", true, certs, "signature_authentication = no") else {
        return;
    };
    let charon = lab.charon_log();
    assert!(
        charon.contains(
            "authentication of 'C=CH, O=espgw test, CN=gw1.example' with RSA signature successful"
        ),
        "charon did not take espgw's method 1: {charon}"
    );
    assert!(
        charon.contains("(myself) with ECDSA-256 signature successful"),
        "charon did not sign by method 9: {charon}"
    );
}

/// Negotiates with `certs` (espgw initiating or not, charon's extra settings), then host a
/// reaches host b and back through the tunnel.
fn certificate_case(
    tag: &str,
    espgw_initiates: bool,
    certs: Certs<'_>,
    charon_extra: &str,
) -> Option<Lab> {
    let lab = lab(&Setup {
        espgw_initiates,
        charon_extra,
        certs: Some(certs),
        ..Setup::new(tag)
    })?;
    lab.wait_child_up();
    assert!(a_reaches_b(&lab.ns("a")), "a -> b: {}", lab.logs());
    assert_eq!(
        ping(&lab.ns("b"), "10.2.0.10", "10.1.0.10", 20, "0.02"),
        (20, 20)
    );
    let detail = lab.cli(&["show", "security", "ike", "security-associations", "detail"]);
    for line in [
        "authentication: certificates".to_string(),
        format!("remote identity: {}", certs.espgw_expects),
        format!(
            "local identity: C=CH, O=espgw test, CN={}.example",
            certs.espgw
        ),
    ] {
        assert!(detail.contains(&line), "{line} not in {detail}");
    }
    Some(lab)
}

/// A certificate from another CA (with the very names espgw expects), and a peer whose
/// certificate is good but whose identity is not the one configured: both refused by espgw
/// with AUTHENTICATION_FAILED, which charon hears.
#[test]
fn certificates_from_another_ca_or_for_another_identity_are_refused() {
    let rogue = Certs {
        espgw: "gw1",
        charon: "rogue",
        charon_id: "gw2.example",
        espgw_expects: "gw2.example",
    };
    let log = failure(
        "r",
        false,
        &|_| {},
        Some(rogue),
        "AUTHENTICATION_FAILED",
        "received AUTHENTICATION_FAILED notify error",
    );
    assert!(
        log.is_empty() || log.contains("certificate not trusted: UnknownIssuer"),
        "{log}"
    );
    let stranger = Certs {
        espgw_expects: "gw9.example",
        charon: "gw2",
        ..rogue
    };
    let log = failure(
        "i",
        false,
        &|_| {},
        Some(stranger),
        "AUTHENTICATION_FAILED",
        "received AUTHENTICATION_FAILED notify error",
    );
    assert!(
        log.is_empty() || log.contains("the peer says it is gw2.example, not gw9.example"),
        "{log}"
    );
}
