//! The names this component uses on the broker: client ids, the shared
//! subscription a consumer group reads through, and the control topics of a
//! consumer session. Every name is a pure function of the configuration and
//! the subscription, so every instance (and every replica) computes the same
//! ones.

use outrig_sdk::{Error, Result};

/// `name` in characters safe in a client id, a share name and a topic
/// level: ASCII letters, digits and `-` stay, every other byte becomes `_`
/// and two hex digits. Injective.
pub fn escape(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' => (b as char).to_string(),
            other => format!("_{other:02x}"),
        })
        .collect()
}

/// FNV-1a over the parts, each ended by a NUL (which no topic or group
/// contains): a stable hash, the same in every instance and release, unlike
/// std's randomly keyed one.
fn stable_hash(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &byte in part.as_bytes().iter().chain(&[0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// The client id of the consumer session for one subscription:
/// `<consumerID or group>-<hash of group and topic>`. One session per
/// replica, group and topic, whatever instance holds it, so its messages
/// are never stranded in a session no instance will resume.
pub fn consumer_client_id(consumer_id: Option<&str>, group: &str, topic: &str) -> String {
    let base = escape(consumer_id.unwrap_or(group));
    format!("{base}-{:016x}", stable_hash(&[group, topic]))
}

/// The client id of an instance's publishing connection, which has a
/// clean session: `<consumerID or "outrig">-pub-<instance>`.
pub fn publisher_client_id(consumer_id: Option<&str>, instance: &str) -> String {
    format!("{}-pub-{instance}", escape(consumer_id.unwrap_or("outrig")))
}

/// The filter a consumer group subscribes with: the topic shared among the
/// group (`$share/<group>/<topic>`), so each message goes to one session of
/// the group and every group gets every message. A topic that already names
/// a share is taken as it is.
pub fn group_filter(group: &str, topic: &str) -> String {
    if topic.starts_with("$share/") {
        topic.to_string()
    } else {
        format!("$share/{}/{topic}", escape(group))
    }
}

/// Where a consumer session's holder record is retained.
pub fn holder_topic(prefix: &str, client_id: &str) -> String {
    format!("{prefix}/{client_id}/holder")
}

/// Where other instances send settlements for a consumer session.
pub fn settle_topic(prefix: &str, client_id: &str) -> String {
    format!("{prefix}/{client_id}/settle")
}

/// Refuses a topic MQTT does not allow to publish to (wildcards, NUL, over
/// 65535 bytes), instead of letting the broker drop the connection.
pub fn check_topic_name(topic: &str) -> Result<()> {
    if topic.contains(['+', '#']) {
        return Err(Error::invalid(format!(
            "topic `{topic}`: `+` and `#` are wildcards, not allowed when publishing"
        )));
    }
    check_length(topic)
}

/// Refuses a subscription topic that is not a valid MQTT filter: `+` must
/// fill a whole level and `#` must be the whole last level.
pub fn check_topic_filter(filter: &str) -> Result<()> {
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        let whole_wildcard = *level == "+" || (*level == "#" && i + 1 == levels.len());
        if level.contains(['+', '#']) && !whole_wildcard {
            return Err(Error::invalid(format!(
                "topic `{filter}`: a wildcard must fill a level (`+`), or the last one (`#`)"
            )));
        }
    }
    check_length(filter)
}

fn check_length(topic: &str) -> Result<()> {
    if topic.contains('\0') || topic.len() > usize::from(u16::MAX) {
        return Err(Error::invalid(
            "a topic may not contain U+0000 or exceed 65535 bytes",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_and_distinct() {
        assert_eq!(escape("orders.eu/1"), "orders_2eeu_2f1");
        assert_ne!(escape("a_b"), escape("a.b"));
        let id = consumer_client_id(None, "app", "orders");
        assert_eq!(id, consumer_client_id(None, "app", "orders"));
        assert!(id.starts_with("app-"), "{id}");
        assert_ne!(id, consumer_client_id(None, "app", "orders2"));
        assert_ne!(id, consumer_client_id(None, "app2", "orders"));
        // The parts are delimited: moving a byte between them changes it.
        assert_ne!(
            consumer_client_id(Some("r"), "ab", "c"),
            consumer_client_id(Some("r"), "a", "bc")
        );
        assert!(consumer_client_id(Some("r/1"), "app", "t").starts_with("r_2f1-"));
        assert_eq!(publisher_client_id(None, "9f"), "outrig-pub-9f");
    }

    #[test]
    fn groups_share_topics_and_control_topics_are_per_session() {
        assert_eq!(group_filter("my app", "a/+/c"), "$share/my_20app/a/+/c");
        assert_eq!(group_filter("g", "$share/x/t"), "$share/x/t");
        assert_eq!(holder_topic("p", "c-1"), "p/c-1/holder");
        assert_eq!(settle_topic("p", "c-1"), "p/c-1/settle");
    }

    #[test]
    fn topics_and_filters_are_checked() {
        for ok in ["a", "a/b", "/a/", "é"] {
            assert!(check_topic_name(ok).is_ok(), "{ok}");
            assert!(check_topic_filter(ok).is_ok(), "{ok}");
        }
        for filter in ["+", "a/+/c", "#", "a/#", "+/#"] {
            assert!(check_topic_filter(filter).is_ok(), "{filter}");
            assert!(check_topic_name(filter).is_err(), "{filter}");
        }
        for bad in ["a+", "a/#/b", "a#", "a\0b"] {
            assert!(check_topic_filter(bad).is_err(), "{bad}");
        }
        assert!(check_topic_name(&"x".repeat(65_536)).is_err());
    }
}
