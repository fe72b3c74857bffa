//! `msa sim`: one seed replays with the same trace, many seeds summarise,
//! bad input is refused with the reason.

use crate::support::run;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_seed_passes_and_replays_with_the_same_digest() {
    let a = run(&["sim", "--seed", "11"]);
    assert!(a.status.success(), "{a:?}");
    let line = stdout(&a);
    assert!(line.starts_with("seed=11 "), "{line}");
    assert!(line.contains("result=pass"), "{line}");
    let b = run(&["sim", "--seed", "11"]);
    assert_eq!(
        stdout(&a),
        stdout(&b),
        "the same seed, the same summary and digest"
    );
    let verbose = run(&["sim", "--seed", "11", "--nodes", "4", "--verbose"]);
    assert!(verbose.status.success(), "{verbose:?}");
    let text = stdout(&verbose);
    assert!(
        text.contains("final heal") && text.contains("start incarnation 1"),
        "{text}"
    );
    assert!(text.contains(" nodes=4 "), "{text}");
}

#[test]
fn many_seeds_print_one_summary_line() {
    let out = run(&["sim", "--seeds", "4", "--from", "100"]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(
        text.contains("seeds=4 from=100 failed=0 worst_heal="),
        "{text}"
    );
    assert!(text.contains(" wall="), "{text}");
}

#[test]
fn bad_input_is_refused_with_the_reason() {
    let out = run(&["sim", "--seed", "1", "--nodes", "9"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("3 to 7 nodes, not 9"), "{err}");
    let out = run(&["sim"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--seed"));
}
