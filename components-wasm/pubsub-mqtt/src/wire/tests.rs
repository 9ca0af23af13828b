use super::*;

fn decode_all(bytes: &[u8]) -> Result<Option<(Packet, usize)>, Malformed> {
    Packet::decode(bytes, MAX_REMAINING)
}

fn publish(qos: u8, packet_id: Option<u16>, payload: &[u8]) -> Packet {
    Packet::Publish(Publish {
        topic: "a/b".into(),
        qos,
        packet_id,
        dup: false,
        retain: false,
        payload: payload.to_vec(),
    })
}

#[test]
fn remaining_lengths_use_one_to_four_bytes_at_the_spec_boundaries() {
    let cases: &[(usize, &[u8])] = &[
        (0, &[0x00]),
        (127, &[0x7f]),
        (128, &[0x80, 0x01]),
        (16_383, &[0xff, 0x7f]),
        (16_384, &[0x80, 0x80, 0x01]),
        (2_097_151, &[0xff, 0xff, 0x7f]),
        (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
        (MAX_REMAINING, &[0xff, 0xff, 0xff, 0x7f]),
    ];
    for &(len, encoded) in cases {
        let mut out = Vec::new();
        put_remaining_length(&mut out, len).expect("in range");
        assert_eq!(out, encoded, "{len}");
        assert_eq!(
            read_remaining_length(encoded),
            Ok(Some((len, encoded.len()))),
            "{len}"
        );
        // Every proper prefix is incomplete, not wrong.
        assert_eq!(
            read_remaining_length(&encoded[..encoded.len() - 1]),
            Ok(None)
        );
    }
    assert!(put_remaining_length(&mut Vec::new(), MAX_REMAINING + 1).is_err());
    assert!(read_remaining_length(&[0xff, 0xff, 0xff, 0xff, 0x01]).is_err());
}

#[test]
fn packets_survive_a_round_trip() {
    let packets = vec![
        Packet::Connect(Connect {
            client_id: "orders-1f".into(),
            clean_session: false,
            keep_alive_secs: 30,
            will: Some(Will {
                topic: "outrig/x/holder".into(),
                payload: Vec::new(),
                qos: 0,
                retain: true,
            }),
            username: Some("app".into()),
            password: Some(b"s3cret".to_vec()),
        }),
        Packet::Connect(Connect {
            client_id: String::new(),
            clean_session: true,
            keep_alive_secs: 0,
            will: None,
            username: None,
            password: None,
        }),
        Packet::Connack {
            session_present: true,
            code: 0,
        },
        publish(0, None, b""),
        publish(1, Some(7), &[0u8; 300]),
        Packet::Publish(Publish {
            topic: "é/ü".into(),
            qos: 1,
            packet_id: Some(65_535),
            dup: true,
            retain: true,
            payload: b"x".to_vec(),
        }),
        Packet::Puback(1),
        Packet::Subscribe {
            packet_id: 2,
            filters: vec![("$share/g/t".into(), 1), ("c/#".into(), 0)],
        },
        Packet::Suback {
            packet_id: 2,
            codes: vec![1, 0x80],
        },
        Packet::Unsubscribe {
            packet_id: 3,
            filters: vec!["c/#".into()],
        },
        Packet::Unsuback(3),
        Packet::Pingreq,
        Packet::Pingresp,
        Packet::Disconnect,
    ];
    for packet in packets {
        let bytes = packet.encode().expect("encodes");
        assert_eq!(
            decode_all(&bytes),
            Ok(Some((packet.clone(), bytes.len()))),
            "{packet:?}"
        );
        // Cut anywhere, a packet is incomplete; followed by more, it ends
        // where it ends.
        for cut in 0..bytes.len() {
            assert_eq!(
                decode_all(&bytes[..cut]),
                Ok(None),
                "{packet:?} cut at {cut}"
            );
        }
        let mut two = bytes.clone();
        two.extend(Packet::Pingresp.encode().expect("encodes"));
        assert_eq!(decode_all(&two), Ok(Some((packet, bytes.len()))));
    }
}

#[test]
fn malformed_packets_are_errors_not_panics() {
    let cases: &[(&str, &[u8])] = &[
        ("type 0", &[0x00, 0x00]),
        ("type 15", &[0xf0, 0x00]),
        ("QoS 2 flow", &[0x50, 0x02, 0x00, 0x01]),
        ("PUBACK with flags", &[0x41, 0x02, 0x00, 0x01]),
        (
            "SUBSCRIBE without 0b0010",
            &[0x80, 0x06, 0, 1, 0, 1, b'a', 0],
        ),
        ("PUBLISH at QoS 3", &[0x36, 0x03, 0x00, 0x01, b'a']),
        ("QoS 0 DUP", &[0x38, 0x03, 0x00, 0x01, b'a']),
        ("PUBACK too short", &[0x40, 0x01, 0x00]),
        ("PUBACK too long", &[0x40, 0x03, 0x00, 0x01, 0x02]),
        ("topic longer than body", &[0x30, 0x03, 0x00, 0x09, b'a']),
        ("QoS 1 without packet id", &[0x32, 0x03, 0x00, 0x01, b'a']),
        ("topic not UTF-8", &[0x30, 0x04, 0x00, 0x02, 0xc3, 0x28]),
        ("topic with NUL", &[0x30, 0x03, 0x00, 0x01, 0x00]),
        ("CONNACK reserved flags", &[0x20, 0x02, 0x02, 0x00]),
        ("CONNACK too short", &[0x20, 0x01, 0x00]),
        ("SUBACK without codes", &[0x90, 0x02, 0x00, 0x01]),
        ("UNSUBSCRIBE without filters", &[0xa2, 0x02, 0x00, 0x01]),
        ("PINGRESP with a body", &[0xd0, 0x01, 0x00]),
        ("five-byte length", &[0x30, 0xff, 0xff, 0xff, 0xff, 0x01]),
        (
            "CONNECT of MQTT 5",
            &[0x10, 0x0a, 0, 4, b'M', b'Q', b'T', b'T', 5, 2, 0, 0],
        ),
    ];
    for (name, bytes) in cases {
        assert!(
            decode_all(bytes).is_err(),
            "{name}: {:?}",
            decode_all(bytes)
        );
    }
    // Over the caller's limit, refused as soon as the length is read.
    assert!(Packet::decode(&[0x30, 0x80, 0x01], 100).is_err());
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A fixed linear congruential sequence: the same bytes every run.
    let mut state: u32 = 0x2545_f491;
    let mut next = || {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (state >> 24) as u8
    };
    for _ in 0..20_000 {
        let len = usize::from(next() % 24);
        let mut bytes: Vec<u8> = (0..len).map(|_| next()).collect();
        if let Some(length) = bytes.get_mut(1) {
            *length %= 24; // mostly short bodies, so decoding gets past the header
        }
        if let Ok(Some((_, used))) = decode_all(&bytes) {
            assert!(used <= bytes.len());
        }
    }
}

#[test]
fn packets_over_the_protocol_limits_cannot_be_encoded() {
    let long = "x".repeat(70_000);
    let cases = [
        Packet::Subscribe {
            packet_id: 1,
            filters: vec![(long.clone(), 1)],
        },
        Packet::Publish(Publish {
            topic: long,
            qos: 0,
            packet_id: None,
            dup: false,
            retain: false,
            payload: Vec::new(),
        }),
        publish(1, None, b""),
        publish(0, Some(1), b""),
        publish(2, Some(1), b""),
        Packet::Connect(Connect {
            client_id: "c".into(),
            clean_session: true,
            keep_alive_secs: 0,
            will: None,
            username: None,
            password: Some(b"p".to_vec()),
        }),
    ];
    for packet in cases {
        assert!(packet.encode().is_err(), "{packet:?}");
    }
}
