//! Deciding and carrying out what happens to an event once the app (or the
//! host) has judged it: ack, nack after a backoff, or dead-letter.

use super::acks::AckBatcher;
use crate::appchannel::events::Verdict;
use crate::blocks::pubsub::subscription::SubscriptionSpec;
use crate::blocks::pubsub::{Broker, IncomingMessage, OutgoingMessage};
use crate::blocks::resiliency::RetryPolicy;
use crate::telemetry::pubsub::Settled;
use std::sync::Arc;
use std::time::Duration;

/// When an event is delivered again after the app asked for a retry: the
/// delay doubles per attempt from `initial` up to `max`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// The delay before the second delivery.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// The delay after delivery number `attempt` (1 for the first) failed.
    pub fn after(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(20);
        self.initial.saturating_mul(1u32 << doublings).min(self.max)
    }
}

/// What to do with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// Done with it: handled.
    Ack,
    /// Done with it without the app handling it, and no dead-letter topic.
    Drop,
    /// Deliver it again, no sooner than this.
    Nack(Duration),
    /// Publish it to this topic, then ack it.
    DeadLetter(String),
}

/// The settlement of the app's `verdict` on delivery `attempt`, as Dapr
/// settles it: a retry is paced by the pub/sub component's inbound
/// resiliency `retry` policy while it allows one; once it does not (or
/// there is none), a subscription with a dead-letter topic sends the event
/// there, and one without leaves it to the broker to deliver again (after
/// `backoff`, so a failing app is not hammered).
pub fn settlement(
    verdict: Verdict,
    attempt: u32,
    dead_letter_topic: Option<&str>,
    retry: Option<&RetryPolicy>,
    backoff: &Backoff,
) -> Settlement {
    match verdict {
        Verdict::Success => Settlement::Ack,
        Verdict::Drop => dropped(dead_letter_topic),
        Verdict::Retry => match (retry, dead_letter_topic) {
            (Some(policy), _) if policy.allows_retry_after(attempt) => {
                Settlement::Nack(policy.delay(attempt))
            }
            (_, Some(topic)) => Settlement::DeadLetter(topic.to_owned()),
            (_, None) => Settlement::Nack(backoff.after(attempt)),
        },
    }
}

/// What dropping a message means: dead-letter it if the subscription has a
/// topic for that, else let it go.
pub fn dropped(dead_letter_topic: Option<&str>) -> Settlement {
    match dead_letter_topic {
        Some(topic) => Settlement::DeadLetter(topic.to_owned()),
        None => Settlement::Drop,
    }
}

/// Carries out `settlement` for `message` of `subscription` on the broker
/// that handed it out, acks through `acks`, and counts it in the metrics.
/// A dead letter that cannot be published is nacked instead, so it is not
/// lost. Failures to settle are logged: the broker redelivers what it never
/// heard about, which at-least-once delivery allows.
pub async fn settle(
    broker: &Arc<dyn Broker>,
    acks: &AckBatcher,
    subscription: &SubscriptionSpec,
    message: &IncomingMessage,
    settlement: Settlement,
    backoff: &Backoff,
) {
    // Acks report their own failures (a batch shares one call).
    let ack = || async {
        acks.ack(broker, message.id.clone(), &message.topic).await;
        Ok(())
    };
    let nack = |after| broker.nack(vec![message.id.clone()], after);
    let (outcome, result) = match settlement {
        Settlement::Ack => (Settled::Delivered, ack().await),
        Settlement::Drop => (Settled::Dropped, ack().await),
        Settlement::Nack(after) => (Settled::Retried, nack(after).await),
        Settlement::DeadLetter(topic) => {
            let letter = OutgoingMessage {
                data: message.data.clone(),
                content_type: message.content_type.clone(),
                ..OutgoingMessage::default()
            };
            match broker.publish(&topic, vec![letter]).await {
                Ok(()) => {
                    tracing::info!(topic = %message.topic, dead_letter_topic = %topic, "event dead-lettered");
                    (Settled::DeadLettered, ack().await)
                }
                Err(failures) => {
                    let reason = failures
                        .first()
                        .map(|f| f.error.to_string())
                        .unwrap_or_default();
                    tracing::warn!(dead_letter_topic = %topic, %reason, "cannot dead-letter an event; it will be retried");
                    let after = backoff.after(message.attempt);
                    (Settled::Retried, nack(after).await)
                }
            }
        }
    };
    crate::telemetry::metrics().pubsub().settled(
        &subscription.pubsub_name,
        &message.topic,
        outcome,
    );
    if let Err(err) = result {
        tracing::warn!(topic = %message.topic, error = %err, "cannot settle an event with the broker; it may be delivered again");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::resiliency::RetryBackoff;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let backoff = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let delays: Vec<u128> = (1..=6).map(|a| backoff.after(a).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff.after(0), Duration::from_millis(100));
        assert_eq!(backoff.after(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn verdicts_settle_as_in_dapr() {
        let backoff = Backoff::default();
        assert_eq!(
            settlement(Verdict::Success, 3, Some("dlq"), None, &backoff),
            Settlement::Ack
        );
        assert_eq!(
            settlement(Verdict::Retry, 2, None, None, &backoff),
            Settlement::Nack(Duration::from_millis(200))
        );
        assert_eq!(
            settlement(Verdict::Drop, 1, Some("dlq"), None, &backoff),
            Settlement::DeadLetter("dlq".into())
        );
        assert_eq!(
            settlement(Verdict::Drop, 1, None, None, &backoff),
            Settlement::Drop
        );
    }

    #[test]
    fn retries_follow_the_policy_then_dead_letter_or_fall_back_to_the_broker() {
        let backoff = Backoff::default();
        let policy = RetryPolicy {
            backoff: RetryBackoff::Constant(Duration::from_millis(30)),
            max_retries: Some(2),
        };
        let retry =
            |attempt, dlq| settlement(Verdict::Retry, attempt, dlq, Some(&policy), &backoff);
        assert_eq!(
            retry(2, Some("dlq")),
            Settlement::Nack(Duration::from_millis(30))
        );
        assert_eq!(retry(3, Some("dlq")), Settlement::DeadLetter("dlq".into()));
        assert_eq!(retry(3, None), Settlement::Nack(backoff.after(3)));
        // Without a policy, a failed event goes to the dead-letter topic at once.
        assert_eq!(
            settlement(Verdict::Retry, 1, Some("dlq"), None, &backoff),
            Settlement::DeadLetter("dlq".into())
        );
    }
}
