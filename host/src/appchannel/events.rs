//! Pub/sub events for the app: what one delivery carries and what the app's
//! answer means, the same for HTTP and gRPC apps.
//!
//! The meanings are Dapr's: `SUCCESS` (or a 2xx without a status) settles the
//! event; `RETRY` (or any failure but the ones below) asks for it again
//! later; `DROP` (or HTTP 404, or gRPC `UNIMPLEMENTED`) gives up on it.

use serde_json::Value;

/// The media type of one CloudEvent in JSON.
pub const CLOUD_EVENT_CONTENT_TYPE: &str = "application/cloudevents+json";
/// The media type of a bulk delivery's body.
pub const CLOUD_EVENT_BATCH_CONTENT_TYPE: &str = "application/cloudevents-batch+json";

/// One event for one of the app's subscription routes.
#[derive(Debug, Clone, Copy)]
pub struct TopicDelivery<'a> {
    /// The pub/sub component it came through.
    pub pubsub: &'a str,
    /// The topic.
    pub topic: &'a str,
    /// The app's path chosen by the routing rules.
    pub route: &'a str,
    /// The CloudEvent.
    pub event: &'a Value,
}

/// Several events for one route, in one call (bulk subscribe).
#[derive(Debug, Clone)]
pub struct BulkDelivery<'a> {
    /// The pub/sub component they came through.
    pub pubsub: &'a str,
    /// The topic.
    pub topic: &'a str,
    /// The app's path.
    pub route: &'a str,
    /// The events with the ids the app's statuses refer to.
    pub entries: Vec<BulkEntry<'a>>,
}

/// One event of a bulk delivery.
#[derive(Debug, Clone)]
pub struct BulkEntry<'a> {
    /// Names the entry in the app's answer.
    pub entry_id: String,
    /// The CloudEvent.
    pub event: &'a Value,
}

/// What the app made of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Handled: settle it.
    Success,
    /// Not handled now: deliver it again later.
    Retry,
    /// Never to be handled: discard it, or dead-letter it.
    Drop,
}

impl Verdict {
    /// Dapr's status word (`SUCCESS`, `RETRY`, `DROP`, any case). An unknown
    /// word is a retry, as in Dapr: the event is not lost over a typo.
    pub fn from_status(status: &str) -> Self {
        if status.is_empty() || status.eq_ignore_ascii_case("SUCCESS") {
            Verdict::Success
        } else if status.eq_ignore_ascii_case("DROP") {
            Verdict::Drop
        } else {
            if !status.eq_ignore_ascii_case("RETRY") {
                tracing::warn!(
                    status,
                    "the app answered an unknown pub/sub status; retrying"
                );
            }
            Verdict::Retry
        }
    }

    /// The verdict of an HTTP app's answer to one event.
    pub fn from_http(status: u16, body: &[u8]) -> Self {
        match status {
            200..=299 => status_field(body).map_or(Verdict::Success, |s| Verdict::from_status(&s)),
            404 => Verdict::Drop,
            _ => Verdict::Retry,
        }
    }

    /// The gRPC `TopicEventResponseStatus` number.
    pub fn from_grpc(status: i32) -> Self {
        match status {
            0 => Verdict::Success,
            2 => Verdict::Drop,
            _ => Verdict::Retry,
        }
    }
}

/// The `status` of a JSON answer; none when the body is empty or not such
/// JSON (Dapr then takes a 2xx as success).
fn status_field(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    Some(value.get("status")?.as_str()?.to_owned())
}

/// The verdicts of an HTTP app's answer to a bulk delivery, in entry order:
/// its `statuses` by `entryId`, an entry it did not mention retried; a
/// failed call applies to every entry.
pub fn bulk_verdicts_from_http(status: u16, body: &[u8], entry_ids: &[&str]) -> Vec<Verdict> {
    if !(200..=299).contains(&status) {
        let verdict = Verdict::from_http(status, body);
        return vec![verdict; entry_ids.len()];
    }
    let statuses: Vec<(String, String)> = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("statuses")?.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|entry| {
            let id = entry.get("entryId")?.as_str()?.to_owned();
            let status = entry.get("status")?.as_str().unwrap_or_default().to_owned();
            Some((id, status))
        })
        .collect();
    match_statuses(entry_ids, &statuses, |status: &String| {
        Verdict::from_status(status)
    })
}

/// `entry_ids`' verdicts from `(entry id, status)` pairs; a missing entry
/// is retried, so nothing is settled that the app did not answer for.
pub fn match_statuses<S>(
    entry_ids: &[&str],
    statuses: &[(String, S)],
    verdict: impl Fn(&S) -> Verdict,
) -> Vec<Verdict> {
    entry_ids
        .iter()
        .map(|id| {
            statuses
                .iter()
                .find(|(entry, _)| entry == id)
                .map_or(Verdict::Retry, |(_, status)| verdict(status))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_answers_mean_what_they_mean_in_dapr() {
        let cases: &[(u16, &str, Verdict)] = &[
            (200, "", Verdict::Success),
            (204, "", Verdict::Success),
            (200, r#"{"status":"SUCCESS"}"#, Verdict::Success),
            (200, r#"{"status":"success"}"#, Verdict::Success),
            (200, r#"{"status":"RETRY"}"#, Verdict::Retry),
            (200, r#"{"status":"DROP"}"#, Verdict::Drop),
            (200, r#"{"status":"MAYBE"}"#, Verdict::Retry),
            (200, r#"{"other":1}"#, Verdict::Success),
            (200, "not json", Verdict::Success),
            (404, "", Verdict::Drop),
            (500, r#"{"status":"SUCCESS"}"#, Verdict::Retry),
            (400, "", Verdict::Retry),
        ];
        for (status, body, expected) in cases {
            assert_eq!(
                Verdict::from_http(*status, body.as_bytes()),
                *expected,
                "{status} {body}"
            );
        }
    }

    #[test]
    fn bulk_statuses_are_matched_by_entry_id_and_missing_ones_retry() {
        let body =
            br#"{"statuses":[{"entryId":"b","status":"DROP"},{"entryId":"a","status":"SUCCESS"}]}"#;
        assert_eq!(
            bulk_verdicts_from_http(200, body, &["a", "b", "c"]),
            [Verdict::Success, Verdict::Drop, Verdict::Retry]
        );
        assert_eq!(
            bulk_verdicts_from_http(503, b"", &["a", "b"]),
            [Verdict::Retry, Verdict::Retry]
        );
        assert_eq!(bulk_verdicts_from_http(404, b"", &["a"]), [Verdict::Drop]);
    }

    #[test]
    fn grpc_statuses() {
        assert_eq!(Verdict::from_grpc(0), Verdict::Success);
        assert_eq!(Verdict::from_grpc(1), Verdict::Retry);
        assert_eq!(Verdict::from_grpc(2), Verdict::Drop);
        assert_eq!(Verdict::from_grpc(7), Verdict::Retry);
    }
}
