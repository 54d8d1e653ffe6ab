//! The request body of the router benches: JSON padded to the payload size.

use serde::{Deserialize, Serialize};

/// The request body.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Padded {
    /// Filler.
    pub(crate) padding: String,
}

/// A JSON request body of `size` bytes (at least the empty body's 14).
pub(crate) fn body(size: usize) -> Vec<u8> {
    let padded = Padded {
        padding: "x".repeat(size.saturating_sub(r#"{"padding":""}"#.len())),
    };
    serde_json::to_vec(&padded).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::body;

    #[test]
    fn the_body_has_the_payload_size() {
        assert_eq!(body(1024).len(), 1024);
        assert_eq!(body(0), br#"{"padding":""}"#);
    }
}
