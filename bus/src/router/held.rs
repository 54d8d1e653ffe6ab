//! Calls whose ingress delivery the router holds unacked until their reply
//! has passed it. The ingress copy stays on the broker's disk meanwhile, so
//! the copy in the service queue needs none ([`Hop::HeldRequest`]): a call
//! crosses one persistent, confirmed hop instead of two (README, "Delivery
//! contract"). Bounded: a router holds at most `max` calls at once, and a
//! call beyond that is delivered durably and acked on the confirm.
//!
//! [`Hop::HeldRequest`]: crate::Hop::HeldRequest

use std::{collections::HashMap, time::Duration};

use parking_lot::Mutex;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::{
    envelope::Envelope,
    events,
    hop::Hop,
    meters::MessageMeters,
    reply_context::{ContextId, new_context_id},
};

/// How long a held call may still wait for its reply once the router is
/// stopping; then its ingress goes back to the queue for another router.
pub const STOPPING_GRACE: Duration = Duration::from_secs(5);

/// What a router needs to hold calls.
pub(super) struct Holding {
    /// The calls held now.
    pub(super) calls: std::sync::Arc<HeldCalls>,
    /// This router's private replies queue: a held call's service replies
    /// there, so the reply comes back to the router that holds the call.
    pub(super) reply_to: String,
    /// How long a call is held: the reply timeout, after which its reply
    /// context is expired and no reply could pass anyway. The held copy
    /// expires from the service queue with it.
    pub(super) window: Duration,
    /// The router's shutdown.
    pub(super) shutdown: CancellationToken,
    /// The held-calls series.
    pub(super) meters: std::sync::Arc<MessageMeters>,
}

impl Holding {
    /// Holds a call under a new context id, if the table has room (`None`:
    /// deliver it durably). Taken before the gate, so that the call's reply
    /// context is sealed under the hold's id and says that it is held; a
    /// message the gate refuses drops its hold again.
    pub(super) fn reserve(&self) -> Option<Hold<'_>> {
        self.calls.try_hold(new_context_id())
    }

    /// Readies the copy of a call the gate passed under `hold` as a held
    /// request, replied to this router's own queue.
    pub(super) fn hold<'h>(&'h self, envelope: &mut Envelope, hold: Hold<'h>) -> HeldCall<'h> {
        self.meters.held_now(self.calls.len());
        envelope.delivery_mode = Hop::HeldRequest.delivery_mode();
        // Gone from the service queue when the hold lapses: the ingress comes
        // again then, and is delivered durably.
        envelope.expiration = Some(self.window);
        envelope.reply_to = Some(self.reply_to.clone());
        HeldCall {
            holding: self,
            hold,
        }
    }
}

/// A call one router holds, with the settings it is held under.
pub(super) struct HeldCall<'a> {
    holding: &'a Holding,
    hold: Hold<'a>,
}

impl HeldCall<'_> {
    /// Waits for its reply (at most the window, or the grace once the
    /// router stops); counts how it ended.
    pub(super) async fn end(self) -> HoldEnd {
        let Self { holding, hold } = self;
        let end = hold.wait(holding.window, &holding.shutdown).await;
        match end {
            HoldEnd::Replied => holding.meters.held_replied(),
            other => events::held_call(other.as_str()),
        }
        holding.meters.held_now(holding.calls.len());
        end
    }
}

/// The calls one router holds, by their reply context's id.
pub(super) struct HeldCalls {
    waiting: Mutex<HashMap<ContextId, Waiting>>,
    max: usize,
}

/// One held call in the table.
struct Waiting {
    /// Tells the holder how the hold ended.
    end: oneshot::Sender<HoldEnd>,
    /// A reply to it is being forwarded now ([`HeldCalls::claim`]).
    claimed: bool,
}

/// One held call: dropped, it leaves the table.
pub(super) struct Hold<'a> {
    calls: &'a HeldCalls,
    id: ContextId,
    replied: oneshot::Receiver<HoldEnd>,
}

/// How a hold ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HoldEnd {
    /// The reply passed the router: the ingress may be acked.
    Replied,
    /// No reply within the window (the reply timeout): the ingress goes back
    /// to the queue and comes again redelivered, to be delivered durably.
    Lapsed,
    /// The router is stopping and the reply did not come within
    /// [`STOPPING_GRACE`]: the ingress goes back to the queue.
    Stopping,
    /// Its copy left the service queue unserved: its service handed it back
    /// because it outlived its assertion. The ingress goes back to the queue
    /// at once, to be delivered durably with a fresh assertion.
    HandedBack,
}

impl HoldEnd {
    /// The label of its metric.
    pub(super) const fn as_str(self) -> &'static str {
        match self {
            Self::Replied => "replied",
            Self::Lapsed => "lapsed",
            Self::Stopping => "stopping",
            Self::HandedBack => "handed_back",
        }
    }
}

impl HeldCalls {
    /// A table holding at most `max` calls at once.
    pub(super) fn new(max: usize) -> Self {
        Self {
            waiting: Mutex::new(HashMap::new()),
            max,
        }
    }

    /// Holds the call whose reply context has id `id`, if there is room;
    /// `None` when `max` calls are held already (deliver it durably).
    pub(super) fn try_hold(&self, id: ContextId) -> Option<Hold<'_>> {
        let mut waiting = self.waiting.lock();
        if waiting.len() >= self.max || waiting.contains_key(&id) {
            return None;
        }
        let (end, replied) = oneshot::channel();
        waiting.insert(
            id,
            Waiting {
                end,
                claimed: false,
            },
        );
        Some(Hold {
            calls: self,
            id,
            replied,
        })
    }

    /// Takes the reply to the call held under `id` for forwarding: `false`
    /// when no such call is held here (its reply passed already, or the hold
    /// ended), or another copy of its reply is being forwarded. A held call's
    /// reply is forwarded only through this claim: its context is in no other
    /// record, so a replay finds nothing to claim.
    pub(super) fn claim(&self, id: &ContextId) -> bool {
        match self.waiting.lock().get_mut(id) {
            Some(waiting) if !waiting.claimed => {
                waiting.claimed = true;
                true
            }
            _ => false,
        }
    }

    /// The claimed reply of the call held under `id` could not be forwarded
    /// (it goes back to its queue): the next copy may claim it again.
    pub(super) fn unclaim(&self, id: &ContextId) {
        if let Some(waiting) = self.waiting.lock().get_mut(id) {
            waiting.claimed = false;
        }
    }

    /// The reply of the call with context `id` passed the router (forwarded
    /// to its caller, or the caller is gone). Nothing when no such call is
    /// held here.
    pub(super) fn replied(&self, id: &ContextId) {
        self.end(id, HoldEnd::Replied);
    }

    /// The copy of the call with context `id` came back from its service
    /// unserved ([`HoldEnd::HandedBack`]). Nothing when no such call is held
    /// here (another router holds it: it lapses there after its window).
    pub(super) fn handed_back(&self, id: &ContextId) {
        self.end(id, HoldEnd::HandedBack);
    }

    fn end(&self, id: &ContextId, end: HoldEnd) {
        if let Some(waiting) = self.waiting.lock().remove(id) {
            // The holder may have given up meanwhile; nothing to tell then.
            let _ = waiting.end.send(end);
        }
    }

    /// Calls held now.
    pub(super) fn len(&self) -> usize {
        self.waiting.lock().len()
    }
}

impl Hold<'_> {
    /// The id of the call's reply context.
    pub(super) fn id(&self) -> ContextId {
        self.id
    }

    /// Waits for the reply: at most `window`, and at most [`STOPPING_GRACE`]
    /// once `shutdown` is cancelled.
    pub(super) async fn wait(mut self, window: Duration, shutdown: &CancellationToken) -> HoldEnd {
        let stopping = async {
            shutdown.cancelled().await;
            tokio::time::sleep(STOPPING_GRACE).await;
        };
        tokio::select! {
            ended = &mut self.replied => match ended {
                Ok(end) => end,
                // The table dropped the sender without a reply: never while
                // this hold lives, but not a reply either.
                Err(_) => HoldEnd::Lapsed,
            },
            () = tokio::time::sleep(window) => HoldEnd::Lapsed,
            () = stopping => HoldEnd::Stopping,
        }
    }
}

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        self.calls.waiting.lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn a_reply_ends_the_hold_and_frees_its_place() {
        let calls = HeldCalls::new(1);
        let hold = calls.try_hold([1; 12]).unwrap();
        assert!(calls.try_hold([2; 12]).is_none(), "the table is full");
        calls.replied(&[1; 12]);
        assert_eq!(
            hold.wait(WINDOW, &CancellationToken::new()).await,
            HoldEnd::Replied
        );
        assert_eq!(calls.len(), 0);
        assert!(calls.try_hold([2; 12]).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_hold_lapses_after_its_window() {
        let calls = HeldCalls::new(4);
        let hold = calls.try_hold([1; 12]).unwrap();
        assert_eq!(
            hold.wait(WINDOW, &CancellationToken::new()).await,
            HoldEnd::Lapsed
        );
        assert_eq!(calls.len(), 0, "a lapsed hold leaves the table");
        calls.replied(&[1; 12]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stopping_router_waits_a_grace_then_gives_the_call_back() {
        let calls = HeldCalls::new(4);
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        let started = tokio::time::Instant::now();
        let hold = calls.try_hold([1; 12]).unwrap();
        assert_eq!(hold.wait(WINDOW, &shutdown).await, HoldEnd::Stopping);
        assert_eq!(started.elapsed(), STOPPING_GRACE);
    }

    #[tokio::test]
    async fn a_copy_handed_back_ends_the_hold_at_once() {
        let calls = HeldCalls::new(4);
        let hold = calls.try_hold([1; 12]).unwrap();
        calls.handed_back(&[2; 12]);
        calls.handed_back(&[1; 12]);
        assert_eq!(
            hold.wait(WINDOW, &CancellationToken::new()).await,
            HoldEnd::HandedBack
        );
        assert_eq!(calls.len(), 0);
    }

    #[tokio::test]
    async fn a_held_reply_is_claimed_once_and_again_only_after_its_forward_failed() {
        let calls = HeldCalls::new(4);
        let hold = calls.try_hold([1; 12]).unwrap();
        assert!(!calls.claim(&[2; 12]), "nothing held under another id");
        assert!(calls.claim(&[1; 12]));
        assert!(
            !calls.claim(&[1; 12]),
            "a second copy while the first is forwarded"
        );
        calls.unclaim(&[1; 12]);
        assert!(
            calls.claim(&[1; 12]),
            "claimable again after a failed forward"
        );
        calls.replied(&[1; 12]);
        assert!(!calls.claim(&[1; 12]), "a replay after the reply passed");
        assert_eq!(
            hold.wait(WINDOW, &CancellationToken::new()).await,
            HoldEnd::Replied
        );
    }

    #[tokio::test]
    async fn a_reservation_the_gate_refused_leaves_the_table() {
        let calls = HeldCalls::new(1);
        let hold = calls.try_hold([1; 12]).unwrap();
        assert_eq!(hold.id(), [1; 12]);
        drop(hold);
        assert_eq!(calls.len(), 0);
        assert!(!calls.claim(&[1; 12]));
    }

    #[tokio::test]
    async fn the_same_context_is_never_held_twice() {
        let calls = HeldCalls::new(4);
        let _first = calls.try_hold([1; 12]).unwrap();
        assert!(calls.try_hold([1; 12]).is_none());
    }
}
