//! Unit tests of the config layers.

use super::*;

fn from_toml(text: &str) -> anyhow::Result<NodeConfig> {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path =
        std::env::temp_dir().join(format!("msa-config-test-{}-{n}.toml", std::process::id()));
    std::fs::write(&path, text)?;
    let r = NodeConfig::resolve_with(Some(&path), Overrides::default(), |_| None);
    let _ = std::fs::remove_file(&path);
    r
}

#[test]
fn service_flags_parse_kind_name_and_instances() {
    let s: ServiceConfig = "kv:store:3".parse().unwrap();
    assert_eq!(
        (s.kind, s.name(), s.instance_count()),
        (ServiceKind::Kv, "store", 3)
    );
    let s: ServiceConfig = "echo".parse().unwrap();
    assert_eq!((s.name(), s.instance_count()), ("echo", 1));
    assert!("redis:x"
        .parse::<ServiceConfig>()
        .unwrap_err()
        .contains("unknown service kind"));
    assert!("kv:x:many".parse::<ServiceConfig>().is_err());
    let s: ServiceConfig = "echo:e:1:4".parse().unwrap();
    assert_eq!((s.instance_count(), s.max_instance_count()), (1, 4));
    assert_eq!(s.to_string(), "echo:e:1:4");
    assert!("echo:e:1:lots".parse::<ServiceConfig>().is_err());
    assert!("kv:x:1:2:3".parse::<ServiceConfig>().is_err());
}

#[test]
fn max_instances_is_read_from_a_service_table_and_checked() {
    let cfg = from_toml(
        "[[services]]\nkind = \"echo\"\ninstances = 2\nmax_instances = 5\n\
         [[services]]\nkind = \"counter\"\n",
    )
    .unwrap();
    let counts: Vec<_> = cfg
        .services
        .iter()
        .map(|s| (s.name(), s.instance_count(), s.max_instance_count()))
        .collect();
    assert_eq!(counts, [("echo", 2, 5), ("counter", 1, 1)]);
    assert_eq!(
        cfg.services[0].to_table().get("max_instances"),
        Some(&toml::Value::Integer(5))
    );

    let below = from_toml("[[services]]\nkind = \"echo\"\ninstances = 3\nmax_instances = 2\n")
        .unwrap_err()
        .to_string();
    assert!(
        below.contains("max_instances 2 is below its 3 instances"),
        "{below}"
    );
    let kv = from_toml("[[services]]\nkind = \"kv\"\nmax_instances = 2\n")
        .unwrap_err()
        .to_string();
    assert!(kv.contains("cannot scale"), "{kv}");
    let shop = from_toml("[[services]]\nkind = \"orders\"\nmax_instances = 2\n")
        .unwrap_err()
        .to_string();
    assert!(shop.contains("runs one instance"), "{shop}");
}

#[test]
fn flags_win_over_the_file_field_by_field() {
    let path = std::env::temp_dir().join(format!("msa-config-layers-{}.toml", std::process::id()));
    std::fs::write(
        &path,
        "name = \"from-file\"\ncluster = \"c1\"\nseeds = [\"127.0.0.1:1\"]\n\
         [[services]]\nkind = \"kv\"\ninstances = 2\n",
    )
    .unwrap();
    let over = Overrides {
        name: Some("from-flag".into()),
        services: vec!["echo:e".parse().unwrap()],
        ..Overrides::default()
    };
    let cfg = NodeConfig::resolve_with(Some(&path), over, |_| None).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(cfg.name, "from-flag");
    assert_eq!(cfg.cluster, "c1");
    assert_eq!(cfg.seeds, ["127.0.0.1:1"]);
    assert_eq!(cfg.services.len(), 1);
    assert_eq!(cfg.services[0].name(), "e");
    assert_eq!(cfg.listen, DEFAULT_LISTEN.parse().unwrap());
}

#[test]
fn bad_files_are_refused_with_the_reason() {
    let e = format!(
        "{:#}",
        from_toml("[[services]]\nkind = \"redis\"\n").unwrap_err()
    );
    assert!(e.contains("unknown variant `redis`"), "{e}");
    let e = format!("{:#}", from_toml("name = \n").unwrap_err());
    assert!(e.contains("invalid config file"), "{e}");
    let e = format!("{:#}", from_toml("nmae = \"x\"\n").unwrap_err());
    assert!(e.contains("unknown field `nmae`"), "{e}");
    let e = format!(
        "{:#}",
        from_toml("listen = \"0.0.0.0:7000\"\n").unwrap_err()
    );
    assert!(e.contains("needs a cluster secret"), "{e}");
    assert!(e.contains("mutual TLS"), "{e}");
    // With a [tls] table (or MSA_TLS_*) a node may listen beyond loopback.
    let cfg = from_toml(
        "listen = \"0.0.0.0:7000\"\n[tls]\nca = \"ca.pem\"\ncert = \"n.pem\"\nkey = \"n.key\"\n",
    )
    .unwrap();
    assert_eq!(cfg.tls.unwrap().cert, std::path::PathBuf::from("n.pem"));
    let e = format!("{:#}", from_toml("[tls]\nca = \"ca.pem\"\n").unwrap_err());
    assert!(e.contains("missing: cert, key"), "{e}");
    let e = format!(
        "{:#}",
        from_toml("[[services]]\nkind = \"kv\"\n[[services]]\nkind = \"kv\"\n").unwrap_err()
    );
    assert!(e.contains("used twice"), "{e}");
    let e = format!(
        "{:#}",
        from_toml("[[services]]\nkind = \"orders\"\nname = \"o2\"\n").unwrap_err()
    );
    assert!(e.contains("must be named `orders`"), "{e}");
    let e = format!(
        "{:#}",
        from_toml("[[services]]\nkind = \"inventory\"\ninstances = 2\n").unwrap_err()
    );
    assert!(e.contains("runs one instance"), "{e}");
    let e = format!("{:#}", from_toml("[gateway]\nbnid = \"x\"\n").unwrap_err());
    assert!(e.contains("unknown field `bnid`"), "{e}");
}

#[test]
fn shop_kinds_parse_by_name() {
    for kind in ServiceKind::SHOP {
        let s: ServiceConfig = kind.as_str().parse().unwrap();
        assert_eq!((s.kind, s.name()), (kind, kind.as_str()));
        assert!(kind.is_shop());
    }
    assert!(!ServiceKind::Kv.is_shop());
    assert_eq!(ServiceKind::ALL.len(), 7);
}

#[test]
fn the_gateway_table_and_flags_combine() {
    let cfg = from_toml(
        "[gateway]\nbind = \"127.0.0.1:9000\"\nworkers = 1\n\
         [[gateway.routes]]\nmethod = \"GET\"\npath = \"/x\"\nservice = \"echo\"\nmessage = \"echo.Ping\"\n",
    )
    .unwrap();
    let g = cfg.gateway.unwrap();
    assert_eq!((g.bind.port(), g.workers, g.routes.len()), (9000, 1, 1));
    assert!(g.auth.is_none());
    assert!(from_toml("name = \"n\"\n").unwrap().gateway.is_none());

    let over = Overrides {
        gateway: Some("127.0.0.1:0".parse().unwrap()),
        jwt_secret: Some("s3cret".into()),
        ..Overrides::default()
    };
    let cfg = NodeConfig::resolve_with(None, over, |_| None).unwrap();
    let g = cfg.gateway.clone().unwrap();
    assert_eq!(g.bind.port(), 0);
    let auth = g.auth.unwrap();
    assert_eq!(
        (auth.alg, auth.secret.as_deref()),
        (Some(JwtAlg::HS256), Some("s3cret"))
    );
    assert_eq!(auth.admin_roles, ["admin"]);
    let shown = format!("{cfg:?}");
    assert!(!shown.contains("s3cret"), "{shown}");

    let over = Overrides {
        jwt_secret: Some("s".into()),
        ..Overrides::default()
    };
    let e = format!(
        "{:#}",
        NodeConfig::resolve_with(None, over, |_| None).unwrap_err()
    );
    assert!(e.contains("needs a gateway"), "{e}");
}

fn temp_file(tag: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("msa-{tag}-{}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn environment_sits_between_the_file_and_the_flags() {
    let path = temp_file(
        "config-env.toml",
        "name = \"file\"\ncluster = \"c-file\"\n[ops]\nbind = \"127.0.0.1:1\"\n",
    );
    let env = |v: &str| match v {
        "MSA_NAME" => Some("env".to_string()),
        "MSA_OPS_BIND" => Some("127.0.0.1:2".to_string()),
        "MSA_SHUTDOWN_DRAIN" => Some("750ms".to_string()),
        "MSA_LOG_FORMAT" => Some("json".to_string()),
        "MSA_GATEWAY_BIND" => Some("127.0.0.1:0".to_string()),
        "MSA_SERVICES" => Some("echo:e,kv".to_string()),
        _ => None,
    };
    let over = Overrides {
        ops_bind: Some("127.0.0.1:3".parse().unwrap()),
        ..Overrides::default()
    };
    let cfg = NodeConfig::resolve_with(Some(&path), over, env).unwrap();
    assert_eq!(cfg.name, "env");
    assert_eq!(cfg.cluster, "c-file");
    assert_eq!(cfg.ops, Some("127.0.0.1:3".parse().unwrap()));
    assert_eq!(cfg.drain, Duration::from_millis(750));
    assert_eq!(cfg.log_format, LogFormat::Json);
    assert_eq!(cfg.gateway.map(|g| g.bind.port()), Some(0));
    assert_eq!(cfg.services.len(), 2);
    let cfg = NodeConfig::resolve_with(Some(&path), Overrides::default(), env).unwrap();
    assert_eq!(cfg.ops, Some("127.0.0.1:2".parse().unwrap()));
    let cfg = NodeConfig::resolve_with(Some(&path), Overrides::default(), |_| None).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(cfg.ops, Some("127.0.0.1:1".parse().unwrap()));
    assert_eq!(
        (cfg.drain, cfg.log_format, cfg.gateway.is_none()),
        (DEFAULT_DRAIN, LogFormat::Text, true)
    );
}

#[test]
fn bad_new_keys_are_refused() {
    let e = format!("{:#}", from_toml("log_format = \"xml\"\n").unwrap_err());
    assert!(e.contains("unknown variant `xml`"), "{e}");
    let e = format!(
        "{:#}",
        from_toml("[shutdown]\ndrain = \"soon\"\n").unwrap_err()
    );
    assert!(e.contains("invalid shutdown.drain"), "{e}");
    let e = format!(
        "{:#}",
        from_toml("[ops]\nbind = \"nowhere\"\n").unwrap_err()
    );
    assert!(e.contains("ops.bind"), "{e}");
    let e = format!("{:#}", from_toml("[ops]\nbnid = \"x\"\n").unwrap_err());
    assert!(e.contains("unknown field `bnid`"), "{e}");
    assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
    assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    for bad in ["", "5", "-1s", "xs", "2h", "99999m"] {
        assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn handshake_bounds_are_read_and_checked() {
    let c = from_toml("handshake_timeout_ms = 2000\nmax_pending_handshakes = 64\n").unwrap();
    assert_eq!(c.handshake_timeout_ms, Some(2000));
    assert_eq!(c.max_pending_handshakes, Some(64));
    let c = from_toml("").unwrap();
    assert_eq!(
        (c.handshake_timeout_ms, c.max_pending_handshakes),
        (None, None)
    );
    let e = format!("{:#}", from_toml("handshake_timeout_ms = 0\n").unwrap_err());
    assert!(
        e.contains("handshake_timeout_ms must be more than 0"),
        "{e}"
    );
    let e = format!(
        "{:#}",
        from_toml("max_pending_handshakes = 0\n").unwrap_err()
    );
    assert!(
        e.contains("max_pending_handshakes must be at least 1"),
        "{e}"
    );
}

#[test]
fn the_secret_can_come_from_a_file_but_not_from_both() {
    let path = temp_file("secret", "s3cret\n");
    let over = Overrides {
        secret_file: Some(path.clone()),
        ..Overrides::default()
    };
    let cfg = NodeConfig::resolve_with(None, over.clone(), |_| None).unwrap();
    assert_eq!(cfg.secret.as_deref(), Some("s3cret"));
    let env = |v: &str| (v == "MSA_SECRET").then(|| "other".to_string());
    let e = format!(
        "{:#}",
        NodeConfig::resolve_with(None, over, env).unwrap_err()
    );
    assert!(e.contains("both a secret and a secret file"), "{e}");
    let env = |v: &str| (v == "MSA_SECRET_FILE").then(|| path.display().to_string());
    let cfg = NodeConfig::resolve_with(None, Overrides::default(), env).unwrap();
    assert_eq!(cfg.secret.as_deref(), Some("s3cret"));
    std::fs::write(&path, "\n").unwrap();
    let e = format!(
        "{:#}",
        NodeConfig::resolve_with(None, Overrides::default(), env).unwrap_err()
    );
    assert!(e.contains("is empty"), "{e}");
    let _ = std::fs::remove_file(&path);
    let e = format!(
        "{:#}",
        NodeConfig::resolve_with(None, Overrides::default(), env).unwrap_err()
    );
    assert!(e.contains("cannot read the secret file"), "{e}");
}

#[test]
fn advertise_and_discovery_come_from_the_file_and_flags_win() {
    let cfg = from_toml(
        "secret = \"s\"\nlisten = \"0.0.0.0:7000\"\nadvertise = \"10.0.0.5:0\"\n\
         seeds = [\"msa-nodes.default.svc:7000\"]\n\
         [discovery]\ninterval = \"500ms\"\ndns_server = \"127.0.0.1:5353\"\n",
    )
    .unwrap();
    assert_eq!(cfg.advertise.as_deref(), Some("10.0.0.5:0"));
    assert_eq!(cfg.seeds, ["msa-nodes.default.svc:7000"]);
    assert_eq!(
        cfg.discovery_interval,
        Some(std::time::Duration::from_millis(500))
    );
    assert_eq!(cfg.dns_server, Some("127.0.0.1:5353".parse().unwrap()));
    let over = Overrides {
        advertise: Some("[fd00::5]:7000".into()),
        discovery_interval: Some("2m".into()),
        dns_server: Some("127.0.0.1:53".parse().unwrap()),
        ..Overrides::default()
    };
    let (i, d) = DiscoveryFile {
        interval: Some("1s".into()),
        dns_server: Some("127.0.0.1:5353".into()),
    }
    .resolve(&over)
    .unwrap();
    assert_eq!(i, Some(std::time::Duration::from_secs(120)));
    assert_eq!(d, Some("127.0.0.1:53".parse().unwrap()));
    for bad in ["10", "10h", "0s", "s", "-1s"] {
        let e = format!(
            "{:#}",
            from_toml(&format!("[discovery]\ninterval = \"{bad}\"\n")).unwrap_err()
        );
        assert!(e.contains("is not a duration"), "{bad}: {e}");
    }
    let e = format!(
        "{:#}",
        from_toml("[discovery]\ndns_server = \"resolver:53\"\n").unwrap_err()
    );
    assert!(e.contains("not an ip:port"), "{e}");
    let e = format!("{:#}", from_toml("[discovery]\nttl = 1\n").unwrap_err());
    assert!(e.contains("unknown field `ttl`"), "{e}");
}

/// The TOML files inside `deploy/kubernetes/configmap.yaml` (`name.toml: |`
/// block scalars), by name.
fn configmap_tomls() -> Vec<(String, String)> {
    let yaml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/kubernetes/configmap.yaml"
    ))
    .unwrap();
    let mut out: Vec<(String, String)> = Vec::new();
    for line in yaml.lines() {
        let key = line.trim().strip_suffix(": |");
        if let Some(name) = key.filter(|k| k.ends_with(".toml")) {
            out.push((name.to_string(), String::new()));
        } else if let Some((_, text)) = out.last_mut() {
            if let Some(body) = line.strip_prefix("    ") {
                text.push_str(body);
                text.push('\n');
            } else if line.trim().is_empty() {
                text.push('\n');
            } else {
                break;
            }
        }
    }
    out
}

/// The `MSA_*` variables a manifest under `deploy/kubernetes/` sets with a
/// literal `value:` (the `- name: X` line, then `value: ...`), with
/// `$(MSA_NAME)` replaced by `pod` as Kubernetes expands it.
fn manifest_env(file: &str, pod: &str) -> Vec<(String, String)> {
    let yaml = std::fs::read_to_string(format!(
        "{}/deploy/kubernetes/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut out = Vec::new();
    let mut name: Option<String> = None;
    for line in yaml.lines() {
        let line = line.trim();
        if let Some(n) = line.strip_prefix("- name: ") {
            name = Some(n.to_string());
        } else if let (Some(n), Some(v)) = (name.take(), line.strip_prefix("value: ")) {
            let v = v.trim_matches('"').replace("$(MSA_NAME)", pod);
            out.push((n, v));
        }
    }
    out
}

#[test]
fn kubernetes_node_configs_are_valid() {
    let files = configmap_tomls();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["node.toml", "gateway.toml"]);
    for (name, text) in files {
        let (manifest, pod) = match name.as_str() {
            "node.toml" => ("nodes.yaml", "msa-node-0"),
            _ => ("gateway.yaml", "msa-gateway-1"),
        };
        // The pod's environment as its manifest sets it (the mutual TLS
        // files from the Secret msa-tls, named after the pod).
        let env = manifest_env(manifest, pod);
        let path = std::env::temp_dir().join(format!("msa-k8s-{}-{name}", std::process::id()));
        std::fs::write(&path, &text).unwrap();
        let over = Overrides {
            name: Some(pod.into()),
            advertise: Some("10.1.2.3:7000".into()),
            ..Overrides::default()
        };
        let cfg = NodeConfig::resolve_with(Some(&path), over, |k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
        .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let _ = std::fs::remove_file(&path);
        // Mutual TLS with the pod's own certificate, and no HMAC secret.
        assert_eq!(cfg.secret, None, "{name}");
        assert_eq!(
            cfg.tls,
            Some(TlsPaths {
                ca: "/etc/msa/tls/ca.pem".into(),
                cert: format!("/etc/msa/tls/{pod}.pem").into(),
                key: format!("/etc/msa/tls/{pod}.key").into(),
            }),
            "{name}"
        );
        assert_eq!(cfg.listen, "0.0.0.0:7000".parse().unwrap(), "{name}");
        assert_eq!(
            cfg.seeds,
            ["msa-nodes.msa.svc.cluster.local:7000"],
            "{name}"
        );
        assert_eq!(cfg.ops, Some("0.0.0.0:9000".parse().unwrap()), "{name}");
        assert_eq!(
            cfg.discovery_interval,
            Some(std::time::Duration::from_secs(5)),
            "{name}"
        );
        assert_eq!(cfg.gateway.is_some(), name == "gateway.toml");
        assert_eq!(cfg.services.is_empty(), name == "gateway.toml");
    }
}

#[test]
fn the_split_brain_table_sets_the_policy_and_the_environment_wins() {
    use crate::remote::split_brain::{SplitBrainConfig, SplitBrainStrategy};
    // Absent: the node's default.
    assert_eq!(from_toml("name = \"n\"\n").unwrap().split_brain, None);
    let cfg =
        from_toml("[split_brain]\nstrategy = \"keep-oldest\"\nstable_after = \"3s\"\n").unwrap();
    assert_eq!(
        cfg.split_brain,
        Some(
            SplitBrainConfig::new(SplitBrainStrategy::KeepOldest, Duration::from_secs(3)).unwrap()
        )
    );
    // A number is milliseconds; the strategy keeps its default.
    let cfg = from_toml("[split_brain]\nstable_after = 1500\n").unwrap();
    assert_eq!(
        cfg.split_brain,
        Some(
            SplitBrainConfig::new(
                SplitBrainStrategy::KeepMajority,
                Duration::from_millis(1500)
            )
            .unwrap()
        )
    );
    let cfg = from_toml("[split_brain]\nstrategy = \"static-quorum\"\nquorum_size = 2\n").unwrap();
    assert_eq!(
        cfg.split_brain.map(|p| p.strategy),
        Some(SplitBrainStrategy::StaticQuorum { quorum_size: 2 })
    );
    // MSA_SPLIT_BRAIN_* over the file.
    let path = temp_file(
        "config-sbr.toml",
        "[split_brain]\nstrategy = \"keep-oldest\"\nstable_after = \"3s\"\n",
    );
    let env = |v: &str| match v {
        "MSA_SPLIT_BRAIN_STRATEGY" => Some("static-quorum:3".to_string()),
        "MSA_SPLIT_BRAIN_STABLE_AFTER" => Some("750".to_string()),
        _ => None,
    };
    let cfg = NodeConfig::resolve_with(Some(&path), Overrides::default(), env).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(
        cfg.split_brain,
        Some(
            SplitBrainConfig::new(
                SplitBrainStrategy::StaticQuorum { quorum_size: 3 },
                Duration::from_millis(750)
            )
            .unwrap()
        )
    );
    let env = |v: &str| (v == "MSA_SPLIT_BRAIN_STRATEGY").then(|| "off".to_string());
    let cfg = NodeConfig::resolve_with(None, Overrides::default(), env).unwrap();
    assert_eq!(
        cfg.split_brain.map(|p| p.strategy),
        Some(SplitBrainStrategy::Off)
    );
}

#[test]
fn bad_split_brain_values_are_refused_with_the_reason() {
    for (toml, want) in [
        (
            "strategy = \"keep-everyone\"",
            "unknown split-brain strategy",
        ),
        ("strategy = \"static-quorum\"", "needs a quorum size"),
        (
            "strategy = \"keep-oldest\"\nquorum_size = 2",
            "static-quorum only",
        ),
        ("stable_after = \"soon\"", "split_brain.stable_after `soon`"),
        ("stable_after = 0", "above zero"),
        ("stabel_after = \"5s\"", "unknown field `stabel_after`"),
    ] {
        let e = format!(
            "{:#}",
            from_toml(&format!("[split_brain]\n{toml}\n")).unwrap_err()
        );
        assert!(e.contains(want), "{toml}: {e}");
    }
    let env = |v: &str| (v == "MSA_SPLIT_BRAIN_STRATEGY").then(|| "majority".to_string());
    let e = format!(
        "{:#}",
        NodeConfig::resolve_with(None, Overrides::default(), env).unwrap_err()
    );
    assert!(
        e.contains("unknown split-brain strategy \"majority\""),
        "{e}"
    );
}

#[test]
fn access_tables_are_read_and_checked() {
    let cfg = from_toml(
        "[[services]]\nkind = \"payments\"\n\
         [[access]]\nservice = \"payments\"\nmessage = \"shop.Charge\"\nroles = [\"admin\"]\nservices = [\"orders\"]\n\
         [[access]]\nservice = \"payments\"\nmessage = \"*\"\nroles = [\"staff\"]\n",
    )
    .unwrap();
    assert_eq!(
        cfg.access,
        [
            AccessRuleConfig::new("payments", "shop.Charge", &["admin"], &["orders"]),
            AccessRuleConfig::new("payments", "*", &["staff"], &[]),
        ]
    );
    let e = from_toml("[[access]]\nservice = \"payments\"\nmessage = \"*\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("admits nobody"), "{e}");
    let e = format!(
        "{:#}",
        from_toml("[[access]]\nservice = \"p\"\nmessage = \"*\"\nrole = [\"x\"]\n").unwrap_err()
    );
    assert!(e.contains("unknown field"), "{e}");
}
