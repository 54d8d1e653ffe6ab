//! Publisher confirms of one channel, and the returns they carry.
//!
//! Each publish on a confirm-mode channel gets the next delivery tag and a
//! pending entry. RabbitMQ sends a mandatory message's `basic.return` before
//! its `basic.ack`, but acks of other publishes may come in between (an
//! earlier persistent message waits for the disk while an unroutable one is
//! confirmed at once), and a return names no delivery tag. So a return goes
//! to the oldest pending publish with the same exchange, routing key and
//! message id that has no return yet: publishes of the same message to the
//! same place are routed in order, so that is the one.

use std::collections::BTreeMap;

use amq_protocol::protocol::BasicProperties;
use tokio::sync::oneshot;

use crate::error::WireError;

/// The broker's verdict on one publish.
#[derive(Debug)]
pub struct Confirmation {
    /// `basic.ack` (true) or `basic.nack` (false).
    pub acked: bool,
    /// The message, when the broker returned it as unroutable (mandatory).
    pub returned: Option<Returned>,
}

/// A message the broker returned (`basic.return`).
#[derive(Debug, Clone)]
pub struct Returned {
    /// The broker's reply code (312 `NO_ROUTE`).
    pub reply_code: u16,
    /// The broker's reply text.
    pub reply_text: String,
    /// The exchange it was published to.
    pub exchange: String,
    /// Its routing key.
    pub routing_key: String,
    /// Its properties.
    pub properties: BasicProperties,
    /// Its body.
    pub body: Vec<u8>,
}

pub(crate) type ConfirmSender = oneshot::Sender<Result<Confirmation, WireError>>;

/// The publishes of one channel awaiting their confirm.
#[derive(Default)]
pub(crate) struct Confirms {
    /// Whether `confirm.select` was sent (tags count from then on).
    enabled: bool,
    last_tag: u64,
    pending: BTreeMap<u64, Pending>,
}

struct Pending {
    to: (String, String),
    message_id: Option<String>,
    returned: Option<Returned>,
    reply: ConfirmSender,
}

impl Confirms {
    /// Starts counting delivery tags (after `confirm.select`).
    pub(crate) fn enable(&mut self) {
        self.enabled = true;
    }

    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// Registers the next publish; returns its delivery tag.
    pub(crate) fn register(
        &mut self,
        exchange: &str,
        routing_key: &str,
        message_id: Option<String>,
        reply: ConfirmSender,
    ) -> u64 {
        self.last_tag += 1;
        self.pending.insert(
            self.last_tag,
            Pending {
                to: (exchange.to_owned(), routing_key.to_owned()),
                message_id,
                returned: None,
                reply,
            },
        );
        self.last_tag
    }

    /// Gives a return to the publish it belongs to; hands it back when no
    /// pending publish claims it (a publish without confirms).
    pub(crate) fn returned(&mut self, returned: Returned) -> Option<Returned> {
        let id = returned
            .properties
            .message_id()
            .as_ref()
            .map(|s| s.as_str());
        let owner = self.pending.values_mut().find(|p| {
            p.returned.is_none()
                && p.to.0 == returned.exchange
                && p.to.1 == returned.routing_key
                && p.message_id.as_deref() == id
        });
        match owner {
            Some(p) => {
                p.returned = Some(returned);
                None
            }
            None => Some(returned),
        }
    }

    /// Settles `tag` (and every earlier one when `multiple`).
    pub(crate) fn settle(&mut self, tag: u64, multiple: bool, acked: bool) {
        let settled = if multiple {
            let rest = self.pending.split_off(&(tag + 1));
            std::mem::replace(&mut self.pending, rest)
        } else {
            self.pending
                .remove(&tag)
                .map(|p| (tag, p))
                .into_iter()
                .collect()
        };
        for (_, p) in settled {
            // The publisher may have stopped waiting; nothing to tell then.
            let _ = p.reply.send(Ok(Confirmation {
                acked,
                returned: p.returned,
            }));
        }
    }

    /// Fails every pending publish with `error` (the channel is gone: their
    /// outcome is unknown).
    pub(crate) fn fail(&mut self, error: &WireError) {
        for (_, p) in std::mem::take(&mut self.pending) {
            let _ = p.reply.send(Err(error.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn returned(key: &str, id: &str) -> Returned {
        Returned {
            reply_code: 312,
            reply_text: "NO_ROUTE".into(),
            exchange: "ex".into(),
            routing_key: key.into(),
            properties: BasicProperties::default().with_message_id(id.into()),
            body: Vec::new(),
        }
    }

    #[test]
    fn a_return_reaches_its_own_publish_though_another_is_acked_between() {
        let mut confirms = Confirms::default();
        confirms.enable();
        let (tx1, mut rx1) = oneshot::channel();
        let (tx2, mut rx2) = oneshot::channel();
        let first = confirms.register("ex", "routed", Some("m1".into()), tx1);
        let second = confirms.register("ex", "nowhere", Some("m2".into()), tx2);
        assert!(confirms.returned(returned("nowhere", "m2")).is_none());
        confirms.settle(second, false, true);
        confirms.settle(first, false, true);
        let one = rx1.try_recv().unwrap().unwrap();
        let two = rx2.try_recv().unwrap().unwrap();
        assert!(one.acked && one.returned.is_none());
        assert!(two.acked && two.returned.is_some());
    }

    #[test]
    fn a_multiple_ack_settles_every_earlier_publish() {
        let mut confirms = Confirms::default();
        confirms.enable();
        let mut replies = Vec::new();
        for i in 0..3 {
            let (tx, rx) = oneshot::channel();
            confirms.register("ex", "k", Some(i.to_string()), tx);
            replies.push(rx);
        }
        confirms.settle(2, true, false);
        assert!(!replies[0].try_recv().unwrap().unwrap().acked);
        assert!(!replies[1].try_recv().unwrap().unwrap().acked);
        assert!(replies[2].try_recv().is_err());
        confirms.fail(&WireError::Closed);
        assert!(replies[2].try_recv().unwrap().is_err());
    }

    #[test]
    fn a_return_nobody_waits_for_is_handed_back() {
        let mut confirms = Confirms::default();
        assert!(confirms.returned(returned("k", "m")).is_some());
    }
}
