//! Translation of the request into the service's codec and schema version.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{
    envelope::Envelope,
    headers,
    rejection::{Rejection, Stage},
    translate::{Codec, Format, Translator},
};

use super::{Context, Interceptor};

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
}

fn format_of(content_type: &str, version: &str) -> Result<Format, Rejection> {
    let codec = Codec::from_content_type(content_type).ok_or_else(|| {
        Rejection::bad_payload(format!("unsupported content type `{content_type}`"))
    })?;
    Ok(Format {
        codec,
        schema_version: version.to_owned(),
    })
}

#[async_trait]
impl Interceptor for Translate {
    fn stage(&self) -> Stage {
        Stage::Translate
    }

    fn name(&self) -> &'static str {
        "translate"
    }

    async fn intercept(
        &self,
        mut envelope: Envelope,
        cx: &mut Context,
    ) -> Result<Envelope, Rejection> {
        let Some(target) = cx.target.clone() else {
            return Err(Rejection::no_route("no target resolved"));
        };
        let caller_type = envelope
            .content_type
            .clone()
            .unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_owned());
        let caller_version = envelope
            .headers
            .remove(headers::CALLER_SCHEMA_VERSION)
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| target.schema_version.clone());
        let caller = format_of(&caller_type, &caller_version)?;
        let service = format_of(&target.content_type, &target.schema_version)?;
        envelope.payload =
            self.translator
                .request(&target.service, &envelope.payload, &caller, &service)?;
        envelope.content_type = Some(target.content_type.clone());
        envelope
            .headers
            .insert(headers::SCHEMA_VERSION, target.schema_version.as_str());
        cx.caller_format = Some(caller);
        Ok(envelope)
    }
}
