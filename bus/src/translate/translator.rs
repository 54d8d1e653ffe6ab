//! The translator: from the caller's format to the service's and back.

use std::collections::HashMap;

use bytes::Bytes;

use super::{
    codec::Codec,
    error::{MappingError, TranslateError},
    mapping::{self, Direction, Mapping, MappingSpec},
};
use crate::rejection::Rejection;

/// What one side speaks.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Format {
    /// The wire codec.
    pub codec: Codec,
    /// The schema version of the payload, as announced by the service or
    /// stated by the caller.
    pub schema_version: String,
}

/// Translates payloads between formats with the configured mappings.
/// Built once from config; cheap to share (`Send + Sync`, no locks).
#[derive(Debug, Default)]
pub struct Translator {
    /// Mappings by service; a service has few version pairs, so a scan of
    /// its list beats hashing three strings per message.
    by_service: HashMap<String, Vec<Mapping>>,
}

const _: fn() = || {
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<Translator>();
};

// === Format ===

impl Format {
    /// A format of `codec` at `schema_version`.
    pub fn new(codec: Codec, schema_version: impl Into<String>) -> Self {
        Self {
            codec,
            schema_version: schema_version.into(),
        }
    }
}

// === Translator ===

impl Translator {
    /// Validates and compiles `specs`.
    ///
    /// Errors with every problem found: unparsable pointers, the empty
    /// pointer, renames across parents, empty names, `from == to`, and
    /// duplicate (service, from, to) entries.
    pub fn new(specs: &[MappingSpec]) -> Result<Self, Vec<MappingError>> {
        let mut by_service: HashMap<String, Vec<Mapping>> = HashMap::new();
        for mapping in mapping::compile(specs)? {
            by_service
                .entry(mapping.service.clone())
                .or_default()
                .push(mapping);
        }
        Ok(Self { by_service })
    }

    /// A translator without mappings: it transcodes between codecs and
    /// refuses any change of schema version.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Translates a request from the caller's format to the service's.
    ///
    /// The same format returns the payload untouched, without decoding it.
    /// The same version in another codec is transcoded. Another version is
    /// decoded, run through the request ops of the (`service`, caller's
    /// version, service's version) mapping and encoded.
    ///
    /// Errors with a `bad_payload` [`Rejection`] at stage `translate` when the
    /// payload does not decode, does not fit the mapping or cannot be
    /// encoded, or when no mapping joins the two versions.
    pub fn request(
        &self,
        service: &str,
        payload: &Bytes,
        caller: &Format,
        service_format: &Format,
    ) -> Result<Bytes, Rejection> {
        self.translate(service, payload, Direction::Request, caller, service_format)
            .map_err(Rejection::from)
    }

    /// Translates a reply from the service's format back to the caller's,
    /// with the reply ops of the same mapping as [`Translator::request`]
    /// (looked up by `service`, the caller's version and the service's).
    ///
    /// Errors as [`Translator::request`] does.
    pub fn reply(
        &self,
        service: &str,
        payload: &Bytes,
        service_format: &Format,
        caller: &Format,
    ) -> Result<Bytes, Rejection> {
        self.translate(service, payload, Direction::Reply, caller, service_format)
            .map_err(Rejection::from)
    }

    fn translate(
        &self,
        service: &str,
        payload: &Bytes,
        direction: Direction,
        caller: &Format,
        service_format: &Format,
    ) -> Result<Bytes, TranslateError> {
        if caller == service_format {
            return Ok(payload.clone());
        }
        let mapping = if caller.schema_version == service_format.schema_version {
            None
        } else {
            Some(self.mapping(
                service,
                &caller.schema_version,
                &service_format.schema_version,
            )?)
        };
        let (from, to) = match direction {
            Direction::Request => (caller.codec, service_format.codec),
            Direction::Reply => (service_format.codec, caller.codec),
        };
        let mut doc = from.decode(payload)?;
        if let Some(mapping) = mapping {
            mapping.apply(direction, &mut doc)?;
        }
        to.to_vec(&doc).map(Bytes::from)
    }

    fn mapping(&self, service: &str, from: &str, to: &str) -> Result<&Mapping, TranslateError> {
        self.by_service
            .get(service)
            .and_then(|mappings| mappings.iter().find(|m| m.from == from && m.to == to))
            .ok_or_else(|| TranslateError::NoMapping {
                service: service.to_owned(),
                from: from.to_owned(),
                to: to.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests;
