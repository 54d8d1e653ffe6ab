//! Why a broker node list was refused.

/// A broker node list ([`super::BrokerNodes`]) that cannot be used. URLs in
/// it are shown without their password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NodeListError {
    /// No URL at all.
    #[error("no broker URL given")]
    Empty,
    /// Two separators in a row, or one at either end.
    #[error("broker URL #{position} is empty (two commas in a row, or one at an end)")]
    EmptyEntry {
        /// 1-based position in the list.
        position: usize,
    },
    /// An entry is not an AMQP URL.
    #[error("broker URL #{position} `{url}` is not an AMQP URL: {reason}")]
    InvalidUrl {
        /// 1-based position in the list.
        position: usize,
        /// The entry, password hidden.
        url: String,
        /// What the parser said, password hidden.
        reason: String,
    },
    /// The same host and port twice.
    #[error("broker URL #{position} `{url}` names a node already in the list")]
    DuplicateNode {
        /// 1-based position of the second occurrence.
        position: usize,
        /// The entry, password hidden.
        url: String,
    },
    /// Nodes on different virtual hosts: they would be different buses.
    #[error(
        "broker URL #{position} is on virtual host `{vhost}`, the first on `{first}`: \
         every node of one bus uses the same virtual host"
    )]
    MixedVhosts {
        /// 1-based position of the odd entry.
        position: usize,
        /// Its virtual host.
        vhost: String,
        /// The first entry's virtual host.
        first: String,
    },
}

impl NodeListError {
    /// A stable snake_case code for logs and metrics.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::EmptyEntry { .. } => "empty_entry",
            Self::InvalidUrl { .. } => "invalid_url",
            Self::DuplicateNode { .. } => "duplicate_node",
            Self::MixedVhosts { .. } => "mixed_vhosts",
        }
    }
}
