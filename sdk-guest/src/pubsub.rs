//! Pub/sub brokers: implement [`PubSub`] and export it with
//! [`export_pubsub!`](crate::export_pubsub).
//!
//! Delivery is pull-based: the host calls [`PubSub::pull`], hands the
//! messages to the app and then calls [`PubSub::ack`] or [`PubSub::nack`] with
//! their ids, possibly on another instance of the component. An id must
//! therefore carry everything needed to settle its message.
//!
//! ```ignore
//! use outrig_sdk::pubsub::*;
//! use outrig_sdk::{Feature, Metadata, Result};
//! use std::time::Duration;
//!
//! struct Nothing;
//!
//! impl PubSub for Nothing {
//!     fn init(_metadata: Metadata) -> Result<Self> { Ok(Nothing) }
//!     fn features() -> Vec<Feature> { vec![] }
//!     fn publish(&mut self, _topic: String, _messages: Vec<OutgoingMessage>) -> Result<(), PublishError> { Ok(()) }
//!     fn pull(&mut self, _sub: Subscription, _max: u32, _wait: Duration) -> Result<Vec<IncomingMessage>> { Ok(vec![]) }
//!     fn ack(&mut self, _ids: Vec<String>) -> Result<()> { Ok(()) }
//!     fn nack(&mut self, _ids: Vec<String>, _after: Duration) -> Result<()> { Ok(()) }
//! }
//! outrig_sdk::export_pubsub!(Nothing);
//! ```

use crate::{Feature, Metadata, Result};

#[cfg(any(test, feature = "conformance"))]
pub mod testing;
use std::time::Duration;

pub use crate::bindings::pubsub::exports::outrig::component::broker::{
    IncomingMessage, OutgoingMessage, PublishError, PublishFailure, Subscription,
};

/// A Dapr pub/sub broker client. One value of the type lives per component
/// instance and serves one call at a time, so `&mut self` needs no locking.
pub trait PubSub: Sized + 'static {
    /// Builds the broker client from its metadata. Should not block on the
    /// broker: connect lazily, so a component whose broker is down still loads.
    fn init(metadata: Metadata) -> Result<Self>;

    /// The optional features the broker implements; none by default.
    fn features() -> Vec<Feature> {
        Vec::new()
    }

    /// Publishes `messages` to `topic` in order, reporting each entry that
    /// failed (see [`PublishError::all`] for a batch that failed as a whole).
    /// The exported glue has already refused an empty topic.
    fn publish(
        &mut self,
        topic: String,
        messages: Vec<OutgoingMessage>,
    ) -> Result<(), PublishError>;

    /// Receives up to `max` messages, waiting up to `wait` for the first one.
    /// The exported glue has already refused an empty topic or group.
    fn pull(
        &mut self,
        subscription: Subscription,
        max: u32,
        wait: Duration,
    ) -> Result<Vec<IncomingMessage>>;

    /// Settles messages for good; unknown ids are ignored.
    fn ack(&mut self, ids: Vec<String>) -> Result<()>;

    /// Gives messages back for redelivery after `redeliver_after`; unknown ids
    /// are ignored.
    fn nack(&mut self, ids: Vec<String>, redeliver_after: Duration) -> Result<()>;
}

/// Packs several fields into one opaque message id, for brokers whose ack
/// needs more than one name (topic, group, sequence): each field is written
/// as its byte length, `:`, and the field, so fields may contain anything.
pub fn pack_id(fields: &[&str]) -> String {
    fields
        .iter()
        .map(|field| format!("{}:{field}", field.len()))
        .collect()
}

/// The fields [`pack_id`] packed, or `None` for an id it did not make (a
/// foreign or mangled id, which `ack` and `nack` ignore).
pub fn unpack_id(id: &str) -> Option<Vec<&str>> {
    let mut fields = Vec::new();
    let mut rest = id;
    while !rest.is_empty() {
        let (len, tail) = rest.split_once(':')?;
        let len: usize = len.parse().ok()?;
        fields.push(tail.get(..len)?);
        rest = tail.get(len..)?;
    }
    Some(fields)
}

/// Exports a [`PubSub`] implementation as the component's `pubsub` world.
#[macro_export]
macro_rules! export_pubsub {
    ($broker:ty) => {
        const _: () = {
            use $crate::bindings::pubsub::exports::outrig::component::{broker, lifecycle};
            use $crate::pubsub::PubSub as _;

            $crate::__export_instance!($broker, $crate::pubsub::PubSub, lifecycle);

            impl broker::Guest for Export {
                fn publish(
                    topic: String,
                    messages: ::std::vec::Vec<broker::OutgoingMessage>,
                ) -> ::std::result::Result<(), broker::PublishError> {
                    let count = messages.len();
                    if topic.is_empty() {
                        let error = $crate::Error::invalid("the topic is empty");
                        return Err(broker::PublishError::all(count, error));
                    }
                    with_instance(|b| Ok(b.publish(topic, messages)))
                        .unwrap_or_else(|error| Err(broker::PublishError::all(count, error)))
                }
                fn pull(
                    subscription: broker::Subscription,
                    max: u32,
                    wait_ms: u32,
                ) -> $crate::Result<::std::vec::Vec<broker::IncomingMessage>> {
                    if subscription.topic.is_empty() || subscription.consumer_group.is_empty() {
                        return Err($crate::Error::invalid(
                            "the topic and the consumer group must be named",
                        ));
                    }
                    let wait = ::std::time::Duration::from_millis(u64::from(wait_ms));
                    with_instance(|b| b.pull(subscription, max, wait))
                }
                fn ack(ids: ::std::vec::Vec<String>) -> $crate::Result<()> {
                    with_instance(|b| b.ack(ids))
                }
                fn nack(
                    ids: ::std::vec::Vec<String>,
                    redeliver_after_ms: u32,
                ) -> $crate::Result<()> {
                    let after = ::std::time::Duration::from_millis(u64::from(redeliver_after_ms));
                    with_instance(|b| b.nack(ids, after))
                }
            }

            $crate::bindings::pubsub::__export_pubsub_world!(
                Export with_types_in $crate::bindings::pubsub
            );
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn outcomes_keep_the_index_of_each_failure() {
        let outcomes = vec![
            Ok(()),
            Err(Error::unavailable("down")),
            Ok(()),
            Err(Error::invalid("big")),
        ];
        let failed = PublishError::from_outcomes(outcomes)
            .expect_err("two entries failed")
            .failed;
        let indexes: Vec<u32> = failed.iter().map(|f| f.index).collect();
        assert_eq!(indexes, [1, 3]);
        assert!(matches!(failed[1].error, Error::InvalidArgument(_)));
        assert!(PublishError::from_outcomes(vec![Ok(()), Ok(())]).is_ok());
    }

    #[test]
    fn ids_pack_any_fields_and_refuse_foreign_ones() {
        let fields = ["orders", "app:1", "", "1-0", "é:ü"];
        let id = pack_id(&fields);
        assert_eq!(unpack_id(&id), Some(fields.to_vec()));
        for foreign in ["x", "3:ab", "2:ab1", "a:bc", "99999999999999999999:a"] {
            assert_eq!(unpack_id(foreign), None, "{foreign:?}");
        }
    }

    #[test]
    fn a_whole_batch_failure_names_every_entry() {
        let failed = PublishError::all(3, Error::unavailable("down")).failed;
        let indexes: Vec<u32> = failed.iter().map(|f| f.index).collect();
        assert_eq!(indexes, [0, 1, 2]);
    }
}
