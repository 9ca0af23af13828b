//! What an instance does on its publishing connection (a clean session of
//! its own): publish batches, forward settlements to other instances'
//! sessions, and read a session's holder record.

use crate::config::MqttConfig;
use crate::conn::Connection;
use crate::names;
use crate::wire::{Connect, Packet, Publish};
use outrig_sdk::net;
use std::collections::HashSet;
use std::io;
use std::net::TcpStream;

/// How many QoS 1 messages are sent before their `PUBACK`s are awaited, so
/// a large batch never fills both directions' socket buffers at once.
pub const WINDOW: usize = 64;

/// Opens the instance's publishing connection. Its session is clean, so
/// nothing is kept for it on the broker once it is gone.
pub fn open(config: &MqttConfig, instance: &str) -> io::Result<Connection<TcpStream>> {
    let stream = net::connect(&config.address, config.connect_timeout, config.io_timeout)?;
    let connect = Connect {
        client_id: names::publisher_client_id(config.consumer_id.as_deref(), instance),
        clean_session: true,
        keep_alive_secs: u16::try_from(config.keep_alive.as_secs()).unwrap_or(u16::MAX),
        will: None,
        username: config.username.clone(),
        password: config.password.clone().map(String::into_bytes),
    };
    Connection::open(stream, &connect, config.io_timeout).map(|(conn, _)| conn)
}

/// Publishes `messages` (at most [`WINDOW`] of them) in one write and, at
/// QoS 1, waits until the broker has acknowledged every one: then each is
/// stored with the broker.
pub fn publish(conn: &mut Connection<TcpStream>, messages: &[Publish]) -> io::Result<()> {
    let mut waiting = HashSet::new();
    let packets: Vec<Packet> = messages
        .iter()
        .map(|message| {
            let mut message = message.clone();
            if message.qos > 0 {
                let id = conn.packet_id();
                waiting.insert(id);
                message.packet_id = Some(id);
            }
            Packet::Publish(message)
        })
        .collect();
    conn.ensure_alive(|_, _| Ok(()))?;
    conn.send_all(&packets)?;
    while !waiting.is_empty() {
        conn.wait_for(
            |packet| matches!(packet, Packet::Puback(id) if waiting.remove(id)),
            |_, _| Ok(()),
        )?;
    }
    Ok(())
}

/// The message retained on `topic`, if any: subscribes and unsubscribes in
/// one write, so the broker sends what it retains before the `UNSUBACK`.
pub fn read_retained(conn: &mut Connection<TcpStream>, topic: &str) -> io::Result<Option<Vec<u8>>> {
    let (subscribe_id, unsubscribe_id) = (conn.packet_id(), conn.packet_id());
    conn.send_all(&[
        Packet::Subscribe {
            packet_id: subscribe_id,
            filters: vec![(topic.to_string(), 0)],
        },
        Packet::Unsubscribe {
            packet_id: unsubscribe_id,
            filters: vec![topic.to_string()],
        },
    ])?;
    let mut retained = None;
    conn.wait_for(
        |packet| *packet == Packet::Unsuback(unsubscribe_id),
        |_, packet| match packet {
            Packet::Suback { packet_id, codes }
                if packet_id == subscribe_id && codes.contains(&0x80) =>
            {
                Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("the broker refused a subscription to `{topic}` (check its ACL)"),
                ))
            }
            Packet::Publish(message) if message.topic == topic && message.retain => {
                retained = Some(message.payload);
                Ok(())
            }
            _ => Ok(()),
        },
    )?;
    Ok(retained)
}
