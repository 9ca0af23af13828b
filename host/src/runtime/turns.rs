//! Turns on the executor for guests that compute for long: a call still
//! running at an epoch tick must take a turn to go on, and there is one
//! turn fewer than the executor has workers. However many guests spin, one
//! worker stays free for the sidecar's sockets and for short calls, so a
//! looping component slows its neighbours by little instead of by a whole
//! epoch tick per request.
//!
//! A call runs its first tick without a turn (almost every call ends within
//! it). At each tick it yields, then queues for a turn; the queue is fair,
//! so long calls take turns in order. A turn lasts one tick and then lapses
//! by itself, so a guest that stops computing (it ended, or waits on I/O
//! inside a host call, as a long-polling broker does) never keeps one.
//! Waiting for a turn counts against the call's deadline.

use super::engine::EPOCH_TICK;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::Semaphore;

/// The process's turns: one fewer than the executor's workers (tokio starts
/// one per core), and at least one.
fn turns() -> &'static Arc<Semaphore> {
    static TURNS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    TURNS.get_or_init(|| {
        let workers = std::thread::available_parallelism().map_or(1, usize::from);
        Arc::new(Semaphore::new(workers.saturating_sub(1).max(1)))
    })
}

/// What a guest waits on at an epoch tick: a yield that lets the worker
/// poll its sockets (tokio's `yield_now` defers the wake-up until then; a
/// plain wake-up would let spinning guests keep the workers for ~61 ticks
/// between polls), then a turn of the process's.
pub fn next_turn() -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(take_turn(Arc::clone(turns()), EPOCH_TICK))
}

async fn take_turn(turns: Arc<Semaphore>, lasting: Duration) {
    tokio::task::yield_now().await;
    // The semaphore is never closed; without a permit the guest would merely
    // run unthrottled.
    if let Ok(permit) = turns.acquire_owned().await {
        tokio::spawn(async move {
            tokio::time::sleep(lasting).await;
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_turn_is_had_only_while_one_is_free_and_lapses_by_itself() {
        let turns = Arc::new(Semaphore::new(1));
        let lasting = Duration::from_secs(2);
        take_turn(Arc::clone(&turns), lasting).await;
        assert_eq!(turns.available_permits(), 0, "the turn is held");
        // A second long call waits while the turn is held...
        let second = take_turn(Arc::clone(&turns), lasting);
        tokio::pin!(second);
        assert!(
            tokio::time::timeout(Duration::from_millis(20), &mut second)
                .await
                .is_err(),
            "a turn was had although the only one was held"
        );
        // ...and gets it once it lapses, without anyone giving it back.
        tokio::time::timeout(Duration::from_secs(30), second)
            .await
            .expect("the turn lapsed");
        tokio::time::timeout(Duration::from_secs(30), async {
            while turns.available_permits() == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the second turn lapsed too");
    }
}
