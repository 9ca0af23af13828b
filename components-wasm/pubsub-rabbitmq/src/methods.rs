//! The AMQP 0-9-1 methods this client uses: [`Request`]s it encodes into
//! method frame payloads and [`Reply`]s (everything a server sends) it
//! decodes from them. Methods the client never sends are not encodable, and
//! a method a server should never send is a protocol violation.

use crate::wire::{Decoder, Encoder, FieldTable, violation};
use std::io;

/// A method the client sends.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    StartOk {
        client_properties: FieldTable,
        mechanism: String,
        response: Vec<u8>,
        locale: String,
    },
    TuneOk {
        channel_max: u16,
        frame_max: u32,
        heartbeat: u16,
    },
    ConnectionOpen {
        vhost: String,
    },
    /// Tests close connections gracefully; the component just drops them.
    #[cfg(test)]
    ConnectionClose {
        code: u16,
        text: String,
    },
    ConnectionCloseOk,
    ChannelOpen,
    ChannelCloseOk,
    ChannelFlowOk {
        active: bool,
    },
    ExchangeDeclare {
        exchange: String,
        kind: String,
        passive: bool,
        durable: bool,
        auto_delete: bool,
    },
    /// Tests delete what they declared.
    #[cfg(test)]
    ExchangeDelete {
        exchange: String,
    },
    QueueDeclare {
        queue: String,
        passive: bool,
        durable: bool,
        exclusive: bool,
        auto_delete: bool,
        arguments: FieldTable,
    },
    QueueBind {
        queue: String,
        exchange: String,
        routing_key: String,
    },
    #[cfg(test)]
    QueueDelete {
        queue: String,
    },
    Qos {
        prefetch_count: u16,
    },
    Consume {
        queue: String,
        consumer_tag: String,
        no_ack: bool,
        exclusive: bool,
    },
    Cancel {
        consumer_tag: String,
    },
    Publish {
        exchange: String,
        routing_key: String,
    },
    Get {
        queue: String,
    },
    Ack {
        delivery_tag: u64,
    },
    Reject {
        delivery_tag: u64,
        requeue: bool,
    },
    ConfirmSelect,
}

impl Request {
    /// The method frame payload: class id, method id, arguments.
    pub fn encode(&self) -> io::Result<Vec<u8>> {
        let mut out = Encoder::new();
        match self {
            Request::StartOk {
                client_properties,
                mechanism,
                response,
                locale,
            } => {
                out.short(10).short(11).table(client_properties)?;
                out.shortstr(mechanism)?
                    .longstr(response)?
                    .shortstr(locale)?;
            }
            Request::TuneOk {
                channel_max,
                frame_max,
                heartbeat,
            } => {
                out.short(10)
                    .short(31)
                    .short(*channel_max)
                    .long(*frame_max)
                    .short(*heartbeat);
            }
            Request::ConnectionOpen { vhost } => {
                // Reserved: capabilities (empty) and insist (false).
                out.short(10).short(40).shortstr(vhost)?.shortstr("")?;
                out.bits(&[false]);
            }
            #[cfg(test)]
            Request::ConnectionClose { code, text } => {
                out.short(10).short(50).short(*code).shortstr(text)?;
                out.short(0).short(0);
            }
            Request::ConnectionCloseOk => {
                out.short(10).short(51);
            }
            Request::ChannelOpen => {
                out.short(20).short(10).shortstr("")?;
            }
            Request::ChannelCloseOk => {
                out.short(20).short(41);
            }
            Request::ChannelFlowOk { active } => {
                out.short(20).short(21).bits(&[*active]);
            }
            Request::ExchangeDeclare {
                exchange,
                kind,
                passive,
                durable,
                auto_delete,
            } => {
                out.short(40)
                    .short(10)
                    .short(0)
                    .shortstr(exchange)?
                    .shortstr(kind)?;
                // passive, durable, auto-delete, internal, no-wait
                out.bits(&[*passive, *durable, *auto_delete, false, false]);
                out.table(&FieldTable::default())?;
            }
            #[cfg(test)]
            Request::ExchangeDelete { exchange } => {
                out.short(40).short(20).short(0).shortstr(exchange)?;
                out.bits(&[false, false]);
            }
            Request::QueueDeclare {
                queue,
                passive,
                durable,
                exclusive,
                auto_delete,
                arguments,
            } => {
                out.short(50).short(10).short(0).shortstr(queue)?;
                out.bits(&[*passive, *durable, *exclusive, *auto_delete, false]);
                out.table(arguments)?;
            }
            Request::QueueBind {
                queue,
                exchange,
                routing_key,
            } => {
                out.short(50).short(20).short(0).shortstr(queue)?;
                out.shortstr(exchange)?
                    .shortstr(routing_key)?
                    .bits(&[false]);
                out.table(&FieldTable::default())?;
            }
            #[cfg(test)]
            Request::QueueDelete { queue } => {
                out.short(50).short(40).short(0).shortstr(queue)?;
                out.bits(&[false, false, false]);
            }
            Request::Qos { prefetch_count } => {
                // Prefetch size 0 (no byte limit), per consumer (not global).
                out.short(60).short(10).long(0).short(*prefetch_count);
                out.bits(&[false]);
            }
            Request::Consume {
                queue,
                consumer_tag,
                no_ack,
                exclusive,
            } => {
                out.short(60).short(20).short(0).shortstr(queue)?;
                out.shortstr(consumer_tag)?;
                // no-local, no-ack, exclusive, no-wait
                out.bits(&[false, *no_ack, *exclusive, false]);
                out.table(&FieldTable::default())?;
            }
            Request::Cancel { consumer_tag } => {
                out.short(60)
                    .short(30)
                    .shortstr(consumer_tag)?
                    .bits(&[false]);
            }
            Request::Publish {
                exchange,
                routing_key,
            } => {
                out.short(60).short(40).short(0).shortstr(exchange)?;
                // mandatory, immediate
                out.shortstr(routing_key)?.bits(&[false, false]);
            }
            Request::Get { queue } => {
                out.short(60)
                    .short(70)
                    .short(0)
                    .shortstr(queue)?
                    .bits(&[false]);
            }
            Request::Ack { delivery_tag } => {
                out.short(60)
                    .short(80)
                    .longlong(*delivery_tag)
                    .bits(&[false]);
            }
            Request::Reject {
                delivery_tag,
                requeue,
            } => {
                out.short(60).short(90).longlong(*delivery_tag);
                out.bits(&[*requeue]);
            }
            Request::ConfirmSelect => {
                out.short(85).short(10).bits(&[false]);
            }
        }
        Ok(out.bytes)
    }
}

/// A method the server sends.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Start {
        version: (u8, u8),
        server_properties: FieldTable,
        mechanisms: String,
    },
    /// A SASL challenge; PLAIN never gets one.
    Secure,
    Tune {
        channel_max: u16,
        frame_max: u32,
        heartbeat: u16,
    },
    ConnectionOpenOk,
    ConnectionClose {
        code: u16,
        text: String,
    },
    ConnectionCloseOk,
    /// The server stopped reading publishes (a resource alarm).
    Blocked {
        reason: String,
    },
    Unblocked,
    ChannelOpenOk,
    ChannelFlow {
        active: bool,
    },
    ChannelClose {
        code: u16,
        text: String,
    },
    ChannelCloseOk,
    ExchangeDeclareOk,
    ExchangeDeleteOk,
    QueueDeclareOk {
        queue: String,
        message_count: u32,
    },
    QueueBindOk,
    QueueDeleteOk,
    QosOk,
    ConsumeOk {
        consumer_tag: String,
    },
    /// The server cancelled a consumer (its queue was deleted).
    Cancel {
        consumer_tag: String,
    },
    CancelOk {
        consumer_tag: String,
    },
    /// An unroutable mandatory publish coming back; content follows.
    Return,
    /// A message for a consumer; content follows.
    Deliver {
        consumer_tag: String,
        delivery_tag: u64,
        redelivered: bool,
        exchange: String,
        routing_key: String,
    },
    /// A message for `basic.get`; content follows.
    GetOk {
        delivery_tag: u64,
        redelivered: bool,
        exchange: String,
        routing_key: String,
    },
    GetEmpty,
    /// A publisher confirm: the message(s) were stored.
    Ack {
        delivery_tag: u64,
        multiple: bool,
    },
    /// A publisher confirm: the message(s) were not stored.
    Nack {
        delivery_tag: u64,
        multiple: bool,
    },
    ConfirmSelectOk,
}

impl Reply {
    /// Decodes a method frame payload. Arguments after those this client
    /// reads are ignored, so a server adding fields does not break it.
    pub fn decode(payload: &[u8]) -> io::Result<Reply> {
        let mut input = Decoder::new(payload);
        let class = input.short()?;
        let method = input.short()?;
        let close = |input: &mut Decoder| -> io::Result<(u16, String)> {
            Ok((input.short()?, input.shortstr()?))
        };
        Ok(match (class, method) {
            (10, 10) => Reply::Start {
                version: (input.octet()?, input.octet()?),
                server_properties: input.table()?,
                mechanisms: String::from_utf8_lossy(&input.longstr()?).into_owned(),
            },
            (10, 20) => Reply::Secure,
            (10, 30) => Reply::Tune {
                channel_max: input.short()?,
                frame_max: input.long()?,
                heartbeat: input.short()?,
            },
            (10, 41) => Reply::ConnectionOpenOk,
            (10, 50) => {
                let (code, text) = close(&mut input)?;
                Reply::ConnectionClose { code, text }
            }
            (10, 51) => Reply::ConnectionCloseOk,
            (10, 60) => Reply::Blocked {
                reason: input.shortstr()?,
            },
            (10, 61) => Reply::Unblocked,
            (20, 11) => Reply::ChannelOpenOk,
            (20, 20) => Reply::ChannelFlow {
                active: input.bits::<1>()?[0],
            },
            (20, 40) => {
                let (code, text) = close(&mut input)?;
                Reply::ChannelClose { code, text }
            }
            (20, 41) => Reply::ChannelCloseOk,
            (40, 11) => Reply::ExchangeDeclareOk,
            (40, 21) => Reply::ExchangeDeleteOk,
            (50, 11) => Reply::QueueDeclareOk {
                queue: input.shortstr()?,
                message_count: input.long()?,
            },
            (50, 21) => Reply::QueueBindOk,
            (50, 41) => Reply::QueueDeleteOk,
            (60, 11) => Reply::QosOk,
            (60, 21) => Reply::ConsumeOk {
                consumer_tag: input.shortstr()?,
            },
            (60, 30) => Reply::Cancel {
                consumer_tag: input.shortstr()?,
            },
            (60, 31) => Reply::CancelOk {
                consumer_tag: input.shortstr()?,
            },
            (60, 50) => Reply::Return,
            (60, 60) => Reply::Deliver {
                consumer_tag: input.shortstr()?,
                delivery_tag: input.longlong()?,
                redelivered: input.bits::<1>()?[0],
                exchange: input.shortstr()?,
                routing_key: input.shortstr()?,
            },
            (60, 71) => Reply::GetOk {
                delivery_tag: input.longlong()?,
                redelivered: input.bits::<1>()?[0],
                exchange: input.shortstr()?,
                routing_key: input.shortstr()?,
            },
            (60, 72) => Reply::GetEmpty,
            (60, 80) => Reply::Ack {
                delivery_tag: input.longlong()?,
                multiple: input.bits::<1>()?[0],
            },
            (60, 120) => Reply::Nack {
                delivery_tag: input.longlong()?,
                multiple: input.bits::<1>()?[0],
            },
            (85, 11) => Reply::ConfirmSelectOk,
            (class, method) => {
                return Err(violation(format!(
                    "unexpected method {class}.{method} from the server"
                )));
            }
        })
    }

    /// Whether content (a header frame and body frames) follows the method.
    pub fn has_content(&self) -> bool {
        matches!(
            self,
            Reply::Deliver { .. } | Reply::GetOk { .. } | Reply::Return
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn method(class: u16, id: u16) -> Encoder {
        let mut out = Encoder::new();
        out.short(class).short(id);
        out
    }

    #[test]
    fn server_methods_decode() {
        let mut start = method(10, 10);
        start.octet(0).octet(9);
        start.table(&FieldTable::default()).expect("table");
        start.longstr(b"PLAIN AMQPLAIN").expect("longstr");
        start.longstr(b"en_US").expect("longstr");
        let mut tune = method(10, 30);
        tune.short(2047).long(131072).short(60);
        let mut close = method(20, 40);
        close
            .short(404)
            .shortstr("NOT_FOUND - no queue 'q'")
            .expect("s");
        close.short(60).short(70);
        let mut deliver = method(60, 60);
        deliver
            .shortstr("ctag")
            .expect("s")
            .longlong(42)
            .bits(&[true]);
        deliver
            .shortstr("ex")
            .expect("s")
            .shortstr("rk")
            .expect("s");
        let mut get_ok = method(60, 71);
        get_ok.longlong(7).bits(&[false]).shortstr("").expect("s");
        get_ok.shortstr("q").expect("s").long(3);
        let mut nack = method(60, 120);
        nack.longlong(9).bits(&[true, false]);
        let mut declare_ok = method(50, 11);
        declare_ok.shortstr("amq.gen-x").expect("s").long(5).long(0);
        let cases = [
            (
                start,
                Reply::Start {
                    version: (0, 9),
                    server_properties: FieldTable::default(),
                    mechanisms: "PLAIN AMQPLAIN".into(),
                },
            ),
            (
                tune,
                Reply::Tune {
                    channel_max: 2047,
                    frame_max: 131072,
                    heartbeat: 60,
                },
            ),
            (
                close,
                Reply::ChannelClose {
                    code: 404,
                    text: "NOT_FOUND - no queue 'q'".into(),
                },
            ),
            (
                deliver,
                Reply::Deliver {
                    consumer_tag: "ctag".into(),
                    delivery_tag: 42,
                    redelivered: true,
                    exchange: "ex".into(),
                    routing_key: "rk".into(),
                },
            ),
            (
                get_ok,
                Reply::GetOk {
                    delivery_tag: 7,
                    redelivered: false,
                    exchange: "".into(),
                    routing_key: "q".into(),
                },
            ),
            (
                nack,
                Reply::Nack {
                    delivery_tag: 9,
                    multiple: true,
                },
            ),
            (
                declare_ok,
                Reply::QueueDeclareOk {
                    queue: "amq.gen-x".into(),
                    message_count: 5,
                },
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(Reply::decode(&bytes.bytes).expect("decodes"), expected);
        }
        assert!(Reply::decode(&method(60, 72).bytes).is_ok_and(|r| r == Reply::GetEmpty));
    }

    #[test]
    fn malformed_or_unknown_methods_are_errors() {
        let mut truncated_deliver = method(60, 60);
        truncated_deliver.shortstr("ctag").expect("s").long(1);
        let mut bad_string = method(10, 50);
        bad_string.short(320).octet(200);
        let cases: [(&str, Vec<u8>); 5] = [
            ("empty", vec![]),
            ("half a class id", vec![0]),
            ("unknown method", method(60, 999).bytes),
            ("truncated deliver", truncated_deliver.bytes),
            ("string past end", bad_string.bytes),
        ];
        for (name, bytes) in cases {
            assert!(Reply::decode(&bytes).is_err(), "{name} was accepted");
        }
    }

    #[test]
    fn requests_encode_as_the_spec_lays_them_out() {
        let publish = Request::Publish {
            exchange: "orders".into(),
            routing_key: "".into(),
        }
        .encode()
        .expect("encodes");
        assert_eq!(
            publish,
            [
                0, 60, 0, 40, 0, 0, 6, b'o', b'r', b'd', b'e', b'r', b's', 0, 0
            ]
        );
        let declare = Request::QueueDeclare {
            queue: "q".into(),
            passive: false,
            durable: true,
            exclusive: false,
            auto_delete: true,
            arguments: FieldTable::default(),
        }
        .encode()
        .expect("encodes");
        assert_eq!(declare, [0, 50, 0, 10, 0, 0, 1, b'q', 0b1010, 0, 0, 0, 0]);
        let ack = Request::Ack { delivery_tag: 258 }
            .encode()
            .expect("encodes");
        assert_eq!(ack, [0, 60, 0, 80, 0, 0, 0, 0, 0, 0, 1, 2, 0]);
        let too_long = Request::Get {
            queue: "q".repeat(256),
        };
        assert!(too_long.encode().is_err());
    }
}
