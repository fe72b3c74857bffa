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
fn joining_nodes_with_nobody_up_form_around_the_lowest_name() {
    let t0 = Instant::now();
    let later = t0 + JOIN_ALONE_AFTER;
    let mut a = JoinGate::new("a", 1, t0, true);
    let mut b = JoinGate::new("b", 1, t0, true);
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
