//! Attacks on the verifier. Each mints a hostile token, expects one exact error code,
//! and checks that the verified-token cache was left untouched.

use serde_json::{Value, json};
use tollgate_auth::testkit::{TestKey, TestKit, b64, hmac_sign, raw_token};
use tollgate_auth::{Algorithm, Verifier, VerifierConfig};

const NOW: u64 = TestKit::NOW;

struct Scene {
    kit: TestKit,
    alice: TestKey,
}

fn scene(alg: Algorithm) -> Scene {
    let kit = TestKit::new();
    let alice = kit.consumer("alice", alg);
    Scene { kit, alice }
}

impl Scene {
    fn claims(&self) -> Value {
        self.kit.claims("alice")
    }

    fn header(&self) -> Value {
        json!({"alg": self.alice.alg.as_str(), "typ": "JWT", "kid": self.alice.kid})
    }

    /// Signs `header` and `claims` as given with alice's real key.
    fn signed(&self, header: &Value, claims: &Value) -> String {
        self.alice
            .sign_raw(&header.to_string(), &claims.to_string())
    }

    fn refused(&self, token: &str, code: &str) {
        refused_by(&self.kit.verifier(), token, code);
    }

    /// A control: the scene's honest token verifies, so a refusal is the attack's doing.
    fn honest_token_verifies(&self) {
        let token = self.alice.sign(&self.claims());
        assert_eq!(
            self.kit
                .verifier()
                .verify(&token)
                .map(|i| i.consumer.clone()),
            Ok("alice".into())
        );
    }
}

#[track_caller]
fn refused_by(verifier: &Verifier, token: &str, code: &str) {
    let before = verifier.cache_stats();
    assert_eq!(
        verifier.verify(token).map_err(|e| e.code()),
        Err(code),
        "token: {token:.120}"
    );
    let after = verifier.cache_stats();
    assert_eq!(after.inserts, before.inserts, "the cache gained an entry");
    assert_eq!(after.len, before.len, "the cache changed size");
    assert_eq!(after.hits, before.hits, "the cache answered");
}

#[test]
fn alg_none_is_refused_in_any_letter_case() {
    let s = scene(Algorithm::HS256);
    s.honest_token_verifies();
    for none in ["none", "None", "NONE", "nOnE", "noNe"] {
        let header = json!({"alg": none, "kid": s.alice.kid});
        let unsigned = format!(
            "{}.{}.",
            b64(header.to_string()),
            b64(s.claims().to_string())
        );
        s.refused(&unsigned, "algorithm_not_allowed");
        s.refused(&s.signed(&header, &s.claims()), "algorithm_not_allowed");
    }
}

#[test]
fn hs256_signed_with_a_public_key_is_refused() {
    for alg in [
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::ES256,
        Algorithm::EdDSA,
    ] {
        let s = scene(alg);
        let public = s.alice.public_pem.clone().expect("asymmetric");
        for header in [
            json!({"alg": "HS256", "kid": s.alice.kid}),
            json!({"alg": "HS256"}),
        ] {
            let input = format!(
                "{}.{}",
                b64(header.to_string()),
                b64(s.claims().to_string())
            );
            let forged = format!(
                "{input}.{}",
                hmac_sign(Algorithm::HS256, public.as_bytes(), &input)
            );
            s.refused(&forged, "algorithm_not_allowed");
        }
    }
}

#[test]
fn an_algorithm_switched_within_its_family_is_refused() {
    let switches = [
        (Algorithm::HS256, Algorithm::HS512),
        (Algorithm::HS512, Algorithm::HS256),
        (Algorithm::RS256, Algorithm::RS512),
        (Algorithm::RS256, Algorithm::PS256),
        (Algorithm::PS384, Algorithm::RS384),
    ];
    for (pinned, used) in switches {
        let s = scene(pinned);
        let header = json!({"alg": used.as_str(), "kid": s.alice.kid}).to_string();
        // A valid signature by the right key, under the wrong algorithm.
        let token = s.alice.sign_raw_as(used, &header, &s.claims().to_string());
        s.refused(&token, "algorithm_not_allowed");
    }
    let s = scene(Algorithm::ES256);
    let header = json!({"alg": "ES384", "kid": s.alice.kid});
    s.refused(&s.signed(&header, &s.claims()), "algorithm_not_allowed");
}

#[test]
fn unknown_traversal_like_and_oversized_kids_are_refused() {
    let s = scene(Algorithm::HS256);
    let kids = [
        "nope".to_owned(),
        "../../../../etc/passwd".to_owned(),
        "/dev/null".to_owned(),
        "..\\..\\windows\\win.ini".to_owned(),
        "alice-HS256' OR '1'='1".to_owned(),
        "alice-HS256\u{0}".to_owned(),
        "k".repeat(5000),
    ];
    for kid in kids {
        let header = json!({"alg": "HS256", "kid": kid});
        s.refused(&s.signed(&header, &s.claims()), "unknown_key");
    }
}

#[test]
fn key_locating_headers_are_never_followed() {
    let s = scene(Algorithm::RS256);
    let mallory = TestKey::generate(Algorithm::RS256, "mallory");
    let pointers = [
        ("jku", json!("https://evil.example/jwks.json")),
        ("x5u", json!("https://evil.example/cert.pem")),
        ("jwk", mallory.jwk()),
        (
            "x5c",
            json!(["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"]),
        ),
    ];
    for (name, value) in pointers {
        // Alice's kid, mallory's signature: the header would vouch for mallory's key.
        let mut header = s.header();
        header[name] = value.clone();
        let token = mallory.sign_raw(&header.to_string(), &s.claims().to_string());
        s.refused(&token, "bad_signature");
        // Mallory's own kid is not fetched from the pointer either.
        let header = json!({"alg": "RS256", "kid": "mallory", name: value});
        let token = mallory.sign_raw(&header.to_string(), &s.claims().to_string());
        s.refused(&token, "unknown_key");
    }
}

#[test]
fn an_unknown_crit_header_is_refused() {
    let s = scene(Algorithm::HS256);
    for (crit, extra) in [
        (json!(["exp"]), json!(null)),
        (json!(["b64"]), json!(false)),
        (json!([]), json!(null)),
    ] {
        let mut header = s.header();
        header["crit"] = crit;
        if !extra.is_null() {
            header["b64"] = extra;
        }
        s.refused(&s.signed(&header, &s.claims()), "token_malformed");
    }
}

#[test]
fn expired_tokens_are_refused_also_just_beyond_the_leeway() {
    let s = scene(Algorithm::ES256);
    let leeway = VerifierConfig::default().leeway_secs;
    for exp in [NOW - 3600, NOW - leeway] {
        let mut claims = s.claims();
        claims["exp"] = exp.into();
        s.refused(&s.signed(&s.header(), &claims), "token_expired");
    }
    let mut within = s.claims();
    within["exp"] = (NOW - leeway + 1).into();
    assert!(
        s.kit
            .verifier()
            .verify(&s.signed(&s.header(), &within))
            .is_ok()
    );
}

#[test]
fn a_missing_string_negative_or_huge_exp_is_refused() {
    let s = scene(Algorithm::HS256);
    let exps = [
        None,
        Some(json!("4102444800")),
        Some(json!(-1)),
        Some(json!(-9_223_372_036_854_775_808_i64)),
        Some(json!(18_446_744_073_709_551_615_u64)),
        Some(json!(1e300)),
        Some(json!(NOW + 10 * 86_400)),
        Some(json!(null)),
        Some(json!(true)),
    ];
    for exp in exps {
        let mut claims = s.claims();
        match exp {
            None => drop(claims.as_object_mut().expect("object").remove("exp")),
            Some(exp) => claims["exp"] = exp,
        }
        s.refused(&s.signed(&s.header(), &claims), "claims_invalid");
    }
}

#[test]
fn a_future_nbf_or_iat_is_refused() {
    let s = scene(Algorithm::EdDSA);
    for claim in ["nbf", "iat"] {
        let mut claims = s.claims();
        claims[claim] = (NOW + 3600).into();
        s.refused(&s.signed(&s.header(), &claims), "token_not_yet_valid");
        claims[claim] = (NOW + VerifierConfig::default().leeway_secs + 1).into();
        s.refused(&s.signed(&s.header(), &claims), "token_not_yet_valid");
    }
}

#[test]
fn a_wrong_or_missing_issuer_or_audience_is_refused_when_configured() {
    let s = scene(Algorithm::HS256);
    let verifier = s.kit.verifier_with(
        VerifierConfig::default()
            .with_issuers(["idp"])
            .with_audiences(["bus"]),
    );
    let mut good = s.claims();
    good["iss"] = "idp".into();
    good["aud"] = "bus".into();
    let variants: [(&str, Option<Value>); 5] = [
        ("iss", Some(json!("evil"))),
        ("iss", None),
        ("aud", Some(json!("other"))),
        ("aud", Some(json!(["other", "more"]))),
        ("aud", None),
    ];
    for (claim, value) in variants {
        let mut claims = good.clone();
        match value {
            Some(v) => claims[claim] = v,
            None => drop(claims.as_object_mut().expect("object").remove(claim)),
        }
        refused_by(&verifier, &s.signed(&s.header(), &claims), "claims_invalid");
    }
    assert!(verifier.verify(&s.signed(&s.header(), &good)).is_ok());
}

#[test]
fn empty_truncated_and_wrong_length_signatures_are_refused() {
    for alg in [
        Algorithm::HS256,
        Algorithm::RS256,
        Algorithm::ES256,
        Algorithm::EdDSA,
    ] {
        let s = scene(alg);
        let token = s.alice.sign(&s.claims());
        let (input, signature) = token.rsplit_once('.').expect("three segments");
        let variants = [
            format!("{input}."),
            format!("{input}.{}", &signature[..signature.len() - 4]),
            format!("{input}.{}", &signature[..signature.len() - 1]),
            format!("{input}.{signature}AAAA"),
            format!("{input}.{}", b64([0u8; 1])),
            format!("{input}.{signature}="),
        ];
        for forged in variants {
            s.refused(&forged, "bad_signature");
        }
    }
}

#[test]
fn two_four_and_five_segments_are_malformed() {
    let s = scene(Algorithm::HS256);
    let token = s.alice.sign(&s.claims());
    let (input, _) = token.rsplit_once('.').expect("three segments");
    s.refused(input, "token_malformed");
    s.refused(&format!("{token}.AAAA"), "token_malformed");
    s.refused(&format!("{token}.AAAA.AAAA"), "token_malformed");
    s.refused("...", "token_malformed");
}

#[test]
fn bad_base64url_is_malformed() {
    let s = scene(Algorithm::HS256);
    let token = s.alice.sign(&s.claims());
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let standard = base64_standard(&s.claims().to_string());
    for (i, bad) in [
        (0, format!("{}=", parts[0])),
        (0, format!("{}*", parts[0])),
        (1, standard.clone()),
        (1, format!("{}%", parts[1])),
        (1, String::new()),
        (0, String::new()),
    ] {
        let original = std::mem::replace(&mut parts[i], bad);
        s.refused(&parts.join("."), "token_malformed");
        parts[i] = original;
    }
}

fn base64_standard(text: &str) -> String {
    // Force characters only the standard alphabet has.
    use base64::Engine;
    let padded = format!("{text}\u{3ff}\u{3ff}?>");
    base64::engine::general_purpose::STANDARD.encode(padded)
}

#[test]
fn tokens_over_the_size_limit_are_refused_unparsed() {
    let s = scene(Algorithm::HS256);
    let mut claims = s.claims();
    claims["pad"] = "x".repeat(9000).into();
    s.refused(&s.signed(&s.header(), &claims), "token_too_large");
    s.refused(&"A".repeat(10 * 1024 * 1024), "token_too_large");
    let limit = VerifierConfig::default().max_token_bytes;
    s.refused(&"a.b.".repeat(limit / 4 + 1), "token_too_large");
}

#[test]
fn deeply_nested_claims_are_malformed() {
    let s = scene(Algorithm::HS256);
    let big = s
        .kit
        .verifier_with(VerifierConfig::default().with_max_token_bytes(1 << 20));
    for depth in [16, 200, 100_000] {
        let nested = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let claims = s
            .claims()
            .to_string()
            .replacen('{', &format!("{{\"deep\":{nested},"), 1);
        let token = s.alice.sign_raw(&s.header().to_string(), &claims);
        refused_by(&big, &token, "token_malformed");
    }
    let nested_header = format!(
        "{{\"alg\":\"HS256\",\"x\":{}{}}}",
        "{\"a\":".repeat(40),
        "1}".repeat(40)
    );
    refused_by(
        &big,
        &s.alice.sign_raw(&nested_header, &s.claims().to_string()),
        "token_malformed",
    );
}

#[test]
fn non_utf8_header_or_claims_are_malformed() {
    let s = scene(Algorithm::HS256);
    let claims = s.claims().to_string();
    let header = s.header().to_string();
    let mut bad_claims = claims.clone().into_bytes();
    bad_claims.splice(1..1, *b"\"x\":\"\xff\xfe\",");
    s.refused(
        &s.alice.sign_bytes(header.as_bytes(), &bad_claims),
        "token_malformed",
    );
    s.refused(
        &s.alice.sign_bytes(b"\xff\xfe\xfd", claims.as_bytes()),
        "token_malformed",
    );
    s.refused(
        &s.alice.sign_bytes(header.as_bytes(), b"\xc3\x28"),
        "token_malformed",
    );
}

#[test]
fn ecdsa_signatures_with_r_and_s_zero_are_refused() {
    for (alg, len) in [(Algorithm::ES256, 64), (Algorithm::ES384, 96)] {
        let s = scene(alg);
        let token = raw_token(
            &s.header().to_string(),
            &s.claims().to_string(),
            &vec![0; len],
        );
        s.refused(&token, "bad_signature");
    }
}

#[test]
fn a_token_of_consumer_a_signed_with_consumer_bs_key_is_refused() {
    for alg in [Algorithm::HS256, Algorithm::ES256] {
        let s = scene(alg);
        let bob = s.kit.consumer("bob", alg);
        // Names alice, carries no kid: alice's keys are tried and fail.
        s.refused(&bob.sign_without_kid(&s.claims()), "bad_signature");
        // Names alice, carries bob's kid: bob's key is not alice's.
        s.refused(&bob.sign(&s.claims()), "unknown_key");
        // Names alice, carries alice's kid, signed by bob.
        let token = bob.sign_raw(&s.header().to_string(), &s.claims().to_string());
        s.refused(&token, "bad_signature");
    }
}

#[test]
fn a_consumer_claim_that_names_no_one_is_refused() {
    let s = scene(Algorithm::HS256);
    let mut claims = s.claims();
    claims["key"] = "nobody".into();
    s.refused(&s.alice.sign_without_kid(&claims), "unknown_key");
    claims["key"] = json!(["alice"]);
    s.refused(&s.alice.sign_without_kid(&claims), "unknown_key");
    let mut anonymous = s.claims();
    anonymous.as_object_mut().expect("object").remove("key");
    s.refused(&s.alice.sign_without_kid(&anonymous), "unknown_key");
}

#[test]
fn revoked_tokens_are_refused_by_id_subject_consumer_and_issue_time() {
    let revocations: [fn(&TestKit, &Value); 4] = [
        |kit, claims| {
            kit.revocations
                .revoke_token(claims["jti"].as_str().expect("jti"))
        },
        |kit, claims| {
            kit.revocations
                .revoke_subject(claims["sub"].as_str().expect("sub"))
        },
        |kit, _| kit.revocations.revoke_consumer("alice"),
        |kit, _| kit.revocations.revoke_issued_before("alice", NOW + 1),
    ];
    for revoke in revocations {
        let s = scene(Algorithm::HS256);
        let claims = s.claims();
        revoke(&s.kit, &claims);
        s.refused(&s.alice.sign(&claims), "token_revoked");
    }
}

#[test]
fn a_revocation_takes_effect_on_the_next_message_even_when_cached() {
    let s = scene(Algorithm::RS256);
    let verifier = s.kit.verifier();
    let claims = s.claims();
    let token = s.alice.sign(&claims);
    assert!(verifier.verify(&token).is_ok());
    assert!(verifier.verify(&token).is_ok());
    assert_eq!(verifier.cache_stats().hits, 1);
    s.kit
        .revocations
        .revoke_token(claims["jti"].as_str().expect("jti"));
    refused_by(&verifier, &token, "token_revoked");
}

#[test]
fn a_disabled_consumer_is_refused_even_when_cached() {
    let s = scene(Algorithm::HS384);
    s.kit.store.set_enabled("alice", false);
    s.refused(&s.alice.sign(&s.claims()), "consumer_disabled");

    s.kit.store.set_enabled("alice", true);
    let verifier = s.kit.verifier();
    let token = s.alice.sign(&s.claims());
    assert!(verifier.verify(&token).is_ok());
    s.kit.store.set_enabled("alice", false);
    refused_by(&verifier, &token, "consumer_disabled");
}

#[test]
fn an_empty_token_is_missing() {
    let s = scene(Algorithm::HS256);
    s.refused("", "token_missing");
    assert_eq!(
        s.kit
            .verifier()
            .verify_bearer(Some("Bearer "))
            .map_err(|e| e.code()),
        Err("token_missing")
    );
}

#[test]
fn a_repeated_key_in_a_signed_header_or_claims_is_malformed_at_any_depth() {
    let s = scene(Algorithm::HS256);
    s.honest_token_verifies();
    let kid = &s.alice.kid;
    let alg = s.alice.alg.as_str();
    let claims = s.claims().to_string();
    let exp = NOW + 60;
    let header = format!(r#"{{"alg":"{alg}","kid":"{kid}"}}"#);
    // Each pair would verify if the parser kept the last value of the key.
    for (header, claims) in [
        (
            format!(r#"{{"alg":"none","alg":"{alg}","kid":"{kid}"}}"#),
            claims.clone(),
        ),
        (
            format!(r#"{{"alg":"{alg}","kid":"other","kid":"{kid}"}}"#),
            claims.clone(),
        ),
        (
            header.clone(),
            format!(r#"{{"key":"alice","exp":1,"exp":{exp}}}"#),
        ),
        (
            header.clone(),
            format!(r#"{{"key":"alice","exp":{exp},"sub":"a","sub":"b"}}"#),
        ),
        (
            header.clone(),
            format!(r#"{{"key":"alice","exp":{exp},"scope":"","scope":"x"}}"#),
        ),
        (
            header.clone(),
            format!(r#"{{"key":"alice","exp":{exp},"ctx":[{{"t":1,"t":2}}]}}"#),
        ),
        (
            header.clone(),
            format!(r#"{{"key":"alice","exp":{exp},"\u0065xp":{exp}}}"#),
        ),
    ] {
        s.refused(&s.alice.sign_raw(&header, &claims), "token_malformed");
    }
}

#[test]
fn only_an_exact_bearer_header_is_read() {
    let s = scene(Algorithm::HS256);
    let token = s.alice.sign(&s.claims());
    let verifier = s.kit.verifier();
    let code = |value: &str| {
        verifier
            .verify_bearer(Some(value))
            .map(|i| i.consumer.clone())
            .map_err(|e| e.code())
    };
    assert_eq!(code(&format!("Bearer {token}")), Ok("alice".into()));
    assert_eq!(code(&format!("bearer {token}")), Ok("alice".into()));
    for bad in [
        token.clone(),
        format!(" Bearer {token}"),
        format!("Bearer {token} "),
        format!("Bearer  {token}"),
        format!("Bearer {token}\n"),
        format!("Bearer {token}\r\n"),
        format!("Bearer\t{token}"),
        format!("Basic {token}"),
    ] {
        assert_eq!(code(&bad), Err("token_malformed"), "{bad:?}");
    }
}
