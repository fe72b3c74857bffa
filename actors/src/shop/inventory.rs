//! The inventory service: a catalog of skus with prices and stock, and the
//! reservations orders hold on that stock.
//!
//! [`Reserve`] takes units out of the available stock and answers a
//! reservation id; [`Commit`] makes the sale final and [`Release`] puts the
//! units back. [`Restock`] adds units.

use std::collections::{BTreeMap, HashMap};

use msa_runtime::{Handler, RemoteMessage, Reply, Service, ServiceContext, ServiceSpec};
use serde::{Deserialize, Serialize};

use super::INVENTORY;

/// What a catalog entry starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Item {
    price_cents: u64,
    stock: u64,
}

/// The skus an inventory starts with: price and initial stock of each.
///
/// # Examples
/// ```
/// use msa_actors::shop::Catalog;
/// let c = Catalog::new().item("pen", 150, 40);
/// assert_eq!(c.skus().collect::<Vec<_>>(), ["pen"]);
/// assert!(Catalog::demo().skus().any(|s| s == "book"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    items: BTreeMap<String, Item>,
}

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Self::default()
    }

    /// The demo catalog that [`inventory_spec`] uses:
    ///
    /// | sku | price | stock |
    /// |---|---|---|
    /// | `book` | 12.99 | 10 |
    /// | `mug` | 8.99 | 25 |
    /// | `tshirt` | 19.99 | 5 |
    /// | `laptop` | 1,299.00 | 3 |
    ///
    /// A laptop costs more than payments' default limit
    /// ([`DEFAULT_PAYMENT_LIMIT_CENTS`](super::DEFAULT_PAYMENT_LIMIT_CENTS)),
    /// so ordering one shows a declined payment.
    pub fn demo() -> Self {
        Self::new()
            .item("book", 1299, 10)
            .item("mug", 899, 25)
            .item("tshirt", 1999, 5)
            .item("laptop", 129_900, 3)
    }

    /// Adds (or replaces) `sku` at `price_cents` a unit, with `stock` units.
    pub fn item(mut self, sku: impl Into<String>, price_cents: u64, stock: u64) -> Self {
        self.items.insert(sku.into(), Item { price_cents, stock });
        self
    }

    /// The skus, in order.
    pub fn skus(&self) -> impl Iterator<Item = &str> {
        self.items.keys().map(String::as_str)
    }
}

/// The stock of one sku, as [`GetStock`] and [`Restock`] answer it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stock {
    /// The sku.
    pub sku: String,
    /// The price of one unit, in cents.
    pub price_cents: u64,
    /// Units that can still be reserved.
    pub available: u64,
    /// Units held by reservations not yet committed or released.
    pub reserved: u64,
}

/// Reads the stock of `sku`; `None` (JSON `null`) for a sku not in the
/// catalog.
///
/// JSON: `{"sku": "book"}`.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    actix::Message,
    msa_runtime::schemars::JsonSchema,
    RemoteMessage,
)]
#[msa(name = "shop.GetStock", schema)]
#[schemars(crate = "msa_runtime::schemars")]
#[rtype(result = "Option<Stock>")]
pub struct GetStock {
    /// The sku.
    pub sku: String,
}

/// Adds `qty` units to the stock of `sku` (a write: the demo policy gives
/// it to `staff`); answers the new [`Stock`], `None` for a sku not in the
/// catalog.
///
/// JSON: `{"sku": "book", "qty": 5}`.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    actix::Message,
    msa_runtime::schemars::JsonSchema,
    RemoteMessage,
)]
#[msa(name = "shop.Restock", schema)]
#[schemars(crate = "msa_runtime::schemars")]
#[rtype(result = "Option<Stock>")]
pub struct Restock {
    /// The sku.
    pub sku: String,
    /// Units to add.
    pub qty: u32,
}

/// Takes `qty` units of `sku` out of the available stock, all or nothing.
///
/// JSON: `{"sku": "book", "qty": 2}`.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    actix::Message,
    msa_runtime::schemars::JsonSchema,
    RemoteMessage,
)]
#[msa(name = "shop.Reserve", schema)]
#[schemars(crate = "msa_runtime::schemars")]
#[rtype(result = "ReserveOutcome")]
pub struct Reserve {
    /// The sku.
    pub sku: String,
    /// Units to reserve.
    pub qty: u32,
}

/// What [`Reserve`] did. JSON: `{"Reserved": {...}}`, `{"OutOfStock":
/// {"available": 1}}` or `"UnknownSku"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReserveOutcome {
    /// The units are held under `reservation` until committed or released.
    Reserved {
        /// The id to [`Commit`] or [`Release`] it with.
        reservation: u64,
        /// The price of one unit, in cents.
        unit_price_cents: u64,
        /// The price of all of them, in cents (saturating).
        total_cents: u64,
    },
    /// Fewer units available than asked for; nothing was reserved.
    OutOfStock {
        /// Units available.
        available: u64,
    },
    /// The sku is not in the catalog.
    UnknownSku,
}

/// Makes a reservation's sale final: its units no longer count as
/// reserved and can no longer be released. Answers whether it was held.
///
/// JSON: `{"reservation": 1}`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    actix::Message,
    msa_runtime::schemars::JsonSchema,
    RemoteMessage,
)]
#[msa(name = "shop.Commit", schema)]
#[schemars(crate = "msa_runtime::schemars")]
#[rtype(result = "bool")]
pub struct Commit {
    /// The reservation, as [`Reserve`] answered it.
    pub reservation: u64,
}

/// Gives a reservation's units back to the available stock. Answers whether
/// it was held (releasing twice, or after a commit, does nothing).
///
/// JSON: `{"reservation": 1}`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    actix::Message,
    msa_runtime::schemars::JsonSchema,
    RemoteMessage,
)]
#[msa(name = "shop.Release", schema)]
#[schemars(crate = "msa_runtime::schemars")]
#[rtype(result = "bool")]
pub struct Release {
    /// The reservation, as [`Reserve`] answered it.
    pub reservation: u64,
}

/// One sku's live numbers.
#[derive(Debug, Clone, Copy)]
struct Level {
    price_cents: u64,
    available: u64,
    reserved: u64,
}

/// A held reservation.
#[derive(Debug, Clone)]
struct Held {
    sku: String,
    qty: u64,
}

/// The inventory service: live stock per sku and held reservations.
#[derive(Debug, Default)]
pub struct Inventory {
    levels: BTreeMap<String, Level>,
    held: HashMap<u64, Held>,
    last_reservation: u64,
}

impl Inventory {
    /// An inventory with `catalog`'s skus, prices and initial stock.
    pub fn new(catalog: Catalog) -> Self {
        let levels = catalog
            .items
            .into_iter()
            .map(|(sku, i)| {
                let level = Level {
                    price_cents: i.price_cents,
                    available: i.stock,
                    reserved: 0,
                };
                (sku, level)
            })
            .collect();
        Self {
            levels,
            ..Self::default()
        }
    }

    fn stock(&self, sku: &str) -> Option<Stock> {
        self.levels.get(sku).map(|l| Stock {
            sku: sku.to_string(),
            price_cents: l.price_cents,
            available: l.available,
            reserved: l.reserved,
        })
    }

    /// Forgets reservation `id`; with `give_back`, returns its units to the
    /// available stock.
    fn settle(&mut self, id: u64, give_back: bool) -> bool {
        let Some(held) = self.held.remove(&id) else {
            return false;
        };
        if let Some(l) = self.levels.get_mut(&held.sku) {
            l.reserved = l.reserved.saturating_sub(held.qty);
            if give_back {
                l.available = l.available.saturating_add(held.qty);
            }
        }
        true
    }
}

impl Service for Inventory {}

impl Handler<GetStock> for Inventory {
    fn handle(
        &mut self,
        msg: GetStock,
        _: &mut ServiceContext<'_, Self>,
    ) -> Reply<Self, Option<Stock>> {
        Reply::ready(self.stock(&msg.sku))
    }
}

impl Handler<Restock> for Inventory {
    fn handle(
        &mut self,
        msg: Restock,
        _: &mut ServiceContext<'_, Self>,
    ) -> Reply<Self, Option<Stock>> {
        if let Some(l) = self.levels.get_mut(&msg.sku) {
            l.available = l.available.saturating_add(u64::from(msg.qty));
        }
        Reply::ready(self.stock(&msg.sku))
    }
}

impl Handler<Reserve> for Inventory {
    fn handle(
        &mut self,
        msg: Reserve,
        _: &mut ServiceContext<'_, Self>,
    ) -> Reply<Self, ReserveOutcome> {
        let Some(l) = self.levels.get_mut(&msg.sku) else {
            return Reply::ready(ReserveOutcome::UnknownSku);
        };
        let qty = u64::from(msg.qty);
        if l.available < qty {
            return Reply::ready(ReserveOutcome::OutOfStock {
                available: l.available,
            });
        }
        l.available -= qty;
        l.reserved = l.reserved.saturating_add(qty);
        let (unit_price_cents, total_cents) = (l.price_cents, l.price_cents.saturating_mul(qty));
        self.last_reservation += 1;
        let reservation = self.last_reservation;
        tracing::info!(sku = %msg.sku, qty, reservation, "reserved");
        self.held.insert(reservation, Held { sku: msg.sku, qty });
        Reply::ready(ReserveOutcome::Reserved {
            reservation,
            unit_price_cents,
            total_cents,
        })
    }
}

impl Handler<Commit> for Inventory {
    fn handle(&mut self, msg: Commit, _: &mut ServiceContext<'_, Self>) -> Reply<Self, bool> {
        Reply::ready(self.settle(msg.reservation, false))
    }
}

impl Handler<Release> for Inventory {
    fn handle(&mut self, msg: Release, _: &mut ServiceContext<'_, Self>) -> Reply<Self, bool> {
        Reply::ready(self.settle(msg.reservation, true))
    }
}

/// The spec of the inventory service, named [`INVENTORY`], stocked from
/// [`Catalog::demo`]: see [`inventory_spec_with`].
pub fn inventory_spec() -> ServiceSpec<Inventory> {
    inventory_spec_with(Catalog::demo())
}

/// The spec of the inventory service, named [`INVENTORY`]: one instance
/// (it holds the stock), started (and restarted) with `catalog`.
pub fn inventory_spec_with(catalog: Catalog) -> ServiceSpec<Inventory> {
    ServiceSpec::new(INVENTORY, move || Inventory::new(catalog.clone()))
        .handles::<GetStock>()
        .handles::<Restock>()
        .handles::<Reserve>()
        .handles::<Commit>()
        .handles::<Release>()
}
