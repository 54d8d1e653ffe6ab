//! `orders`: JSON, schema version 2. Places orders and looks them up.
//!
//! * `orders.create`: [`CreateOrder`] → [`OrderCreated`]. Refuses an empty
//!   item list, a quantity of 0 or too many items (`invalid_request`) and an
//!   unknown SKU (`not_found`).
//! * `orders.get`: [`GetOrder`] → [`Order`]; `not_found` for an unknown id.
//!
//! Orders live in memory, per service instance.

use std::{collections::HashMap, sync::Arc};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tollgate_auth::AssertionVerifier;

use crate::{HandlerError, Request, Service, ServiceBuilder, TokenSource};

/// The service name.
pub const NAME: &str = "orders";
/// The content type the service speaks.
pub const CONTENT_TYPE: &str = "application/json";
/// The schema version the service speaks.
pub const SCHEMA_VERSION: &str = "2";
/// Most lines one order may have.
pub const MAX_ITEMS: usize = 100;
/// Price of each SKU the shop sells, in cents.
pub const PRICES: &[(&str, u64)] = &[("widget", 250), ("gadget", 1_299), ("sprocket", 75)];

/// The customer an order is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    /// The customer's id.
    pub id: String,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// The SKU, one of [`PRICES`].
    pub sku: String,
    /// How many; at least 1.
    pub qty: u32,
}

/// Body of `orders.create`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateOrder {
    /// Who the order is for.
    pub customer: Customer,
    /// What is ordered: 1 to [`MAX_ITEMS`] lines.
    pub items: Vec<Item>,
}

/// Reply of `orders.create`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCreated {
    /// The new order's id (`ord-000001`, …).
    pub order_id: String,
    /// The order's total, in cents.
    pub total_cents: u64,
    /// The verified consumer that placed the order.
    pub placed_by: String,
}

/// Body of `orders.get`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetOrder {
    /// The id `orders.create` returned.
    pub order_id: String,
}

/// Reply of `orders.get`: an order as placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// The order's id.
    pub order_id: String,
    /// Who the order is for.
    pub customer: Customer,
    /// What was ordered.
    pub items: Vec<Item>,
    /// The total, in cents.
    pub total_cents: u64,
    /// The verified consumer that placed it.
    pub placed_by: String,
}

/// The orders of one service instance.
#[derive(Debug, Default)]
pub struct Orders {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    next: u64,
    by_id: HashMap<String, Order>,
}

// === Service ===

/// The `orders` service in gateway mode, with an empty order book.
pub fn service(credential: impl Into<TokenSource>, bus_key: AssertionVerifier) -> ServiceBuilder {
    service_with(Arc::new(Orders::default()), credential, bus_key)
}

/// The `orders` service in gateway mode, keeping its orders in `orders`.
pub fn service_with(
    orders: Arc<Orders>,
    credential: impl Into<TokenSource>,
    bus_key: AssertionVerifier,
) -> ServiceBuilder {
    let for_get = Arc::clone(&orders);
    Service::builder(NAME)
        .content_type(CONTENT_TYPE)
        .schema_version(SCHEMA_VERSION)
        .credential(credential)
        .bus_key(bus_key)
        .handler("create", move |req: Request<CreateOrder>| {
            let placed = orders.create(&req.identity.consumer, req.body);
            async move { placed }
        })
        .handler("get", move |req: Request<GetOrder>| {
            let found = for_get.get(&req.body.order_id);
            async move { found }
        })
}

// === Orders ===

impl Orders {
    /// Places `order` for `placed_by` (the verified consumer).
    ///
    /// Errors with `invalid_request` for no items, more than [`MAX_ITEMS`],
    /// a quantity of 0 or a total beyond `u64`, and `not_found` for a SKU not
    /// in [`PRICES`].
    pub fn create(
        &self,
        placed_by: &str,
        order: CreateOrder,
    ) -> Result<OrderCreated, HandlerError> {
        let total_cents = total(&order.items)?;
        let mut state = self.state.lock();
        state.next += 1;
        let order_id = format!("ord-{:06}", state.next);
        let placed = Order {
            order_id: order_id.clone(),
            customer: order.customer,
            items: order.items,
            total_cents,
            placed_by: placed_by.to_owned(),
        };
        state.by_id.insert(order_id.clone(), placed);
        Ok(OrderCreated {
            order_id,
            total_cents,
            placed_by: placed_by.to_owned(),
        })
    }

    /// The order `order_id`; `not_found` when there is none.
    pub fn get(&self, order_id: &str) -> Result<Order, HandlerError> {
        self.state
            .lock()
            .by_id
            .get(order_id)
            .cloned()
            .ok_or_else(|| HandlerError::not_found(format!("no order `{order_id}`")))
    }
}

/// The price of `items`, after checking them.
fn total(items: &[Item]) -> Result<u64, HandlerError> {
    if items.is_empty() {
        return Err(HandlerError::invalid("an order needs at least one item"));
    }
    if items.len() > MAX_ITEMS {
        return Err(HandlerError::invalid(format!(
            "an order has at most {MAX_ITEMS} items"
        )));
    }
    items.iter().try_fold(0u64, |sum, item| {
        if item.qty == 0 {
            return Err(HandlerError::invalid(format!(
                "quantity of `{}` must be at least 1",
                item.sku
            )));
        }
        let price = price_of(&item.sku)
            .ok_or_else(|| HandlerError::not_found(format!("unknown sku `{}`", item.sku)))?;
        price
            .checked_mul(u64::from(item.qty))
            .and_then(|line| sum.checked_add(line))
            .ok_or_else(|| HandlerError::invalid("the order total is too large"))
    })
}

fn price_of(sku: &str) -> Option<u64> {
    PRICES.iter().find(|(s, _)| *s == sku).map(|(_, p)| *p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(items: &[(&str, u32)]) -> CreateOrder {
        CreateOrder {
            customer: Customer { id: "c-42".into() },
            items: items
                .iter()
                .map(|(sku, qty)| Item {
                    sku: (*sku).into(),
                    qty: *qty,
                })
                .collect(),
        }
    }

    #[test]
    fn create_prices_the_order_and_get_returns_it() {
        let orders = Orders::default();
        let created = orders
            .create("web", order(&[("widget", 2), ("gadget", 1)]))
            .unwrap();
        assert_eq!(created.order_id, "ord-000001");
        assert_eq!(created.total_cents, 2 * 250 + 1_299);
        assert_eq!(created.placed_by, "web");
        let found = orders.get(&created.order_id).unwrap();
        assert_eq!(found.customer.id, "c-42");
        assert_eq!(found.items.len(), 2);
        assert_eq!(found.total_cents, created.total_cents);
        assert_eq!(found.placed_by, "web");
    }

    #[test]
    fn each_order_gets_its_own_id() {
        let orders = Orders::default();
        let a = orders.create("web", order(&[("widget", 1)])).unwrap();
        let b = orders.create("web", order(&[("sprocket", 1)])).unwrap();
        assert_ne!(a.order_id, b.order_id);
        assert_eq!(orders.get(&a.order_id).unwrap().total_cents, 250);
        assert_eq!(orders.get(&b.order_id).unwrap().total_cents, 75);
    }

    #[test]
    fn refuses_an_empty_order_and_a_quantity_of_zero() {
        let orders = Orders::default();
        let empty = orders.create("web", order(&[])).unwrap_err();
        assert_eq!(empty.code(), "invalid_request");
        let zero = orders
            .create("web", order(&[("widget", 1), ("gadget", 0)]))
            .unwrap_err();
        assert_eq!(zero.code(), "invalid_request");
        assert!(zero.message().contains("gadget"), "{zero}");
        let too_many = vec![("widget", 1); MAX_ITEMS + 1];
        assert_eq!(
            orders.create("web", order(&too_many)).unwrap_err().code(),
            "invalid_request"
        );
        assert_eq!(
            orders.get("ord-000001").unwrap_err().code(),
            "not_found",
            "a refused order is not stored"
        );
    }

    #[test]
    fn refuses_unknown_skus() {
        let orders = Orders::default();
        let unknown = orders
            .create("web", order(&[("widget", 1), ("flux", 1)]))
            .unwrap_err();
        assert_eq!(unknown.code(), "not_found");
        assert!(unknown.message().contains("flux"), "{unknown}");
    }

    #[test]
    fn the_largest_order_is_priced_exactly() {
        let largest = vec![("gadget", u32::MAX); MAX_ITEMS];
        let expected = 1_299 * u64::from(u32::MAX) * MAX_ITEMS as u64;
        assert_eq!(total(&order(&largest).items).unwrap(), expected);
    }

    #[test]
    fn get_of_an_unknown_id_is_not_found() {
        let err = Orders::default().get("ord-999999").unwrap_err();
        assert_eq!(err.code(), "not_found");
    }

    #[test]
    fn the_service_builds() {
        let (_, public) = tollgate_auth::generate_assertion_key().unwrap();
        let bus_key = AssertionVerifier::from_public_pem(public.as_bytes()).unwrap();
        assert_eq!(service("svc-token", bus_key).build().unwrap().name(), NAME);
    }
}
