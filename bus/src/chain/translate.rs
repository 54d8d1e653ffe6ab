//! Translation of the request into the service's codec and schema version.

use std::sync::Arc;

use crate::{
    envelope::Envelope,
    headers,
    rejection::Rejection,
    translate::{Codec, Format, Translator},
};

use super::Resolved;

/// Content type assumed when a caller sets none.
pub const DEFAULT_CONTENT_TYPE: &str = "application/json";

/// Converts the payload from the caller's format to the service's.
pub struct Translate {
    translator: Arc<Translator>,
}

impl Translate {
    /// The step over `translator`.
    pub fn new(translator: Arc<Translator>) -> Self {
        Self { translator }
    }

    /// Rewrites the payload, content type and schema version for the target;
    /// returns the format the caller speaks (its reply is translated back to
    /// it). Refuses (`bad_payload`, `no_mapping`, …) what cannot be translated,
    /// leaving the envelope as it was.
    pub fn apply(&self, envelope: &mut Envelope, to: &Resolved) -> Result<Format, Rejection> {
        let target = to.target();
        let caller_type = envelope
            .content_type
            .as_deref()
            .unwrap_or(DEFAULT_CONTENT_TYPE);
        let codec = Codec::from_content_type(caller_type).ok_or_else(|| {
            Rejection::bad_payload(format!("unsupported content type `{caller_type}`"))
        })?;
        let caller = Format {
            codec,
            schema_version: envelope
                .headers
                .get_str(headers::CALLER_SCHEMA_VERSION)
                .unwrap_or(&target.format.schema_version)
                .to_owned(),
        };
        envelope.payload =
            self.translator
                .request(&target.service, &envelope.payload, &caller, &target.format)?;
        envelope.headers.remove(headers::CALLER_SCHEMA_VERSION);
        envelope.content_type = Some(target.format.codec.content_type().to_owned());
        envelope.headers.insert(
            headers::SCHEMA_VERSION,
            target.format.schema_version.as_str(),
        );
        Ok(caller)
    }
}
