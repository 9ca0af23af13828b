//! Opening a connection: the protocol header, PLAIN login, tuning (frame
//! size, heartbeat), the virtual host, and the delivery channel with this
//! connection's relay queue, whose server-made name is the connection's
//! identity in every message id it hands out.

use crate::methods::{Reply, Request};
use crate::session::{DELIVERY, Session, closed_by_server};
use crate::transport::{Socket, Transport};
use crate::wire::{FieldTable, FieldValue, PROTOCOL_HEADER, violation};
use std::io;
use std::time::Duration;

/// The largest frame this client asks for; RabbitMQ's default too.
const FRAME_MAX: u32 = 128 * 1024;
/// The consumer tag of the relay consumer.
pub const RELAY_TAG: &str = "outrig-relay";

/// Who logs in where, and how the connection is tuned.
#[derive(Clone)]
pub struct Login {
    pub user: String,
    pub password: String,
    pub vhost: String,
    /// The heartbeat interval asked for; zero turns heartbeats off.
    pub heartbeat: Duration,
    /// Shown in RabbitMQ's management UI (`connection_name`).
    pub connection_name: Option<String>,
    pub io_timeout: Duration,
}

impl std::fmt::Debug for Login {
    /// Everything but the password, so a logged configuration leaks none.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("user", &self.user)
            .field("vhost", &self.vhost)
            .field("heartbeat", &self.heartbeat)
            .field("connection_name", &self.connection_name)
            .field("io_timeout", &self.io_timeout)
            .finish_non_exhaustive()
    }
}

/// A connection ready for use: logged in, the delivery channel open, and
/// the relay queue declared and consumed.
pub fn open<S: Socket>(stream: S, login: &Login) -> io::Result<(Session<S>, String)> {
    let mut transport = Transport::new(stream);
    transport.write(PROTOCOL_HEADER)?;
    let mut session = Session::new(transport, login.io_timeout);
    match session.reply(0)?.map(|incoming| incoming.method) {
        Ok(Reply::Start { mechanisms, .. })
            if mechanisms.split_whitespace().any(|m| m == "PLAIN") => {}
        Ok(Reply::Start { mechanisms, .. }) => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("rabbitmq offers no PLAIN login (only {mechanisms})"),
            ));
        }
        other => {
            return Err(violation(format!(
                "expected connection.start, got {other:?}"
            )));
        }
    }
    session.send(0, &start_ok(login))?;
    let (channel_max, frame_max, heartbeat) = match session.reply(0)? {
        Ok(incoming) => match incoming.method {
            Reply::Tune {
                channel_max,
                frame_max,
                heartbeat,
            } => (channel_max, frame_max, heartbeat),
            other => {
                return Err(violation(format!(
                    "expected connection.tune, got {other:?}"
                )));
            }
        },
        Err(refusal) => return Err(closed_by_server(refusal.code, &refusal.text)),
    };
    let frame_max = negotiate(frame_max, FRAME_MAX);
    // Whole seconds on the wire: a shorter interval asked for becomes one.
    let asked = login
        .heartbeat
        .as_millis()
        .div_ceil(1000)
        .min(u16::MAX.into()) as u32;
    let heartbeat = match asked {
        0 => 0,
        asked => negotiate(heartbeat.into(), asked) as u16,
    };
    if channel_max != 0 && channel_max < 2 {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "rabbitmq allows one channel per connection; this client needs two",
        ));
    }
    session.send(
        0,
        &Request::TuneOk {
            channel_max: 2,
            frame_max,
            heartbeat,
        },
    )?;
    session.transport.tune(
        frame_max as usize,
        (heartbeat > 0).then(|| Duration::from_secs(heartbeat.into())),
    );
    session.send(
        0,
        &Request::ConnectionOpen {
            vhost: login.vhost.clone(),
        },
    )?;
    session.expect_reply(0, |r| matches!(r, Reply::ConnectionOpenOk))?;
    session.send(DELIVERY, &Request::ChannelOpen)?;
    session.expect_reply(DELIVERY, |r| matches!(r, Reply::ChannelOpenOk))?;
    let relay_queue = declare_relay_queue(&mut session)?;
    Ok((session, relay_queue))
}

/// `connection.start-ok`: who we are, what we understand, and the login.
fn start_ok(login: &Login) -> Request {
    let capabilities = [
        "publisher_confirms",
        "consumer_cancel_notify",
        "authentication_failure_close",
        "basic.nack",
        "connection.blocked",
    ]
    .into_iter()
    .map(|name| (name.to_string(), FieldValue::Bool(true)))
    .collect();
    let mut properties = FieldTable(vec![
        ("product".into(), FieldValue::text("outrig pubsub.rabbitmq")),
        (
            "version".into(),
            FieldValue::text(env!("CARGO_PKG_VERSION")),
        ),
        ("platform".into(), FieldValue::text("wasm32-wasip2")),
        (
            "capabilities".into(),
            FieldValue::Table(FieldTable(capabilities)),
        ),
    ]);
    if let Some(name) = &login.connection_name {
        properties.set("connection_name", FieldValue::text(name));
    }
    let mut response = vec![0];
    response.extend_from_slice(login.user.as_bytes());
    response.push(0);
    response.extend_from_slice(login.password.as_bytes());
    Request::StartOk {
        client_properties: properties,
        mechanism: "PLAIN".into(),
        response,
        locale: "en_US".into(),
    }
}

/// The smaller of two limits where zero means none.
fn negotiate(server: u32, client: u32) -> u32 {
    match (server, client) {
        (0, limit) | (limit, 0) => limit,
        (server, client) => server.min(client),
    }
}

/// Declares this connection's relay queue (server-named, exclusive: it
/// goes when the connection goes) and consumes it without acks.
fn declare_relay_queue<S: Socket>(session: &mut Session<S>) -> io::Result<String> {
    let declare = Request::QueueDeclare {
        queue: String::new(),
        passive: false,
        durable: false,
        exclusive: true,
        auto_delete: true,
        arguments: FieldTable::default(),
    };
    let queue = match session
        .call_expecting(DELIVERY, &declare, |r| {
            matches!(r, Reply::QueueDeclareOk { .. })
        })?
        .map(|incoming| incoming.method)
    {
        Ok(Reply::QueueDeclareOk { queue, .. }) if !queue.is_empty() => queue,
        other => return Err(violation(format!("relay queue not declared: {other:?}"))),
    };
    session.relay_tag = RELAY_TAG.to_string();
    let consume = Request::Consume {
        queue: queue.clone(),
        consumer_tag: RELAY_TAG.to_string(),
        no_ack: true,
        exclusive: true,
    };
    session
        .call_expecting(DELIVERY, &consume, |r| matches!(r, Reply::ConsumeOk { .. }))?
        .map_err(|refusal| io::Error::other(refusal.text))?;
    Ok(queue)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_negotiate_to_the_smaller_non_zero_one() {
        assert_eq!(negotiate(131072, FRAME_MAX), FRAME_MAX);
        assert_eq!(negotiate(0, FRAME_MAX), FRAME_MAX);
        assert_eq!(negotiate(4096, FRAME_MAX), 4096);
        assert_eq!(negotiate(60, 0), 60);
    }

    #[test]
    fn the_login_is_plain_with_both_names() {
        let login = Login {
            user: "app".into(),
            password: "s3cret".into(),
            vhost: "/".into(),
            heartbeat: Duration::from_secs(60),
            connection_name: Some("orders".into()),
            io_timeout: Duration::from_secs(1),
        };
        let Request::StartOk {
            client_properties,
            mechanism,
            response,
            ..
        } = start_ok(&login)
        else {
            panic!("start-ok expected");
        };
        assert_eq!(mechanism, "PLAIN");
        assert_eq!(response, b"\0app\0s3cret");
        assert!(!format!("{login:?}").contains("s3cret"));
        assert_eq!(
            client_properties
                .get("connection_name")
                .and_then(FieldValue::as_text)
                .as_deref(),
            Some("orders")
        );
    }
}
