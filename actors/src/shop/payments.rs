//! The payments service: approves charges up to a limit and keeps the
//! payments it made.

use std::collections::BTreeMap;

use msa_runtime::{Handler, RemoteMessage, Reply, Service, ServiceContext, ServiceSpec};
use serde::{Deserialize, Serialize};

use super::{customer_of, keep, PAYMENTS};

/// The largest charge [`payments_spec`] approves: 1,000.00.
pub const DEFAULT_PAYMENT_LIMIT_CENTS: u64 = 100_000;

/// Charges the caller (the call's identity, `"anonymous"` without one)
/// `amount_cents` for `order`.
///
/// JSON: `{"order": 1, "amount_cents": 2598}`.
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
#[msa(name = "shop.Charge", schema)]
#[schemars(crate = "msa_runtime::schemars")]
#[rtype(result = "ChargeOutcome")]
pub struct Charge {
    /// The order paid for.
    pub order: u64,
    /// The amount, in cents.
    pub amount_cents: u64,
}

/// What [`Charge`] did. JSON: `{"Approved": {"payment": "pay-1"}}` or
/// `{"Declined": {"reason": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChargeOutcome {
    /// Charged; the payment's id.
    Approved {
        /// The payment's id (`pay-<n>`), for [`GetPayment`].
        payment: String,
    },
    /// Not charged, and why.
    Declined {
        /// Why, for humans.
        reason: String,
    },
}

/// Reads a payment; `None` (JSON `null`) for an unknown id.
///
/// JSON: `{"id": "pay-1"}`.
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
#[msa(name = "shop.GetPayment", schema)]
#[schemars(crate = "msa_runtime::schemars")]
#[rtype(result = "Option<Payment>")]
pub struct GetPayment {
    /// The payment's id, as [`Charge`] answered it.
    pub id: String,
}

/// A payment made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// Its id, `pay-<n>`.
    pub id: String,
    /// The order paid for.
    pub order: u64,
    /// Who was charged: the subject of the identity the charge carried.
    pub customer: String,
    /// The amount, in cents.
    pub amount_cents: u64,
}

/// The payments service: the payments it made (up to
/// [`MAX_KEPT`](super::MAX_KEPT), oldest forgotten first) and its limit.
#[derive(Debug)]
pub struct Payments {
    limit_cents: u64,
    payments: BTreeMap<u64, Payment>,
    last_id: u64,
}

impl Payments {
    /// Approves charges of at most `limit_cents`.
    pub fn with_limit(limit_cents: u64) -> Self {
        Self {
            limit_cents,
            payments: BTreeMap::new(),
            last_id: 0,
        }
    }
}

impl Default for Payments {
    /// [`DEFAULT_PAYMENT_LIMIT_CENTS`].
    fn default() -> Self {
        Self::with_limit(DEFAULT_PAYMENT_LIMIT_CENTS)
    }
}

impl Service for Payments {}

impl Handler<Charge> for Payments {
    fn handle(
        &mut self,
        msg: Charge,
        ctx: &mut ServiceContext<'_, Self>,
    ) -> Reply<Self, ChargeOutcome> {
        if msg.amount_cents > self.limit_cents {
            tracing::info!(
                order = msg.order,
                amount_cents = msg.amount_cents,
                "charge declined"
            );
            return Reply::ready(ChargeOutcome::Declined {
                reason: format!(
                    "amount {} cents is over the limit of {} cents",
                    msg.amount_cents, self.limit_cents
                ),
            });
        }
        self.last_id += 1;
        let id = format!("pay-{}", self.last_id);
        let payment = Payment {
            id: id.clone(),
            order: msg.order,
            customer: customer_of(ctx.metadata()),
            amount_cents: msg.amount_cents,
        };
        keep(&mut self.payments, self.last_id, payment);
        tracing::info!(order = msg.order, amount_cents = msg.amount_cents, payment = %id, "charged");
        Reply::ready(ChargeOutcome::Approved { payment: id })
    }
}

impl Handler<GetPayment> for Payments {
    fn handle(
        &mut self,
        msg: GetPayment,
        _: &mut ServiceContext<'_, Self>,
    ) -> Reply<Self, Option<Payment>> {
        let payment = msg
            .id
            .strip_prefix("pay-")
            .and_then(|n| n.parse::<u64>().ok())
            .and_then(|n| self.payments.get(&n))
            .filter(|p| p.id == msg.id)
            .cloned();
        Reply::ready(payment)
    }
}

/// The spec of the payments service, named [`PAYMENTS`], with
/// [`DEFAULT_PAYMENT_LIMIT_CENTS`]: see [`payments_spec_with_limit`].
pub fn payments_spec() -> ServiceSpec<Payments> {
    payments_spec_with_limit(DEFAULT_PAYMENT_LIMIT_CENTS)
}

/// The spec of the payments service, named [`PAYMENTS`]: one instance (it
/// holds the payments) that declines charges over `limit_cents`.
pub fn payments_spec_with_limit(limit_cents: u64) -> ServiceSpec<Payments> {
    ServiceSpec::new(PAYMENTS, move || Payments::with_limit(limit_cents))
        .handles::<Charge>()
        .handles::<GetPayment>()
}
