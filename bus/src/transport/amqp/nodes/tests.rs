use super::*;

fn err(list: &str) -> NodeListError {
    BrokerNodes::parse(list).unwrap_err()
}

#[test]
fn one_url_is_a_list_of_one_node() {
    let nodes = BrokerNodes::parse("amqp://guest:guest@127.0.0.1:5672/%2f").unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes.uri(0).authority.port, 5672);
    assert_eq!(nodes.uri(0).vhost, "/");
}

#[test]
fn comma_separated_urls_are_nodes_in_order_and_the_list_is_a_ring() {
    let nodes = BrokerNodes::parse(
        "amqp://u:p@h1:5701/%2f, amqp://u:p@h2:5702/%2f ,amqp://u:p@h3:5703/%2f",
    )
    .unwrap();
    assert_eq!(nodes.len(), 3);
    let hosts: Vec<_> = (0..4)
        .map(|i| nodes.uri(i).authority.host.clone())
        .collect();
    assert_eq!(hosts, ["h1", "h2", "h3", "h1"]);
    assert_eq!(nodes.uri(2).authority.port, 5703);
}

#[test]
fn empty_lists_and_entries_are_refused_with_their_position() {
    assert_eq!(err(""), NodeListError::Empty);
    assert_eq!(err("  "), NodeListError::Empty);
    assert_eq!(
        err("amqp://h1/%2f,,amqp://h2/%2f"),
        NodeListError::EmptyEntry { position: 2 }
    );
    assert_eq!(
        err("amqp://h1/%2f,"),
        NodeListError::EmptyEntry { position: 2 }
    );
    assert_eq!(err(",amqp://h1/%2f").code(), "empty_entry");
}

#[test]
fn a_bad_url_is_named_by_position_without_its_password() {
    let e = err("amqp://u:hunter2@h1/%2f,http://u:hunter2@h2/%2f");
    assert_eq!(e.code(), "invalid_url");
    let text = e.to_string();
    assert!(text.contains("#2"), "{text}");
    assert!(text.contains("http://u:***@h2/%2f"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn a_parser_message_quoting_the_url_is_redacted_too() {
    // `mailto:`-like URLs make the parser quote its whole input.
    let e = err("amqp:u:hunter2@h1");
    let text = format!("{e} {e:?}");
    assert_eq!(e.code(), "invalid_url");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn the_same_node_twice_is_refused() {
    let e = err("amqp://a:x@h1:5672/%2f,amqp://b:y@h1:5672/%2f");
    assert_eq!(
        e,
        NodeListError::DuplicateNode {
            position: 2,
            url: "amqp://b:***@h1:5672/%2f".into()
        }
    );
    // Same host, other port: another node.
    assert!(BrokerNodes::parse("amqp://h1:5672/%2f,amqp://h1:5673/%2f").is_ok());
}

#[test]
fn nodes_on_different_vhosts_are_refused() {
    let e = err("amqp://h1/%2f,amqp://h2/prod");
    assert_eq!(e.code(), "mixed_vhosts");
    assert!(e.to_string().contains("`prod`"), "{e}");
}

#[test]
fn display_and_debug_never_show_passwords() {
    let nodes = BrokerNodes::parse("amqp://u:s3cret@h1:1/%2f,amqps://v:t0p@h2:2/%2f").unwrap();
    assert_eq!(
        nodes.to_string(),
        "amqp://u:***@h1:1/%2f,amqps://v:***@h2:2/%2f"
    );
    let debug = format!("{nodes:?}");
    assert!(
        !debug.contains("s3cret") && !debug.contains("t0p"),
        "{debug}"
    );
    assert_eq!(nodes.shown(1), "amqps://v:***@h2:2/%2f");
}

#[test]
fn redaction_works_on_lists_that_do_not_parse() {
    assert_eq!(
        redact_amqp_urls("amqp://guest:secret@host:5672/%2f"),
        "amqp://guest:***@host:5672/%2f"
    );
    assert_eq!(redact_amqp_urls("amqp://host:5672"), "amqp://host:5672");
    assert_eq!(
        redact_amqp_urls("amqp://a:p1@h1,,nonsense,u:p/2@h3"),
        "amqp://a:***@h1,,nonsense,u:***@h3"
    );
    // A password with an unescaped `@` or `/` stays hidden.
    assert_eq!(
        redact_amqp_urls("amqp://u:p@ss/w@h:1/%2f"),
        "amqp://u:***@h:1/%2f"
    );
    assert_eq!(redact_amqp_urls("amqp://user@h"), "amqp://user@h");
}

#[test]
fn a_node_names_its_user_only_for_a_login_by_name() {
    let nodes = BrokerNodes::parse(
        "amqp://tollgate-router:pw@h1:1/%2f,amqps://h2:2/%2f?auth_mechanism=external,amqp://h3:3/%2f",
    )
    .unwrap();
    assert_eq!(nodes.user(0), Some("tollgate-router"));
    assert_eq!(
        nodes.user(1),
        None,
        "a TLS certificate's user is not in the URL"
    );
    assert_eq!(
        nodes.user(2),
        Some("guest"),
        "the URL parser's default login"
    );
}
