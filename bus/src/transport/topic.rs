//! AMQP topic pattern matching: words separated by `.`, `*` matches exactly
//! one word, `#` matches zero or more.

/// Whether `routing_key` matches the topic binding `pattern`.
///
/// Dynamic programming over (pattern word, key word), so adversarial keys and
/// patterns with many `#` cost O(pattern × key), never exponential time.
pub fn topic_matches(pattern: &str, routing_key: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('.').collect();
    let key: Vec<&str> = routing_key.split('.').collect();
    // rest[j]: does pattern[i..] match key[j..]? Built from the last pattern word back.
    let mut rest: Vec<bool> = (0..=key.len()).map(|j| j == key.len()).collect();
    for word in pattern.iter().rev() {
        let mut here = vec![false; key.len() + 1];
        for j in (0..=key.len()).rev() {
            here[j] = if *word == "#" {
                rest[j] || (j < key.len() && here[j + 1])
            } else {
                j < key.len() && (*word == "*" || *word == key[j]) && rest[j + 1]
            };
        }
        rest = here;
    }
    rest[0]
}

#[cfg(test)]
mod tests {
    use super::topic_matches;

    #[test]
    fn star_matches_exactly_one_word() {
        assert!(topic_matches("orders.*", "orders.create"));
        assert!(!topic_matches("orders.*", "orders"));
        assert!(!topic_matches("orders.*", "orders.create.v2"));
        assert!(topic_matches("*.create", "billing.create"));
    }

    #[test]
    fn hash_matches_zero_or_more_words() {
        assert!(topic_matches("orders.#", "orders"));
        assert!(topic_matches("orders.#", "orders.create.v2"));
        assert!(topic_matches("#", "anything.at.all"));
        assert!(topic_matches("#.v2", "orders.create.v2"));
        assert!(topic_matches("a.#.z", "a.z"));
        assert!(topic_matches("a.#.z", "a.b.c.z"));
        assert!(!topic_matches("a.#.z", "a.b.c"));
    }

    #[test]
    fn literal_words_must_match_exactly() {
        assert!(topic_matches("orders.create", "orders.create"));
        assert!(!topic_matches("orders.create", "orders.cancel"));
        assert!(!topic_matches("orders.create", "Orders.create"));
    }

    #[test]
    fn many_hashes_against_a_long_key_finish() {
        let pattern = vec!["#"; 64].join(".") + ".nomatch";
        let key = vec!["w"; 256].join(".");
        assert!(!topic_matches(&pattern, &key));
    }

    #[test]
    fn empty_words_are_words() {
        assert!(topic_matches("*", ""));
        assert!(topic_matches("a.*", "a."));
        assert!(!topic_matches("a", ""));
    }
}
