use super::check::Checker;
use super::*;

fn failures(seeds: std::ops::Range<u64>) -> Vec<(u64, Vec<Violation>)> {
    seeds
        .filter_map(|seed| {
            let r = run(&SimConfig::new(seed)).unwrap();
            (!r.passed()).then_some((seed, r.violations))
        })
        .collect()
}

#[test]
fn fifty_seeds_keep_every_invariant() {
    let failed = failures(0..50);
    assert!(failed.is_empty(), "{failed:#?}");
}

#[test]
fn a_seed_replays_with_the_same_event_log() {
    for seed in [3, 41] {
        let a = run(&SimConfig::new(seed)).unwrap();
        let b = run(&SimConfig::new(seed)).unwrap();
        assert!(
            a.log.len() > 300 && a.events > 3_000,
            "{} lines",
            a.log.len()
        );
        assert_eq!(a.digest, b.digest);
        assert_eq!(a.log, b.log);
        let other = run(&SimConfig::new(seed + 1)).unwrap();
        assert_ne!(a.digest, other.digest);
    }
}

#[test]
fn the_scenario_injects_every_kind_of_fault_and_asks_end_every_way() {
    let mut log = Vec::new();
    let mut outcomes = BTreeMap::new();
    for seed in 0..10 {
        let r = run(&SimConfig::new(seed)).unwrap();
        log.extend(r.log);
        for (k, v) in r.asks {
            *outcomes.entry(k).or_insert(0) += v;
        }
    }
    for what in [
        "crash incarnation",
        "start incarnation 2",
        "partition",
        "one-way cut",
        "partial cut",
        "cuts healed",
        "delay n",
        "drop n",
        "reset connection",
        "closed: end of stream",
        "lost: frame dropped",
        "closed: silent",
        "member down",
        "unreachable n",
        "table version 2",
        "final heal",
    ] {
        assert!(
            log.iter().any(|l| l.contains(what)),
            "no `{what}` in 10 seeds"
        );
    }
    for kind in ["Reply", "Timeout", "NodeDown", "NoInstance", "Unreachable"] {
        assert!(outcomes.contains_key(kind), "no {kind} in {outcomes:?}");
    }
}

#[test]
fn an_ask_answered_twice_is_caught() {
    let mut cfg = SimConfig::new(5);
    cfg.sabotage = Sabotage::AnswerTwice;
    let r = run(&cfg).unwrap();
    assert!(
        r.violations
            .iter()
            .any(|v| matches!(v, Violation::AnsweredTwice { .. })),
        "{:?}",
        r.violations
    );
}

#[test]
fn a_message_handled_twice_is_caught() {
    let mut cfg = SimConfig::new(5);
    cfg.sabotage = Sabotage::SendTwice;
    let r = run(&cfg).unwrap();
    assert!(
        r.violations
            .iter()
            .any(|v| matches!(v, Violation::HandledTwice { .. })),
        "{:?}",
        r.violations
    );
}

#[test]
fn a_cluster_size_outside_three_to_seven_is_refused() {
    for n in [0, 2, 8] {
        assert_eq!(
            run(&SimConfig::new(1).nodes(n)).unwrap_err(),
            SimError::Nodes { nodes: n }
        );
    }
    for n in [3, 7] {
        assert_eq!(run(&SimConfig::new(1).nodes(n)).unwrap().nodes, n);
    }
}

#[test]
fn the_checker_flags_an_ask_past_its_deadline_once() {
    let mut c = Checker::default();
    let s = Duration::from_secs;
    c.ask_started(1, s(2));
    c.ask_started(2, s(3));
    c.after_step(s(2));
    assert!(c.violations.is_empty(), "due at 2 s, still in time at 2 s");
    c.ask_ended(2, s(3), "Reply".into());
    c.after_step(s(4));
    c.after_step(s(5));
    assert_eq!(
        c.violations,
        [Violation::AskOverran {
            ask: 1,
            deadline: s(2),
            now: s(4)
        }]
    );
}

#[test]
fn the_checker_flags_a_second_answer_and_a_second_handling() {
    let mut c = Checker::default();
    let s = Duration::from_secs;
    c.ask_started(1, s(2));
    c.ask_ended(1, s(1), "Reply".into());
    c.ask_ended(1, s(2), "Timeout".into());
    c.handled(9, "n1", s(1));
    c.handled(9, "n2", s(1));
    assert!(matches!(
        &c.violations[..],
        [
            Violation::AnsweredTwice { ask: 1, .. },
            Violation::HandledTwice { message: 9, .. }
        ]
    ));
}

#[test]
fn the_checker_flags_an_old_incarnation_seen_again() {
    let mut c = Checker::default();
    let s = Duration::from_secs;
    let v = |inc: u64| vec![("n2".to_string(), inc)];
    c.view("n1", 1, &v(1), s(1));
    c.view("n1", 1, &v(2), s(2));
    assert!(c.violations.is_empty());
    // A restarted observer starts afresh.
    c.view("n1", 2, &v(1), s(3));
    assert!(c.violations.is_empty());
    c.view("n1", 1, &v(1), s(4));
    assert!(matches!(
        &c.violations[..],
        [Violation::OldIncarnation {
            listed: 1,
            seen: 2,
            ..
        }]
    ));
}

#[test]
fn without_the_resolver_a_partition_gives_a_key_two_owners() {
    let caught = (0..30).any(|seed| {
        let mut cfg = SimConfig::new(seed);
        cfg.sabotage = Sabotage::NoResolver;
        run(&cfg)
            .unwrap()
            .violations
            .iter()
            .any(|v| matches!(v, Violation::TwoOwners { .. }))
    });
    assert!(caught, "no seed of 30 had two owners without the resolver");
}

#[test]
fn the_resolver_downs_the_minority_in_the_finale() {
    let mut log = Vec::new();
    for seed in 0..10 {
        log.extend(run(&SimConfig::new(seed)).unwrap().log);
    }
    for what in [
        "split brain: downs itself",
        "split brain: downs [",
        "split brain: rejoins",
        "finale: healed",
    ] {
        assert!(
            log.iter().any(|l| l.contains(what)),
            "no `{what}` in 10 seeds"
        );
    }
}

/// The seeds of 0..240 that end with a key owned on both sides when the
/// nodes skip the join step (`Sabotage::NoJoinStep`): a node restarted
/// into the finale's partition is counted by its side and not by the other
/// (81 and 213 before the simulated network moved onto the in-memory
/// transport's core; 144, 175, 201 and 225 before gossip moved to every
/// 250 ms, issue 12's idle cost; 6, 11, 40 and 63 before the handshake and
/// the close went through the pipes: 52 and 83 are the seeds of 0..120
/// caught since).
const RESTARTED_INTO_A_PARTITION: [u64; 2] = [52, 83];

/// The time (seconds) of the first log line containing `what`.
fn when(log: &[String], what: &str) -> Option<f64> {
    log.iter()
        .find(|l| l.contains(what))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
}

/// Seeds whose finale partitions at once and where a node starts, or
/// comes back after its resolver downed it, during the partition (found
/// with the partial-cut resolution in place: the scenarios change with
/// the nodes' behaviour, as the gossip draws on the seed's generator; 16
/// replaced 7 when members downed by another node's resolver began to join
/// again; 7, 37 and 50 replaced 16, 22 and 24 when the simulated network
/// moved onto the in-memory transport's core; 58 replaced 50 when a node
/// that lost over every view for `stable_after` began to down itself; 5,
/// 11 and 12 replaced 7, 37 and 58 when gossip moved to every 250 ms,
/// issue 12's idle cost; 10, 34 and 50 replaced them when the handshake
/// and the close went through the pipes).
const CAME_BACK_INTO_A_PARTITION: [u64; 3] = [10, 34, 50];

#[test]
fn a_node_restarted_into_a_partition_joins_only_after_the_heal() {
    for seed in CAME_BACK_INTO_A_PARTITION {
        let r = run(&SimConfig::new(seed)).unwrap();
        assert!(r.passed(), "seed {seed}: {:?}", r.violations);
        let finale = when(&r.log, "partitions at once");
        let finale = finale.unwrap_or_else(|| panic!("seed {seed}: no finale at once"));
        let heal = when(&r.log, "final heal").unwrap();
        // Each node that (re)started or came back during the partition
        // is admitted only after the final heal.
        let mut came_back = 0;
        for i in 0..r.nodes {
            let n = format!("n{i}  ");
            let back = [
                format!("{n}start incarnation"),
                format!("{n}split brain: rejoins"),
            ];
            let during = back
                .iter()
                .flat_map(|b| times(&r.log, b))
                .filter(|t| *t >= finale && *t < heal)
                .fold(None, |a: Option<f64>, t| Some(a.map_or(t, |a| a.min(t))));
            let Some(back_at) = during else { continue };
            came_back += 1;
            let up = times(&r.log, &format!("{n}joined: up"))
                .into_iter()
                .find(|t| *t >= back_at);
            assert!(
                up.is_some_and(|t| t >= heal),
                "seed {seed}: n{i} back at {back_at}, up at {up:?}, heal at {heal}"
            );
        }
        assert!(
            came_back > 0,
            "seed {seed}: nobody came back in the partition"
        );
    }
}

#[test]
fn without_the_join_step_a_node_restarted_into_a_partition_gives_a_key_two_owners() {
    let caught: Vec<u64> = RESTARTED_INTO_A_PARTITION
        .into_iter()
        .filter(|seed| {
            let mut cfg = SimConfig::new(*seed);
            cfg.sabotage = Sabotage::NoJoinStep;
            run(&cfg)
                .unwrap()
                .violations
                .iter()
                .any(|v| matches!(v, Violation::TwoOwners { .. }))
        })
        .collect();
    assert!(
        !caught.is_empty(),
        "no seed had two owners without the join step"
    );
}

#[test]
fn nodes_join_within_a_few_seconds_of_start_in_a_healthy_cluster() {
    for seed in 0..5 {
        let r = run(&SimConfig::new(seed)).unwrap();
        let joined: Vec<f64> = r
            .log
            .iter()
            .filter(|l| l.contains("joined: up"))
            .take(r.nodes - 1)
            .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(
            joined.len(),
            r.nodes - 1,
            "seed {seed}: not every node joined"
        );
        assert!(
            joined.iter().all(|t| *t < 3.0),
            "seed {seed}: joined at {joined:?} s"
        );
    }
}

/// The seeds of 0..1000 that failed before admissions waited for news
/// (778, 822: an admission raced the finale's cut), before a downed member
/// stopped counting on its own side (553), and while a node that had
/// downed itself still counted as an owner for the nodes routing to it
/// (419). Each ended with a key owned on both sides.
const RACED_THE_CUT: [u64; 4] = [419, 553, 778, 822];

/// A seed where a node comes back (starts, or rejoins after its resolver
/// downed it) into the finale's partition before anyone can judge the cut
/// (the judge needs 1.5 s of silence): seed 778 was it until the handshake
/// and the close went through the pipes; seed 44 then (n2 rejoined 56 ms
/// after the partition), until a member downed by another node's resolver
/// began to down itself; seed 34 since (n2 rejoins 49 ms after it).
const STARTS_AS_THE_CUT_BEGINS: (u64, &str) = (34, "n2");

#[test]
fn the_seeds_where_an_admission_raced_the_cut_keep_every_invariant() {
    for seed in RACED_THE_CUT {
        let r = run(&SimConfig::new(seed)).unwrap();
        assert!(r.passed(), "seed {seed}: {:?}", r.violations);
    }
    // The node that comes back as the cut begins is admitted only after
    // the final heal, not before its side finds the other silent.
    let (seed, node) = STARTS_AS_THE_CUT_BEGINS;
    let r = run(&SimConfig::new(seed)).unwrap();
    assert!(r.passed(), "seed {seed}: {:?}", r.violations);
    let cut = when(&r.log, "partitions at once").unwrap();
    let heal = when(&r.log, "final heal").unwrap();
    let back = ["start incarnation", "split brain: rejoins"]
        .iter()
        .flat_map(|what| times(&r.log, &format!("{node}  {what}")))
        .filter(|t| *t >= cut)
        .fold(None, |a: Option<f64>, t| Some(a.map_or(t, |a| a.min(t))));
    assert!(
        back.is_some_and(|t| t - cut < 1.5),
        "{node} back at {back:?}, the cut at {cut}"
    );
    let up = times(&r.log, &format!("{node}  joined: up"))
        .into_iter()
        .find(|t| *t > cut);
    assert!(
        up.is_some_and(|t| t >= heal),
        "{node} up at {up:?}, heal at {heal}"
    );
}

/// A member downed by another node's resolver before its own downed it
/// downs itself on hearing of it, and joins again only once its own rejoin
/// check passes, admitted in a new round (seed 329 pinned joining again
/// until the simulated network moved onto the in-memory transport's core;
/// then seeds 370, 442, 338 and 315 as the scenarios changed; the runtime's
/// partial-cut test showed that starting the new round at once let a
/// member that had just downed an end of a cut admit it again inside the
/// cut). Seed 219: at 14.33 s n2 hears that n1 downed it and downs
/// itself; its own check lets it rejoin at 17.08 s, admitted at 17.58 s.
#[test]
fn seed_219_a_member_downed_by_another_nodes_resolver_downs_itself_and_joins_again() {
    let r = run(&SimConfig::new(219)).unwrap();
    assert!(r.passed(), "{:?}", r.violations);
    let n2: Vec<&String> = r.log.iter().filter(|l| l.contains(" n2  ")).collect();
    let downed = times(&r.log, "n2  joined: down (downed by n1: downs itself)");
    assert!(
        downed.iter().any(|t| (14.0..14.6).contains(t)),
        "n2 did not hear at 14-14.6 s that n1 downed it: {n2:#?}"
    );
    let rejoins = times(&r.log, "n2  split brain: rejoins")
        .into_iter()
        .find(|t| *t > downed[0]);
    let up = times(&r.log, "n2  joined: up (admitted)")
        .into_iter()
        .find(|t| rejoins.is_some_and(|r| *t > r));
    assert!(
        rejoins.is_some() && up.is_some(),
        "n2 did not rejoin through its own check and an admission: {n2:#?}"
    );
}

/// The times (seconds) of the log lines containing `what`.
fn times(log: &[String], what: &str) -> Vec<f64> {
    log.iter()
        .filter(|l| l.contains(what))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

/// A partial cut n0 ⇄ n2 (n1 reaches both) from 5 s to 25 s: n0 and n2 are
/// indirectly connected (each reports the other unreachable, SWIM keeps
/// both alive through n1). After `stable_after` exactly they are downed
/// (each downs itself, n1 downs both), n1 keeps serving, no key has two
/// owners (checked under the cut too), and after the heal both rejoin and
/// every view agrees.
#[test]
fn a_partial_cut_downs_exactly_its_indirectly_connected_ends() {
    for seed in [1, 2, 3] {
        let mut cfg = SimConfig::new(seed).nodes(3);
        cfg.script = Script::PartialCut;
        cfg.fault_phase = Duration::from_secs(20);
        let stable = cfg.split_brain.unwrap().stable_after.as_secs_f64();
        let r = run(&cfg).unwrap();
        let log = &r.log;
        let events: Vec<&String> = log
            .iter()
            .filter(|l| !l.contains(" ask ") && !l.contains(" tell "))
            .collect();
        assert!(r.passed(), "seed {seed}: {:?}\n{events:#?}", r.violations);
        let cut = when(log, "partial cut n0 <-> n2").unwrap();
        let heal = when(log, "final heal").unwrap();
        let n0 = when(log, "n0  split brain: downs itself").unwrap();
        let n2 = when(log, "n2  split brain: downs itself").unwrap();
        let n1 = when(log, r#"n1  split brain: downs ["n0", "n2"]"#).unwrap();
        for t in [n0, n2, n1] {
            // Judged within 1.5 s, gossiped, then stable for stable_after.
            assert!(
                t >= cut + stable && t <= cut + stable + 4.0,
                "seed {seed}: decided at {t} (cut at {cut})\n{}",
                log.join("\n")
            );
        }
        assert!(
            times(log, "n1  split brain: downs itself").is_empty(),
            "seed {seed}: n1 downed itself"
        );
        // n1 serves its own calls after the decision, until the heal.
        let decided = n0.max(n1).max(n2);
        let served = log
            .iter()
            .filter(|l| l.contains("n1  ask") && l.contains(" on n1"))
            .filter_map(|l| l.split_whitespace().next()?.parse::<f64>().ok())
            .filter(|t| *t > decided + 1.0 && *t < heal)
            .count();
        assert!(served > 0, "seed {seed}: n1 served nothing under the cut");
        let refused = times(log, "NodeDown { node: \"n1\" }");
        assert!(
            !refused.iter().any(|t| *t > cut && *t < heal),
            "seed {seed}: n1 refused calls under the cut: {refused:?}"
        );
        // After the heal both come back and are admitted.
        for n in ["n0", "n2"] {
            let back = times(log, &format!("{n}  split brain: rejoins"));
            assert!(
                back.iter().any(|t| *t >= heal),
                "seed {seed}: {n} never rejoined"
            );
            let up = times(log, &format!("{n}  joined: up"));
            assert!(
                up.iter().any(|t| *t >= heal),
                "seed {seed}: {n} never up again"
            );
        }
        assert!(r.heal_time.is_some());
    }
}

/// Seeds of 100000..105000 (issue 10's 5,000-seed run on e517830) that
/// ended with a key owned on both sides, with their node counts. 103801,
/// 100971, 101752: a node downed the two ends of a partial cut on a view
/// already stale (the finale's partition had begun, not yet judged), then
/// no longer counted them: it kept serving with a minority while the
/// majority downed it. 100902: the losing side of a 3 | 3 partition downed
/// itself 10.8 s after the cut, its timer restarted when a member stopped
/// being indirectly connected (a stale report expired).
const OWNED_TWICE_IN_5000: [(u64, usize); 4] = [(100902, 6), (100971, 6), (101752, 5), (103801, 3)];

/// Runs each `(seed, nodes)` and fails with the violations of those that
/// broke an invariant.
fn assert_every_invariant(seeds: &[(u64, usize)]) {
    let failed: Vec<(u64, Vec<Violation>)> = seeds
        .iter()
        .filter_map(|&(seed, nodes)| {
            let r = run(&SimConfig::new(seed).nodes(nodes)).unwrap();
            (!r.passed()).then_some((seed, r.violations))
        })
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
}

#[test]
fn the_seeds_that_owned_a_key_twice_in_5000_keep_every_invariant() {
    assert_every_invariant(&OWNED_TWICE_IN_5000);
}

/// The seeds where the losing side downed itself late and a key had two
/// owners past the bound (issue 10's known issue), on main `b784770`
/// (release build, 2026-12-06): `msa sim --seeds 5000 --from 100000`
/// failed these six, `msa sim --seeds 600 --nodes 7` failed 398. Three
/// causes, each fixed in the resolver or its drivers (both drivers):
///
/// * 100549, 100521, 102164, 104779, 398: a node alone (or nearly) counted
///   the other side only as foca suspected it, one member per probe, and
///   each one restarted its stable-after timer (100549: n4, isolated at
///   23.0 s, saw its last member downed by foca at 28.9 s and downed
///   itself at 32.6 s). A member foca holds alive now counts unreachable
///   once silent to this node's whole side (`counts_reachable`,
///   `Reachability::silent_to_side`).
/// * 104745: a lone node's unconfirmed downs of an earlier partition
///   expired 6 s into the finale's and, leaving its unreachable set,
///   restarted its timer. A member leaving the view no longer restarts it.
/// * 100844: a member of the minority's own side flickered (foca downed it
///   and took it back 50 ms later) 6 s into the partition, restarting the
///   timer of n0, which lost over every view. A node that has lost over
///   every view for `stable_after` downs itself.
const DOWNED_ITSELF_LATE: [(u64, usize); 7] = [
    (100521, 6),
    (100549, 7),
    (100844, 7),
    (102164, 7),
    (104745, 5),
    (104779, 7),
    (398, 7),
];

#[test]
fn the_seeds_where_the_losing_side_downed_itself_late_keep_every_invariant() {
    assert_every_invariant(&DOWNED_ITSELF_LATE);
}

/// Seed 101624 of 100000..105000 (main `7507f78`, release build,
/// 2026-12-06): n1 restarted at 10.6 s cut off from n0 and n2; in the
/// finale n0 was cut off from both and n2 crashed; n1, with no seed dial
/// hanging and nobody to admit it, was `up (alone)` at
/// 18.65 s beside n0: two one-node clusters, each owning every key until
/// the heal. Only the first seed (n0, of the seed list n0, n1, n2) may be
/// up with no member to admit it now.
#[test]
fn seed_101624_only_the_first_seed_is_up_alone() {
    assert_every_invariant(&[(101624, 3)]);
    let r = run(&SimConfig::new(101624)).unwrap();
    let alone: Vec<&String> = r
        .log
        .iter()
        .filter(|l| l.contains("joined: up (alone"))
        .collect();
    assert!(alone.iter().all(|l| l.contains("n0  ")), "{alone:#?}");
}
