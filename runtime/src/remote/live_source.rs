//! What remoting needs to answer another node's `LiveRequest`: the node's
//! live report as JSON bytes. The `live` module (above remoting) owns the
//! report's types; the node installs the source when it starts.

/// Makes this node's live report for another node (docs/live-view.md).
pub(crate) trait LiveSource: Send + Sync + std::fmt::Debug {
    /// The report for `query` (a `LiveQuery` in JSON; malformed reads as
    /// the default), encoded as JSON in at most `max_bytes` bytes (spans
    /// are left out, oldest first, to fit).
    fn live_json(&self, query: &[u8], max_bytes: usize) -> Vec<u8>;
}
