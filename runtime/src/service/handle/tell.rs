//! Tells: a message without a reply, that waits for nothing.

use actix::Message;

use super::route::Route;
use super::{fns, ServiceRef};
use crate::error::CallError;
use crate::metadata::Metadata;
use crate::service::actor::Envelope;
use crate::service::sender_cache::tell_cached;

impl ServiceRef {
    /// Sends `msg` without waiting for a reply or for mailbox room (like
    /// actix `do_send`).
    ///
    /// # Errors
    /// Only when no instance can take it: unknown service, unhandled message,
    /// no live instance, shutdown.
    #[inline]
    pub fn tell<M>(&self, msg: M) -> Result<(), CallError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
    {
        self.tell_with(msg, Metadata::default())
    }

    /// [`tell`](Self::tell) with metadata.
    ///
    /// # Errors
    /// As [`tell`](Self::tell).
    #[inline]
    pub fn tell_with<M>(&self, msg: M, meta: Metadata) -> Result<(), CallError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
    {
        let Some(entry) = self.fast_entry() else {
            return self.tell_slow(msg, meta);
        };
        match tell_cached::<M>(entry, Envelope { msg, meta }) {
            Ok(()) => Ok(()),
            // A dead or replaced instance: the general path re-reads the slots.
            Err(Some(e)) => self.tell_slow(e.msg, e.meta),
            Err(None) => Err(self.no_instance()),
        }
    }

    /// Everything but the local fast path: errors, keyed routing, remote
    /// instances, a replaced entry.
    #[cold]
    fn tell_slow<M>(&self, msg: M, meta: Metadata) -> Result<(), CallError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
    {
        match self.route(&msg)? {
            Route::Local(target) => {
                let entry = self.entry()?;
                let f = fns::<M>(&entry, target.index).ok_or_else(|| self.unhandled::<M>())?;
                let sender = target.instance().ok_or_else(|| self.no_instance())?;
                (f.tell)(sender, Envelope { msg, meta }).map_err(|_| self.no_instance())
            }
            Route::Remote(r, codec) => self.tell_remote(&r, codec, &msg, &meta),
        }
    }
}
