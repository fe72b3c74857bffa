//! The rejoin check of a self-downed node (`may_rejoin`).

use super::*;

/// Seen in `split_brain::a_partial_cut_downs_exactly_its_...` (1 run in
/// ~14): a downed itself as an end of the cut a ⇄ c; c downed itself too
/// and renewed its identity, so a's membership held c down for a moment
/// and a's judge stopped observing it: a's view was a clean 2 | 1 (a, b
/// against c) that a wins, and a came back while the cut lasted. Now a
/// comes back only once it has heard, since it downed itself, from every
/// member it finds reachable or still judges silent.
#[test]
fn a_self_downed_end_comes_back_only_once_it_heard_from_the_members_it_found_silent() {
    let t0 = Instant::now();
    let s = |x: u64| t0 + Duration::from_millis(x);
    let mut a = SplitBrainResolver::new("a", SplitBrainConfig::default());
    let held_down = view(&[("a", true), ("b", true), ("c", false)]);
    let c_silent: BTreeSet<String> = ["c".to_string()].into();
    let b_heard: BTreeSet<String> = ["b".to_string()].into();
    let both_heard: BTreeSet<String> = ["b".to_string(), "c".to_string()].into();
    // The old check (someone reachable, not `DownSelf` over the view)
    // passes on this view.
    assert_ne!(
        decide_with_pairs(&MAJ, "a", &held_down, &pairs(&["c>a"])),
        SbrDecision::DownSelf
    );
    assert!(!a.may_rejoin(&held_down, &pairs(&["c>a"]), &c_silent, &b_heard, s(0)));
    // c back alive through b (SWIM), its report missing a for a moment:
    // reachable in the view, but not heard here since the self-down.
    let through_b = view(&[("a", true), ("b", true), ("c", true)]);
    assert!(!a.may_rejoin(&through_b, &[], &c_silent, &b_heard, s(1_000)));
    // Healed: c heard again.
    assert!(a.may_rejoin(&through_b, &[], &BTreeSet::new(), &both_heard, s(2_000)));
    // Nobody reachable: not back.
    let alone = view(&[("a", true), ("b", false), ("c", false)]);
    assert!(!a.may_rejoin(&alone, &[], &BTreeSet::new(), &both_heard, s(3_000)));
}

/// Seed 100971 of `msa sim`: a node downed the ends of a partial cut on a
/// stale view, then downed itself against them (unconfirmed, they count
/// as the other side); its rejoin check did not count them, so it came
/// back inside the partition as soon as they were out of its view. Now
/// they count there too, until confirmed or expired.
#[test]
fn a_node_downed_against_unconfirmed_members_does_not_come_back_while_they_count() {
    let t0 = Instant::now();
    let s = |x: u64| t0 + Duration::from_millis(x);
    let cfg = SplitBrainConfig::default();
    let mut b = SplitBrainResolver::new("b", cfg);
    let all = view(&[("a", true), ("b", true), ("c", true), ("d", true)]);
    let cut = pairs(&["a>c", "c>a"]);
    assert_eq!(b.step_with_pairs(&all, &cut, s(0)), None);
    assert_eq!(
        b.step_with_pairs(&all, &cut, s(5_000)),
        Some(down(&["a", "c"]))
    );
    // A partition then leaves b with d against a, c (unconfirmed) and e:
    // b and d lose 2 | 3 (b downs itself).
    let bd = view(&[("b", true), ("d", true), ("e", false)]);
    let heard: BTreeSet<String> = ["d".to_string()].into();
    let none = BTreeSet::new();
    // Not back while a and c count, though b and d win 2 | 1 over the view.
    assert!(!b.may_rejoin(&bd, &[], &none, &heard, s(6_000)));
    // Confirmed (they know they were downed): back.
    b.confirm("a");
    b.confirm("c");
    assert!(b.may_rejoin(&bd, &[], &none, &heard, s(7_000)));
}
