//! The broker's operations as Redis Streams commands, over any
//! [`Connection`], so they are tested natively against a real Redis.
//!
//! An `Err` from here means the connection must be dropped; a command the
//! server refused comes back as the inner `Err(message)`.

use outrig_sdk::pubsub::OutgoingMessage;
use redis_wire::{Cmd, Connection, Reply, unexpected};
use std::io::{self, Read, Write};
use std::time::Duration;

/// What the server said to one command: done, or its error message.
pub type Answer<T> = Result<T, String>;

/// The stream field holding the payload, as Dapr writes it.
const DATA: &str = "data";
/// The stream field holding the payload's content type (ignored by Dapr).
const CONTENT_TYPE: &str = "contentType";

/// One stream entry handed to this consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: String,
    pub data: Vec<u8>,
    pub content_type: String,
}

/// Appends each message to the `topic` stream (created on demand), trimming
/// it to about `max_len` entries; one round trip, one answer per message.
pub fn publish<S: Read + Write>(
    conn: &mut Connection<S>,
    topic: &str,
    messages: &[OutgoingMessage],
    max_len: Option<u64>,
) -> io::Result<Vec<Answer<()>>> {
    let commands: Vec<Cmd> = messages
        .iter()
        .map(|message| {
            let mut cmd = Cmd::new("XADD").arg(topic);
            if let Some(max_len) = max_len {
                cmd = cmd.arg("MAXLEN").arg("~").arg(max_len.to_string());
            }
            cmd.arg("*")
                .arg(DATA)
                .arg(&message.data)
                .arg(CONTENT_TYPE)
                .arg(&message.content_type)
        })
        .collect();
    let replies = conn.pipeline(&commands)?;
    replies
        .into_iter()
        .map(|reply| match reply {
            Reply::Bulk(Some(_)) => Ok(Ok(())),
            Reply::Error(message) => Ok(Err(message)),
            other => Err(unexpected("XADD", Some(&other))),
        })
        .collect()
}

/// Creates `group` on the `topic` stream (and the stream) if missing. A new
/// group starts at the stream's first entry, as Dapr creates it.
pub fn ensure_group<S: Read + Write>(
    conn: &mut Connection<S>,
    topic: &str,
    group: &str,
) -> io::Result<Answer<()>> {
    let cmd = Cmd::new("XGROUP")
        .arg("CREATE")
        .arg(topic)
        .arg(group)
        .arg("0")
        .arg("MKSTREAM");
    match conn.run(cmd)? {
        Reply::Status(_) => Ok(Ok(())),
        Reply::Error(message) if message.starts_with("BUSYGROUP") => Ok(Ok(())),
        Reply::Error(message) => Ok(Err(message)),
        other => Err(unexpected("XGROUP CREATE", Some(&other))),
    }
}

/// Reads up to `count` entries never delivered to the group, waiting up to
/// `block` for the first (no wait when `None`).
pub fn read_new<S: Read + Write>(
    conn: &mut Connection<S>,
    topic: &str,
    group: &str,
    consumer: &str,
    count: u32,
    block: Option<Duration>,
) -> io::Result<Answer<Vec<Entry>>> {
    let mut cmd = Cmd::new("XREADGROUP")
        .arg("GROUP")
        .arg(group)
        .arg(consumer)
        .arg("COUNT")
        .arg(count.to_string());
    if let Some(block) = block {
        // BLOCK 0 would wait forever: ask for at least a millisecond.
        cmd = cmd.arg("BLOCK").arg(block.as_millis().max(1).to_string());
    }
    let cmd = cmd.arg("STREAMS").arg(topic).arg(">");
    match conn.run(cmd)? {
        Reply::Array(None) => Ok(Ok(Vec::new())),
        Reply::Array(Some(streams)) => match streams.as_slice() {
            [] => Ok(Ok(Vec::new())),
            [Reply::Array(Some(stream))] => match stream.as_slice() {
                [_, entries] => entries_from(entries, "XREADGROUP").map(Ok),
                _ => Err(unexpected(
                    "XREADGROUP",
                    Some(&Reply::Array(Some(stream.clone()))),
                )),
            },
            _ => Err(unexpected("XREADGROUP", streams.first())),
        },
        Reply::Error(message) => Ok(Err(message)),
        other => Err(unexpected("XREADGROUP", Some(&other))),
    }
}

/// Takes over up to `count` entries of the group pending longer than
/// `min_idle` (with any consumer), scanning the pending list from `cursor`.
/// Returns the cursor to continue from (`0-0` once the scan wrapped) and the
/// entries still in the stream.
pub fn reclaim<S: Read + Write>(
    conn: &mut Connection<S>,
    topic: &str,
    group: &str,
    consumer: &str,
    min_idle: Duration,
    cursor: &str,
    count: u32,
) -> io::Result<Answer<(String, Vec<Entry>)>> {
    let cmd = Cmd::new("XAUTOCLAIM")
        .arg(topic)
        .arg(group)
        .arg(consumer)
        .arg(min_idle.as_millis().to_string())
        .arg(cursor)
        .arg("COUNT")
        .arg(count.max(1).to_string());
    match conn.run(cmd)? {
        Reply::Array(Some(parts)) => match parts.as_slice() {
            [Reply::Bulk(Some(next)), entries, ..] => {
                let entries = entries_from(entries, "XAUTOCLAIM")?;
                Ok(Ok((String::from_utf8_lossy(next).into_owned(), entries)))
            }
            _ => Err(unexpected("XAUTOCLAIM", parts.first())),
        },
        Reply::Error(message) => Ok(Err(message)),
        other => Err(unexpected("XAUTOCLAIM", Some(&other))),
    }
}

/// How many times each pending entry has been delivered, in one round trip;
/// 1 for an entry no longer pending.
pub fn delivery_counts<S: Read + Write>(
    conn: &mut Connection<S>,
    topic: &str,
    group: &str,
    ids: &[&str],
) -> io::Result<Vec<u32>> {
    let commands: Vec<Cmd> = ids
        .iter()
        .map(|id| {
            Cmd::new("XPENDING")
                .arg(topic)
                .arg(group)
                .arg(id)
                .arg(id)
                .arg("1")
        })
        .collect();
    let replies = conn.pipeline(&commands)?;
    Ok(replies.iter().map(delivery_count).collect())
}

/// The delivery count in one `XPENDING` range reply.
fn delivery_count(reply: &Reply) -> u32 {
    match reply {
        Reply::Array(Some(rows)) => match rows.first() {
            Some(Reply::Array(Some(row))) => match row.get(3) {
                Some(Reply::Integer(n)) => u32::try_from(*n).unwrap_or(u32::MAX).max(1),
                _ => 1,
            },
            _ => 1,
        },
        _ => 1,
    }
}

/// Acknowledges entries of one group; ids no longer pending are ignored, and
/// so is a group or stream that no longer exists.
pub fn ack<S: Read + Write>(
    conn: &mut Connection<S>,
    topic: &str,
    group: &str,
    ids: &[&str],
) -> io::Result<Answer<()>> {
    let cmd = ids
        .iter()
        .fold(Cmd::new("XACK").arg(topic).arg(group), |cmd, id| {
            cmd.arg(id)
        });
    settled(conn.run(cmd)?, "XACK")
}

/// Makes pending entries due for reclaim after `delay`: claims them for
/// `consumer` with their idle time set to `processing_timeout - delay`, so a
/// scan with that timeout picks them up `delay` from now (at most
/// `processing_timeout`: Redis keeps one idle clock per entry). `JUSTID`
/// leaves the delivery count alone.
pub fn nack<S: Read + Write>(
    conn: &mut Connection<S>,
    topic: &str,
    group: &str,
    consumer: &str,
    ids: &[&str],
    delay: Duration,
    processing_timeout: Duration,
) -> io::Result<Answer<()>> {
    let idle = processing_timeout.saturating_sub(delay);
    let cmd = Cmd::new("XCLAIM")
        .arg(topic)
        .arg(group)
        .arg(consumer)
        .arg("0");
    let cmd = ids
        .iter()
        .fold(cmd, |cmd, id| cmd.arg(id))
        .arg("IDLE")
        .arg(idle.as_millis().to_string())
        .arg("JUSTID");
    settled(conn.run(cmd)?, "XCLAIM")
}

/// The answer to a settling command: `NOGROUP` means the stream or group is
/// gone, and with it the entries, so there is nothing left to settle.
fn settled(reply: Reply, what: &str) -> io::Result<Answer<()>> {
    match reply {
        Reply::Integer(_) | Reply::Array(_) => Ok(Ok(())),
        Reply::Error(message) if message.starts_with("NOGROUP") => Ok(Ok(())),
        Reply::Error(message) => Ok(Err(message)),
        other => Err(unexpected(what, Some(&other))),
    }
}

/// Entries from a `[[id, [field, value, ...]], ...]` reply; entries whose
/// fields are nil (deleted from the stream while pending) are skipped.
fn entries_from(reply: &Reply, what: &str) -> io::Result<Vec<Entry>> {
    let Reply::Array(Some(items)) = reply else {
        return Err(unexpected(what, Some(reply)));
    };
    let mut entries = Vec::with_capacity(items.len());
    for item in items {
        let Reply::Array(Some(parts)) = item else {
            return Err(unexpected(what, Some(item)));
        };
        match parts.as_slice() {
            [Reply::Bulk(Some(id)), Reply::Array(Some(fields))] => {
                entries.push(entry_from(id, fields, what)?);
            }
            [Reply::Bulk(Some(_)), Reply::Array(None) | Reply::Bulk(None)] => {}
            _ => return Err(unexpected(what, Some(item))),
        }
    }
    Ok(entries)
}

fn entry_from(id: &[u8], fields: &[Reply], what: &str) -> io::Result<Entry> {
    let mut entry = Entry {
        id: String::from_utf8_lossy(id).into_owned(),
        data: Vec::new(),
        content_type: String::new(),
    };
    for pair in fields.chunks(2) {
        let [Reply::Bulk(Some(name)), Reply::Bulk(Some(value))] = pair else {
            return Err(unexpected(what, pair.first()));
        };
        match name.as_slice() {
            n if n == DATA.as_bytes() => entry.data = value.clone(),
            n if n == CONTENT_TYPE.as_bytes() => {
                entry.content_type = String::from_utf8_lossy(value).into_owned();
            }
            _ => {}
        }
    }
    Ok(entry)
}
