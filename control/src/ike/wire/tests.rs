use super::*;
use proptest::prelude::*;

fn sa_init() -> Message {
    let t = |kind, id, attrs: Vec<Attribute>| Transform {
        kind,
        id,
        attributes: attrs,
    };
    Message {
        header: Header {
            initiator_spi: 0x0102_0304_0506_0708,
            responder_spi: 0,
            exchange: Exchange::IkeSaInit,
            flags: Flags {
                initiator: true,
                ..Default::default()
            },
            message_id: 0,
        },
        payloads: vec![
            Payload::Sa(vec![Proposal {
                number: 1,
                protocol: Protocol::Ike,
                spi: vec![],
                transforms: vec![
                    // aes256gcm16-prfsha256-x25519
                    t(
                        TransformType::Encryption,
                        20,
                        vec![Attribute::Tv {
                            kind: sa::KEY_LENGTH,
                            value: 256,
                        }],
                    ),
                    t(TransformType::Prf, 5, vec![]),
                    t(TransformType::DhGroup, 31, vec![]),
                ],
            }]),
            Payload::Ke {
                group: 31,
                data: vec![0x42; 32],
            },
            Payload::Nonce(vec![7; 32]),
            Payload::Notify(Notify {
                protocol: 0,
                kind: 16388, // NAT_DETECTION_SOURCE_IP
                spi: vec![],
                data: vec![9; 20],
            }),
            Payload::VendorId(b"espgw".to_vec()),
        ],
    }
}

#[test]
fn an_ike_sa_init_request_is_laid_out_as_rfc_7296_says() {
    let m = sa_init();
    let b = m.emit();
    // Header: SPIs, next payload SA (33), version 2.0, IKE_SA_INIT (34), I flag, ID 0, length.
    assert_eq!(&b[..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(&b[8..16], &[0; 8]);
    assert_eq!(&b[16..20], &[33, 0x20, 34, 0x08]);
    assert_eq!(&b[20..24], &[0, 0, 0, 0]);
    assert_eq!(
        u32::from_be_bytes([b[24], b[25], b[26], b[27]]) as usize,
        b.len()
    );
    // SA payload: next is KE (34), length 4 + proposal (8 + 3 transforms: 12 + 8 + 8).
    assert_eq!(&b[28..32], &[34, 0, 0, 4 + 8 + 12 + 8 + 8]);
    // The proposal: last, length 36, number 1, IKE, no SPI, 3 transforms.
    assert_eq!(&b[32..40], &[0, 0, 0, 36, 1, 1, 0, 3]);
    // The first transform: more follow (3), length 12, ENCR 20, key length 256 as TV.
    assert_eq!(&b[40..52], &[3, 0, 0, 12, 1, 0, 0, 20, 0x80, 14, 1, 0]);
    assert_eq!(Message::parse(&b).unwrap(), m);
}

#[test]
fn an_encrypted_payload_ends_the_chain_and_names_what_is_inside() {
    let m = Message {
        header: Header {
            initiator_spi: 1,
            responder_spi: 2,
            exchange: Exchange::IkeAuth,
            flags: Flags {
                initiator: true,
                ..Default::default()
            },
            message_id: 1,
        },
        payloads: vec![Payload::Sk {
            first: payload_type::IDI,
            body: vec![0xab; 80],
        }],
    };
    let b = m.emit();
    assert_eq!(b[16], payload_type::SK);
    assert_eq!(
        b[28],
        payload_type::IDI,
        "SK's next payload is the first one inside"
    );
    assert_eq!(Message::parse(&b).unwrap(), m);
}

#[test]
fn bad_messages_are_refused_plainly() {
    let good = sa_init().emit();
    let mut v1 = good.clone();
    v1[17] = 0x10;
    assert_eq!(Message::parse(&v1), Err(WireError::Version(1)));
    assert!(matches!(
        Message::parse(&good[..20]),
        Err(WireError::Truncated(_))
    ));
    let mut longer = good.clone();
    longer.push(0);
    assert!(matches!(
        Message::parse(&longer),
        Err(WireError::Length { .. })
    ));
    let mut bad_len = good.clone();
    bad_len[31] = 2; // the SA payload claims 2 bytes: less than its own header
    assert!(matches!(
        Message::parse(&bad_len),
        Err(WireError::Length { .. })
    ));
    // An unknown payload: kept when not critical, refused when critical.
    let mut m = sa_init();
    m.payloads.push(Payload::Other {
        kind: 200,
        critical: false,
        body: vec![1, 2, 3],
    });
    assert_eq!(Message::parse(&m.emit()).unwrap(), m);
    if let Some(Payload::Other { critical, .. }) = m.payloads.last_mut() {
        *critical = true;
    }
    assert_eq!(
        Message::parse(&m.emit()),
        Err(WireError::UnsupportedCritical(200))
    );
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

fn transform() -> impl Strategy<Value = Transform> {
    (1u8..6, any::<u16>(), proptest::option::of(any::<u16>())).prop_map(|(k, id, key)| Transform {
        kind: TransformType::from_u8(k),
        id,
        attributes: key
            .map(|v| Attribute::Tv {
                kind: sa::KEY_LENGTH,
                value: v,
            })
            .into_iter()
            .collect(),
    })
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        proptest::collection::vec(
            (
                1u8..4,
                bytes(9),
                proptest::collection::vec(transform(), 0..5)
            ),
            1..4
        )
        .prop_map(|ps| Payload::Sa(
            ps.into_iter()
                .enumerate()
                .map(|(i, (p, spi, transforms))| Proposal {
                    number: i as u8 + 1,
                    protocol: Protocol::from_u8(p),
                    spi,
                    transforms,
                })
                .collect()
        )),
        (any::<u16>(), bytes(64)).prop_map(|(group, data)| Payload::Ke { group, data }),
        bytes(64).prop_map(Payload::Nonce),
        (any::<u8>(), bytes(40)).prop_map(|(kind, data)| Payload::IdI(Id { kind, data })),
        (any::<u8>(), bytes(40)).prop_map(|(method, data)| Payload::Auth { method, data }),
        (any::<u8>(), bytes(200)).prop_map(|(encoding, data)| Payload::Cert { encoding, data }),
        (any::<u8>(), bytes(60)).prop_map(|(encoding, data)| Payload::CertReq { encoding, data }),
        (any::<u8>(), any::<u16>(), bytes(8), bytes(40)).prop_map(|(protocol, kind, spi, data)| {
            Payload::Notify(Notify {
                protocol,
                kind,
                spi,
                data,
            })
        }),
        proptest::collection::vec(
            (
                any::<u8>(),
                any::<u16>(),
                any::<u16>(),
                any::<[u8; 4]>(),
                any::<[u8; 4]>()
            ),
            0..4
        )
        .prop_map(|v| Payload::TsR(
            v.into_iter()
                .map(|(protocol, start_port, end_port, s, e)| TrafficSelector {
                    kind: TS_IPV4_ADDR_RANGE,
                    protocol,
                    start_port,
                    end_port,
                    start: s.to_vec(),
                    end: e.to_vec(),
                })
                .collect()
        )),
        proptest::collection::vec(any::<[u8; 4]>(), 0..4).prop_map(|v| Payload::Delete {
            protocol: 3,
            spi_size: 4,
            spis: v.into_iter().map(|s| s.to_vec()).collect(),
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any bytes: an error or a message, never a panic.
    #[test]
    fn no_input_panics_the_parser(b in bytes(600), first in 0u8..60) {
        let _ = Message::parse(&b);
        // And with a plausible header in front, so that the payload parsers are reached.
        let mut m = vec![0u8; 28];
        m[16] = first;
        m[17] = 0x20;
        m.extend_from_slice(&b);
        let len = (m.len() as u32).to_be_bytes();
        m[24..28].copy_from_slice(&len);
        let _ = Message::parse(&m);
    }

    /// What is emitted parses back to the same message.
    #[test]
    fn messages_round_trip(ps in proptest::collection::vec(payload(), 0..6), id in any::<u32>(),
                           ispi in any::<u64>(), rspi in any::<u64>()) {
        let m = Message {
            header: Header {
                initiator_spi: ispi,
                responder_spi: rspi,
                exchange: Exchange::CreateChildSa,
                flags: Flags { response: true, ..Default::default() },
                message_id: id,
            },
            payloads: ps,
        };
        prop_assert_eq!(Message::parse(&m.emit()).unwrap(), m);
    }
}

/// An IKE_SA_INIT request strongSwan 5.9.8 (Debian 12) sent for
/// `aes256gcm16-prfsha256-x25519`, captured on the wire: parsed as what it is, and emitted
/// back byte for byte.
#[test]
fn a_strongswan_ike_sa_init_request_parses_and_emits_back_identically() {
    let hex = include_str!("fixtures/strongswan-5.9-ike-sa-init.hex");
    let bytes = hex::decode(hex.trim()).unwrap();
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(m.header.exchange, Exchange::IkeSaInit);
    assert!(m.header.flags.initiator && !m.header.flags.response);
    assert_eq!((m.header.responder_spi, m.header.message_id), (0, 0));
    let Payload::Sa(props) = &m.payloads[0] else {
        panic!("{:?}", m.payloads[0])
    };
    assert_eq!(props.len(), 1);
    let p = &props[0];
    assert_eq!(p.protocol, Protocol::Ike);
    let ids: Vec<(TransformType, u16, Option<u16>)> = p
        .transforms
        .iter()
        .map(|t| (t.kind, t.id, t.key_length()))
        .collect();
    assert_eq!(
        ids,
        [
            (TransformType::Encryption, 20, Some(256)),
            (TransformType::Prf, 5, None),
            (TransformType::DhGroup, 31, None),
        ]
    );
    let Payload::Ke { group: 31, data } = &m.payloads[1] else {
        panic!("{:?}", m.payloads[1])
    };
    assert_eq!(data.len(), 32);
    assert!(matches!(&m.payloads[2], Payload::Nonce(n) if n.len() >= 16));
    let notifies: Vec<u16> = m
        .payloads
        .iter()
        .filter_map(|p| match p {
            Payload::Notify(n) => Some(n.kind),
            _ => None,
        })
        .collect();
    // NAT_DETECTION_SOURCE_IP, NAT_DETECTION_DESTINATION_IP, IKEV2_FRAGMENTATION_SUPPORTED,
    // SIGNATURE_HASH_ALGORITHMS, REDIRECT_SUPPORTED.
    assert_eq!(notifies, [16388, 16389, 16430, 16431, 16406]);
    assert_eq!(m.emit(), bytes);
}
