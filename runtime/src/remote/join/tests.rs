use super::*;

fn seen(names: &[(&str, u64)]) -> Vec<Seen> {
    names.iter().map(|(n, i)| (n.to_string(), *i)).collect()
}

/// Admissions of round 0.
fn admits(names: &[(&str, u64)]) -> Vec<Admit> {
    names.iter().map(|(n, i)| (n.to_string(), *i, 0)).collect()
}

fn state(
    node: &str,
    incarnation: u64,
    seq: u64,
    phase: JoinPhase,
    admitted: &[(&str, u64)],
) -> JoinState {
    JoinState {
        node: node.into(),
        incarnation,
        seq,
        phase,
        round: 0,
        admits: admits(admitted),
        downs: vec![],
    }
}

#[test]
fn a_node_without_seeds_founds_the_cluster_and_one_with_seeds_joins() {
    let t0 = Instant::now();
    assert!(JoinGate::new("a", 1, t0, false).is_up());
    let b = JoinGate::new("b", 1, t0, true);
    assert_eq!(b.phase(), JoinPhase::Joining);
    assert_eq!(b.phase().name(), "joining");
}

#[test]
fn a_joining_node_is_up_once_every_member_it_sees_admits_it() {
    let t0 = Instant::now();
    let mut c = JoinGate::new("c", 2, t0, true);
    let others = seen(&[("a", 1), ("b", 1)]);
    // Not heard from anyone yet: joining.
    assert_eq!(c.step(t0, &others, true, false, None).up, None);
    c.on_state(state("a", 1, 5, JoinPhase::Up, &[("c", 2)]));
    // b is up and does not admit c (it cannot reach someone): joining.
    c.on_state(state("b", 1, 3, JoinPhase::Up, &[]));
    assert_eq!(c.step(t0, &others, true, false, None).up, None);
    // An admission of an older incarnation of c does not count.
    c.on_state(state("b", 1, 4, JoinPhase::Up, &[("c", 1)]));
    assert_eq!(c.step(t0, &others, true, false, None).up, None);
    assert!(!c.is_up());
    c.on_state(state("b", 1, 5, JoinPhase::Up, &[("c", 2)]));
    let step = c.step(t0, &others, true, false, None);
    assert_eq!(step.up, Some(false));
    assert!(c.is_up());
    assert_eq!(step.publish.map(|s| s.phase), Some(JoinPhase::Up));
}

#[test]
fn a_stale_state_is_ignored_and_joining_or_downed_members_need_not_admit() {
    let t0 = Instant::now();
    let mut d = JoinGate::new("d", 1, t0, true);
    d.on_state(state("a", 1, 5, JoinPhase::Up, &[("d", 1)]));
    d.on_state(state("a", 1, 4, JoinPhase::Up, &[]));
    d.on_state(state("b", 3, 1, JoinPhase::Joining, &[]));
    d.on_state(state("c", 1, 9, JoinPhase::Down, &[]));
    let others = seen(&[("a", 1), ("b", 3), ("c", 1)]);
    assert_eq!(d.step(t0, &others, true, false, None).up, Some(false));
}

#[test]
fn an_up_member_admits_joining_members_only_while_converged() {
    let t0 = Instant::now();
    let mut a = JoinGate::new("a", 1, t0, false);
    a.on_state(state("b", 1, 1, JoinPhase::Up, &[]));
    a.on_state(state("c", 2, 1, JoinPhase::Joining, &[]));
    let others = seen(&[("b", 1), ("c", 2)]);
    let s = a.step(t0, &others, true, false, None).publish.unwrap();
    assert_eq!(s.admits, admits(&[("c", 2)]));
    // Someone unreachable: the admission is withdrawn.
    let s = a.step(t0, &others, false, false, None).publish.unwrap();
    assert!(s.admits.is_empty());
    // Downed by the resolver: admits nobody, and says so.
    let s = a.step(t0, &others, true, true, None).publish.unwrap();
    assert_eq!(s.phase, JoinPhase::Down);
    assert!(s.admits.is_empty());
    // Back after the heal: it joins again, in a new round, and an
    // admission of its first round no longer counts.
    let s = a.step(t0, &others, true, false, None).publish.unwrap();
    assert_eq!((s.phase, s.round), (JoinPhase::Joining, 1));
    assert!(s.admits.is_empty());
    // The founder that comes back is not up alone at once.
    assert_eq!(a.step(t0, &[], true, false, None).up, None);
    a.on_state(state("b", 1, 2, JoinPhase::Up, &[("a", 1)]));
    a.on_state(state("c", 2, 2, JoinPhase::Up, &[("a", 1)]));
    assert_eq!(a.step(t0, &others, true, false, None).up, None);
    let mut again = state("b", 1, 3, JoinPhase::Up, &[]);
    again.admits = vec![("a".into(), 1, 1)];
    a.on_state(again);
    let mut again = state("c", 2, 3, JoinPhase::Up, &[]);
    again.admits = vec![("a".into(), 1, 1)];
    a.on_state(again);
    assert_eq!(a.step(t0, &others, true, false, None).up, Some(false));
}

#[test]
fn a_joining_node_never_admits_and_a_node_that_only_joins_is_not_downed() {
    let t0 = Instant::now();
    let mut c = JoinGate::new("c", 1, t0, true);
    let s = c
        .step(t0, &seen(&[("a", 1)]), true, true, None)
        .publish
        .unwrap();
    assert_eq!(s.phase, JoinPhase::Joining);
    assert!(s.admits.is_empty());
}

#[test]
fn a_node_alone_is_up_after_the_bound_unless_a_seed_dial_hangs() {
    let t0 = Instant::now();
    let later = t0 + JOIN_ALONE_AFTER;
    let mut a = JoinGate::new("a", 1, t0, true);
    a.set_first_seed(true);
    assert_eq!(a.step(t0, &[], true, false, None).up, None);
    // A dial to a seed hung a second ago (a cut): still joining.
    let hung_at = later - Duration::from_secs(1);
    let hung = Some(hung_at);
    assert_eq!(a.step(later, &[], true, false, hung).up, None);
    assert_eq!(
        a.step(hung_at + JOIN_ALONE_AFTER, &[], true, false, hung)
            .up,
        Some(true)
    );
}

#[test]
fn joining_nodes_with_nobody_up_form_around_their_first_seed() {
    let t0 = Instant::now();
    let later = t0 + JOIN_ALONE_AFTER;
    let mut a = JoinGate::new("a", 1, t0, true);
    let mut b = JoinGate::new("b", 1, t0, true);
    // Both share the seed list a, b: a is its first seed.
    a.set_first_seed(true);
    a.on_state(state("b", 1, 0, JoinPhase::Joining, &[]));
    b.on_state(state("a", 1, 0, JoinPhase::Joining, &[]));
    assert_eq!(
        b.step(later, &seen(&[("a", 1)]), true, false, None).up,
        None
    );
    let sa = a.step(later, &seen(&[("b", 1)]), true, false, None);
    assert_eq!(sa.up, Some(true));
    // Up, a admits b at once: b is up as soon as it hears so.
    assert_eq!(sa.publish.map(|s| s.admits), Some(admits(&[("b", 1)])));
    b.on_state(a.state());
    assert_eq!(
        b.step(later, &seen(&[("a", 1)]), true, false, None).up,
        Some(false)
    );
    // A member not heard from keeps a node joining, alone rule or not.
    let mut c = JoinGate::new("c", 1, t0, true);
    assert_eq!(
        c.step(later, &seen(&[("z", 1)]), true, false, None).up,
        None
    );
}

/// Seed 101624 of `msa sim`: a node restarted into a partition, with no
/// seed dial hanging (a crashed seed refuses), saw nobody to admit it and
/// was `up` alone beside the live cluster: every key had two owners. Only the first seed (or a node
/// without seeds, downed and back) may be `up` with no member to admit it;
/// any other node joins however long it takes, and is `up` once admitted.
#[test]
fn only_the_first_seed_is_up_alone_and_any_other_node_keeps_joining() {
    let t0 = Instant::now();
    let much_later = t0 + JOIN_ALONE_AFTER * 100;
    let mut b = JoinGate::new("b", 2, t0, true);
    // Nobody seen, no dial hanging (the seeds refuse): still joining.
    assert_eq!(b.step(much_later, &[], true, false, None).up, None);
    // Nor with a joining node of a higher name beside it.
    b.on_state(state("c", 2, 0, JoinPhase::Joining, &[]));
    let c = seen(&[("c", 2)]);
    assert_eq!(b.step(much_later, &c, true, false, None).up, None);
    assert_eq!(b.phase(), JoinPhase::Joining);
    // Once a member admits it, it is up.
    b.on_state(state("a", 3, 1, JoinPhase::Up, &[("b", 2)]));
    let ac = seen(&[("a", 3), ("c", 2)]);
    assert_eq!(b.step(much_later, &ac, true, false, None).up, Some(false));
    // The same node as the first of its seeds founds the cluster, even
    // beside a joining node of a lower name (not a first seed: on
    // Kubernetes the first seed is the pod whose IP sorts first).
    let mut first = JoinGate::new("b", 2, t0, true);
    first.set_first_seed(true);
    first.on_state(state("a", 1, 0, JoinPhase::Joining, &[]));
    let a = seen(&[("a", 1)]);
    assert_eq!(first.step(much_later, &a, true, false, None).up, Some(true));
    // The founder (no seeds), downed and back after the heal, may found
    // the cluster again after the bound (every other member is gone).
    let mut a = JoinGate::new("a", 1, t0, false);
    a.set_first_seed(false);
    a.step(t0, &[], true, true, None);
    assert_eq!(a.step(t0, &[], true, false, None).up, None);
    assert_eq!(a.phase(), JoinPhase::Joining);
    let back = t0 + JOIN_ALONE_AFTER;
    assert_eq!(a.step(back, &[], true, false, None).up, Some(true));
}

/// Seed 778 of `msa sim`: a partition cuts `a` off from `b` just before a
/// joining `c` shows up at `b`. `b`'s judge has not found `a` silent yet
/// (it needs its bound of silence), so its view still looks converged; an
/// admission then would count `c` on `b`'s side while `a`, which never saw
/// `c` back, does not count it: both sides would win. The admission waits
/// until `b` has heard from `a` since it first saw `c` joining.
#[test]
fn an_admission_waits_for_news_from_every_member_since_the_joiner_appeared() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let mut b = JoinGate::new("b", 1, t0, false);
    b.on_state(state("a", 1, 1, JoinPhase::Up, &[]));
    let members = seen(&[("a", 1)]);
    b.heard_from("a", t0);
    b.step(t0, &members, true, false, None);
    // The cut: nothing from `a` after t0. `c` (joining) appears at +10 ms.
    b.on_state(state("c", 1, 1, JoinPhase::Joining, &[]));
    b.heard_from("c", t0 + ms(10));
    let with_c = seen(&[("a", 1), ("c", 1)]);
    for at in [10, 260, 510, 760, 1010, 1260] {
        let s = b.step(t0 + ms(at), &with_c, true, false, None);
        assert!(b.state().admits.is_empty(), "admitted at +{at} ms: {s:?}");
    }
    // News from `a` that left it before `c` appeared does not count either.
    b.heard_from("a", t0 + ms(5));
    b.step(t0 + ms(1300), &with_c, true, false, None);
    assert!(b.state().admits.is_empty());
    // Once `a` is heard again (no cut after all, or the heal), `c` is in.
    b.heard_from("a", t0 + ms(1400));
    b.step(t0 + ms(1500), &with_c, true, false, None);
    assert_eq!(b.state().admits, admits(&[("c", 1)]));
    // A joiner seen anew (restarted: a new incarnation) waits again.
    b.on_state(state("c", 2, 1, JoinPhase::Joining, &[]));
    let with_c2 = seen(&[("a", 1), ("c", 2)]);
    b.step(t0 + ms(1600), &with_c2, true, false, None);
    assert!(b.state().admits.is_empty());
    b.heard_from("a", t0 + ms(1700));
    b.step(t0 + ms(1750), &with_c2, true, false, None);
    assert_eq!(b.state().admits, admits(&[("c", 2)]));
}

/// Seed 553 of `msa sim`: a member the resolver downed does not count on
/// the side that reaches it (the other side, which had downed it, does not
/// count it at all); like a joining member it counts only as unreachable.
#[test]
fn a_downed_member_does_not_count_on_its_own_side() {
    let t0 = Instant::now();
    let mut a = JoinGate::new("a", 1, t0, false);
    a.on_state(state("b", 1, 1, JoinPhase::Up, &[]));
    a.on_state(state("c", 1, 1, JoinPhase::Down, &[]));
    a.on_state(state("d", 1, 1, JoinPhase::Joining, &[]));
    assert!(a.counts("b", 1));
    assert!(!a.counts("c", 1));
    assert!(!a.counts("d", 1));
    assert!(!a.counts("e", 1));
}

/// Seed 329 of `msa sim`: a member downed by another node's resolver (its
/// own timer had not run out) must not come back `Up` at once. The downer
/// gossips whom it downed and stops counting it; the downed node goes
/// `Down` (its driver downs itself) and, once its own rejoin check passes,
/// joins again in a new round; once admitted there it counts again.
#[test]
fn a_member_downed_by_another_nodes_resolver_goes_down_then_joins_again_in_a_new_round() {
    let t0 = Instant::now();
    let others = seen(&[("a", 1), ("b", 1)]);
    // b is up and counts a.
    let mut b = JoinGate::new("b", 1, t0, false);
    b.on_state(state("a", 1, 0, JoinPhase::Up, &[]));
    assert!(b.counts("a", 1));
    // b's resolver downs a: a no longer counts there, and b gossips it.
    b.downed("a", 1);
    assert!(!b.counts("a", 1));
    // Its tables are not applied at that incarnation (a restarted a is
    // another matter).
    assert!(b.downed_at("a", 1));
    assert!(!b.downed_at("a", 2));
    assert!(!b.downed_at("c", 1));
    let published = b.step(t0, &seen(&[("a", 1)]), true, false, None).publish;
    let b_state = published.expect("b gossips whom it downed");
    assert_eq!(b_state.downs, vec![("a".to_string(), 1, 0)]);
    // a hears it: down, in the same round (no new round yet, so b, which
    // sees a joining only in a later round, cannot admit it back).
    let mut a = JoinGate::new("a", 1, t0, false);
    assert!(a.is_up());
    a.on_state(b_state.clone());
    let step = a.step(t0, &others, true, false, None);
    assert_eq!(step.downed_by.as_deref(), Some("b"));
    assert_eq!(a.phase(), JoinPhase::Down);
    assert!(!a.is_up());
    let a_down = step.publish.expect("a gossips that it is down");
    assert_eq!((a_down.phase, a_down.round), (JoinPhase::Down, 0));
    // Its driver downs itself: it stays down while downed, whatever it
    // hears again.
    a.on_state(b_state.clone());
    assert_eq!(a.step(t0, &others, true, true, None).downed_by, None);
    assert_eq!(a.phase(), JoinPhase::Down);
    // b hears that a is down: still downed there, tables still ignored.
    b.on_state(a_down);
    b.step(t0, &seen(&[("a", 1)]), true, false, None);
    assert!(b.downed_at("a", 1));
    assert!(b.knows_it_was_downed("a", 1));
    // a's own rejoin check passes: joining, in round 1.
    let step = a.step(t0, &others, true, false, None);
    assert_eq!(step.downed_by, None);
    assert_eq!(a.phase(), JoinPhase::Joining);
    let a_state = step.publish.expect("a gossips its new round");
    assert_eq!((a_state.phase, a_state.round), (JoinPhase::Joining, 1));
    // The same gossip again does not down it again (b's down was of round 0).
    a.on_state(b_state);
    assert_eq!(a.step(t0, &others, true, false, None).downed_by, None);
    assert_eq!(a.state().round, 1);
    // b hears the new round: forgets its down, still does not count a
    // (joining), admits it; a up in round 1 counts again.
    b.on_state(a_state);
    let s = b.step(t0, &seen(&[("a", 1)]), true, false, None);
    assert!(b.state().downs.is_empty(), "{s:?}");
    assert!(!b.downed_at("a", 1), "back in a later round: tables apply");
    assert!(!b.counts("a", 1));
    b.on_state(JoinState {
        round: 1,
        ..state("a", 1, 9, JoinPhase::Up, &[])
    });
    assert!(b.counts("a", 1));
}

/// A node downed by its own resolver does not start a round on hearing
/// that another downed it too: it joins again when it comes back.
#[test]
fn a_self_downed_node_ignores_being_downed_by_others_until_it_comes_back() {
    let t0 = Instant::now();
    let others = seen(&[("b", 1)]);
    let mut a = JoinGate::new("a", 1, t0, false);
    a.step(t0, &others, true, true, None);
    assert_eq!(a.phase(), JoinPhase::Down);
    a.on_state(JoinState {
        downs: vec![("a".into(), 1, 0)],
        ..state("b", 1, 2, JoinPhase::Up, &[])
    });
    assert_eq!(a.step(t0, &others, true, true, None).downed_by, None);
    assert_eq!(a.phase(), JoinPhase::Down);
    // Back: round 1, and b's down (of round 0) no longer applies.
    a.step(t0, &others, true, false, None);
    assert_eq!((a.phase(), a.state().round), (JoinPhase::Joining, 1));
    assert_eq!(a.step(t0, &others, true, false, None).downed_by, None);
}
