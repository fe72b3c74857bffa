//! The rules that keep the losing side from downing itself late (issue
//! 10): how the drivers count a member (`counts_reachable`), and when the
//! stable-after timer restarts.

use super::*;

/// How the drivers count a member (`counts_reachable`): one foca holds
/// alive is unreachable only once silent to this node's whole side; a
/// suspect one once the judge finds it silent; any other once it is not
/// connected or silent.
#[test]
fn a_member_foca_holds_alive_counts_unreachable_once_silent_to_the_whole_side() {
    // alive: silent here and to every member reached (a clean partition).
    assert!(!counts_reachable(Some("alive"), true, true, true));
    // alive, silent here only (a partial cut: another member reaches it).
    assert!(counts_reachable(Some("alive"), true, false, true));
    assert!(counts_reachable(Some("alive"), false, false, false));
    // suspect: the judge alone decides.
    assert!(!counts_reachable(Some("suspect"), true, false, true));
    assert!(counts_reachable(Some("suspect"), false, false, false));
    // down, or not listed: connected and heard.
    assert!(!counts_reachable(Some("down"), false, false, false));
    assert!(!counts_reachable(None, true, false, true));
    assert!(counts_reachable(None, false, false, true));
}

/// Issue 10's late self-down (seeds 104023, 104548, 104854 of `msa sim`):
/// a node cut off from four others finds them all silent within the
/// judge's bound, but foca, probing one member at a time, suspects and
/// downs them one by one over seconds. Counted by foca's statuses, the
/// unreachable set grew at each and the timer restarted each time: the
/// lone node downed itself long after the majority had downed it. Counted
/// as the drivers do now (silent to the whole side: nobody else reached),
/// the set is whole at the judgement and the node downs itself
/// `stable_after` later, whatever foca says meanwhile.
#[test]
fn a_lone_node_downs_itself_stable_after_its_judgement_while_foca_suspects_the_others_one_by_one() {
    let cfg = SplitBrainConfig::new(MAJ, Duration::from_secs(5)).unwrap();
    let t0 = Instant::now();
    let others = ["b", "c", "d", "e"];
    // foca's status of each other member `s` seconds after the judgement:
    // suspected at 1 s, 2 s, 3 s, 4 s, down 1.5 s after its suspicion.
    let status = |i: usize, s: f64| {
        let suspected = 1.0 + i as f64;
        if s >= suspected + 1.5 {
            "down"
        } else if s >= suspected {
            "suspect"
        } else {
            "alive"
        }
    };
    let at = |s: f64| t0 + Duration::from_secs_f64(s);
    let view_at = |s: f64, by_foca_only: bool| {
        let mut v = view(&[("a", true)]);
        for (i, n) in others.iter().enumerate() {
            // The judge finds every one silent from 0 s; nobody else is
            // reached, so each is silent to the whole side.
            let silent_to_side = !by_foca_only;
            let reachable = counts_reachable(Some(status(i, s)), true, silent_to_side, false);
            v.push(m(
                n,
                &format!("127.0.0.1:{}", 7002 + i),
                101 + i as u64,
                reachable,
            ));
        }
        v
    };
    let steps: Vec<f64> = (0..=40).map(|k| f64::from(k) * 0.25).collect();
    let first_decision = |by_foca_only: bool| {
        let mut r = SplitBrainResolver::new("a", cfg);
        steps
            .iter()
            .find_map(|s| r.step(&view_at(*s, by_foca_only), at(*s)).map(|d| (*s, d)))
    };
    assert_eq!(first_decision(false), Some((5.0, SbrDecision::DownSelf)));
    // Counted by foca's suspicions only, the set grew at 1, 2, 3 and 4 s:
    // the lone node decided 9 s after its judgement before it downed
    // itself on losing for `stable_after` (it loses from 3 s, 2 | 3), at
    // 8 s now; still 3 s late.
    assert_eq!(first_decision(true), Some((8.0, SbrDecision::DownSelf)));
}

/// Seed 100844 of `msa sim` (7 nodes): the finale's partition leaves n0
/// and n3 against five; n0 loses over every view from its judgement on,
/// but 4.5 s later foca downs n3, n0's own side, and takes it back 50 ms
/// later: each change restarted the timer, and n0 downed itself 10 s
/// after the cut while the other side had downed it at 6 s. A node that
/// has lost over every view for `stable_after` downs itself, however the
/// view changed meanwhile; one that wins waits for a stable set as before.
#[test]
fn a_node_that_lost_over_every_view_for_stable_after_downs_itself() {
    let t0 = Instant::now();
    let s = |x: u64| t0 + Duration::from_millis(x);
    let cfg = SplitBrainConfig::default();
    let mut a = SplitBrainResolver::new("a", cfg);
    let lost = view(&[
        ("a", true),
        ("b", true),
        ("c", false),
        ("d", false),
        ("e", false),
    ]);
    let b_flickers = view(&[
        ("a", true),
        ("b", false),
        ("c", false),
        ("d", false),
        ("e", false),
    ]);
    assert_eq!(a.step(&lost, s(0)), None);
    assert_eq!(a.step(&b_flickers, s(4_500)), None);
    assert_eq!(a.step(&lost, s(4_550)), None);
    assert_eq!(a.step(&lost, s(4_999)), None);
    assert_eq!(a.step(&lost, s(5_000)), Some(SbrDecision::DownSelf));
    assert_eq!(a.step(&lost, s(9_550)), None, "decided once");
    // Winning in between: the losing time starts again.
    let mut b = SplitBrainResolver::new("a", cfg);
    let won = view(&[
        ("a", true),
        ("b", true),
        ("c", true),
        ("d", false),
        ("e", false),
    ]);
    assert_eq!(b.step(&lost, s(0)), None);
    assert_eq!(b.step(&won, s(2_000)), None);
    assert_eq!(b.step(&lost, s(2_500)), None);
    assert_eq!(b.step(&lost, s(7_499)), None);
    assert_eq!(b.step(&lost, s(7_500)), Some(SbrDecision::DownSelf));
    // A winner whose set keeps changing waits for it to be stable.
    let mut c = SplitBrainResolver::new("a", cfg);
    let won_more = view(&[
        ("a", true),
        ("b", true),
        ("c", true),
        ("d", true),
        ("e", false),
    ]);
    assert_eq!(c.step(&won, s(0)), None);
    assert_eq!(c.step(&won_more, s(3_000)), None);
    assert_eq!(c.step(&won, s(6_000)), None);
    assert_eq!(c.step(&won, s(10_999)), None);
    assert_eq!(c.step(&won, s(11_000)), Some(down(&["d", "e"])));
}

/// Seed 104745 of `msa sim` (5 nodes): n2, n3 and n4 downed n0 and n1 at
/// 13.0 s; the finale's partition isolated n4 at 17.0 s (n1 crashed); n4's
/// unconfirmed downs of n0 and n1 expired at 23.0 s and, leaving its
/// unreachable set, restarted its timer: n4 downed itself at 28.0 s, 11 s
/// after the cut, while n3 owned its keys too. Here: a downs d and e, a
/// partition cuts a off 7 s later, the downs expire 3 s into it. A member
/// that leaves the view does not restart the timer; one that is back
/// reachable still does.
#[test]
fn an_unconfirmed_down_that_expires_does_not_restart_the_timer() {
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
    // The cut, 7 s later: a alone (b and c unreachable, d and e still
    // counted as unconfirmed downs until 15 s).
    let alone = view(&[("a", true), ("b", false), ("c", false)]);
    assert_eq!(a.step_with_pairs(&alone, &[], s(12_000)), None);
    assert_eq!(a.step_with_pairs(&alone, &[], s(15_000)), None);
    assert!(a.unconfirmed().is_empty(), "expired two periods later");
    assert_eq!(a.step_with_pairs(&alone, &[], s(16_999)), None);
    assert_eq!(
        a.step_with_pairs(&alone, &[], s(17_000)),
        Some(SbrDecision::DownSelf),
        "stable_after after the cut"
    );
    // A member back reachable restarts it.
    let mut b = SplitBrainResolver::new("b", SplitBrainConfig::default());
    let two = view(&[("a", true), ("b", true), ("c", false), ("d", false)]);
    let one = view(&[("a", true), ("b", true), ("c", true), ("d", false)]);
    assert_eq!(b.step_with_pairs(&two, &[], s(0)), None);
    assert_eq!(b.step_with_pairs(&one, &[], s(3_000)), None);
    assert_eq!(b.step_with_pairs(&one, &[], s(5_000)), None);
    assert_eq!(b.step_with_pairs(&one, &[], s(8_000)), Some(down(&["d"])));
    // A member that leaves the view without coming back does not.
    let mut c = SplitBrainResolver::new("b", SplitBrainConfig::default());
    let left = view(&[("a", true), ("b", true), ("c", false)]);
    assert_eq!(c.step_with_pairs(&two, &[], s(0)), None);
    assert_eq!(c.step_with_pairs(&left, &[], s(3_000)), None);
    assert_eq!(c.step_with_pairs(&left, &[], s(5_000)), Some(down(&["c"])));
}
