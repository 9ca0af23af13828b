//! The state operations as Redis round trips: reads are pipelined `HGETALL` +
//! `PTTL` pairs, writes are calls of the write script, several per pipeline.
//!
//! Works on any [`Connection`], so it is tested natively against a real Redis.
//! An `Err` from here means the connection must be dropped; per-key failures
//! reported by the server come back inside the `Ok`.

use crate::conn::{Connection, unexpected};
use crate::script::{self, Outcome, WriteOp};
use outrig_sdk::state::Item;
use redis_wire::{Cmd, Reply};
use std::io::{self, Read, Write};

/// What one key read gave: a value, a miss, or the server's complaint.
pub type ReadResult = Result<Option<Item>, String>;

/// Reads `keys` in one round trip. `now_unix_ms` turns Redis' remaining TTL
/// into the absolute expiry the contract reports.
pub fn read<S: Read + Write>(
    conn: &mut Connection<S>,
    keys: &[&str],
    now_unix_ms: u64,
) -> io::Result<Vec<ReadResult>> {
    let commands: Vec<Cmd> = keys
        .iter()
        .flat_map(|key| [Cmd::new("HGETALL").arg(key), Cmd::new("PTTL").arg(key)])
        .collect();
    let replies = conn.pipeline(&commands)?;
    replies
        .chunks_exact(2)
        .map(|pair| item_from(&pair[0], &pair[1], now_unix_ms))
        .collect()
}

/// One key's item from its `HGETALL` and `PTTL` replies.
fn item_from(hash: &Reply, ttl: &Reply, now_unix_ms: u64) -> io::Result<ReadResult> {
    let fields = match hash {
        Reply::Array(Some(fields)) => fields,
        Reply::Error(message) => return Ok(Err(message.clone())),
        other => return Err(unexpected("HGETALL", Some(other))),
    };
    if fields.is_empty() {
        return Ok(Ok(None));
    }
    let (mut data, mut version) = (None, None);
    for pair in fields.chunks(2) {
        match pair {
            [Reply::Bulk(Some(name)), Reply::Bulk(Some(value))] => match name.as_slice() {
                b"data" => data = Some(value.clone()),
                b"version" => version = Some(String::from_utf8_lossy(value).into_owned()),
                _ => {}
            },
            _ => return Err(unexpected("HGETALL", Some(hash))),
        }
    }
    let Some(value) = data else {
        return Ok(Err("the key's hash has no `data` field".into()));
    };
    let expires_at_unix = match ttl {
        // The key vanished between the two commands: report it as missing.
        Reply::Integer(-2) => return Ok(Ok(None)),
        Reply::Integer(ms) if *ms >= 0 => Some((now_unix_ms + *ms as u64).div_ceil(1000)),
        Reply::Integer(_) => None,
        Reply::Error(message) => return Ok(Err(message.clone())),
        other => return Err(unexpected("PTTL", Some(other))),
    };
    Ok(Ok(Some(Item {
        value,
        etag: version,
        expires_at_unix,
    })))
}

/// Runs each batch of operations as one script call, all in one round trip
/// (two if the server had lost the cached script). Each batch is atomic on
/// its own; batches are independent of one another.
pub fn write<S: Read + Write>(
    conn: &mut Connection<S>,
    batches: &[Vec<WriteOp>],
) -> io::Result<Vec<Result<Outcome, String>>> {
    let sha = conn.script_sha().to_string();
    let commands: Vec<Cmd> = batches
        .iter()
        .map(|ops| script::command(Some(&sha), ops))
        .collect();
    let mut replies = conn.pipeline(&commands)?;
    let missing: Vec<usize> = (0..replies.len())
        .filter(|&i| script::is_missing_script(&replies[i]))
        .collect();
    if !missing.is_empty() {
        // NOSCRIPT means the call did not run, so repeating it with the full
        // text (which also re-caches the script) cannot apply anything twice.
        let retries: Vec<Cmd> = missing
            .iter()
            .map(|&i| script::command(None, &batches[i]))
            .collect();
        for (i, reply) in missing.into_iter().zip(conn.pipeline(&retries)?) {
            replies[i] = reply;
        }
    }
    Ok(replies.iter().map(script::outcome).collect())
}
