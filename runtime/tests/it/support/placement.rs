//! A service that answers which node served it, by name (`Where`) or by key
//! (`Owner`): what the join and split-brain tests ask to see who serves
//! and who owns a key.

use msa_runtime::prelude::*;
use serde::{Deserialize, Serialize};

/// Answers the name of the node that served it.
#[derive(Debug, Clone, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[rtype(result = "String")]
#[msa(name = "it.Where")]
pub struct Where;

/// A keyed ask: the key picks the owner; answers the node that served it.
#[derive(Debug, Clone, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[rtype(result = "String")]
#[msa(name = "it.Owner", keyed)]
pub struct Owner(pub String);

impl KeyedMessage for Owner {
    fn routing_key(&self) -> u64 {
        msa_runtime::key_hash(self.0.as_bytes())
    }
}

/// The service: holds its node's name.
pub struct Here(pub String);

impl Service for Here {}

impl Handler<Where> for Here {
    fn handle(&mut self, _: Where, _: &mut ServiceContext<'_, Self>) -> Reply<Self, String> {
        Reply::ready(self.0.clone())
    }
}

impl Handler<Owner> for Here {
    fn handle(&mut self, _: Owner, _: &mut ServiceContext<'_, Self>) -> Reply<Self, String> {
        Reply::ready(self.0.clone())
    }
}
