//! Declarative field mappings between two schema versions of a service:
//! the config (`[[translation.mappings]]`), its validation, and the compiled
//! ops applied to the pivot document.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    error::{MappingError, TranslateError},
    pointer::{ParseError, Pointer, Write},
};

/// One `[[translation.mappings]]` entry: how payloads of `service` change
/// between a caller speaking schema version `from` and the service speaking
/// `to`.
///
/// ```toml
/// [[translation.mappings]]
/// service = "billing-legacy"
/// from = "2"
/// to = "1"
/// request = [
///   { op = "move", from = "/customer/id", to = "/customer_id" },
///   { op = "rename", from = "/total", to = "/amount" },
///   { op = "drop", path = "/metadata" },
///   { op = "default", path = "/currency", value = "EUR" },
/// ]
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingSpec {
    /// The service whose payloads are mapped, as it registers.
    pub service: String,
    /// The caller's schema version.
    pub from: String,
    /// The service's schema version; must differ from `from`.
    pub to: String,
    /// Ops applied in order to a request from a `from` caller before the
    /// service gets it.
    #[serde(default)]
    pub request: Vec<OpSpec>,
    /// Ops applied in order to the service's reply before the caller gets it.
    /// When omitted, the inverse of `request`: its `rename` and `move` ops
    /// reversed, in reverse order (`drop` and `default` have no inverse).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<Vec<OpSpec>>,
}

/// One edit of a document. Paths are RFC 6901 JSON pointers (`/a/b`, `~1`
/// for `/`, `~0` for `~`, array indices allowed); the empty pointer (the
/// whole document) is refused. Fields are optional: a missing source is no
/// error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum OpSpec {
    /// Renames a member within its parent: a `move` whose pointers differ
    /// only in the last token (checked at load).
    Rename {
        /// The member to rename.
        from: String,
        /// Its new pointer, under the same parent.
        to: String,
    },
    /// Moves a value, creating missing objects on the way to `to` and
    /// removing objects the move left empty. An existing value at `to` is
    /// replaced; in an array, the value is inserted at the index.
    Move {
        /// Where the value is taken from.
        from: String,
        /// Where it is written.
        to: String,
    },
    /// Removes a value.
    Drop {
        /// The value to remove.
        path: String,
    },
    /// Writes `value` where nothing is (a `null` counts as something),
    /// creating missing objects on the way.
    Default {
        /// Where to write.
        path: String,
        /// The value to write, any JSON (or TOML) value.
        value: Value,
    },
}

/// The direction a payload travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Direction {
    /// From the caller to the service.
    Request,
    /// From the service back to the caller.
    Reply,
}

/// A validated [`MappingSpec`], pointers parsed.
#[derive(Debug)]
pub(super) struct Mapping {
    pub(super) service: String,
    pub(super) from: String,
    pub(super) to: String,
    request: Vec<Step>,
    reply: Vec<Step>,
}

/// A compiled op and where it came from, for error messages.
#[derive(Debug, Clone)]
struct Step {
    op: Op,
    label: String,
}

#[derive(Debug, Clone)]
enum Op {
    Move { from: Pointer, to: Pointer },
    Drop { path: Pointer },
    Default { path: Pointer, value: Value },
}

// === Compilation ===

/// Validates every spec and compiles them, or reports every problem found.
pub(super) fn compile(specs: &[MappingSpec]) -> Result<Vec<Mapping>, Vec<MappingError>> {
    let mut errors = Vec::new();
    let mut seen = HashMap::new();
    let mut mappings = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        let at = format!(
            "mapping [{i}] ({} {} -> {})",
            spec.service, spec.from, spec.to
        );
        for (field, value) in [
            ("service", &spec.service),
            ("from", &spec.from),
            ("to", &spec.to),
        ] {
            if value.is_empty() {
                errors.push(MappingError::Empty {
                    at: at.clone(),
                    field,
                });
            }
        }
        if spec.from == spec.to {
            let version = spec.from.clone();
            errors.push(MappingError::SameVersion {
                at: at.clone(),
                version,
            });
        }
        let key = (spec.service.as_str(), spec.from.as_str(), spec.to.as_str());
        if let Some(first) = seen.insert(key, at.clone()) {
            errors.push(MappingError::Duplicate {
                at: at.clone(),
                first,
            });
        }
        let request = compile_ops(&at, "request", &spec.request, &mut errors);
        let reply = match &spec.reply {
            Some(ops) => compile_ops(&at, "reply", ops, &mut errors),
            None => inverse(&request),
        };
        mappings.push(Mapping {
            service: spec.service.clone(),
            from: spec.from.clone(),
            to: spec.to.clone(),
            request,
            reply,
        });
    }
    if errors.is_empty() {
        Ok(mappings)
    } else {
        Err(errors)
    }
}

fn compile_ops(at: &str, list: &str, ops: &[OpSpec], errors: &mut Vec<MappingError>) -> Vec<Step> {
    let mut steps = Vec::with_capacity(ops.len());
    for (j, op) in ops.iter().enumerate() {
        let at = format!("{at}, {list}[{j}] ({})", op.name());
        let mut parse = |field, pointer: &str| match Pointer::parse(pointer) {
            Ok(p) => Some(p),
            Err(e) => {
                errors.push(bad_pointer(&at, field, pointer, e));
                None
            }
        };
        let compiled = match op {
            OpSpec::Rename { from, to } | OpSpec::Move { from, to } => {
                let (from, to) = (parse("from", from), parse("to", to));
                from.zip(to).map(|(from, to)| Op::Move { from, to })
            }
            OpSpec::Drop { path } => parse("path", path).map(|path| Op::Drop { path }),
            OpSpec::Default { path, value } => parse("path", path).map(|path| Op::Default {
                path,
                value: value.clone(),
            }),
        };
        if let (OpSpec::Rename { .. }, Some(Op::Move { from, to })) = (op, &compiled)
            && !from.same_parent(to)
        {
            errors.push(MappingError::RenameAcrossParents {
                at: at.clone(),
                from: from.as_str().to_owned(),
                to: to.as_str().to_owned(),
            });
        }
        steps.extend(compiled.map(|op| Step { op, label: at }));
    }
    steps
}

fn bad_pointer(at: &str, field: &'static str, pointer: &str, e: ParseError) -> MappingError {
    match e {
        ParseError::Empty => MappingError::WholeDocument {
            at: at.to_owned(),
            field,
        },
        e => MappingError::BadPointer {
            at: at.to_owned(),
            field,
            pointer: pointer.to_owned(),
            problem: e.as_str(),
        },
    }
}

/// The reply ops derived from the request ops: each move reversed, in
/// reverse order; drops and defaults are skipped.
fn inverse(request: &[Step]) -> Vec<Step> {
    request
        .iter()
        .rev()
        .filter_map(|step| match &step.op {
            Op::Move { from, to } => Some(Step {
                op: Op::Move {
                    from: to.clone(),
                    to: from.clone(),
                },
                label: format!("inverse of {}", step.label),
            }),
            Op::Drop { .. } | Op::Default { .. } => None,
        })
        .collect()
}

// === OpSpec ===

impl OpSpec {
    /// The op's name as configured: `rename`, `move`, `drop` or `default`.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Rename { .. } => "rename",
            Self::Move { .. } => "move",
            Self::Drop { .. } => "drop",
            Self::Default { .. } => "default",
        }
    }
}

// === Mapping ===

impl Mapping {
    /// Applies the ops of `direction` to `doc`, in order.
    ///
    /// Errors with [`TranslateError::Apply`] when a value on the way to a
    /// target is neither an object nor an array, or an array index is out of
    /// range.
    pub(super) fn apply(
        &self,
        direction: Direction,
        doc: &mut Value,
    ) -> Result<(), TranslateError> {
        let steps = match direction {
            Direction::Request => &self.request,
            Direction::Reply => &self.reply,
        };
        for step in steps {
            let (target, result) = match &step.op {
                Op::Move { from, to } => match from.take(doc, true) {
                    Some(value) => (to, to.set(doc, || value, Write::Always)),
                    None => continue,
                },
                Op::Drop { path } => {
                    path.take(doc, false);
                    continue;
                }
                Op::Default { path, value } => {
                    (path, path.set(doc, || value.clone(), Write::IfAbsent))
                }
            };
            result.map_err(|e| TranslateError::Apply {
                service: self.service.clone(),
                op: step.label.clone(),
                pointer: target.as_str().to_owned(),
                problem: e.as_str(),
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
