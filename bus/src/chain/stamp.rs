//! The last step before delivery: who the caller is (as headers and a
//! bus-signed assertion) and where the reply goes (a signed reply context).

use std::{sync::Arc, time::Duration};

use tollgate_auth::AssertionSigner;

use crate::{
    envelope::Envelope,
    header_map::HeaderValue,
    headers,
    names::BusNames,
    reply_context::{ContextId, ReplyContext, ReplyContextKey, new_context_id},
    translate::Format,
};

use super::{Caller, InfraError, Resolved};

/// Adds the route, the assertion (and, when configured, identity headers)
/// and the reply context.
pub struct Stamp {
    signer: AssertionSigner,
    reply_key: Arc<ReplyContextKey>,
    reply_timeout: Duration,
    names: BusNames,
    identity_headers: bool,
}

/// Where and in which format the caller wants its reply.
#[derive(Debug)]
pub struct ReplyRoute<'a> {
    /// The caller's `reply_to`, as sanitize checked it.
    pub reply_to: &'a str,
    /// The format the caller speaks.
    pub format: &'a Format,
    /// The id of the hold the router keeps the call under, if it holds it:
    /// the context is sealed under it and says that the call is held (see
    /// [`ReplyContext::held`]). `None`: sealed under a new id, not held.
    pub held_as: Option<ContextId>,
}

impl Stamp {
    /// The step signing assertions with `signer` and sealing reply contexts
    /// with `reply_key`, valid for `reply_timeout`.
    pub fn new(
        signer: AssertionSigner,
        reply_key: Arc<ReplyContextKey>,
        reply_timeout: Duration,
        names: BusNames,
    ) -> Self {
        Self {
            signer,
            reply_key,
            reply_timeout,
            names,
            identity_headers: false,
        }
    }

    /// Also writes the caller's identity as informational headers
    /// (`x-tollgate-auth-mode`, `-consumer`, `-subject`, `-groups`,
    /// `-scopes`) beside the assertion, which holds the same and is what a
    /// service trusts.
    pub fn with_identity_headers(mut self, on: bool) -> Self {
        self.identity_headers = on;
        self
    }

    /// Writes the route, the caller's assertion (gateway and central mode;
    /// with the identity headers when configured), and the reply context when
    /// the caller wants a reply.
    ///
    /// Fails only when the bus cannot sign or seal (an infrastructure fault: the
    /// message is requeued, never refused as if the caller's token were bad).
    pub fn apply(
        &self,
        envelope: &mut Envelope,
        to: &Resolved,
        reply: Option<ReplyRoute<'_>>,
    ) -> Result<(), InfraError> {
        let route = to.permit().route().as_str();
        let h = &mut envelope.headers;
        h.insert(headers::ROUTE, route);
        if self.identity_headers {
            h.insert(headers::AUTH_MODE, to.permit().mode().as_str());
        }
        if let Caller::Gateway(identity) | Caller::Central(identity) = to.permit().caller() {
            if self.identity_headers {
                h.insert(headers::CONSUMER, identity.consumer.as_str());
                if let Some(subject) = &identity.subject {
                    h.insert(headers::SUBJECT, subject.as_str());
                }
                h.insert(headers::GROUPS, strings(&identity.groups));
                h.insert(headers::SCOPES, strings(&identity.scopes));
            }
            let assertion = self
                .signer
                .sign_for(to.target().assertion, identity, route, &envelope.id)
                .map_err(InfraError::Signing)?;
            envelope.headers.insert(headers::ASSERTION, assertion);
        }
        if let Some(reply) = reply {
            let target = to.target();
            let context = ReplyContext {
                caller_reply_to: reply.reply_to.to_owned(),
                caller_content_type: reply.format.codec.content_type().to_owned(),
                caller_version: reply.format.schema_version.clone(),
                service: target.service.clone(),
                service_content_type: target.format.codec.content_type().to_owned(),
                service_version: target.format.schema_version.clone(),
                correlation_id: envelope
                    .correlation_id
                    .clone()
                    .unwrap_or_else(|| envelope.id.clone()),
                request_id: envelope.id.clone(),
                expires_at: crate::time::unix_now() + self.reply_timeout.as_secs(),
                held: reply.held_as.is_some(),
            };
            let id = reply.held_as.unwrap_or_else(new_context_id);
            let sealed = self
                .reply_key
                .seal(id, &context)
                .ok_or(InfraError::Sealing)?;
            envelope.headers.insert(headers::REPLY_CONTEXT, sealed);
            envelope.reply_to = Some(self.names.replies_queue().to_owned());
        }
        Ok(())
    }
}

fn strings(items: &[String]) -> HeaderValue {
    HeaderValue::Array(
        items
            .iter()
            .map(|s| HeaderValue::from(s.as_str()))
            .collect(),
    )
}
