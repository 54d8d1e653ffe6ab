use super::*;
use crate::{RejectCode, Stage};

fn forbidden() -> Rejection {
    Rejection::forbidden("no")
}

fn copy(original: &Envelope) -> Envelope {
    copy_of(
        original,
        Some("tg.caller.c1"),
        "orders.create",
        &forbidden(),
        &DeadLetterBounds::default(),
    )
}

fn nested(depth: usize) -> HeaderValue {
    (0..depth).fold(HeaderValue::Void, |v, _| HeaderValue::Array(vec![v]))
}

/// The names of the copy's headers that the bus did not write.
fn sender_names(copy: &Envelope) -> Vec<&str> {
    copy.headers
        .iter()
        .map(|(n, _)| n)
        .filter(|n| !headers::is_reserved(n))
        .collect()
}

#[test]
fn the_copy_says_why_and_keeps_the_sender_s_plain_headers() {
    let original = Envelope::new("{}")
        .with_correlation_id("corr")
        .with_content_type("application/json")
        .with_headers(
            Headers::new()
                .with("trace-id", "t-1")
                .with("schema-version", "2"),
        );
    let copy = copy(&original);
    assert_eq!(copy.id, original.id);
    assert_eq!(copy.correlation_id.as_deref(), Some("corr"));
    assert_eq!(copy.content_type.as_deref(), Some("application/json"));
    assert_eq!(copy.reply_to.as_deref(), Some("tg.caller.c1"));
    assert_eq!(copy.payload, original.payload);
    assert_eq!(copy.delivery_mode, Hop::DeadLetter.delivery_mode());
    assert_eq!(copy.headers.get_str(headers::CODE), Some("forbidden"));
    assert_eq!(copy.headers.get_str(headers::STAGE), Some("authorize"));
    assert_eq!(copy.headers.get_str(headers::REASON), Some("no"));
    assert_eq!(copy.headers.get_str(headers::ROUTE), Some("orders.create"));
    assert_eq!(sender_names(&copy), ["schema-version", "trace-id"]);
    assert_eq!(copy.headers.get_str(headers::HEADERS_DROPPED), None);
    assert_eq!(copy.check_wire(), Ok(()));
}

#[test]
fn forged_bus_headers_broker_headers_and_credentials_are_never_copied() {
    let forged = Headers::new()
        .with("Authorization", "Bearer secret")
        .with("AUTHORIZATION", "Bearer secret")
        .with("authorization", "Bearer secret")
        .with(headers::ASSERTION, "signed")
        .with(headers::REPLY_CONTEXT, "ctx")
        .with("X-Tollgate-Code", "ok")
        .with(headers::CODE, "forged")
        .with(headers::CONSUMER, "admin")
        .with(headers::X_DEATH, vec![HeaderValue::from("old")])
        .with("X-Death", "old")
        .with(headers::X_FIRST_DEATH_REASON, "rejected")
        .with("x-last-death-queue", "q")
        .with(headers::X_DELIVERY_COUNT, 3i64)
        .with("keep", "me");
    let copy = copy(&Envelope::new("{}").with_headers(forged));
    assert_eq!(sender_names(&copy), ["keep"]);
    assert_eq!(copy.headers.get_str(headers::CODE), Some("forbidden"));
    assert_eq!(copy.headers.get(headers::CONSUMER), None);
    assert_eq!(copy.headers.get(headers::ASSERTION), None);
    assert_eq!(copy.headers.get(headers::REPLY_CONTEXT), None);
    assert!(
        copy.headers
            .iter()
            .all(|(n, _)| !n.eq_ignore_ascii_case("x-tollgate-code") || n == headers::CODE)
    );
}

#[test]
fn a_table_past_the_bounds_is_left_out_whole() {
    let wide: Headers = (0..10_000)
        .map(|i| (format!("h{i}"), HeaderValue::from(i)))
        .collect();
    let copy = copy(&Envelope::new("{}").with_headers(wide));
    assert!(sender_names(&copy).is_empty());
    let why = copy.headers.get_str(headers::HEADERS_DROPPED).unwrap();
    assert!(why.contains("10000 headers"), "{why}");

    let big = Headers::new().with("big", "x".repeat(17 * 1024));
    let copy = super::tests::copy(&Envelope::new("{}").with_headers(big));
    assert!(sender_names(&copy).is_empty());
    assert!(copy.headers.get_str(headers::HEADERS_DROPPED).is_some());
}

#[test]
fn a_deeply_nested_value_is_left_out_and_the_rest_kept() {
    let h = Headers::new()
        .with("deep", nested(MAX_COPIED_DEPTH + 1))
        .with("deeper", nested(2_000))
        .with("fits", nested(MAX_COPIED_DEPTH))
        .with(
            "table",
            Headers::new().with("inner", nested(MAX_COPIED_DEPTH)),
        );
    let copy = copy(&Envelope::new("{}").with_headers(h));
    assert_eq!(sender_names(&copy), ["fits"]);
    let why = copy.headers.get_str(headers::HEADERS_DROPPED).unwrap();
    assert!(why.starts_with("3 headers nested deeper"), "{why}");
    assert_eq!(copy.check_wire(), Ok(()));
}

#[test]
fn a_payload_past_the_bound_is_left_out_and_its_size_told() {
    let bounds = DeadLetterBounds {
        max_payload_bytes: 10,
        ..DeadLetterBounds::default()
    };
    let fits = Envelope::new(vec![b'a'; 10]);
    let copy = copy_of(&fits, None, "-", &forbidden(), &bounds);
    assert_eq!(copy.payload.len(), 10);
    assert_eq!(copy.headers.get(headers::PAYLOAD_DROPPED), None);
    let large = Envelope::new(vec![b'a'; 11]);
    let too_large = Rejection::new(RejectCode::TooLarge, Stage::Limits, "payload");
    let copy = copy_of(&large, None, "-", &too_large, &bounds);
    assert!(copy.payload.is_empty());
    assert_eq!(
        copy.headers.get_str(headers::PAYLOAD_DROPPED),
        Some("payload of 11 bytes exceeds the bound of 10")
    );
}

#[test]
fn a_long_reason_is_cut_on_a_character_boundary() {
    let long = Rejection::forbidden("é".repeat(MAX_REASON_BYTES));
    let copy = copy_of(
        &Envelope::new("{}"),
        None,
        "-",
        &long,
        &DeadLetterBounds::default(),
    );
    let reason = copy.headers.get_str(headers::REASON).unwrap();
    assert_eq!(reason.len(), MAX_REASON_BYTES);
    assert!(reason.chars().all(|c| c == 'é'));
}

#[test]
fn a_copy_whose_properties_cannot_be_sent_keeps_only_the_verdict() {
    let original = Envelope::new("{}")
        .with_correlation_id("c".repeat(300))
        .with_headers(Headers::new().with("keep", "x"));
    let copy = copy(&original);
    assert_eq!(copy.check_wire(), Ok(()));
    assert_eq!(copy.correlation_id, None);
    assert!(sender_names(&copy).is_empty());
    assert!(copy.headers.get_str(headers::HEADERS_DROPPED).is_some());
    assert_eq!(copy.headers.get_str(headers::CODE), Some("forbidden"));
}

#[test]
fn the_default_bounds_are_the_router_s_default_limits() {
    let limits = Limits::default();
    let bounds = DeadLetterBounds::default();
    assert_eq!(bounds.max_payload_bytes, limits.max_message_bytes);
    assert_eq!(bounds.max_header_count, limits.max_header_count);
    assert_eq!(bounds.max_header_bytes, limits.max_header_bytes);
}
