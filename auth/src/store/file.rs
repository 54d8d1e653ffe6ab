//! Loading consumers from a TOML or JSON file, as the router config references one.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::consumer::{Consumer, ConsumerSpec};
use crate::error::LoadError;

/// The document a consumers file holds: `[[consumers]]` tables in TOML, or
/// `{"consumers": [...]}` in JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumersFile {
    /// The consumers.
    #[serde(default)]
    pub consumers: Vec<ConsumerSpec>,
}

/// Reads and builds the consumers in `path`: JSON if the name ends in `.json`, TOML
/// otherwise. Key and JWKS files are read relative to the file's folder. Errors on
/// the first problem, naming the consumer and key.
pub fn load_consumers(path: &Path) -> Result<Vec<Consumer>, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let file = parse(path, &text)?;
    let base_dir = path.parent().unwrap_or_else(|| Path::new("."));
    file.consumers
        .iter()
        .map(|spec| spec.build(base_dir))
        .collect()
}

fn parse(path: &Path, text: &str) -> Result<ConsumersFile, LoadError> {
    if path
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("json"))
    {
        serde_json::from_str(text).map_err(|source| LoadError::Json {
            what: path.display().to_string(),
            source,
        })
    } else {
        toml::from_str(text).map_err(|source| LoadError::Toml {
            path: path.to_path_buf(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "tollgate-auth-{name}-{}",
                uuid::Uuid::new_v4().simple()
            ));
            std::fs::create_dir_all(&dir).expect("temp dir");
            Self(dir)
        }

        fn write(&self, name: &str, text: &str) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, text).expect("write");
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const TOML: &str = r#"
        [[consumers]]
        name = "billing"
        key = "billing-key"
        groups = ["internal"]
        scopes = ["orders.read"]

        [[consumers.credentials]]
        kid = "billing-1"
        algorithm = "HS256"
        secret = "0123456789abcdef0123456789abcdef"

        [[consumers]]
        name = "partner"
        enabled = false
        jwks_file = "partner.jwks.json"
    "#;

    const JWKS: &str = r#"{"keys":[{"kty":"oct","kid":"p1","alg":"HS256",
        "k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldC0xMjM0NTY"}]}"#;

    #[test]
    fn loads_toml_with_a_jwks_file_beside_it() {
        let dir = TempDir::new("toml");
        dir.write("partner.jwks.json", JWKS);
        let consumers = load_consumers(&dir.write("consumers.toml", TOML)).expect("valid");
        assert_eq!(consumers.len(), 2);
        assert_eq!(consumers[0].key, "billing-key");
        assert_eq!(consumers[0].groups, ["internal"]);
        assert_eq!(consumers[0].credentials[0].kid(), Some("billing-1"));
        assert!(!consumers[1].enabled);
        assert_eq!(consumers[1].credentials[0].kid(), Some("p1"));
    }

    #[test]
    fn loads_the_same_consumers_from_json() {
        let dir = TempDir::new("json");
        let json = r#"{"consumers":[{"name":"billing","credentials":[
            {"algorithm":"HS512","secret_base64":
             "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZg=="}
        ]}]}"#;
        let consumers = load_consumers(&dir.write("consumers.json", json)).expect("valid");
        assert_eq!(consumers[0].name, "billing");
        assert_eq!(consumers[0].key, "billing");
    }

    #[test]
    fn refuses_unknown_fields() {
        let dir = TempDir::new("unknown");
        let path = dir.write("c.toml", "[[consumers]]\nname = \"a\"\nsecrett = \"x\"\n");
        assert!(matches!(load_consumers(&path), Err(LoadError::Toml { .. })));
    }

    #[test]
    fn refuses_a_short_secret_at_load_time() {
        let dir = TempDir::new("short");
        let text = TOML.replace("0123456789abcdef0123456789abcdef", "too-short");
        dir.write("partner.jwks.json", JWKS);
        let err = load_consumers(&dir.write("c.toml", &text)).expect_err("short secret");
        assert!(err.to_string().contains("billing/billing-1"), "{err}");
    }
}
