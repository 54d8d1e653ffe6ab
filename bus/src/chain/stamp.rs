//! The last step before delivery: who the caller is (as headers and a
//! bus-signed assertion) and where the reply goes (a signed reply context).

use async_trait::async_trait;
use tollgate_auth::AssertionSigner;

use crate::{
    envelope::Envelope,
    header_map::HeaderValue,
    headers,
    names::BusNames,
    rejection::{RejectCode, Rejection, Stage},
    reply_context::{CONTEXT_LIFETIME_SECS, ReplyContext, ReplyContextKey},
};

use super::{AuthMode, Context, Interceptor};

/// Adds identity headers, the assertion and the reply context.
pub struct Stamp {
    signer: AssertionSigner,
    reply_key: ReplyContextKey,
    names: BusNames,
}

impl Stamp {
    /// The step signing with `signer` and `reply_key`.
    pub fn new(signer: AssertionSigner, reply_key: ReplyContextKey, names: BusNames) -> Self {
        Self {
            signer,
            reply_key,
            names,
        }
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

#[async_trait]
impl Interceptor for Stamp {
    fn stage(&self) -> Stage {
        Stage::Route
    }

    fn name(&self) -> &'static str {
        "stamp"
    }

    async fn intercept(
        &self,
        mut envelope: Envelope,
        cx: &mut Context,
    ) -> Result<Envelope, Rejection> {
        let (Some(target), Some(route)) = (cx.target.clone(), cx.route.clone()) else {
            return Err(Rejection::no_route("no target resolved"));
        };
        let h = &mut envelope.headers;
        h.insert(headers::ROUTE, route.full.as_str());
        let mode = if cx.mode == AuthMode::Service {
            "service"
        } else {
            "gateway"
        };
        h.insert(headers::AUTH_MODE, mode);
        if let Some(identity) = &cx.identity {
            h.insert(headers::CONSUMER, identity.consumer.as_str());
            if let Some(subject) = &identity.subject {
                h.insert(headers::SUBJECT, subject.as_str());
            }
            h.insert(headers::GROUPS, strings(&identity.groups));
            h.insert(headers::SCOPES, strings(&identity.scopes));
            let assertion = self
                .signer
                .sign(identity, &route.full, &envelope.id)
                .map_err(|e| {
                    tracing::error!(error = %e, "Cannot sign the bus assertion.");
                    Rejection::new(
                        RejectCode::InvalidToken,
                        Stage::Authenticate,
                        "cannot assert the caller",
                    )
                })?;
            envelope.headers.insert(headers::ASSERTION, assertion);
        }
        if let (Some(reply_to), Some(caller)) =
            (cx.caller_reply_to.clone(), cx.caller_format.clone())
        {
            let context = ReplyContext {
                caller_reply_to: reply_to,
                caller_content_type: caller.codec.content_type().to_owned(),
                caller_version: caller.schema_version,
                service: target.service.clone(),
                service_content_type: target.content_type.clone(),
                service_version: target.schema_version.clone(),
                expires_at: crate::time::unix_now() + CONTEXT_LIFETIME_SECS,
            };
            envelope
                .headers
                .insert(headers::REPLY_CONTEXT, self.reply_key.sign(&context));
            envelope.reply_to = Some(self.names.replies_queue().to_owned());
        }
        Ok(envelope)
    }
}
