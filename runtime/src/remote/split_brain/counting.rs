//! How the resolver's drivers count a member: reachable or not from this
//! node's side (issue 10's late self-downs).

/// How a driver of the resolver counts a member it knows of (both drivers:
/// the runtime's, `remote/remoting/split_brain.rs`, and the simulation's,
/// `sim/sbr.rs`): reachable or not, from this node's side.
///
/// * `status`: what membership (foca) holds of it (`alive`, `suspect`,
///   `down`, or `None`: not listed at that incarnation);
/// * `judged_silent`: this node's reachability judge finds it silent;
/// * `silent_to_side`: and so does every other member this node reaches
///   (`Reachability::silent_to_side`);
/// * `connected`: a connection to it is up (a member foca has not reported
///   yet counts by it).
///
/// A member foca holds **alive** is unreachable once it is silent to this
/// whole side: the other side of a clean partition is counted within the
/// judge's bound (and a gossip round) of the cut, all at once. Waiting for
/// foca to suspect each one restarted the stable-after timer once per
/// member, since a node alone suspects the others one probe at a time: the
/// minority downed itself 7–10 s after the cut while the majority had
/// downed it at about 1.5 s + `stable_after` (issue 10, `msa sim` seeds
/// 104023, 104548, 104854, 398 `--nodes 7`). A member only this node finds
/// silent while another member of its side reaches it (a partial cut, SWIM
/// keeping it alive through that member) stays reachable: the partial cut
/// is resolved through the unreachable pairs ([`decide_with_pairs`](super::decide_with_pairs)), and
/// counting it here would have both ends down each other. A **suspect**
/// member is unreachable once the judge finds it silent; any other (down,
/// or not listed) once it is not connected or silent.
pub(crate) fn counts_reachable(
    status: Option<&str>,
    judged_silent: bool,
    silent_to_side: bool,
    connected: bool,
) -> bool {
    match status {
        Some("alive") => !(judged_silent && silent_to_side),
        Some("suspect") => !judged_silent,
        _ => connected && !judged_silent,
    }
}
