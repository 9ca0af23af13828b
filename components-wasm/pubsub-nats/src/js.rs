//! JetStream over a [`Client`]: the `$JS.API` requests this component needs
//! (stream lookup and creation, durable pull consumers, fetching batches),
//! publishing with acknowledgement, and settling delivered messages.
//!
//! An `Err` from here means the connection must be dropped; a request the
//! server refused comes back as the inner `Err(ApiError)`.

use crate::wire::{Client, Msg, message_size, publish_frame};
use serde_json::{Value, json};
use std::io::{self, Read, Write};
use std::time::Duration;

/// JetStream's error code for a stream that does not exist.
const STREAM_NOT_FOUND: u64 = 10059;
/// JetStream's error code when a stream's subjects would overlap another's.
const SUBJECTS_OVERLAP: u64 = 10065;

/// A refusal from the JetStream API (or no JetStream at all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// JetStream's `err_code`, or 0 when there is none (no responders).
    pub code: u64,
    pub description: String,
}

/// What the server said to one request.
pub type Answer<T> = Result<T, ApiError>;

/// A delivered message not yet settled.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// The `$JS.ACK...` subject that settles it.
    pub ack_subject: String,
    pub content_type: String,
    pub data: Vec<u8>,
    pub attempt: u32,
}

/// Sends a request and waits for the reply on a fresh inbox subject,
/// skipping anything else that arrives (stale replies of earlier requests).
fn request<S: Read + Write>(client: &mut Client<S>, subject: &str, body: &[u8]) -> io::Result<Msg> {
    let reply = client.reply_subject();
    client.write(&publish_frame(subject, Some(&reply), &[], body))?;
    loop {
        let msg = client.next_message()?;
        if msg.subject == reply {
            return Ok(msg);
        }
        release_stray(client, &msg)?;
    }
}

/// A JetStream API call: the JSON reply, or its error.
pub(crate) fn api<S: Read + Write>(
    client: &mut Client<S>,
    subject: &str,
    body: &Value,
) -> io::Result<Answer<Value>> {
    let msg = request(client, subject, body.to_string().as_bytes())?;
    Ok(api_answer(&msg))
}

fn api_answer(msg: &Msg) -> Answer<Value> {
    if msg.status() == Some(503) {
        return Err(ApiError {
            code: 0,
            description:
                "no JetStream responded (is JetStream enabled, does a stream capture the subject?)"
                    .into(),
        });
    }
    let value: Value = serde_json::from_slice(&msg.payload).map_err(|err| ApiError {
        code: 0,
        description: format!("the reply is not JSON: {err}"),
    })?;
    match value.get("error") {
        Some(error) => Err(ApiError {
            code: error["err_code"].as_u64().unwrap_or(0),
            description: error["description"]
                .as_str()
                .unwrap_or("unknown error")
                .to_string(),
        }),
        None => Ok(value),
    }
}

/// The stream whose subjects capture `subject`, if any.
pub fn find_stream<S: Read + Write>(
    client: &mut Client<S>,
    subject: &str,
) -> io::Result<Answer<Option<String>>> {
    let answer = api(
        client,
        "$JS.API.STREAM.NAMES",
        &json!({ "subject": subject }),
    )?;
    Ok(answer.map(|value| {
        value["streams"]
            .get(0)
            .and_then(Value::as_str)
            .map(String::from)
    }))
}

/// Makes sure stream `name` exists and captures `subject`: creates it with
/// that subject, or adds the subject to an existing stream's list (a
/// subject already covered by one of its wildcards is left alone).
pub fn ensure_stream<S: Read + Write>(
    client: &mut Client<S>,
    name: &str,
    subject: &str,
) -> io::Result<Answer<()>> {
    let info = api(client, &format!("$JS.API.STREAM.INFO.{name}"), &json!({}))?;
    let mut config = match info {
        Ok(info) => info["config"].clone(),
        Err(error) if error.code == STREAM_NOT_FOUND => {
            let config = json!({ "name": name, "subjects": [subject], "storage": "file" });
            return Ok(api(client, &format!("$JS.API.STREAM.CREATE.{name}"), &config)?.map(drop));
        }
        Err(error) => return Ok(Err(error)),
    };
    let subjects = config["subjects"].as_array().cloned().unwrap_or_default();
    if subjects
        .iter()
        .any(|s| s.as_str().is_some_and(|s| subject_matches(s, subject)))
    {
        return Ok(Ok(()));
    }
    let mut extended = subjects;
    extended.push(subject.into());
    config["subjects"] = Value::Array(extended);
    match api(client, &format!("$JS.API.STREAM.UPDATE.{name}"), &config)? {
        Err(error) if error.code == SUBJECTS_OVERLAP => Ok(Ok(())),
        answer => Ok(answer.map(drop)),
    }
}

/// Whether the subject pattern `pattern` (with `*` and `>`) matches `subject`.
fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut tokens = subject.split('.');
    for want in pattern.split('.') {
        match (want, tokens.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (want, Some(token)) if want == token => {}
            _ => return false,
        }
    }
    tokens.next().is_none()
}

/// What a durable pull consumer is created with.
pub struct ConsumerSpec<'a> {
    pub stream: &'a str,
    pub durable: &'a str,
    pub filter_subject: &'a str,
    pub ack_wait: Duration,
    pub max_deliver: Option<i64>,
}

/// Creates the durable pull consumer, or finds it already there.
pub fn ensure_consumer<S: Read + Write>(
    client: &mut Client<S>,
    spec: &ConsumerSpec,
) -> io::Result<Answer<()>> {
    let mut config = json!({
        "durable_name": spec.durable,
        "deliver_policy": "all",
        "ack_policy": "explicit",
        "ack_wait": spec.ack_wait.as_nanos() as u64,
        "filter_subject": spec.filter_subject,
        "replay_policy": "instant",
    });
    if let Some(max_deliver) = spec.max_deliver {
        config["max_deliver"] = max_deliver.into();
    }
    let subject = format!(
        "$JS.API.CONSUMER.DURABLE.CREATE.{}.{}",
        spec.stream, spec.durable
    );
    let body = json!({ "stream_name": spec.stream, "config": config });
    Ok(api(client, &subject, &body)?.map(drop))
}

/// Fetches up to `batch` messages from a durable consumer: what is there at
/// once, or when nothing is, the first to arrive within `wait`.
pub fn fetch<S: Read + Write>(
    client: &mut Client<S>,
    stream: &str,
    durable: &str,
    batch: u32,
    wait: Duration,
) -> io::Result<Answer<Vec<Delivered>>> {
    let now = fetch_once(
        client,
        stream,
        durable,
        json!({ "batch": batch, "no_wait": true }),
    )?;
    match now {
        Ok(messages) if messages.is_empty() && !wait.is_zero() => {
            // Waiting for a full batch would hold the first message back
            // until `wait` ends: wait for one, then take what followed it.
            let expires = json!({ "batch": 1, "expires": wait.as_nanos() as u64 });
            let mut first = match fetch_once(client, stream, durable, expires)? {
                Ok(first) => first,
                Err(error) => return Ok(Err(error)),
            };
            if !first.is_empty() && batch > 1 {
                let rest = json!({ "batch": batch - 1, "no_wait": true });
                if let Ok(rest) = fetch_once(client, stream, durable, rest)? {
                    first.extend(rest);
                }
            }
            Ok(Ok(first))
        }
        answer => Ok(answer),
    }
}

/// One `MSG.NEXT` request: messages until the batch is full or a status
/// (404 no messages, 408 expired, 409 ...) ends it.
fn fetch_once<S: Read + Write>(
    client: &mut Client<S>,
    stream: &str,
    durable: &str,
    body: Value,
) -> io::Result<Answer<Vec<Delivered>>> {
    let batch = body["batch"].as_u64().unwrap_or(1) as usize;
    let reply = client.reply_subject();
    let subject = format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}");
    client.write(&publish_frame(
        &subject,
        Some(&reply),
        &[],
        body.to_string().as_bytes(),
    ))?;
    let mut delivered = Vec::new();
    while delivered.len() < batch {
        let msg = client.next_message()?;
        // Deliveries keep their own subject, statuses come to the reply
        // subject: tell ours by the consumer in the ack subject.
        let ours = match &msg.reply {
            Some(ack) => ack_owner(ack) == Some((stream, durable)),
            None => msg.subject == reply,
        };
        if !ours {
            release_stray(client, &msg)?;
            continue;
        }
        match (msg.status(), &msg.reply) {
            (Some(100), _) => {}
            (Some(404 | 408), _) => break,
            (Some(409), _) if delivered.is_empty() => {
                return Ok(Err(ApiError {
                    code: 409,
                    description: String::from_utf8_lossy(
                        msg.headers.as_deref().unwrap_or_default(),
                    )
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                }));
            }
            (Some(status), _) if status >= 300 => break,
            (_, Some(ack)) if ack.starts_with("$JS.ACK.") => delivered.push(Delivered {
                ack_subject: ack.clone(),
                content_type: msg.header("Content-Type").unwrap_or_default(),
                attempt: delivery_count(ack),
                data: msg.payload,
            }),
            (_, other) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("a fetched message without an ack subject: {other:?}"),
                ));
            }
        }
    }
    Ok(Ok(delivered))
}

/// A message delivered for an earlier, abandoned request goes straight back
/// to the consumer, rather than waiting out the ack wait.
fn release_stray<S: Read + Write>(client: &mut Client<S>, msg: &Msg) -> io::Result<()> {
    match &msg.reply {
        Some(ack) if ack.starts_with("$JS.ACK.") => {
            client.write(&publish_frame(ack, None, &[], b"-NAK"))
        }
        _ => Ok(()),
    }
}

/// Where an ack subject's stream name sits: `$JS.ACK.<stream>.<consumer>.
/// <delivered>...` has 9 tokens; with a domain and account hash,
/// `$JS.ACK.<domain>.<hash>.<stream>.<consumer>.<delivered>...` has 11 or more.
fn stream_token(tokens: &[&str]) -> usize {
    if tokens.len() == 9 { 2 } else { 4 }
}

/// The stream and consumer an ack subject belongs to.
fn ack_owner(ack_subject: &str) -> Option<(&str, &str)> {
    let tokens: Vec<&str> = ack_subject.split('.').collect();
    let at = stream_token(&tokens);
    Some((tokens.get(at).copied()?, tokens.get(at + 1).copied()?))
}

/// The delivery count in an ack subject; 1 when it has none.
pub fn delivery_count(ack_subject: &str) -> u32 {
    let tokens: Vec<&str> = ack_subject.split('.').collect();
    let at = stream_token(&tokens) + 2;
    tokens.get(at).and_then(|n| n.parse().ok()).unwrap_or(1)
}

/// What became of one message given to [`publish`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// JetStream's answer: stored, or refused with its error.
    Answered(Answer<()>),
    /// Not sent: its headers and payload (`size` bytes) are over the
    /// server's `max_payload` (`limit`). The server would not refuse it
    /// alone but close the connection, failing the whole batch with an I/O
    /// error that says nothing of the size.
    TooLarge { size: usize, limit: usize },
}

/// Publishes each message to `subject` with its content type and waits for
/// every JetStream acknowledgement: one write, one answer per message sent.
/// Messages over the server's `max_payload` are not sent.
pub fn publish<S: Read + Write>(
    client: &mut Client<S>,
    subject: &str,
    messages: &[(&str, &[u8])],
) -> io::Result<Vec<Published>> {
    let limit = client.max_payload();
    let mut frames = Vec::new();
    // Per message: its outcome once known, and the reply subject it was sent with.
    let mut outcomes: Vec<Option<Published>> = Vec::with_capacity(messages.len());
    let mut replies: Vec<Option<String>> = Vec::with_capacity(messages.len());
    for (content_type, data) in messages {
        let headers: &[(&str, &str)] = if content_type.is_empty() {
            &[]
        } else {
            &[("Content-Type", content_type)]
        };
        let size = message_size(headers, data);
        if let Some(limit) = limit.filter(|&limit| size > limit) {
            outcomes.push(Some(Published::TooLarge { size, limit }));
            replies.push(None);
            continue;
        }
        let reply = client.reply_subject();
        frames.extend_from_slice(&publish_frame(subject, Some(&reply), headers, data));
        outcomes.push(None);
        replies.push(Some(reply));
    }
    let mut missing = replies.iter().flatten().count();
    if missing > 0 {
        client.write(&frames)?;
    }
    while missing > 0 {
        let msg = client.next_message()?;
        let sent_with = |reply: &Option<String>| reply.as_deref() == Some(msg.subject.as_str());
        match replies.iter().position(sent_with) {
            Some(index) if outcomes[index].is_none() => {
                outcomes[index] = Some(Published::Answered(api_answer(&msg).map(drop)));
                missing -= 1;
            }
            _ => release_stray(client, &msg)?,
        }
    }
    Ok(outcomes
        .into_iter()
        .map(|outcome| outcome.unwrap_or(Published::Answered(Ok(()))))
        .collect())
}

/// Settles delivered messages: `+ACK`, or `-NAK` with a redelivery delay.
/// Waits until the server has read them. Ids that are not ack subjects are
/// ignored, so a forged id cannot make the component publish elsewhere.
pub fn settle<S: Read + Write>(
    client: &mut Client<S>,
    ack_subjects: &[String],
    nak_delay: Option<Duration>,
) -> io::Result<()> {
    let body = match nak_delay {
        None => "+ACK".to_string(),
        Some(delay) if delay.is_zero() => "-NAK".to_string(),
        Some(delay) => format!("-NAK {}", json!({ "delay": delay.as_nanos() as u64 })),
    };
    let frames: Vec<u8> = ack_subjects
        .iter()
        .filter(|subject| is_ack_subject(subject))
        .flat_map(|subject| publish_frame(subject, None, &[], body.as_bytes()))
        .collect();
    if frames.is_empty() {
        return Ok(());
    }
    client.write_and_ping(&frames)
}

/// Whether `subject` is a JetStream ack subject and a single protocol token.
fn is_ack_subject(subject: &str) -> bool {
    subject.starts_with("$JS.ACK.")
        && !subject.contains(|c: char| c.is_whitespace() || c == '*' || c == '>')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_patterns_match_as_nats_does() {
        let cases = [
            ("orders", "orders", true),
            ("orders.*", "orders.eu", true),
            ("orders.*", "orders.eu.x", false),
            ("orders.>", "orders.eu.x", true),
            ("orders.>", "orders", false),
            ("orders", "orders.eu", false),
        ];
        for (pattern, subject, expected) in cases {
            assert_eq!(
                subject_matches(pattern, subject),
                expected,
                "{pattern} {subject}"
            );
        }
    }

    #[test]
    fn delivery_counts_come_from_either_ack_subject_form() {
        assert_eq!(delivery_count("$JS.ACK.S.C.3.10.9.1700000000.0"), 3);
        assert_eq!(
            delivery_count("$JS.ACK.dom.hash.S.C.4.10.9.1700000000.0.rnd"),
            4
        );
        assert_eq!(delivery_count("$JS.ACK.bad"), 1);
        assert_eq!(
            ack_owner("$JS.ACK.S.C.3.10.9.1700000000.0"),
            Some(("S", "C"))
        );
        assert_eq!(
            ack_owner("$JS.ACK.dom.hash.S.C.4.10.9.1.0.rnd"),
            Some(("S", "C"))
        );
        assert!(is_ack_subject("$JS.ACK.S.C.1.1.1.1.0"));
        assert!(
            !is_ack_subject("orders")
                && !is_ack_subject("$JS.ACK.a b")
                && !is_ack_subject("$JS.ACK.>")
        );
    }
}
