use super::StopCursor;

/// Stops `n` children one after another the way a supervisor does: find the
/// last live one, stop it, and (on its exit) look for the next.
fn stop_all(n: usize, live: &mut [bool]) -> (Vec<usize>, u64) {
    let mut cursor = StopCursor::default();
    let mut order = Vec::new();
    while let Some(i) = cursor.next_live(n, |i| live[i]) {
        live[i] = false;
        order.push(i);
    }
    (order, cursor.steps())
}

#[test]
fn stops_every_live_child_last_first() {
    let mut live = vec![true, false, true, true, false];
    let (order, _) = stop_all(5, &mut live);
    assert_eq!(order, vec![3, 2, 0]);
    assert!(live.iter().all(|l| !l));
}

#[test]
fn a_whole_stop_looks_at_each_child_a_bounded_number_of_times() {
    // Linear: the steps of a whole stop grow with n, not n². Before the
    // cursor, stopping n children scanned O(n²) entries (n = 100k: 5·10⁹).
    for n in [10usize, 1_000, 100_000] {
        let mut live = vec![true; n];
        let (order, steps) = stop_all(n, &mut live);
        assert_eq!(order.len(), n);
        assert!(
            steps <= 2 * n as u64 + 2,
            "{n} children took {steps} scan steps (quadratic?)"
        );
    }
}

#[test]
fn finished_children_at_the_end_are_passed_once() {
    // Most children already done (ended temporaries): one pass over them.
    let n = 50_000;
    let mut live = vec![false; n];
    live[0] = true;
    live[1] = true;
    let (order, steps) = stop_all(n, &mut live);
    assert_eq!(order, vec![1, 0]);
    assert!(steps <= n as u64 + 4, "{steps} steps for {n} children");
}

#[test]
fn nothing_live_returns_none_and_stays_none() {
    let mut c = StopCursor::default();
    assert_eq!(c.next_live(3, |_| false), None);
    assert_eq!(
        c.next_live(3, |_| true),
        None,
        "passed children stay passed"
    );
    assert_eq!(c.next_live(0, |_| true), None);
}
