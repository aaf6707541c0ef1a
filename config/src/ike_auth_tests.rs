//! How IKE gateways authenticate, as the configuration takes it: a pre-shared key from a file
//! only its owner reads and never shown, or certificates by absolute paths with a private key
//! only its owner reads.

use super::*;
use std::os::unix::fs::PermissionsExt;

#[test]
fn psk_file_readable_by_its_owner_only() {
    let dir = Dir(std::env::temp_dir().join(format!("espgw-config-ike-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let path = dir.0.join("gw-c.psk");
    std::fs::write(&path, "from a file\n").unwrap();
    let with_file = |path: &std::path::Path| {
        let mut v = example();
        let g = v["ike"]["gateways"][1].as_object_mut().unwrap();
        g.remove("psk");
        g.insert("psk_file".into(), path.to_str().unwrap().into());
        parse(&v)
    };

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = with_file(&path).err().unwrap();
    assert_eq!(e.field, "ike.gateways[1].psk_file");
    assert!(e.reason.contains("mode 644"), "{e}");
    assert!(!e.to_string().contains("from a file"), "{e}");

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let c = with_file(&path).unwrap();
    assert!(matches!(&c.ike.gateways[1].auth, IkeAuth::Psk(k) if k.as_slice() == b"from a file"));

    std::fs::write(&path, "\n").unwrap();
    let e = with_file(&path).err().unwrap();
    assert_eq!(e.field, "ike.gateways[1].psk_file");

    let e = with_file(&dir.0.join("missing.psk")).err().unwrap();
    assert_eq!(e.field, "ike.gateways[1].psk_file");

    let e = with_file(std::path::Path::new("gw-c.psk")).err().unwrap();
    assert_eq!(e.field, "ike.gateways[1].psk_file");
}

#[test]
fn debug_never_shows_the_psk() {
    let c = parse(&example()).unwrap();
    let g = format!("{:?}", c.ike.gateways[0]);
    assert!(!g.contains(PSK), "{g}");
    assert!(g.contains("auth: Psk(<redacted>)"), "{g}");
    let all = format!("{c:?}");
    assert!(!all.contains(PSK) && !all.contains("another one"), "{all}");
}

/// gw-c authenticated by certificates: files in `dir` (the key's mode `key_mode`).
fn with_certificates(v: &mut serde_json::Value, dir: &std::path::Path, key_mode: u32) {
    let (cert, key, ca) = (dir.join("gw.pem"), dir.join("gw.key"), dir.join("ca.pem"));
    for f in [&cert, &key, &ca] {
        std::fs::write(f, "contents are the control's to check\n").unwrap();
    }
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(key_mode)).unwrap();
    let g = &mut v["ike"]["gateways"][1];
    g.as_object_mut().unwrap().remove("psk");
    g["certificate"] = cert.to_str().unwrap().into();
    g["private_key"] = key.to_str().unwrap().into();
    g["ca_certificates"] = serde_json::json!([ca.to_str().unwrap()]);
    g["remote_id"] = "C=CH, O=Peer Corp, CN=gw-c.example".into();
}

#[test]
fn certificate_authentication_takes_absolute_paths_and_a_private_key_only_its_owner_reads() {
    let dir = std::env::temp_dir().join(format!("espgw-cfg-cert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut v = example();
    with_certificates(&mut v, &dir, 0o600);
    let c = parse(&v).unwrap();
    let g = &c.ike.gateways[1];
    assert!(
        matches!(&g.auth, IkeAuth::Certificate { ca_certificates, .. } if ca_certificates.len() == 1)
    );
    assert_eq!(g.local_id, IkeId::CertificateSubject, "by default");
    assert_eq!(
        g.remote_id,
        IkeId::Dn("C=CH, O=Peer Corp, CN=gw-c.example".into())
    );
    assert!(format!("{g:?}").contains("gw.key"), "paths are no secret");
    assert!(!format!("{:?}", c.ike.gateways[0]).contains(PSK));

    let d = dir.clone();
    let cases: Vec<(Edit, &str, &str)> = vec![
        (
            Box::new(|v| v["ike"]["gateways"][1]["psk"] = "also".into()),
            "ike.gateways[1].certificate",
            "not both",
        ),
        (
            Box::new(|v| v["ike"]["gateways"][1]["certificate"] = "gw.pem".into()),
            "ike.gateways[1].certificate",
            "absolute",
        ),
        (
            Box::new(|v| {
                v["ike"]["gateways"][1]
                    .as_object_mut()
                    .unwrap()
                    .remove("private_key");
            }),
            "ike.gateways[1].private_key",
            "required",
        ),
        (
            Box::new(move |v| with_certificates(v, &d, 0o640)),
            "ike.gateways[1].private_key",
            "chmod 600",
        ),
        (
            Box::new(|v| v["ike"]["gateways"][1]["ca_certificates"] = serde_json::json!([])),
            "ike.gateways[1].ca_certificates",
            "chain to",
        ),
        (
            Box::new(|v| v["ike"]["gateways"][1]["private_key"] = "/nonexistent/key".into()),
            "ike.gateways[1].private_key",
            "No such file",
        ),
    ];
    for (edit, field, why) in cases {
        let mut v = example();
        with_certificates(&mut v, &dir, 0o600);
        edit(&mut v);
        let e = parse(&v)
            .err()
            .unwrap_or_else(|| panic!("accepted: {field}"));
        assert_eq!(e.field, field, "{e}");
        assert!(e.reason.contains(why), "{e}");
    }
    // A DN is a certificate's identity: not with a pre-shared key.
    let e = error_of(|v| v["ike"]["gateways"][1]["local_id"] = "CN=gw1".into());
    assert_eq!(e.field, "ike.gateways[1].local_id");
    assert_eq!(
        IkeId::parse("C=CH, O=A B"),
        Ok(IkeId::Dn("C=CH, O=A B".into()))
    );
    let _ = std::fs::remove_dir_all(&dir);
}
