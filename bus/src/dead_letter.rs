//! The dead-letter copy of a refused message: what the router and the
//! service SDK put in `<ns>.dead`, built by the same rules on both sides.
//!
//! A copy is the record an operator reads, never a replay of what the sender
//! chose to send. It carries:
//!
//! * the verdict, written by the bus: [`headers::CODE`], [`headers::STAGE`],
//!   [`headers::REASON`] (at most [`MAX_REASON_BYTES`]) and [`headers::ROUTE`];
//! * the refused message's id, correlation id, content type and timestamp,
//!   and the `reply_to` the caller of [`copy_of`] vouches for;
//! * the sender's headers, stripped as the router's sanitize step strips
//!   them — no `x-tollgate-*` name in any letter case (forged or the bus's
//!   own: assertion, reply context, identity), no broker header (`x-death`,
//!   `x-first-death-*`, `x-last-death-*`, `x-delivery-count`), no
//!   `authorization` in any letter case — without any value nested deeper
//!   than [`MAX_COPIED_DEPTH`], and only if what is left fits the bounds'
//!   header count and encoded size; otherwise none of them, and
//!   [`headers::HEADERS_DROPPED`] says why;
//! * the payload if it fits the bounds' payload size; otherwise none, and
//!   [`headers::PAYLOAD_DROPPED`] says how large it was.
//!
//! A hostile table is dropped whole rather than sampled: a part of it would
//! say nothing reliable, and the bound keeps one refusal from writing more
//! than the limits let through.

use bytes::Bytes;

use crate::{
    chain::Limits,
    envelope::Envelope,
    header_map::{HeaderValue, Headers},
    headers,
    hop::Hop,
    rejection::Rejection,
};

/// Deepest nesting of arrays and tables a copied header value may have (a
/// scalar nests 0 levels, an array of scalars 1). Deeper values are left out.
pub const MAX_COPIED_DEPTH: usize = 8;

/// Longest refusal reason a copy carries, in bytes; a longer one is cut.
pub const MAX_REASON_BYTES: usize = 1024;

/// How much of a refused message its copy may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadLetterBounds {
    /// Largest payload copied; a larger one is left out.
    pub max_payload_bytes: usize,
    /// Most sender headers copied (top-level entries, after stripping).
    pub max_header_count: usize,
    /// Largest encoded table of sender headers copied (after stripping).
    pub max_header_bytes: usize,
}

// === DeadLetterBounds ===

impl From<Limits> for DeadLetterBounds {
    /// A copy carries at most what the router's limits let in.
    fn from(limits: Limits) -> Self {
        Self {
            max_payload_bytes: limits.max_message_bytes,
            max_header_count: limits.max_header_count,
            max_header_bytes: limits.max_header_bytes,
        }
    }
}

impl Default for DeadLetterBounds {
    /// The bounds of the router's default [`Limits`] (1 MiB, 64 headers, 16 KiB).
    fn default() -> Self {
        Limits::default().into()
    }
}

// === The copy ===

/// The dead-letter copy of `refused`, refused with `rejection` on `route`
/// (`-` when unknown), replying to `reply_to`; see the module documentation
/// for what it carries. Persistent: it is the only record of the refusal.
///
/// The copy always passes [`Envelope::check_wire`]: if its properties cannot
/// be carried, it keeps the verdict alone.
pub fn copy_of(
    refused: &Envelope,
    reply_to: Option<&str>,
    route: &str,
    rejection: &Rejection,
    bounds: &DeadLetterBounds,
) -> Envelope {
    let (mut headers, headers_dropped) = sender_headers(&refused.headers, bounds);
    let payload = if refused.payload.len() <= bounds.max_payload_bytes {
        refused.payload.clone()
    } else {
        headers.insert(
            headers::PAYLOAD_DROPPED,
            format!(
                "payload of {} bytes exceeds the bound of {}",
                refused.payload.len(),
                bounds.max_payload_bytes
            ),
        );
        Bytes::new()
    };
    if let Some(why) = headers_dropped {
        headers.insert(headers::HEADERS_DROPPED, why);
    }
    headers.insert(headers::CODE, rejection.code.as_str());
    headers.insert(headers::STAGE, rejection.stage.as_str());
    headers.insert(headers::REASON, cut(&rejection.reason, MAX_REASON_BYTES));
    headers.insert(headers::ROUTE, route);
    let mut copy = Envelope {
        id: refused.id.clone(),
        correlation_id: refused.correlation_id.clone(),
        reply_to: reply_to.map(str::to_owned),
        content_type: refused.content_type.clone(),
        timestamp: refused.timestamp,
        headers,
        payload,
        delivery_mode: Hop::DeadLetter.delivery_mode(),
        expiration: None,
        user_id: None,
    };
    if let Err(e) = copy.check_wire() {
        // Only a property can be at fault (the headers are bounded above):
        // keep the copy deliverable with the verdict alone.
        copy.correlation_id = None;
        copy.reply_to = None;
        copy.content_type = None;
        if copy.id.len() > crate::header_map::MAX_NAME_BYTES {
            copy.id = uuid::Uuid::new_v4().to_string();
        }
        copy.headers.retain(|name, _| headers::is_reserved(name));
        copy.headers.insert(headers::HEADERS_DROPPED, e.to_string());
    }
    copy
}

/// The sender's headers a copy may carry, and why some or all were left out.
fn sender_headers(all: &Headers, bounds: &DeadLetterBounds) -> (Headers, Option<String>) {
    let copyable = |name: &str| {
        !headers::is_reserved(name)
            && !headers::is_broker_header(name)
            && !name.eq_ignore_ascii_case(headers::AUTHORIZATION)
    };
    // Measured before anything is cloned: a hostile table costs one walk.
    let (mut count, mut bytes, mut too_deep) = (0usize, 0usize, 0usize);
    for (name, value) in all.iter().filter(|(name, _)| copyable(name)) {
        if nests_deeper_than(value, MAX_COPIED_DEPTH) {
            too_deep += 1;
        } else {
            count += 1;
            bytes = bytes.saturating_add(1 + name.len() + value.encoded_len());
        }
    }
    if count > bounds.max_header_count || bytes > bounds.max_header_bytes {
        let why = format!(
            "the sender's {count} headers ({bytes} bytes) exceed the bound of {} headers and {} bytes",
            bounds.max_header_count, bounds.max_header_bytes
        );
        return (Headers::new(), Some(why));
    }
    let kept = all
        .iter()
        .filter(|(name, value)| copyable(name) && !nests_deeper_than(value, MAX_COPIED_DEPTH))
        .map(|(name, value)| (name.to_owned(), value.clone()))
        .collect();
    let why = (too_deep > 0).then(|| {
        format!("{too_deep} headers nested deeper than {MAX_COPIED_DEPTH} levels were left out")
    });
    (kept, why)
}

/// Whether `value` nests arrays or tables more than `levels` deep. Recurses at
/// most `levels + 1` times, however deep the value is.
fn nests_deeper_than(value: &HeaderValue, levels: usize) -> bool {
    let deeper = |mut children: Box<dyn Iterator<Item = &HeaderValue> + '_>| {
        levels == 0 || children.any(|child| nests_deeper_than(child, levels - 1))
    };
    match value {
        HeaderValue::Array(items) => deeper(Box::new(items.iter())),
        HeaderValue::Table(table) => deeper(Box::new(table.iter().map(|(_, v)| v))),
        _ => false,
    }
}

/// `text` cut to at most `max` bytes, on a character boundary.
pub(crate) fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests;
