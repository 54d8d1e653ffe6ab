//! Hiding passwords in AMQP URLs before they reach a log or a message.

use super::NODE_SEPARATOR;

/// `urls` (one AMQP URL, or a comma-separated list, valid or not) with every
/// password replaced by `***`, for logs and error messages.
pub fn redact_amqp_urls(urls: &str) -> String {
    urls.split(NODE_SEPARATOR)
        .map(redact_url)
        .collect::<Vec<_>>()
        .join(",")
}

/// One URL with its password replaced by `***`. The user info ends at the
/// last `@`, so a password holding an unescaped `/` or `@` stays hidden too.
pub(super) fn redact_url(url: &str) -> String {
    let start = url.find("://").map_or(0, |scheme| scheme + 3);
    let Some(at) = url.rfind('@').filter(|&at| at >= start) else {
        return url.to_owned();
    };
    match url[start..at].split_once(':') {
        Some((user, _password)) => format!("{}{user}:***{}", &url[..start], &url[at..]),
        None => url.to_owned(),
    }
}
