use super::*;

fn m(name: &str, address: &str, age: u64, reachable: bool) -> SbrMember {
    SbrMember {
        name: name.into(),
        address: address.into(),
        age,
        reachable,
    }
}

/// Members a, b, c, … on 127.0.0.1:7001, 7002, … (a oldest), reachable as
/// given.
fn view(reach: &[(&str, bool)]) -> Vec<SbrMember> {
    reach
        .iter()
        .enumerate()
        .map(|(i, (n, r))| m(n, &format!("127.0.0.1:{}", 7001 + i), 100 + i as u64, *r))
        .collect()
}

fn down(names: &[&str]) -> SbrDecision {
    SbrDecision::DownUnreachable(names.iter().map(|s| s.to_string()).collect())
}

const MAJ: SplitBrainStrategy = SplitBrainStrategy::KeepMajority;
const OLD: SplitBrainStrategy = SplitBrainStrategy::KeepOldest;

#[test]
fn keep_majority_majority_downs_the_minority_and_minority_downs_itself() {
    // a, b | c as seen from a (and b), and from c.
    let from_a = view(&[("a", true), ("b", true), ("c", false)]);
    let from_c = view(&[("a", false), ("b", false), ("c", true)]);
    assert_eq!(decide(&MAJ, "a", &from_a), down(&["c"]));
    assert_eq!(decide(&MAJ, "b", &from_a), down(&["c"]));
    assert_eq!(decide(&MAJ, "c", &from_c), SbrDecision::DownSelf);
}

#[test]
fn keep_majority_tie_goes_to_the_side_with_the_lowest_address() {
    // a (7001), b (7002) | c (7003), d (7004): a's side holds the lowest.
    let ab = view(&[("a", true), ("b", true), ("c", false), ("d", false)]);
    let cd = view(&[("a", false), ("b", false), ("c", true), ("d", true)]);
    assert_eq!(decide(&MAJ, "a", &ab), down(&["c", "d"]));
    assert_eq!(decide(&MAJ, "d", &cd), SbrDecision::DownSelf);
    // 1 | 1.
    let a = view(&[("a", true), ("b", false)]);
    let b = view(&[("a", false), ("b", true)]);
    assert_eq!(decide(&MAJ, "a", &a), down(&["b"]));
    assert_eq!(decide(&MAJ, "b", &b), SbrDecision::DownSelf);
}

#[test]
fn addresses_compare_as_socket_addresses_not_as_text() {
    // As text "127.0.0.1:10" < "127.0.0.1:9"; as addresses port 9 is lower.
    let from_x = vec![
        m("x", "127.0.0.1:9", 1, true),
        m("y", "127.0.0.1:10", 1, false),
    ];
    let from_y = vec![
        m("x", "127.0.0.1:9", 1, false),
        m("y", "127.0.0.1:10", 1, true),
    ];
    assert_eq!(decide(&MAJ, "x", &from_x), down(&["y"]));
    assert_eq!(decide(&MAJ, "y", &from_y), SbrDecision::DownSelf);
    // Names that are not socket addresses (the memory network) as text,
    // after every socket address.
    assert_eq!(address_order("node-a:0", "node-b:0"), Ordering::Less);
    assert_eq!(address_order("10.0.0.1:1", "a:1"), Ordering::Less);
    assert_eq!(address_order("[::1]:5", "[::1]:40"), Ordering::Less);
}

#[test]
fn nothing_unreachable_off_or_unknown_me_is_no_action() {
    let all = view(&[("a", true), ("b", true)]);
    assert_eq!(decide(&MAJ, "a", &all), SbrDecision::NoAction);
    let cut = view(&[("a", true), ("b", false), ("c", false)]);
    assert_eq!(
        decide(&SplitBrainStrategy::Off, "a", &cut),
        SbrDecision::NoAction
    );
    assert_eq!(decide(&MAJ, "zz", &cut), SbrDecision::NoAction);
    // `me` marked unreachable in its own view still counts on its side.
    let odd = vec![m("a", "a:1", 1, false), m("b", "b:1", 2, false)];
    assert_eq!(decide(&MAJ, "a", &odd), down(&["b"]));
}

#[test]
fn static_quorum_keeps_sides_at_or_above_the_quorum_and_downs_those_below() {
    let q2 = SplitBrainStrategy::StaticQuorum { quorum_size: 2 };
    let from_a = view(&[("a", true), ("b", true), ("c", false)]);
    let from_c = view(&[("a", false), ("b", false), ("c", true)]);
    assert_eq!(decide(&q2, "a", &from_a), down(&["c"]));
    assert_eq!(decide(&q2, "c", &from_c), SbrDecision::DownSelf);
    // Both below the quorum: both down themselves (no tie-break).
    let q3 = SplitBrainStrategy::StaticQuorum { quorum_size: 3 };
    let ab = view(&[("a", true), ("b", true), ("c", false), ("d", false)]);
    let cd = view(&[("a", false), ("b", false), ("c", true), ("d", true)]);
    assert_eq!(decide(&q3, "a", &ab), SbrDecision::DownSelf);
    assert_eq!(decide(&q3, "c", &cd), SbrDecision::DownSelf);
    // A crash of two of five with quorum 3: the three stay.
    let five = view(&[
        ("a", true),
        ("b", true),
        ("c", true),
        ("d", false),
        ("e", false),
    ]);
    assert_eq!(decide(&q3, "b", &five), down(&["d", "e"]));
}

#[test]
fn keep_oldest_keeps_the_side_of_the_oldest_member() {
    // a is oldest (age 100). a, b | c, d: a's side survives though the
    // sides are equal; and a, b | c, d, e: a's side survives though smaller.
    let ab = view(&[
        ("a", true),
        ("b", true),
        ("c", false),
        ("d", false),
        ("e", false),
    ]);
    let cde = view(&[
        ("a", false),
        ("b", false),
        ("c", true),
        ("d", true),
        ("e", true),
    ]);
    assert_eq!(decide(&OLD, "b", &ab), down(&["c", "d", "e"]));
    assert_eq!(decide(&OLD, "e", &cde), SbrDecision::DownSelf);
    // Age decides, not the address: c is oldest here.
    let mut v = view(&[("a", false), ("b", false), ("c", true), ("d", true)]);
    v[2].age = 1;
    assert_eq!(decide(&OLD, "d", &v), down(&["a", "b"]));
}

#[test]
fn keep_oldest_downs_the_oldest_when_it_is_alone_against_two_or_more() {
    // a (oldest) | b, c: a downs itself, b and c down a.
    let from_a = view(&[("a", true), ("b", false), ("c", false)]);
    let from_b = view(&[("a", false), ("b", true), ("c", true)]);
    assert_eq!(decide(&OLD, "a", &from_a), SbrDecision::DownSelf);
    assert_eq!(decide(&OLD, "b", &from_b), down(&["a"]));
    // 1 | 1: the oldest is kept.
    let a = view(&[("a", true), ("b", false)]);
    let b = view(&[("a", false), ("b", true)]);
    assert_eq!(decide(&OLD, "a", &a), down(&["b"]));
    assert_eq!(decide(&OLD, "b", &b), SbrDecision::DownSelf);
    // Equal ages: the lower address is the older.
    let same = vec![
        m("x", "127.0.0.1:20", 5, false),
        m("y", "127.0.0.1:10", 5, true),
    ];
    assert_eq!(decide(&OLD, "y", &same), down(&["x"]));
}

#[test]
fn the_resolver_waits_for_stable_after_and_decides_once() {
    let cfg = SplitBrainConfig::new(MAJ, Duration::from_secs(5)).unwrap();
    let mut r = SplitBrainResolver::new("c", cfg);
    let t0 = Instant::now();
    let healthy = view(&[("a", true), ("b", true), ("c", true)]);
    let cut = view(&[("a", false), ("b", false), ("c", true)]);
    assert_eq!(r.step(&healthy, t0), None);
    assert_eq!(r.step(&cut, t0 + Duration::from_secs(1)), None);
    assert_eq!(
        r.stable_for(t0 + Duration::from_secs(3)),
        Duration::from_secs(2)
    );
    assert_eq!(r.step(&cut, t0 + Duration::from_millis(5_999)), None);
    assert_eq!(
        r.step(&cut, t0 + Duration::from_secs(6)),
        Some(SbrDecision::DownSelf)
    );
    // Once per stable set.
    assert_eq!(r.step(&cut, t0 + Duration::from_secs(7)), None);
    assert_eq!(r.step(&cut, t0 + Duration::from_secs(60)), None);
    // Healed: nothing.
    assert_eq!(r.step(&healthy, t0 + Duration::from_secs(61)), None);
    assert_eq!(r.stable_for(t0 + Duration::from_secs(70)), Duration::ZERO);
}

#[test]
fn any_change_of_the_unreachable_set_restarts_the_timer() {
    let cfg = SplitBrainConfig::new(MAJ, Duration::from_secs(5)).unwrap();
    let mut r = SplitBrainResolver::new("a", cfg);
    let t0 = Instant::now();
    let one = view(&[
        ("a", true),
        ("b", true),
        ("c", false),
        ("d", true),
        ("e", true),
    ]);
    let two = view(&[
        ("a", true),
        ("b", true),
        ("c", false),
        ("d", false),
        ("e", true),
    ]);
    assert_eq!(r.step(&one, t0), None);
    // d joins the unreachable set 4 s in: the timer restarts.
    assert_eq!(r.step(&two, t0 + Duration::from_secs(4)), None);
    assert_eq!(r.step(&two, t0 + Duration::from_secs(8)), None);
    // c comes back briefly: restarts again.
    let back = view(&[
        ("a", true),
        ("b", true),
        ("c", true),
        ("d", false),
        ("e", true),
    ]);
    assert_eq!(r.step(&back, t0 + Duration::from_secs(8)), None);
    assert_eq!(r.step(&two, t0 + Duration::from_secs(9)), None);
    assert_eq!(r.step(&two, t0 + Duration::from_millis(13_999)), None);
    assert_eq!(
        r.step(&two, t0 + Duration::from_secs(14)),
        Some(down(&["c", "d"]))
    );
    // A reset (this node rejoined) forgets the decided set.
    r.reset();
    assert_eq!(r.step(&two, t0 + Duration::from_secs(15)), None);
    assert_eq!(
        r.step(&two, t0 + Duration::from_secs(20)),
        Some(down(&["c", "d"]))
    );
}

#[test]
fn the_resolver_never_acts_with_off_or_nothing_unreachable() {
    let cfg = SplitBrainConfig::new(SplitBrainStrategy::Off, Duration::from_millis(10)).unwrap();
    let mut r = SplitBrainResolver::new("a", cfg);
    let t0 = Instant::now();
    let cut = view(&[("a", true), ("b", false), ("c", false)]);
    for s in 0..10 {
        assert_eq!(r.step(&cut, t0 + Duration::from_secs(s)), None);
    }
    let mut r = SplitBrainResolver::new("a", SplitBrainConfig::default());
    let healthy = view(&[("a", true), ("b", true)]);
    for s in 0..20 {
        assert_eq!(r.step(&healthy, t0 + Duration::from_secs(s)), None);
    }
}

#[test]
fn strategies_parse_from_their_config_names() {
    assert_eq!("keep-majority".parse(), Ok(MAJ));
    assert_eq!(" keep-oldest ".parse(), Ok(OLD));
    assert_eq!("off".parse(), Ok(SplitBrainStrategy::Off));
    assert_eq!(
        "static-quorum:3".parse(),
        Ok(SplitBrainStrategy::StaticQuorum { quorum_size: 3 })
    );
    assert_eq!(
        SplitBrainStrategy::parse("static-quorum", Some(4)),
        Ok(SplitBrainStrategy::StaticQuorum { quorum_size: 4 })
    );
    assert_eq!(
        SplitBrainStrategy::parse("static-quorum:4", Some(4)),
        Ok(SplitBrainStrategy::StaticQuorum { quorum_size: 4 })
    );
    for s in [
        MAJ,
        OLD,
        SplitBrainStrategy::Off,
        SplitBrainStrategy::StaticQuorum { quorum_size: 2 },
    ] {
        assert_eq!(s.to_string().parse(), Ok(s), "{s}");
    }
}

#[test]
fn bad_strategies_and_policies_are_typed_errors() {
    use SplitBrainConfigError as E;
    assert_eq!(
        "keep-everyone".parse::<SplitBrainStrategy>(),
        Err(E::UnknownStrategy {
            given: "keep-everyone".into()
        })
    );
    assert_eq!(
        "static-quorum".parse::<SplitBrainStrategy>(),
        Err(E::MissingQuorumSize)
    );
    assert_eq!(
        "static-quorum:0".parse::<SplitBrainStrategy>(),
        Err(E::BadQuorumSize { given: "0".into() })
    );
    assert_eq!(
        "static-quorum:x".parse::<SplitBrainStrategy>(),
        Err(E::BadQuorumSize { given: "x".into() })
    );
    assert!(matches!(
        SplitBrainStrategy::parse("static-quorum:2", Some(3)),
        Err(E::BadQuorumSize { .. })
    ));
    assert_eq!(
        SplitBrainStrategy::parse("keep-oldest", Some(3)),
        Err(E::QuorumSizeWithoutStaticQuorum {
            strategy: "keep-oldest".into()
        })
    );
    assert_eq!(
        SplitBrainConfig::new(MAJ, Duration::ZERO),
        Err(E::ZeroStableAfter)
    );
    assert_eq!(
        SplitBrainConfig::new(
            SplitBrainStrategy::StaticQuorum { quorum_size: 0 },
            Duration::from_secs(1)
        ),
        Err(E::BadQuorumSize { given: "0".into() })
    );
}

#[test]
fn the_default_policy_is_keep_majority_after_5_seconds() {
    let d = SplitBrainConfig::default();
    assert_eq!(d.strategy, MAJ);
    assert_eq!(d.stable_after, Duration::from_secs(5));
    assert!(d.validate().is_ok());
}

#[test]
fn the_policy_round_trips_through_serde() {
    let c = SplitBrainConfig::new(
        SplitBrainStrategy::StaticQuorum { quorum_size: 3 },
        Duration::from_millis(1_500),
    )
    .unwrap();
    let json = serde_json::to_string(&c).unwrap();
    assert_eq!(
        json,
        r#"{"strategy":{"static-quorum":{"quorum_size":3}},"stable_after_ms":1500}"#
    );
    assert_eq!(serde_json::from_str::<SplitBrainConfig>(&json).unwrap(), c);
    assert_eq!(serde_json::to_string(&MAJ).unwrap(), r#""keep-majority""#);
}

/// Unreachable pairs `[observer, subject]` from "o>s" strings.
fn pairs(list: &[&str]) -> Vec<[String; 2]> {
    list.iter()
        .map(|p| {
            let (o, s) = p.split_once('>').unwrap();
            [o.to_string(), s.to_string()]
        })
        .collect()
}

fn ic(me: &str, members: &[SbrMember], p: &[[String; 2]]) -> Vec<String> {
    indirectly_connected(me, members, p).into_iter().collect()
}

#[test]
fn a_partial_cut_makes_its_two_ends_indirectly_connected_from_every_view() {
    // a ⇄ c cut, b reaches both; SWIM keeps everyone alive, so every node
    // lists every member reachable, and the reports travel through b.
    let all = view(&[("a", true), ("b", true), ("c", true)]);
    let p = pairs(&["a>c", "c>a"]);
    for me in ["a", "b", "c"] {
        assert_eq!(ic(me, &all, &p), ["a", "c"], "seen from {me}");
    }
    assert_eq!(
        decide_with_pairs(&MAJ, "a", &all, &p),
        SbrDecision::DownSelf
    );
    assert_eq!(
        decide_with_pairs(&MAJ, "c", &all, &p),
        SbrDecision::DownSelf
    );
    assert_eq!(decide_with_pairs(&MAJ, "b", &all, &p), down(&["a", "c"]));
    // The same under every strategy but off.
    for s in [OLD, SplitBrainStrategy::StaticQuorum { quorum_size: 2 }] {
        assert_eq!(decide_with_pairs(&s, "a", &all, &p), SbrDecision::DownSelf);
        assert_eq!(decide_with_pairs(&s, "b", &all, &p), down(&["a", "c"]));
    }
    let off = SplitBrainStrategy::Off;
    assert_eq!(
        decide_with_pairs(&off, "a", &all, &p),
        SbrDecision::NoAction
    );
    // Without pairs, as `decide`: nothing unreachable, nothing to do.
    assert_eq!(
        decide_with_pairs(&MAJ, "b", &all, &[]),
        SbrDecision::NoAction
    );
}

#[test]
fn a_clean_partition_or_a_crash_has_nobody_indirectly_connected() {
    // {a} | {b, c}: each side hears only its own side's observations.
    let bc = view(&[("a", false), ("b", true), ("c", true)]);
    let p = pairs(&["b>a", "c>a"]);
    assert!(ic("b", &bc, &p).is_empty());
    assert_eq!(decide_with_pairs(&MAJ, "b", &bc, &p), down(&["a"]));
    let a = view(&[("a", true), ("b", false), ("c", false)]);
    let p = pairs(&["a>b", "a>c"]);
    assert!(ic("a", &a, &p).is_empty());
    assert_eq!(decide_with_pairs(&MAJ, "a", &a, &p), SbrDecision::DownSelf);
    // A stale report of an observer this node cannot reach (from before
    // the partition: nothing newer crosses it) is not used, so a clean
    // partition is not mistaken for a partial cut.
    let p = pairs(&["b>a", "c>a", "a>b"]);
    assert!(ic("b", &bc, &p).is_empty());
    assert_eq!(decide_with_pairs(&MAJ, "b", &bc, &p), down(&["a"]));
    // Pairs naming a member not in the view are ignored.
    let p = pairs(&["b>z", "z>b"]);
    assert!(ic("c", &bc, &p).is_empty());
}

#[test]
fn a_partial_cut_beside_a_clean_partition_downs_both_the_cut_ends_and_the_minority() {
    // a ⇄ c cut; e cut off from everyone.
    let seen_by_b = view(&[
        ("a", true),
        ("b", true),
        ("c", true),
        ("d", true),
        ("e", false),
    ]);
    let p = pairs(&["a>c", "c>a", "a>e", "b>e", "c>e", "d>e"]);
    assert_eq!(ic("b", &seen_by_b, &p), ["a", "c"]);
    assert_eq!(
        decide_with_pairs(&MAJ, "b", &seen_by_b, &p),
        down(&["a", "c", "e"])
    );
    assert_eq!(
        decide_with_pairs(&MAJ, "a", &seen_by_b, &p),
        SbrDecision::DownSelf
    );
    // e hears nobody: its own observations only, the minority.
    let seen_by_e = view(&[
        ("a", false),
        ("b", false),
        ("c", false),
        ("d", false),
        ("e", true),
    ]);
    let p = pairs(&["e>a", "e>b", "e>c", "e>d", "a>c"]);
    assert!(ic("e", &seen_by_e, &p).is_empty());
    assert_eq!(
        decide_with_pairs(&MAJ, "e", &seen_by_e, &p),
        SbrDecision::DownSelf
    );
    // b and d alone left, e down: if the rest loses, b downs itself.
    let lone = view(&[
        ("a", true),
        ("b", true),
        ("c", true),
        ("d", false),
        ("e", false),
    ]);
    let p = pairs(&["a>c", "c>a", "b>d", "b>e"]);
    assert_eq!(
        decide_with_pairs(&MAJ, "b", &lone, &p),
        SbrDecision::DownSelf
    );
}

#[test]
fn the_resolver_acts_on_a_partial_cut_once_it_was_stable_for_stable_after() {
    let t0 = Instant::now();
    let s = |x: u64| t0 + Duration::from_millis(x);
    let all = view(&[("a", true), ("b", true), ("c", true)]);
    let mut b = SplitBrainResolver::new("b", SplitBrainConfig::default());
    let one = pairs(&["a>c"]);
    let both = pairs(&["a>c", "c>a"]);
    // One report only: a one-way observation, nobody indirectly connected.
    assert_eq!(b.step_with_pairs(&all, &one, s(0)), None);
    assert_eq!(b.step_with_pairs(&all, &one, s(6_000)), None);
    // Both: the timer starts when the set of indirectly connected appears.
    assert_eq!(b.step_with_pairs(&all, &both, s(6_500)), None);
    assert_eq!(b.stable_for(s(7_500)), Duration::from_secs(1));
    assert_eq!(b.step_with_pairs(&all, &both, s(11_000)), None);
    assert_eq!(
        b.step_with_pairs(&all, &both, s(11_500)),
        Some(down(&["a", "c"]))
    );
    // Once per stable set.
    assert_eq!(b.step_with_pairs(&all, &both, s(20_000)), None);
    // The cut heals: nothing; a new cut starts a new timer.
    assert_eq!(b.step_with_pairs(&all, &[], s(21_000)), None);
    assert_eq!(b.stable_for(s(21_500)), Duration::ZERO);
    assert_eq!(b.step_with_pairs(&all, &both, s(22_000)), None);
    assert_eq!(b.step_with_pairs(&all, &both, s(26_999)), None);
    assert_eq!(
        b.step_with_pairs(&all, &both, s(27_000)),
        Some(down(&["a", "c"]))
    );
    // An end of the cut downs itself, after the same timer.
    let mut a = SplitBrainResolver::new("a", SplitBrainConfig::default());
    assert_eq!(a.step_with_pairs(&all, &both, s(0)), None);
    assert_eq!(
        a.step_with_pairs(&all, &both, s(5_000)),
        Some(SbrDecision::DownSelf)
    );
}

/// Seed 100902 (6 nodes): in a 3 | 3 partition, e (with d and f) finds a,
/// b, c unreachable; a stale report of d's (`d>f`) makes f indirectly
/// connected. f then downs itself and leaves e's view: the indirectly
/// connected set shrinks, and the timer must not start again (it did,
/// deciding 10.8 s after the cut, while the other side served).
#[test]
fn a_member_that_stops_being_indirectly_connected_does_not_restart_the_timer() {
    let t0 = Instant::now();
    let s = |x: u64| t0 + Duration::from_millis(x);
    let with_f = view(&[
        ("a", false),
        ("b", false),
        ("c", false),
        ("d", true),
        ("e", true),
        ("f", true),
    ]);
    let stale = pairs(&["d>f", "f>a", "f>b", "f>c", "e>a", "e>b", "e>c"]);
    assert_eq!(ic("e", &with_f, &stale), ["f"]);
    let mut e = SplitBrainResolver::new("e", SplitBrainConfig::default());
    assert_eq!(e.step_with_pairs(&with_f, &stale, s(0)), None);
    // f downed itself: gone from the view, its reports no longer used.
    let without_f: Vec<SbrMember> = with_f.iter().filter(|m| m.name != "f").cloned().collect();
    let fresh = pairs(&["e>a", "e>b", "e>c"]);
    assert_eq!(e.step_with_pairs(&without_f, &fresh, s(3_000)), None);
    assert_eq!(e.stable_for(s(4_000)), Duration::from_secs(4));
    // d, e against a, b, c: this side loses, stable_after after the cut.
    assert_eq!(
        e.step_with_pairs(&without_f, &fresh, s(5_000)),
        Some(SbrDecision::DownSelf)
    );
    // A member newly indirectly connected still restarts it.
    let mut b = SplitBrainResolver::new("e", SplitBrainConfig::default());
    assert_eq!(b.step_with_pairs(&without_f, &fresh, s(0)), None);
    assert_eq!(b.step_with_pairs(&with_f, &stale, s(3_000)), None);
    assert_eq!(b.stable_for(s(4_000)), Duration::from_secs(1));
    // (This side lost over both views, so it downs itself stable_after
    // after the first all the same:
    // `a_node_that_lost_over_every_view_for_stable_after_downs_itself`.)
    assert_eq!(
        b.step_with_pairs(&with_f, &stale, s(5_000)),
        Some(SbrDecision::DownSelf)
    );
}

/// Seed 103801 (3 nodes): b sees the partial cut a ⇄ c and, after
/// `stable_after`, downs both ends; but a partition had isolated b just
/// before (not yet judged). a and c never hear of the downs, and later down
/// b as the majority. b, alone, must not keep serving on that stale
/// decision: a and c count as unreachable until confirmed gone, so b decides
/// again and downs itself; confirmed, they no longer count.
#[test]
fn members_downed_on_a_stale_view_count_until_confirmed_gone() {
    let t0 = Instant::now();
    let s = |x: u64| t0 + Duration::from_millis(x);
    let all = view(&[("a", true), ("b", true), ("c", true)]);
    let cut = pairs(&["a>c", "c>a"]);
    let alone = view(&[("b", true)]);
    let mut b = SplitBrainResolver::new("b", SplitBrainConfig::default());
    assert_eq!(b.step_with_pairs(&all, &cut, s(0)), None);
    assert_eq!(
        b.step_with_pairs(&all, &cut, s(5_000)),
        Some(down(&["a", "c"]))
    );
    assert_eq!(
        b.unconfirmed(),
        [("a".to_string(), 100), ("c".to_string(), 102)]
    );
    // The driver no longer lists them: still counted, unreachable.
    assert_eq!(b.step_with_pairs(&alone, &[], s(5_250)), None);
    assert_eq!(b.step_with_pairs(&alone, &[], s(10_000)), None);
    assert_eq!(
        b.step_with_pairs(&alone, &[], s(10_250)),
        Some(SbrDecision::DownSelf)
    );
    // When both are known to know (they downed themselves), b keeps going.
    let mut b = SplitBrainResolver::new("b", SplitBrainConfig::default());
    assert_eq!(b.step_with_pairs(&all, &cut, s(0)), None);
    assert!(b.step_with_pairs(&all, &cut, s(5_000)).is_some());
    assert_eq!(b.step_with_pairs(&alone, &[], s(5_250)), None);
    b.confirm("a");
    b.confirm("c");
    assert!(b.unconfirmed().is_empty());
    assert_eq!(b.step_with_pairs(&alone, &[], s(5_500)), None);
    assert_eq!(b.step_with_pairs(&alone, &[], s(20_000)), None);
}

/// Seed 100971 (6 nodes): a downs the ends b, d of a partial cut on a view
/// where the finale's partition {a, c} | {b, d, e, f} had begun unjudged;
/// then it finds e and f unreachable. Without b and d it saw 2 | 2 and won
/// the tie (lowest address) while the other side downed a and c; counting
/// b and d until confirmed gone, it is 2 | 4 and downs itself.
#[test]
fn members_this_side_downed_still_count_for_the_other_side() {
    let t0 = Instant::now();
    let s = |x: u64| t0 + Duration::from_millis(x);
    let stale = view(&[
        ("a", true),
        ("b", true),
        ("c", true),
        ("d", true),
        ("e", true),
        ("f", true),
    ]);
    let cut = pairs(&["b>d", "d>b"]);
    let mut a = SplitBrainResolver::new("a", SplitBrainConfig::default());
    assert_eq!(a.step_with_pairs(&stale, &cut, s(0)), None);
    assert_eq!(
        a.step_with_pairs(&stale, &cut, s(5_000)),
        Some(down(&["b", "d"]))
    );
    let later: Vec<SbrMember> = view(&[
        ("a", true),
        ("b", false),
        ("c", true),
        ("d", false),
        ("e", false),
        ("f", false),
    ])
    .into_iter()
    .filter(|m| m.name != "b" && m.name != "d")
    .collect();
    assert_eq!(a.step_with_pairs(&later, &[], s(6_000)), None);
    assert_eq!(
        a.step_with_pairs(&later, &[], s(11_000)),
        Some(SbrDecision::DownSelf)
    );
}

/// A member downed for good (crashed, never back to confirm) stops
/// counting two `stable_after` periods after the decision: five nodes, d
/// and e crash and are downed (3 | 2), then c crashes much later; a and b
/// keep going (2 | 1), as they would had d and e been removed.
#[test]
fn a_crashed_member_downed_stops_counting_after_two_stable_after_periods() {
    let t0 = Instant::now();
    let s = |x: u64| t0 + Duration::from_millis(x);
    let mut a = SplitBrainResolver::new("a", SplitBrainConfig::default());
    let crashed = view(&[
        ("a", true),
        ("b", true),
        ("c", true),
        ("d", false),
        ("e", false),
    ]);
    assert_eq!(a.step_with_pairs(&crashed, &[], s(0)), None);
    assert_eq!(
        a.step_with_pairs(&crashed, &[], s(5_000)),
        Some(down(&["d", "e"]))
    );
    let three = view(&[("a", true), ("b", true), ("c", true)]);
    assert_eq!(a.step_with_pairs(&three, &[], s(6_000)), None);
    assert_eq!(a.unconfirmed().len(), 2, "still counted right after");
    assert_eq!(a.step_with_pairs(&three, &[], s(15_000)), None);
    assert!(a.unconfirmed().is_empty(), "expired two periods later");
    let c_gone = view(&[("a", true), ("b", true), ("c", false)]);
    assert_eq!(a.step_with_pairs(&c_gone, &[], s(60_000)), None);
    assert_eq!(
        a.step_with_pairs(&c_gone, &[], s(65_000)),
        Some(down(&["c"]))
    );
}

mod late_self_down;
mod rejoin;
