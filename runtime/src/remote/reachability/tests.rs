use super::*;

const AFTER: Duration = Duration::from_secs(2);

fn obs(name: &str, heard: Option<Instant>) -> Observation {
    Observation {
        name: name.into(),
        incarnation: 1,
        heard,
    }
}

#[test]
fn a_silent_member_becomes_unreachable_after_the_bound_and_reachable_when_heard() {
    let t0 = Instant::now();
    let mut r = Reachability::new(AFTER);
    assert!(r.step(t0, &[obs("c", Some(t0))]).is_empty());
    let just_before = t0 + AFTER - Duration::from_millis(1);
    assert!(r.step(just_before, &[obs("c", Some(t0))]).is_empty());
    assert!(!r.is_unreachable("c"));
    let c = r.step(t0 + AFTER, &[obs("c", Some(t0))]);
    assert_eq!(c.unreachable, ["c"]);
    assert!(r.is_unreachable("c"));
    // Reported once, not at every step.
    assert!(r.step(t0 + AFTER * 2, &[obs("c", None)]).is_empty());
    let back = t0 + AFTER * 3;
    let c = r.step(back, &[obs("c", Some(back))]);
    assert_eq!(c.reachable, ["c"]);
    assert!(r.unreachable().is_empty());
}

#[test]
fn a_member_never_connected_gets_the_bound_as_grace() {
    let t0 = Instant::now();
    let mut r = Reachability::new(AFTER);
    assert!(r.step(t0, &[obs("b", None)]).is_empty());
    assert!(r.step(t0 + AFTER / 2, &[obs("b", None)]).is_empty());
    assert_eq!(r.step(t0 + AFTER, &[obs("b", None)]).unreachable, ["b"]);
}

#[test]
fn a_member_no_longer_expected_is_forgotten_with_its_services() {
    let t0 = Instant::now();
    let mut r = Reachability::new(AFTER);
    r.step(t0, &[obs("c", None)]);
    r.record_services("c", 1, vec!["kv".into()]);
    r.step(t0 + AFTER, &[obs("c", None)]);
    assert_eq!(r.unreachable_host("kv").as_deref(), Some("c"));
    assert_eq!(r.unreachable_host("echo"), None);
    // Declared down: membership no longer lists it as alive.
    r.step(t0 + AFTER * 2, &[]);
    assert!(!r.is_unreachable("c"));
    assert_eq!(r.unreachable_host("kv"), None);
}

/// Both ends of a partial cut renew their identities when they down
/// themselves, so membership holds each briefly down at the other: a member
/// judged unreachable that drops out of the observations and comes back
/// unheard is unreachable again at once, not reachable for another grace.
#[test]
fn an_unreachable_member_back_unheard_after_a_moment_away_is_unreachable_at_once() {
    let t0 = Instant::now();
    let mut r = Reachability::new(AFTER);
    r.step(t0, &[obs("c", Some(t0))]);
    assert_eq!(r.step(t0 + AFTER, &[obs("c", None)]).unreachable, ["c"]);
    // Out of the observations for a step (membership holds it down).
    assert!(r.step(t0 + AFTER + AFTER / 4, &[]).is_empty());
    assert!(!r.is_unreachable("c"));
    // Back, still unheard: unreachable at once.
    let back = t0 + AFTER + AFTER / 2;
    assert_eq!(r.step(back, &[obs("c", None)]).unreachable, ["c"]);
    assert!(r.is_unreachable("c"));
    // Heard from: reachable.
    let heard = back + AFTER / 4;
    assert_eq!(r.step(heard, &[obs("c", Some(heard))]).reachable, ["c"]);
    // A restarted member (a newer incarnation) starts afresh instead.
    let mut r = Reachability::new(AFTER);
    r.step(t0, &[obs("c", None)]);
    r.step(t0 + AFTER, &[obs("c", None)]);
    r.step(t0 + AFTER * 2, &[]);
    let newer = Observation {
        name: "c".into(),
        incarnation: 2,
        heard: None,
    };
    assert!(r.step(t0 + AFTER * 3, &[newer]).is_empty());
    assert!(!r.is_unreachable("c"));
}

#[test]
fn services_of_a_reachable_member_do_not_explain_a_missing_service() {
    let t0 = Instant::now();
    let mut r = Reachability::new(AFTER);
    r.step(t0, &[obs("b", Some(t0))]);
    r.record_services("b", 1, vec!["kv".into()]);
    assert_eq!(r.unreachable_host("kv"), None);
}

#[test]
fn pairs_merge_own_observations_with_newer_reports_of_live_members() {
    let t0 = Instant::now();
    let mut r = Reachability::new(AFTER);
    r.step(t0, &[obs("c", None), obs("b", Some(t0))]);
    r.step(t0 + AFTER, &[obs("c", None), obs("b", Some(t0 + AFTER))]);
    let report = |observer: &str, version: u64, unreachable: &[&str]| ReachReport {
        observer: observer.into(),
        incarnation: 1,
        version,
        unreachable: unreachable.iter().map(|s| s.to_string()).collect(),
    };
    r.on_report(report("c", 2, &["a"]));
    // An older report does not replace a newer one.
    r.on_report(report("c", 1, &[]));
    // A report of a node that is not a member is ignored.
    r.on_report(report("x", 1, &["a"]));
    let members = vec!["a".to_string(), "b".to_string(), "c".to_string()];
    let pair = |a: &str, b: &str| [a.to_string(), b.to_string()];
    assert_eq!(r.pairs("a", &members), [pair("a", "c"), pair("c", "a")]);
    // A later, empty report clears the observer's pairs.
    r.on_report(report("c", 3, &[]));
    assert_eq!(r.pairs("a", &members), [pair("a", "c")]);
    let own = r.own_report("a", 9);
    assert_eq!(
        (own.incarnation, own.unreachable.clone()),
        (9, vec!["c".to_string()])
    );
    assert!(r.own_report("a", 9).rank() > own.rank());
}

#[test]
fn a_restarted_member_starts_with_a_fresh_grace() {
    let t0 = Instant::now();
    let mut r = Reachability::new(AFTER);
    r.step(t0, &[obs("c", None)]);
    r.step(t0 + AFTER, &[obs("c", None)]);
    assert!(r.is_unreachable("c"));
    let later = t0 + AFTER * 2;
    let newer = Observation {
        name: "c".into(),
        incarnation: 2,
        heard: Some(later),
    };
    assert_eq!(r.step(later, &[newer]).reachable, ["c"]);
}

#[test]
fn members_learned_from_tables_are_expected_for_a_while_only() {
    let t0 = Instant::now();
    let mut r = Reachability::new(AFTER);
    r.learn("b", t0);
    r.learn("c", t0 + AFTER);
    let within = AFTER * 2;
    assert_eq!(r.learned(t0 + AFTER, within), ["b", "c"]);
    assert_eq!(r.learned(t0 + within, within), ["c"]);
    assert!(r.learned(t0 + within * 2, within).is_empty());
}

/// What a self-downed node's rejoin check reads: the members it finds
/// silent, judged unreachable or dropped out of the observations
/// (membership held them down a moment) and not heard within the bound
/// since, for `FORGOTTEN_FOR` bounds after their last news; not a member
/// dropped while still heard, nor one never observed.
#[test]
fn remembers_silent_covers_members_dropped_from_the_observations_for_a_while() {
    let t0 = Instant::now();
    let mut r = Reachability::new(AFTER);
    r.step(t0, &[obs("c", Some(t0)), obs("d", Some(t0))]);
    assert!(!r.remembers_silent("c", t0));
    let later = t0 + AFTER + Duration::from_millis(300);
    r.step(later, &[obs("c", Some(t0)), obs("d", Some(later))]);
    assert!(r.remembers_silent("c", later));
    assert!(!r.remembers_silent("d", later));
    // Both drop out of the observations (held down, connection closed):
    // c is still remembered silent; d is not while heard within the
    // bound, then is.
    let gone = later + Duration::from_millis(100);
    r.step(gone, &[]);
    assert!(r.remembers_silent("c", gone));
    assert!(!r.remembers_silent("d", gone));
    assert!(r.remembers_silent("d", later + AFTER));
    // Forgotten `FORGOTTEN_FOR` bounds after its last news (a member that
    // crashed for good stops counting).
    let long_after = t0 + AFTER * FORGOTTEN_FOR;
    r.step(long_after, &[]);
    assert!(!r.remembers_silent("c", long_after));
    assert!(r.remembers_silent("d", long_after));
    // Back and heard: not silent.
    let back = long_after + Duration::from_millis(100);
    r.step(back, &[obs("d", Some(back))]);
    assert!(!r.remembers_silent("d", back));
    // Never observed: not remembered.
    assert!(!r.remembers_silent("zz", back));
}

/// A member this node finds silent is silent to its whole side only when
/// every other member it reaches reports it unreachable too: the other
/// side of a clean partition (counted by the split-brain resolver's driver
/// at once), not the far end of a partial cut that a third member still
/// reaches (SWIM keeps it alive through that one), nor a member some
/// member of this side has not reported on yet.
#[test]
fn a_silent_member_is_silent_to_the_side_only_when_every_member_reached_reports_it_too() {
    let t0 = Instant::now();
    let mut r = Reachability::new(AFTER);
    let report = |observer: &str, version: u64, unreachable: &[&str]| ReachReport {
        observer: observer.into(),
        incarnation: 1,
        version,
        unreachable: unreachable.iter().map(|s| s.to_string()).collect(),
    };
    let side = ["b".to_string(), "d".to_string()];
    r.step(
        t0,
        &[obs("b", Some(t0)), obs("c", Some(t0)), obs("d", Some(t0))],
    );
    let later = t0 + AFTER;
    r.step(
        later,
        &[
            obs("b", Some(later)),
            obs("c", Some(t0)),
            obs("d", Some(later)),
        ],
    );
    assert!(r.is_unreachable("c"));
    // Nobody else reported yet: b and d may reach c.
    assert!(!r.silent_to_side("c", &side));
    // b reports c unreachable, d reports nothing unreachable: d reaches c.
    r.on_report(report("b", 1, &["c"]));
    r.on_report(report("d", 1, &[]));
    assert!(!r.silent_to_side("c", &side));
    // d's newer report: c is silent to the whole side.
    r.on_report(report("d", 2, &["c"]));
    assert!(r.silent_to_side("c", &side));
    // Alone (nobody else reached), a silent member is silent to the side.
    assert!(r.silent_to_side("c", &[]));
    // A member this node hears is never silent to its side.
    r.on_report(report("b", 2, &["c", "d"]));
    assert!(!r.silent_to_side("d", &["b".to_string()]));
    // Heard again: no longer.
    let back = later + Duration::from_millis(100);
    r.step(
        back,
        &[
            obs("b", Some(back)),
            obs("c", Some(back)),
            obs("d", Some(back)),
        ],
    );
    assert!(!r.silent_to_side("c", &side));
}
