use super::script::Script;
use super::*;
use crate::wire::Publish;

fn connect(keep_alive_secs: u16) -> Connect {
    Connect {
        client_id: "c".into(),
        clean_session: false,
        keep_alive_secs,
        will: None,
        username: None,
        password: None,
    }
}

fn bytes(packets: &[Packet]) -> Vec<u8> {
    packets
        .iter()
        .flat_map(|p| p.encode().expect("encodes"))
        .collect()
}

fn connack(session_present: bool, code: u8) -> Packet {
    Packet::Connack {
        session_present,
        code,
    }
}

fn open(
    input: &[Packet],
    keep_alive_secs: u16,
    io_timeout: Duration,
) -> io::Result<(Connection<Script>, bool)> {
    let script = Script::new(&bytes(input), 3, false);
    Connection::open(script, &connect(keep_alive_secs), io_timeout)
}

#[test]
fn the_handshake_reports_the_session_and_refusals() {
    let timeout = Duration::from_millis(50);
    let (conn, present) = open(&[connack(true, 0)], 0, timeout).expect("accepted");
    assert!(present);
    let sent = Packet::decode(&conn.stream.output, wire::MAX_REMAINING).expect("decodes");
    assert_eq!(sent.map(|(p, _)| p), Some(Packet::Connect(connect(0))));

    let refused = open(&[connack(false, 5)], 0, timeout)
        .err()
        .expect("refused");
    assert_eq!(refused.kind(), io::ErrorKind::PermissionDenied);
    let early = open(&[Packet::Pingresp], 0, timeout)
        .err()
        .expect("not CONNACK");
    assert_eq!(early.kind(), io::ErrorKind::InvalidData);
    let silent = open(&[], 0, timeout).err().expect("no answer");
    assert_eq!(silent.kind(), io::ErrorKind::TimedOut);
    let closed = Connection::open(Script::new(&[], 1, true), &connect(0), timeout)
        .err()
        .expect("closed");
    assert_eq!(closed.kind(), io::ErrorKind::UnexpectedEof);
}

#[test]
fn packets_split_across_reads_are_reassembled() {
    let message = Packet::Publish(Publish {
        topic: "t".into(),
        qos: 1,
        packet_id: Some(9),
        dup: false,
        retain: false,
        payload: vec![7; 100],
    });
    let (mut conn, _) = open(
        &[connack(false, 0), message.clone(), Packet::Pingresp],
        0,
        Duration::from_millis(50),
    )
    .expect("accepted");
    let soon = Instant::now() + Duration::from_millis(200);
    assert_eq!(conn.next(soon).expect("reads"), Some(message));
    assert_eq!(conn.next(soon).expect("reads"), Some(Packet::Pingresp));
    assert_eq!(conn.next(Instant::now()).expect("times out"), None);
    // Garbage from the broker is an error, not a packet.
    conn.buf.extend([0xf0, 0x00]);
    assert!(conn.next(Instant::now()).is_err());
}

#[test]
fn a_long_wait_pings_and_an_unanswered_ping_fails() {
    let (mut conn, _) =
        open(&[connack(false, 0)], 1, Duration::from_millis(100)).expect("accepted");
    let before = conn.stream.output.len();
    // Half the one-second keep-alive passes inside this wait: PINGREQ is
    // sent, and with no PINGRESP within the 100 ms I/O timeout, it fails.
    let err = conn
        .next(Instant::now() + Duration::from_secs(5))
        .expect_err("no PINGRESP");
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert_eq!(conn.stream.output[before..], [0xc0, 0x00]);

    let (mut quiet, _) = open(&[connack(false, 0)], 0, Duration::from_millis(10)).expect("ok");
    let before = quiet.stream.output.len();
    assert_eq!(
        quiet.next(Instant::now() + Duration::from_millis(50)).ok(),
        Some(None)
    );
    assert_eq!(quiet.stream.output.len(), before, "keep-alive 0: no pings");
}

#[test]
fn packet_ids_skip_zero() {
    let (mut conn, _) = open(&[connack(false, 0)], 0, Duration::from_millis(10)).expect("ok");
    conn.next_id = u16::MAX - 1;
    let ids: Vec<u16> = (0..3).map(|_| conn.packet_id()).collect();
    assert_eq!(ids, [u16::MAX, 1, 2]);
}

#[test]
fn a_connection_silent_for_the_keep_alive_is_pinged_before_use() {
    let (mut conn, _) = open(
        &[connack(false, 0), Packet::Pingresp],
        10,
        Duration::from_millis(50),
    )
    .expect("accepted");
    let before = conn.stream.output.len();
    conn.ensure_alive(|_, _| Ok(())).expect("recently used");
    assert_eq!(conn.stream.output.len(), before, "no ping needed");

    conn.last_sent = Instant::now()
        .checked_sub(Duration::from_secs(11))
        .expect("the clock is past 11 s");
    conn.ensure_alive(|_, _| Ok(())).expect("answered");
    assert_eq!(conn.stream.output[before..], [0xc0, 0x00]);
    // Silent that long again, and this time the broker does not answer.
    conn.last_sent = Instant::now()
        .checked_sub(Duration::from_secs(11))
        .expect("the clock is past 11 s");
    assert!(conn.ensure_alive(|_, _| Ok(())).is_err());
}
