//! Route ids: how calls name their service and message type on one
//! connection without sending both names in every frame.
//!
//! Each direction of each connection has its own ids. The sender (the
//! connection's call lane, where callers encode their calls in the order
//! they go on the wire) gives the
//! first call for a (service, message) pair an id and sends both names with
//! it ([`Route::Named`]); later calls for the pair carry the id alone
//! ([`Route::Id`]). The receiver (the connection's reader) records the names
//! under the id, with whatever it resolved them to, and looks later frames
//! up by id: no names are decoded or hashed on the steady-state path. A
//! reconnect starts both tables empty. Both tables are plain structs driven
//! by their owner (sans-IO): the call lane keeps its table under its own
//! lock, the reader's needs none.
//!
//! The receiver holds at most [`MAX_ROUTES`] ids per connection: a frame
//! that names an id at or beyond it, re-binds an id, or uses an id never
//! named is a protocol error that closes the connection (and is counted in
//! `route_errors`). A sender that has used up its ids sends further new
//! pairs with their names every time ([`Route::Once`]).

use std::collections::HashMap;
use std::sync::Arc;

use super::frame::{Route, RouteForm, StaticName};

/// Ids a receiver accepts per connection (ids `0..MAX_ROUTES`).
pub(crate) const MAX_ROUTES: usize = 65_536;

/// A frame broke the route id rules: the connection is closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum RouteError {
    /// The sender named an id the receiver does not hold ids up to.
    #[error("route id {id} is beyond the limit of {limit} ids per connection")]
    BeyondLimit {
        /// The id named.
        id: u32,
        /// The receiver's limit.
        limit: usize,
    },
    /// The sender named an id it had named already.
    #[error("route id {id} was named twice on this connection")]
    Rebound {
        /// The id named again.
        id: u32,
    },
    /// A frame used an id never named on this connection.
    #[error("route id {id} was never named on this connection")]
    Unknown {
        /// The id used.
        id: u32,
    },
    /// A frame carried a route that only exists before encoding.
    #[error("a call without a wire route")]
    NotOnTheWire,
}

/// The sender's side: the ids given so far on one connection, kept by its
/// writer.
#[derive(Debug)]
pub(crate) struct OutboundRoutes {
    ids: HashMap<Arc<str>, HashMap<&'static str, u32>>,
    /// The pair of the last frame and its id: a run of calls to one pair
    /// (the common case) compares two names instead of hashing them.
    last: Option<(Arc<str>, &'static str, u32)>,
    next: u32,
    limit: usize,
}

impl Default for OutboundRoutes {
    fn default() -> Self {
        Self::with_limit(MAX_ROUTES)
    }
}

impl OutboundRoutes {
    /// A table that gives at most `limit` ids.
    pub(crate) fn with_limit(limit: usize) -> Self {
        Self {
            ids: HashMap::new(),
            last: None,
            next: 0,
            limit,
        }
    }

    /// How the next call to (`service`, `message`) names its pair, in the
    /// order the frames are written: `Named` the first time, `Id` after
    /// (`Once` when the connection ran out of ids).
    pub(crate) fn form<'a>(
        &mut self,
        service: &'a Arc<str>,
        message: &'static str,
    ) -> RouteForm<'a> {
        if let Some((s, m, id)) = &self.last {
            if (Arc::ptr_eq(s, service) || **s == **service)
                && (std::ptr::eq(*m, message) || *m == message)
            {
                return RouteForm::Id(*id);
            }
        }
        if let Some(&id) = self.ids.get(&**service).and_then(|m| m.get(message)) {
            self.last = Some((service.clone(), message, id));
            return RouteForm::Id(id);
        }
        if (self.next as usize) < self.limit {
            let id = self.next;
            self.next += 1;
            self.ids
                .entry(service.clone())
                .or_default()
                .insert(message, id);
            RouteForm::Named {
                id,
                service,
                message,
            }
        } else {
            RouteForm::Once { service, message }
        }
    }

    /// Turns a call's [`Route::Local`] into its wire form (see
    /// [`form`](Self::form)). Other routes are left alone.
    pub(crate) fn wire_form(&mut self, route: &mut Route) {
        let Route::Local {
            service,
            message: StaticName(message),
        } = route
        else {
            return;
        };
        let wire = match self.form(service, message) {
            RouteForm::Id(id) => Route::Id(id),
            RouteForm::Named {
                id,
                service,
                message,
            } => Route::Named {
                id,
                service: service.to_string(),
                message: message.to_string(),
            },
            RouteForm::Once { service, message } => Route::Once {
                service: service.to_string(),
                message: message.to_string(),
            },
        };
        *route = wire;
    }
}

impl OutboundRoutes {
    /// Forgets the pair a `Named` route gave an id to (its frame was not
    /// sent): the next call names it again, under a new id.
    pub(crate) fn forget(&mut self, route: &Route) {
        if let Route::Named {
            service, message, ..
        } = route
        {
            self.forget_pair(service, message);
        }
    }

    /// Forgets the id given to (`service`, `message`) (the frame that named
    /// it was not sent).
    pub(crate) fn forget_pair(&mut self, service: &str, message: &str) {
        if let Some(m) = self.ids.get_mut(service) {
            m.remove(message);
        }
        if self
            .last
            .as_ref()
            .is_some_and(|(s, m, _)| **s == *service && *m == message)
        {
            self.last = None;
        }
    }
}

/// One (service, message) pair a connection named, and what the receiver
/// resolved it to (cached until it goes stale).
#[derive(Debug)]
pub(crate) struct InboundRoute<T> {
    /// The service name.
    pub(crate) service: Box<str>,
    /// The message's wire name.
    pub(crate) message: Box<str>,
    /// What the names resolved to, if they did.
    pub(crate) resolved: Option<T>,
}

impl<T> InboundRoute<T> {
    fn new(service: String, message: String) -> Self {
        Self {
            service: service.into_boxed_str(),
            message: message.into_boxed_str(),
            resolved: None,
        }
    }
}

/// The route of one inbound frame: held in the table, or for this frame only.
#[derive(Debug)]
pub(crate) enum RouteSlot<'a, T> {
    /// Named on this connection (by this frame or an earlier one).
    Held(&'a mut InboundRoute<T>),
    /// Named by this frame only ([`Route::Once`]).
    Once(InboundRoute<T>),
}

impl<T> RouteSlot<'_, T> {
    /// The route.
    pub(crate) fn get(&mut self) -> &mut InboundRoute<T> {
        match self {
            Self::Held(r) => r,
            Self::Once(r) => r,
        }
    }
}

/// The receiver's side: the ids one connection named, kept by its reader.
#[derive(Debug)]
pub(crate) struct InboundRoutes<T> {
    routes: Vec<Option<InboundRoute<T>>>,
    limit: usize,
}

impl<T> Default for InboundRoutes<T> {
    fn default() -> Self {
        Self::with_limit(MAX_ROUTES)
    }
}

impl<T> InboundRoutes<T> {
    /// A table that holds ids `0..limit`.
    pub(crate) fn with_limit(limit: usize) -> Self {
        Self {
            routes: Vec::new(),
            limit,
        }
    }

    /// Ids held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.routes.iter().filter(|r| r.is_some()).count()
    }

    /// The route a frame names, recording a newly named id.
    ///
    /// # Errors
    /// [`RouteError`] when the frame breaks the id rules.
    pub(crate) fn lookup(&mut self, route: Route) -> Result<RouteSlot<'_, T>, RouteError> {
        match route {
            Route::Id(id) => self
                .routes
                .get_mut(id as usize)
                .and_then(Option::as_mut)
                .map(RouteSlot::Held)
                .ok_or(RouteError::Unknown { id }),
            Route::Named {
                id,
                service,
                message,
            } => {
                let i = id as usize;
                if i >= self.limit {
                    return Err(RouteError::BeyondLimit {
                        id,
                        limit: self.limit,
                    });
                }
                if self.routes.len() <= i {
                    self.routes.resize_with(i + 1, || None);
                }
                let slot = &mut self.routes[i];
                if slot.is_some() {
                    return Err(RouteError::Rebound { id });
                }
                Ok(RouteSlot::Held(
                    slot.insert(InboundRoute::new(service, message)),
                ))
            }
            Route::Once { service, message } => {
                Ok(RouteSlot::Once(InboundRoute::new(service, message)))
            }
            Route::Local { .. } => Err(RouteError::NotOnTheWire),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(service: &str, message: &'static str) -> Route {
        Route::Local {
            service: Arc::from(service),
            message: StaticName(message),
        }
    }

    fn wire(out: &mut OutboundRoutes, service: &str, message: &'static str) -> Route {
        let mut r = local(service, message);
        out.wire_form(&mut r);
        r
    }

    #[test]
    fn the_first_use_of_a_pair_names_it_and_later_ones_use_its_id() {
        let mut out = OutboundRoutes::default();
        let first = wire(&mut out, "kv", "kv.Get");
        assert_eq!(
            first,
            Route::Named {
                id: 0,
                service: "kv".into(),
                message: "kv.Get".into()
            }
        );
        assert_eq!(wire(&mut out, "kv", "kv.Get"), Route::Id(0));
        // Another message of the same service, the same message of another.
        assert!(matches!(
            wire(&mut out, "kv", "kv.Put"),
            Route::Named { id: 1, .. }
        ));
        assert!(matches!(
            wire(&mut out, "kv2", "kv.Get"),
            Route::Named { id: 2, .. }
        ));
        assert_eq!(wire(&mut out, "kv", "kv.Put"), Route::Id(1));

        let mut inb = InboundRoutes::<u32>::default();
        let r = inb.lookup(first).unwrap().get().service.clone();
        assert_eq!(&*r, "kv");
        // A resolution cached on the route is found again by id.
        inb.lookup(Route::Id(0)).unwrap().get().resolved = Some(7);
        let mut again = inb.lookup(Route::Id(0)).unwrap();
        let again = again.get();
        assert_eq!((&*again.message, again.resolved), ("kv.Get", Some(7)));
        assert_eq!(inb.len(), 1);
    }

    #[test]
    fn an_unknown_or_rebound_id_is_a_protocol_error() {
        let mut inb = InboundRoutes::<()>::default();
        assert_eq!(
            inb.lookup(Route::Id(3)).unwrap_err(),
            RouteError::Unknown { id: 3 }
        );
        let named = Route::Named {
            id: 3,
            service: "a".into(),
            message: "b".into(),
        };
        inb.lookup(named.clone()).unwrap();
        assert_eq!(
            inb.lookup(named).unwrap_err(),
            RouteError::Rebound { id: 3 }
        );
        // Ids below a named one are not bound by it.
        assert_eq!(
            inb.lookup(Route::Id(2)).unwrap_err(),
            RouteError::Unknown { id: 2 }
        );
        assert_eq!(
            inb.lookup(local("a", "b")).unwrap_err(),
            RouteError::NotOnTheWire
        );
    }

    #[test]
    fn ids_beyond_the_limit_are_refused_and_a_sender_out_of_ids_sends_names() {
        let mut inb = InboundRoutes::<()>::with_limit(4);
        let named = |id| Route::Named {
            id,
            service: "s".into(),
            message: "m".into(),
        };
        inb.lookup(named(3)).unwrap();
        assert_eq!(
            inb.lookup(named(4)).unwrap_err(),
            RouteError::BeyondLimit { id: 4, limit: 4 }
        );
        assert_eq!(
            inb.lookup(named(u32::MAX)).unwrap_err(),
            RouteError::BeyondLimit {
                id: u32::MAX,
                limit: 4
            }
        );
        // The default limit.
        let mut inb = InboundRoutes::<()>::default();
        assert!(inb.lookup(named(MAX_ROUTES as u32 - 1)).is_ok());
        assert!(matches!(
            inb.lookup(named(MAX_ROUTES as u32)),
            Err(RouteError::BeyondLimit { .. })
        ));

        let mut out = OutboundRoutes::with_limit(2);
        assert!(matches!(
            wire(&mut out, "s", "a"),
            Route::Named { id: 0, .. }
        ));
        assert!(matches!(
            wire(&mut out, "s", "b"),
            Route::Named { id: 1, .. }
        ));
        let once = wire(&mut out, "s", "c");
        assert_eq!(
            once,
            Route::Once {
                service: "s".into(),
                message: "c".into()
            }
        );
        assert_eq!(wire(&mut out, "s", "a"), Route::Id(0));
        let mut inb = InboundRoutes::<()>::with_limit(2);
        assert!(matches!(inb.lookup(once), Ok(RouteSlot::Once(_))));
        assert_eq!(inb.len(), 0, "a one-off route is not held");
    }

    #[test]
    fn a_pair_whose_naming_frame_was_not_sent_is_named_again() {
        let mut out = OutboundRoutes::default();
        let named = wire(&mut out, "kv", "kv.Get");
        out.forget(&named);
        assert!(matches!(
            wire(&mut out, "kv", "kv.Get"),
            Route::Named { id: 1, .. }
        ));
        assert_eq!(wire(&mut out, "kv", "kv.Get"), Route::Id(1));
    }

    #[test]
    fn runs_and_alternations_of_pairs_keep_their_own_ids() {
        let mut out = OutboundRoutes::default();
        assert!(matches!(
            wire(&mut out, "a", "m"),
            Route::Named { id: 0, .. }
        ));
        assert!(matches!(
            wire(&mut out, "b", "m"),
            Route::Named { id: 1, .. }
        ));
        // Same names from other allocations (another `ServiceRef`) and
        // interleaved pairs: the one-pair shortcut never mixes them up.
        for _ in 0..3 {
            assert_eq!(wire(&mut out, "a", "m"), Route::Id(0));
            assert_eq!(wire(&mut out, "a", "m"), Route::Id(0));
            assert_eq!(wire(&mut out, "b", "m"), Route::Id(1));
        }
        assert!(matches!(
            wire(&mut out, "a", "n"),
            Route::Named { id: 2, .. }
        ));
        assert_eq!(wire(&mut out, "a", "n"), Route::Id(2));
        assert_eq!(wire(&mut out, "a", "m"), Route::Id(0));
        // A forgotten pair is named again even right after its last use.
        let named = Route::Named {
            id: 0,
            service: "a".into(),
            message: "m".into(),
        };
        out.forget(&named);
        assert!(matches!(
            wire(&mut out, "a", "m"),
            Route::Named { id: 3, .. }
        ));
        assert_eq!(wire(&mut out, "a", "m"), Route::Id(3));
    }

    #[test]
    fn a_new_connection_starts_with_fresh_tables() {
        let mut out = OutboundRoutes::default();
        wire(&mut out, "kv", "kv.Get");
        assert_eq!(wire(&mut out, "kv", "kv.Get"), Route::Id(0));
        let mut out = OutboundRoutes::default();
        assert!(matches!(
            wire(&mut out, "kv", "kv.Get"),
            Route::Named { id: 0, .. }
        ));
    }
}
