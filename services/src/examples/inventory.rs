//! `inventory`: MessagePack, schema version 2. Reserves stock and reports it.
//!
//! * `inventory.reserve`: [`Reserve`] → [`Reservation`]. `invalid_request` for
//!   a quantity of 0, `not_found` for an unknown SKU, [`OUT_OF_STOCK`] when
//!   fewer than the quantity are left (nothing is reserved then).
//! * `inventory.get`: [`GetStock`] → [`Stock`]; `not_found` for an unknown SKU.
//!
//! Stock lives in memory, per service instance, seeded with [`SEED`].

use std::{collections::HashMap, sync::Arc};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tollgate_auth::AssertionVerifier;

use crate::{HandlerError, Request, Service, ServiceBuilder, TokenSource};

/// The service name.
pub const NAME: &str = "inventory";
/// The content type the service speaks.
pub const CONTENT_TYPE: &str = "application/msgpack";
/// The schema version the service speaks.
pub const SCHEMA_VERSION: &str = "2";
/// Error code when fewer items are left than asked for.
pub const OUT_OF_STOCK: &str = "out_of_stock";
/// The stock of a fresh [`Inventory::seeded`].
pub const SEED: &[(&str, u32)] = &[("widget", 100), ("gadget", 25), ("sprocket", 3)];

/// Body of `inventory.reserve`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reserve {
    /// What to reserve.
    pub sku: String,
    /// How many; at least 1.
    pub qty: u32,
}

/// Reply of `inventory.reserve`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// What was reserved.
    pub sku: String,
    /// How many were reserved (the quantity asked for).
    pub reserved: u32,
    /// How many are left after this reservation.
    pub remaining: u32,
}

/// Body of `inventory.get`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetStock {
    /// The SKU to look up.
    pub sku: String,
}

/// Reply of `inventory.get`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stock {
    /// The SKU.
    pub sku: String,
    /// How many can still be reserved.
    pub available: u32,
}

/// The stock of one service instance.
#[derive(Debug, Default)]
pub struct Inventory {
    stock: Mutex<HashMap<String, u32>>,
}

// === Service ===

/// The `inventory` service in gateway mode, on a fresh [`Inventory::seeded`].
pub fn service(credential: impl Into<TokenSource>, bus_key: AssertionVerifier) -> ServiceBuilder {
    service_with(Arc::new(Inventory::seeded()), credential, bus_key)
}

/// The `inventory` service in gateway mode, reserving from `inventory`.
pub fn service_with(
    inventory: Arc<Inventory>,
    credential: impl Into<TokenSource>,
    bus_key: AssertionVerifier,
) -> ServiceBuilder {
    let for_get = Arc::clone(&inventory);
    Service::builder(NAME)
        .content_type(CONTENT_TYPE)
        .schema_version(SCHEMA_VERSION)
        .credential(credential)
        .bus_key(bus_key)
        .handler("reserve", move |req: Request<Reserve>| {
            let reserved = inventory.reserve(&req.body);
            async move { reserved }
        })
        .handler("get", move |req: Request<GetStock>| {
            let stock = for_get.get(&req.body.sku);
            async move { stock }
        })
}

// === Inventory ===

impl Inventory {
    /// An inventory holding [`SEED`].
    pub fn seeded() -> Self {
        Self::with_stock(SEED.iter().map(|(sku, n)| ((*sku).to_owned(), *n)))
    }

    /// An inventory holding `stock` (SKU, count).
    pub fn with_stock(stock: impl IntoIterator<Item = (String, u32)>) -> Self {
        Self {
            stock: Mutex::new(stock.into_iter().collect()),
        }
    }

    /// Takes `request.qty` of `request.sku` out of stock, all or nothing.
    ///
    /// Errors with `invalid_request` for a quantity of 0, `not_found` for an
    /// unknown SKU, and [`OUT_OF_STOCK`] when fewer are left.
    pub fn reserve(&self, request: &Reserve) -> Result<Reservation, HandlerError> {
        if request.qty == 0 {
            return Err(HandlerError::invalid("quantity must be at least 1"));
        }
        let mut stock = self.stock.lock();
        let available = stock
            .get_mut(&request.sku)
            .ok_or_else(|| unknown(&request.sku))?;
        let remaining = available.checked_sub(request.qty).ok_or_else(|| {
            HandlerError::new(
                OUT_OF_STOCK,
                format!(
                    "only {available} of `{}` left, {} asked for",
                    request.sku, request.qty
                ),
            )
        })?;
        *available = remaining;
        Ok(Reservation {
            sku: request.sku.clone(),
            reserved: request.qty,
            remaining,
        })
    }

    /// How many of `sku` are left; `not_found` for an unknown SKU.
    pub fn get(&self, sku: &str) -> Result<Stock, HandlerError> {
        let available = *self.stock.lock().get(sku).ok_or_else(|| unknown(sku))?;
        Ok(Stock {
            sku: sku.to_owned(),
            available,
        })
    }
}

fn unknown(sku: &str) -> HandlerError {
    HandlerError::not_found(format!("unknown sku `{sku}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reserve(sku: &str, qty: u32) -> Reserve {
        Reserve {
            sku: sku.into(),
            qty,
        }
    }

    #[test]
    fn reserving_takes_from_the_stock() {
        let inventory = Inventory::seeded();
        let r = inventory.reserve(&reserve("gadget", 5)).unwrap();
        assert_eq!(
            r,
            Reservation {
                sku: "gadget".into(),
                reserved: 5,
                remaining: 20
            }
        );
        assert_eq!(inventory.get("gadget").unwrap().available, 20);
        assert_eq!(inventory.get("widget").unwrap().available, 100);
    }

    #[test]
    fn reserving_more_than_is_left_is_out_of_stock_and_reserves_nothing() {
        let inventory = Inventory::seeded();
        let err = inventory.reserve(&reserve("sprocket", 4)).unwrap_err();
        assert_eq!(err.code(), OUT_OF_STOCK);
        assert_eq!(inventory.get("sprocket").unwrap().available, 3);
        let last = inventory.reserve(&reserve("sprocket", 3)).unwrap();
        assert_eq!(last.remaining, 0);
        let empty = inventory.reserve(&reserve("sprocket", 1)).unwrap_err();
        assert_eq!(empty.code(), OUT_OF_STOCK);
    }

    #[test]
    fn refuses_a_quantity_of_zero_and_unknown_skus() {
        let inventory = Inventory::seeded();
        let zero = inventory.reserve(&reserve("widget", 0)).unwrap_err();
        assert_eq!(zero.code(), "invalid_request");
        assert_eq!(
            inventory.reserve(&reserve("flux", 1)).unwrap_err().code(),
            "not_found"
        );
        assert_eq!(inventory.get("flux").unwrap_err().code(), "not_found");
    }

    #[test]
    fn with_stock_holds_exactly_what_it_was_given() {
        let inventory = Inventory::with_stock([("bolt".to_owned(), 2)]);
        assert_eq!(inventory.get("bolt").unwrap().available, 2);
        assert_eq!(inventory.get("widget").unwrap_err().code(), "not_found");
    }

    #[test]
    fn the_service_builds() {
        let (_, public) = tollgate_auth::generate_assertion_key().unwrap();
        let bus_key = AssertionVerifier::from_public_pem(public.as_bytes()).unwrap();
        assert_eq!(service("svc-token", bus_key).build().unwrap().name(), NAME);
    }
}
