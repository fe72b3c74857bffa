//! The shop demo's gateway settings: who may call what, and two friendly
//! routes. `msa cluster up` gives them to node1's gateway; `msa node
//! --demo-policy` to any node's.

use msa::gateway::{PolicyRule, RouteConfig};

/// The demo policy (it applies when auth is on; without auth everything is
/// allowed):
///
/// | service | messages | roles |
/// |---|---|---|
/// | `orders` | `shop.PlaceOrder`, `shop.GetOrder` | `customer` |
/// | `inventory` | `shop.GetStock` | `customer`, `staff` |
/// | `inventory` | `shop.Restock`, `shop.Reserve`, `shop.Commit`, `shop.Release` (writes) | `staff` |
/// | `payments` | `shop.GetPayment` | `staff` |
/// | `notifications` | `shop.ListNotifications` | `staff` |
/// | `@topics` (SSE, gRPC `Subscribe`) | `shop.orders` (the orders' events) | `staff` |
/// | every service | every message | `admin` |
///
/// The orders' events name their customer and what they bought: they are
/// for staff, not for customers (a customer reads only their own orders,
/// through `shop.GetOrder`).
///
/// `/metrics` and `/v1/cluster` need `admin` (the gateway's admin roles);
/// the health endpoints need no token.
pub(crate) fn demo_policy() -> Vec<PolicyRule> {
    let rule = |service: &str, message: &str, roles: &[&str]| PolicyRule {
        service: service.into(),
        message: message.into(),
        roles: roles.iter().map(|r| (*r).to_string()).collect(),
    };
    vec![
        rule("orders", "shop.PlaceOrder", &["customer"]),
        rule("orders", "shop.GetOrder", &["customer"]),
        rule("inventory", "shop.GetStock", &["customer", "staff"]),
        rule("inventory", "shop.Restock", &["staff"]),
        rule("inventory", "shop.Reserve", &["staff"]),
        rule("inventory", "shop.Commit", &["staff"]),
        rule("inventory", "shop.Release", &["staff"]),
        rule("payments", "shop.GetPayment", &["staff"]),
        rule("notifications", "shop.ListNotifications", &["staff"]),
        rule("@topics", msa::actors::shop::ORDER_EVENTS, &["staff"]),
        rule("*", "*", &["admin"]),
    ]
}

/// The shop's own access rules, checked by the instances on the node
/// that runs the demo policy (`msa node --demo-policy`): stock moves and
/// charges only from the `orders` service's handlers, or by staff or an
/// admin, whatever the gateway in front says.
pub(crate) fn demo_access() -> Vec<msa::host::AccessRuleConfig> {
    use msa::host::AccessRuleConfig as R;
    let mut rules: Vec<R> = ["shop.Reserve", "shop.Commit", "shop.Release"]
        .into_iter()
        .map(|m| R::new("inventory", m, &["staff", "admin"], &["orders"]))
        .collect();
    rules.push(R::new(
        "inventory",
        "shop.Restock",
        &["staff", "admin"],
        &[],
    ));
    rules.push(R::new("payments", "shop.Charge", &["admin"], &["orders"]));
    rules.push(R::new(
        "payments",
        "shop.GetPayment",
        &["staff", "admin"],
        &[],
    ));
    rules
}

/// The demo routes: `POST /orders` places an order (the body is a
/// `shop.PlaceOrder`), `GET /orders/{id}` reads one back.
pub(crate) fn demo_routes() -> Vec<RouteConfig> {
    let route = |method: &str, path: &str, message: &str| RouteConfig {
        method: method.into(),
        path: path.into(),
        service: "orders".into(),
        message: message.into(),
    };
    vec![
        route("POST", "/orders", "shop.PlaceOrder"),
        route("GET", "/orders/{id}", "shop.GetOrder"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether a rule pattern matches a name ("*", "prefix.*", exact), as
    /// the gateway reads it.
    fn matches(pattern: &str, name: &str) -> bool {
        match pattern.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => pattern == name,
        }
    }

    fn allowed(role: &str, service: &str, message: &str) -> bool {
        demo_policy().iter().any(|r| {
            matches(&r.service, service)
                && matches(&r.message, message)
                && r.roles.iter().any(|x| x == role)
        })
    }

    #[test]
    fn customers_order_staff_restock_admin_does_everything() {
        assert!(allowed("customer", "orders", "shop.PlaceOrder"));
        assert!(allowed("customer", "orders", "shop.GetOrder"));
        assert!(!allowed("customer", "inventory", "shop.Restock"));
        assert!(!allowed("customer", "payments", "shop.Charge"));
        assert!(allowed("staff", "inventory", "shop.Restock"));
        assert!(!allowed("staff", "orders", "shop.PlaceOrder"));
        assert!(allowed("admin", "payments", "shop.Charge"));
        assert!(allowed("staff", "notifications", "shop.ListNotifications"));
        assert!(allowed("staff", "@topics", "shop.orders"));
        // Other customers' orders are in the events: staff only.
        assert!(!allowed("customer", "@topics", "shop.orders"));
        assert!(!allowed(
            "customer",
            "notifications",
            "shop.ListNotifications"
        ));
        assert!(!allowed("staff", "@topics", "other.topic"));
        assert!(!allowed("customer", "notifications", "shop.OrderPlaced"));
        assert!(allowed("admin", "kv", "kv.Put"));
        assert!(!allowed("nobody", "echo", "echo.Ping"));
    }

    #[test]
    fn every_route_targets_a_shop_message() {
        let shop = msa::actors::shop::WIRE_NAMES;
        for r in demo_routes() {
            assert!(shop.contains(&r.message.as_str()), "{r:?}");
            assert_eq!(r.service, "orders");
        }
    }
}
