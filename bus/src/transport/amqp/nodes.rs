//! The broker nodes a transport may connect to: one AMQP URL, or several
//! separated by commas (`amqp://u:p@h1:5672/%2f,amqp://u:p@h2:5672/%2f`),
//! one per node of a RabbitMQ cluster.
//!
//! The transport tries them in order at start and, when its connection
//! breaks, moves on to the next one. A comma inside a password must be
//! written `%2C`. Neither [`BrokerNodes`] nor its errors ever show a password.

use std::{fmt, str::FromStr};

use tollgate_wire::uri::{AMQPUri, SASLMechanism};

mod error;
mod redact;

pub use error::NodeListError;
pub use redact::redact_amqp_urls;

/// What separates the URLs of a node list.
pub const NODE_SEPARATOR: char = ',';

/// A non-empty list of broker nodes, all on the same virtual host.
#[derive(Clone, PartialEq, Eq)]
pub struct BrokerNodes {
    nodes: Vec<Node>,
}

/// One node: its parsed URL and how it is shown (password hidden).
#[derive(Clone, PartialEq, Eq)]
struct Node {
    uri: AMQPUri,
    shown: String,
}

// === BrokerNodes ===

impl BrokerNodes {
    /// Parses a comma-separated list of AMQP URLs (spaces around each are
    /// ignored).
    ///
    /// Errors on an empty list or entry, a URL that does not parse, the same
    /// host and port twice, or nodes on different virtual hosts (they would
    /// be different buses).
    pub fn parse(list: &str) -> Result<Self, NodeListError> {
        if list.trim().is_empty() {
            return Err(NodeListError::Empty);
        }
        let mut nodes: Vec<Node> = Vec::new();
        for (index, entry) in list.split(NODE_SEPARATOR).enumerate() {
            let position = index + 1;
            let entry = entry.trim();
            if entry.is_empty() {
                return Err(NodeListError::EmptyEntry { position });
            }
            let shown = redact::redact_url(entry);
            let uri = AMQPUri::from_str(entry).map_err(|reason| NodeListError::InvalidUrl {
                position,
                url: shown.clone(),
                // The parser may quote its input: never let the password through.
                reason: reason.replace(entry, &shown),
            })?;
            if let Some(first) = nodes.first()
                && first.uri.vhost != uri.vhost
            {
                return Err(NodeListError::MixedVhosts {
                    position,
                    vhost: uri.vhost,
                    first: first.uri.vhost.clone(),
                });
            }
            let same = |n: &Node| {
                n.uri.authority.host == uri.authority.host
                    && n.uri.authority.port == uri.authority.port
            };
            if nodes.iter().any(same) {
                return Err(NodeListError::DuplicateNode {
                    position,
                    url: shown,
                });
            }
            nodes.push(Node { uri, shown });
        }
        Ok(Self { nodes })
    }

    /// How many nodes the list holds (at least one).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Always `false`: a list holds at least one node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The parsed URL of node `index` (modulo the length: the list is a ring).
    pub fn uri(&self, index: usize) -> &AMQPUri {
        &self.nodes[index % self.nodes.len()].uri
    }

    /// The broker user node `index` (modulo the length) logs in as, when
    /// its URL logs in by name and password; `None` for a login by TLS
    /// certificate (`auth_mechanism=external`) or an anonymous one, whose
    /// user the URL does not name.
    pub fn user(&self, index: usize) -> Option<&str> {
        let uri = self.uri(index);
        let by_name = matches!(
            uri.query.auth_mechanism.unwrap_or_default(),
            SASLMechanism::Plain | SASLMechanism::AMQPlain | SASLMechanism::RabbitCrDemo
        );
        by_name.then_some(uri.authority.userinfo.username.as_str())
    }

    /// Node `index` (modulo the length) for logs and messages: its URL
    /// without the password.
    pub fn shown(&self, index: usize) -> &str {
        &self.nodes[index % self.nodes.len()].shown
    }
}

impl FromStr for BrokerNodes {
    type Err = NodeListError;

    fn from_str(list: &str) -> Result<Self, Self::Err> {
        Self::parse(list)
    }
}

impl fmt::Display for BrokerNodes {
    /// The URLs without passwords, comma-separated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, node) in self.nodes.iter().enumerate() {
            if i > 0 {
                write!(f, "{NODE_SEPARATOR}")?;
            }
            f.write_str(&node.shown)?;
        }
        Ok(())
    }
}

impl fmt::Debug for BrokerNodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BrokerNodes")
            .field(&self.to_string())
            .finish()
    }
}

#[cfg(test)]
mod tests;
