//! The holder record of a consumer session: which instance holds it, and
//! since when. MQTT lets only one connection use a client id (a second one
//! takes the session over and drops the first), so instances read this
//! record before connecting and leave a session another live instance
//! holds, instead of knocking each other off in turn.
//!
//! The record is a retained message on the session's holder topic, written
//! by the holder when it connects and again while it is active, and deleted
//! by its will (an empty retained message) the moment its connection drops
//! without a `DISCONNECT`: a crashed or discarded instance frees its session
//! at once. A record not renewed within the lease (a broker restart loses
//! connections without sending wills) is stale and free to take.

use std::time::{Duration, SystemTime};

/// Whether this instance may connect to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// No live holder: connect.
    Free,
    /// The record names this instance (it reconnects after an error).
    Mine,
    /// Another instance holds it and renewed its record within the lease.
    Taken,
}

/// The record's payload: the holder's instance name and the time, in Unix
/// milliseconds.
pub fn record(instance: &str, now_ms: u64) -> Vec<u8> {
    format!("{instance} {now_ms}").into_bytes()
}

/// What a record (`None` or empty: no holder) means for `instance`. A
/// record that does not parse is treated as no holder, so garbage on the
/// topic cannot lock a session forever.
pub fn claim(record: Option<&[u8]>, instance: &str, now_ms: u64, lease: Duration) -> Claim {
    let Some((holder, at_ms)) = record.and_then(parse) else {
        return Claim::Free;
    };
    if holder == instance {
        Claim::Mine
    } else if u128::from(now_ms.saturating_sub(at_ms)) >= lease.as_millis() {
        Claim::Free
    } else {
        Claim::Taken
    }
}

fn parse(record: &[u8]) -> Option<(&str, u64)> {
    let (holder, at_ms) = std::str::from_utf8(record).ok()?.split_once(' ')?;
    Some((holder, at_ms.parse().ok()?))
}

/// The wall clock in Unix milliseconds (0 before 1970), comparable across
/// the instances and replicas that read one record.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_record_of_another_instance_is_the_only_taken_one() {
        let lease = Duration::from_secs(90);
        let now = 1_000_000_000;
        let theirs = record("b1", now - 1_000);
        let cases: &[(Option<&[u8]>, Claim)] = &[
            (None, Claim::Free),
            (Some(b""), Claim::Free),
            (Some(b"garbage"), Claim::Free),
            (Some(b"b1 soon"), Claim::Free),
            (Some(&theirs), Claim::Taken),
            (Some(&record("a1", now - 1_000)), Claim::Mine),
            (Some(&record("a1", now - 900_000)), Claim::Mine),
            (Some(&record("b1", now - 90_000)), Claim::Free),
            // A clock ahead of ours: live until it is a lease old.
            (Some(&record("b1", now + 5_000)), Claim::Taken),
        ];
        for (record, expected) in cases {
            assert_eq!(claim(*record, "a1", now, lease), *expected, "{record:?}");
        }
        assert!(now_ms() > 1_600_000_000_000);
    }
}
