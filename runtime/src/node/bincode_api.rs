//! Bincode calls: a service asked by its name and a message's wire name
//! with the message's bincode bytes (the gRPC ingress's `ENCODING_BINCODE`,
//! docs/grpc.md). As [`Node::call_json`], the bytes are decoded only by a
//! node that runs an instance of the service (this one, or the one they
//! are forwarded to), so the calling node need not know the message's type.

use std::time::Duration;

use super::by_name::failed;
use super::Node;
use crate::error::BincodeError;
use crate::json::JsonReply;
use crate::metadata::Metadata;

impl Node {
    /// Asks `service` the message whose wire name is `message`, given as
    /// its bincode encoding (bincode 2, standard configuration: what
    /// [`codec::encode`](crate::codec::encode) produces), wherever in the
    /// cluster the service runs; the future yields the reply's bincode
    /// encoding. `timeout`: the call's (`None`: the node's default).
    ///
    /// # Errors
    /// [`BincodeError::UnknownMessage`] when no instance here or elsewhere
    /// lists a message of that wire name, [`BincodeError::Malformed`] when
    /// the bytes do not decode here. The returned future yields the call's
    /// own [`CallError`](crate::CallError)s, among them
    /// [`CallError::Bincode`](crate::CallError::Bincode) when the node the
    /// bytes were forwarded to refused them.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use msa_runtime::{codec, Metadata, Node};
    /// let node = Node::builder().arbiters(1).start()?;
    /// node.spawn(msa_runtime::ServiceSpec::new("echo", || Echo).handles::<Say>()).await?;
    /// let bytes = codec::encode(&Say { text: "hi".into() })?;
    /// let reply = node
    ///     .call_bincode("echo", "doc.Say", &bytes, Metadata::new(), None)?
    ///     .await?;
    /// assert_eq!(codec::decode::<String>(&reply)?, "hi");
    /// # node.shutdown(std::time::Duration::from_secs(1)).await?;
    /// # Ok(()) }
    /// # use msa_runtime::prelude::*;
    /// # #[derive(actix::Message, serde::Serialize, serde::Deserialize, RemoteMessage)]
    /// # #[rtype(result = "String")]
    /// # #[msa(name = "doc.Say")]
    /// # struct Say { text: String }
    /// # struct Echo;
    /// # impl Service for Echo {}
    /// # impl Handler<Say> for Echo {
    /// #     fn handle(&mut self, m: Say, _: &mut ServiceContext<'_, Self>) -> Reply<Self, String> { Reply::ready(m.text) }
    /// # }
    /// ```
    pub fn call_bincode(
        &self,
        service: &str,
        message: &str,
        body: &[u8],
        meta: Metadata,
        timeout: Option<Duration>,
    ) -> Result<JsonReply, BincodeError> {
        let shared = self.shared();
        let entry = match self.entry_by_name(service) {
            Ok(entry) => entry,
            Err(err) => return Ok(failed(err)),
        };
        // Decoded here when an instance on this node handles the message ...
        if let Some(serve) = crate::service::bincode_server(&entry, message) {
            let svc = crate::service::ServiceRef::with_entry(shared.clone(), entry.clone());
            return serve(svc, body, meta, timeout);
        }
        // ... else forwarded, undecoded, to a node that hosts it.
        let timeout = timeout.unwrap_or(shared.default_timeout);
        if let Some(forwarded) = crate::remote::json_forward::forward_bincode(
            shared.remote.as_ref(),
            &entry,
            message,
            body,
            &meta,
            timeout,
        ) {
            return Ok(forwarded);
        }
        match self.unserved(service, message, &entry) {
            Some(err) => Ok(failed(err)),
            None => Err(BincodeError::UnknownMessage {
                message: message.to_string(),
            }),
        }
    }
}
