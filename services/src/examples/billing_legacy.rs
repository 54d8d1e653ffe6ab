//! `billing-legacy`: JSON, schema version **1** — an old service the bus
//! keeps serving to new callers.
//!
//! * `billing-legacy.charge`: [`Charge`] → [`Invoice`]. `invalid_request` for
//!   an amount of 0 or a currency not in [`CURRENCIES`], [`DECLINED`] above
//!   [`LIMIT_CENTS`].
//!
//! The service speaks only version 1 (`{customer:{number}, amount_cents,
//! currency}`); it refuses a version-2 body as `invalid_request` (a valid
//! document that does not fit). Callers speaking
//! version 2 send a [`v2::Charge`] with schema version `2`, and the router's
//! mapping (`[[translation.mappings]]` in `tollgate.example.toml`) renames
//! `/customer/id` to `/customer/number`, moves `/total/cents` to
//! `/amount_cents`, drops `/client_hints` and defaults `/currency` to `EUR`;
//! the reply comes back through the inverse renames and moves as a
//! [`v2::Invoice`].

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use serde::{Deserialize, Serialize};
use tollgate_auth::AssertionVerifier;

use crate::{HandlerError, Request, Service, ServiceBuilder, TokenSource};

/// The service name.
pub const NAME: &str = "billing-legacy";
/// The content type the service speaks.
pub const CONTENT_TYPE: &str = "application/json";
/// The schema version the service speaks: the old one.
pub const SCHEMA_VERSION: &str = "1";
/// Currencies the service charges in.
pub const CURRENCIES: &[&str] = &["EUR", "USD", "GBP"];
/// Largest amount charged without a human, in cents.
pub const LIMIT_CENTS: u64 = 1_000_000;
/// Error code of a charge above [`LIMIT_CENTS`].
pub const DECLINED: &str = "declined";
/// Status of an invoice that was charged.
pub const CHARGED: &str = "charged";

/// The customer, as schema version 1 names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Customer {
    /// The customer's number (version 2's `customer.id`).
    pub number: String,
}

/// Body of `billing-legacy.charge`, schema version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Charge {
    /// Who is charged.
    pub customer: Customer,
    /// How much, in cents of `currency`; at least 1.
    pub amount_cents: u64,
    /// ISO 4217 code, one of [`CURRENCIES`].
    pub currency: String,
}

/// Reply of `billing-legacy.charge`, schema version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    /// The new invoice's id (`inv-000001`, …).
    pub invoice_id: String,
    /// Who was charged.
    pub customer: Customer,
    /// How much, in cents.
    pub amount_cents: u64,
    /// The currency charged in.
    pub currency: String,
    /// [`CHARGED`].
    pub status: String,
}

/// The invoices of one service instance (only their numbering is kept).
#[derive(Debug, Default)]
pub struct Billing {
    issued: AtomicU64,
}

/// The same call as schema version 2 callers see it, through the router's mapping.
pub mod v2 {
    use serde::{Deserialize, Serialize};

    /// The customer, as schema version 2 names it.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Customer {
        /// The customer's id (version 1's `customer.number`).
        pub id: String,
    }

    /// An amount (version 1's `amount_cents`).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Total {
        /// In cents.
        pub cents: u64,
    }

    /// A version-2 charge: send it with schema version `2`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Charge {
        /// Who is charged.
        pub customer: Customer,
        /// How much.
        pub total: Total,
        /// The currency; the router's mapping defaults it to `EUR`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub currency: Option<String>,
        /// Hints version 1 does not know; the router's mapping drops them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub client_hints: Option<serde_json::Value>,
    }

    /// A version-1 [`Invoice`](super::Invoice) after the router's reply mapping.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Invoice {
        /// The invoice's id.
        pub invoice_id: String,
        /// Who was charged.
        pub customer: Customer,
        /// How much.
        pub total: Total,
        /// The currency charged in.
        pub currency: String,
        /// `charged`.
        pub status: String,
    }
}

// === Service ===

/// The `billing-legacy` service in gateway mode.
pub fn service(credential: impl Into<TokenSource>, bus_key: AssertionVerifier) -> ServiceBuilder {
    let billing = Arc::new(Billing::default());
    Service::builder(NAME)
        .content_type(CONTENT_TYPE)
        .schema_version(SCHEMA_VERSION)
        .credential(credential)
        .bus_key(bus_key)
        .handler("charge", move |req: Request<Charge>| {
            let charged = billing.charge(req.body);
            async move { charged }
        })
}

// === Billing ===

impl Billing {
    /// Charges `charge` and issues its invoice.
    ///
    /// Errors with `invalid_request` for an amount of 0 or a currency not in
    /// [`CURRENCIES`], and [`DECLINED`] above [`LIMIT_CENTS`].
    pub fn charge(&self, charge: Charge) -> Result<Invoice, HandlerError> {
        if charge.amount_cents == 0 {
            return Err(HandlerError::invalid("amount_cents must be at least 1"));
        }
        if !CURRENCIES.contains(&charge.currency.as_str()) {
            return Err(HandlerError::invalid(format!(
                "currency `{}` is not one of {}",
                charge.currency,
                CURRENCIES.join(", ")
            )));
        }
        if charge.amount_cents > LIMIT_CENTS {
            return Err(HandlerError::new(
                DECLINED,
                format!("charges above {LIMIT_CENTS} cents need a human"),
            ));
        }
        let n = self.issued.fetch_add(1, Ordering::Relaxed) + 1;
        Ok(Invoice {
            invoice_id: format!("inv-{n:06}"),
            customer: charge.customer,
            amount_cents: charge.amount_cents,
            currency: charge.currency,
            status: CHARGED.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn charge(amount_cents: u64, currency: &str) -> Charge {
        Charge {
            customer: Customer {
                number: "c-42".into(),
            },
            amount_cents,
            currency: currency.into(),
        }
    }

    #[test]
    fn a_charge_issues_a_numbered_invoice_in_the_v1_shape() {
        let billing = Billing::default();
        let first = billing.charge(charge(1_549, "EUR")).unwrap();
        let second = billing.charge(charge(100, "USD")).unwrap();
        assert_eq!(second.invoice_id, "inv-000002");
        assert_eq!(
            serde_json::to_value(&first).unwrap(),
            json!({
                "invoice_id": "inv-000001",
                "customer": { "number": "c-42" },
                "amount_cents": 1_549,
                "currency": "EUR",
                "status": "charged",
            })
        );
    }

    #[test]
    fn refuses_a_zero_amount_an_unknown_currency_and_declines_above_the_limit() {
        let billing = Billing::default();
        let zero = billing.charge(charge(0, "EUR")).unwrap_err();
        assert_eq!(zero.code(), "invalid_request");
        let currency = billing.charge(charge(100, "XAU")).unwrap_err();
        assert_eq!(currency.code(), "invalid_request");
        assert!(billing.charge(charge(LIMIT_CENTS, "GBP")).is_ok());
        let big = billing.charge(charge(LIMIT_CENTS + 1, "GBP")).unwrap_err();
        assert_eq!(big.code(), DECLINED);
    }

    #[test]
    fn the_v1_request_refuses_a_v2_body() {
        let v2 = json!({ "customer": { "id": "c-42" }, "total": { "cents": 100 } });
        assert!(serde_json::from_value::<Charge>(v2).is_err());
        let v1 =
            json!({ "customer": { "number": "c-42" }, "amount_cents": 100, "currency": "EUR" });
        assert_eq!(
            serde_json::from_value::<Charge>(v1).unwrap(),
            charge(100, "EUR")
        );
    }

    #[test]
    fn a_v2_charge_leaves_out_what_it_does_not_set() {
        let v2 = v2::Charge {
            customer: v2::Customer { id: "c-42".into() },
            total: v2::Total { cents: 100 },
            currency: None,
            client_hints: None,
        };
        assert_eq!(
            serde_json::to_value(&v2).unwrap(),
            json!({ "customer": { "id": "c-42" }, "total": { "cents": 100 } })
        );
    }

    #[test]
    fn the_service_builds() {
        let (_, public) = tollgate_auth::generate_assertion_key().unwrap();
        let bus_key = AssertionVerifier::from_public_pem(public.as_bytes()).unwrap();
        assert_eq!(service("svc-token", bus_key).build().unwrap().name(), NAME);
    }
}
