//! `msa contracts check` / `update`: the committed contracts file matches
//! the binary, and a changed wire shape is named field by field.

use serde_json::Value;

use crate::support::run;

/// The committed contracts file.
fn committed() -> String {
    format!("{}/contracts/messages.json", env!("CARGO_MANIFEST_DIR"))
}

/// A scratch contracts file made by `msa contracts update`, removed on drop.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let path = std::env::temp_dir().join(format!(
            "msa-contracts-{}-{tag}/messages.json",
            std::process::id()
        ));
        let out = run(&["contracts", "update", "--file", path.to_str().unwrap()]);
        assert!(out.status.success(), "{out:?}");
        Scratch(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }

    fn json(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(&self.0).unwrap()).unwrap()
    }

    /// Rewrites the recorded contract of `name` with `f`.
    fn edit(&self, name: &str, f: impl FnOnce(&mut Value)) {
        let mut v = self.json();
        let m = v["messages"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|m| m["name"] == name)
            .unwrap();
        f(m);
        std::fs::write(&self.0, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    }

    /// `check` against this file: (success, stderr).
    fn check(&self) -> (bool, String) {
        let out = run(&["contracts", "check", "--file", self.path()]);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

const BREAKING: &str =
    "`shop.PlaceOrder` (version 1) changed its wire shape without a new wire name or version:";

#[test]
fn cli_contracts_the_committed_file_matches_the_binary() {
    let out = run(&["contracts", "check", "--file", &committed()]);
    assert!(
        out.status.success(),
        "contracts/messages.json is out of date or a wire shape changed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("messages match"), "{text}");
}

#[test]
fn cli_contracts_an_unchanged_file_passes() {
    let s = Scratch::new("same");
    let v = s.json();
    let names: Vec<&str> = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    for name in ["echo.Echo", "counter.Add", "kv.Get", "shop.PlaceOrder"] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    assert_eq!(s.check(), (true, String::new()));
}

#[test]
fn cli_contracts_a_changed_field_type_is_named() {
    let s = Scratch::new("type");
    s.edit("shop.PlaceOrder", |m| {
        m["request"]["types"]["PlaceOrder"]["struct"][1]["type"] = "u64".into();
    });
    let (ok, err) = s.check();
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "{BREAKING}\n  request: `PlaceOrder.qty` changed type: u64 -> u32"
        )),
        "{err}"
    );
    // `update` refuses to record it, and leaves the file as it was.
    let before = s.json();
    let out = run(&["contracts", "update", "--file", s.path()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--allow-breaking"), "{err}");
    assert_eq!(s.json(), before);
    let out = run(&[
        "contracts",
        "update",
        "--allow-breaking",
        "--file",
        s.path(),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(s.check().0);
}

#[test]
fn cli_contracts_added_removed_and_reordered_fields_are_named() {
    let s = Scratch::new("fields");
    // The file has no `qty`: the binary added it.
    s.edit("shop.PlaceOrder", |m| {
        m["request"]["types"]["PlaceOrder"]["struct"]
            .as_array_mut()
            .unwrap()
            .remove(1);
    });
    let (ok, err) = s.check();
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "{BREAKING}\n  request: field `PlaceOrder.qty` added (u32)"
        )),
        "{err}"
    );
    let s = Scratch::new("order");
    s.edit("shop.PlaceOrder", |m| {
        m["request"]["types"]["PlaceOrder"]["struct"]
            .as_array_mut()
            .unwrap()
            .swap(0, 1);
        // And a reply field the binary no longer has.
        m["reply"]["types"]["Order"]["struct"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"name": "gift", "type": "bool"}));
    });
    let (ok, err) = s.check();
    assert!(!ok);
    assert!(
        err.contains("request: fields of `PlaceOrder` reordered: [qty, sku] -> [sku, qty]"),
        "{err}"
    );
    assert!(
        err.contains("reply: field `Order.gift` removed (was bool)"),
        "{err}"
    );
}

#[test]
fn cli_contracts_versions_and_new_messages_ask_for_an_update() {
    let s = Scratch::new("stale");
    // Recorded under another version: a deliberate change, not a break,
    // but the file must be brought up to date.
    s.edit("shop.PlaceOrder", |m| {
        m["version"] = 2.into();
        m["request"]["types"]["PlaceOrder"]["struct"][1]["type"] = "u64".into();
    });
    let mut v = s.json();
    v["messages"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["name"] != "kv.Get");
    std::fs::write(&s.0, v.to_string()).unwrap();
    let (ok, err) = s.check();
    assert!(!ok);
    assert!(!err.contains("without a new wire name"), "{err}");
    assert!(
        err.contains("is out of date (run `msa contracts update`"),
        "{err}"
    );
    assert!(
        err.contains("`shop.PlaceOrder`: version 2 in the file, 1 declared (1 wire change(s))"),
        "{err}"
    );
    assert!(
        err.contains("`kv.Get` (version 1) is new: not in the file"),
        "{err}"
    );
}
