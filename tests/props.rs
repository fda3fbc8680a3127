//! Property tests over the command line's parsers and renderers, on stable Rust, bounded
//! to a few seconds each (the README's test command runs them): no input panics, no
//! control character reaches the terminal, JSON keeps the exact values.

mod inproc;

use async_trait::async_trait;
use proptest::prelude::*;
use serde_json::Value;
use std::sync::Arc;
use tflock::Resolver;
use tflock_core::memory::MemoryStore;
use tflock_core::{ConnectOptions, Error, LockStore, Target};

/// Every target is an in-memory store holding `lock` (if any).
struct AnyTarget(Option<String>);

#[async_trait]
impl Resolver for AnyTarget {
    async fn open(&self, target: &Target, _: &ConnectOptions) -> Result<Arc<dyn LockStore>, Error> {
        let mem = MemoryStore::new(target.url.clone());
        if let Some(info) = &self.0 {
            mem.hold("state.tflock", info);
        }
        Ok(Arc::new(mem))
    }
}

fn run(resolver: &AnyTarget, args: &[&str]) -> (i32, String, String) {
    let r = inproc::tflock(resolver, args, "", false);
    (r.code, r.out, r.err)
}

fn clean(text: &str) -> bool {
    text.chars()
        .all(|c| c == '\n' || !tflock_core::text::needs_escape(c))
}

/// clap's own errors quote the offending argument as given: it is escaped like every
/// other shown text (found by `any_target_text_never_panics` with `-t "-\r"`).
#[test]
fn argument_errors_quote_the_argument_escaped() {
    for args in [
        &["list", "-t", "-\r"][..],
        &["list", "--\u{1b}[2Jx"],
        &["\u{1b}]0;pwned\u{7}list"],
        &["break", "--id", "x", "--older-than", "-\u{202e}1h"],
    ] {
        let (code, out, err) = run(&AnyTarget(None), args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(clean(&out) && clean(&err), "{args:?}: {out:?} {err:?}");
    }
}

/// Text an attacker writes: printable, control, bidi and quote characters mixed.
fn hostile() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            any::<char>(),
            prop::sample::select(vec![
                '\u{1b}', '\u{7}', '\r', '\n', '\t', '\u{9b}', '\u{202e}', '\u{2066}', '\'', '"',
                '$', '`', '\\', ';', '|', '&', '\0', '\u{7f}',
            ]),
        ],
        0..40,
    )
    .prop_map(|v| v.into_iter().collect())
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Any lock metadata: the table and inspect print no control character; JSON
    /// round-trips the exact values.
    #[test]
    fn rendering_escapes_and_json_round_trips(
        id in hostile(), who in hostile(), info in hostile(), path in hostile(), op in hostile(),
    ) {
        let lock = serde_json::json!({
            "ID": id, "Operation": op, "Info": info, "Who": who, "Version": "1.11.4",
            "Created": "2026-11-01T00:00:00.5Z", "Path": path,
        }).to_string();
        let r = AnyTarget(Some(lock));
        let (code, out, err) = run(&r, &["list", "-t", "memory://p"]);
        prop_assert_eq!(code, 0, "{}", err);
        prop_assert!(clean(&out), "{:?}", out);
        let (_, out, err) = run(&r, &["inspect", "state.tflock", "-t", "memory://p"]);
        prop_assert!(clean(&out) && clean(&err), "{:?} {:?}", out, err);
        let (_, out, _) = run(&r, &["list", "-t", "memory://p", "--json"]);
        let v: Value = serde_json::from_str(&out).unwrap();
        prop_assert_eq!(v[0]["info"]["ID"].as_str(), Some(id.as_str()));
        prop_assert_eq!(v[0]["who"].as_str(), Some(who.as_str()));
        prop_assert_eq!(v[0]["info"]["Info"].as_str(), Some(info.as_str()));
        prop_assert_eq!(v[0]["path"].as_str(), Some(if path.is_empty() { "state.tflock" } else { path.as_str() }));
    }

    /// Any text as a target: a usage error or a listing, never a panic; what is shown
    /// is clean.
    #[test]
    fn any_target_text_never_panics(t in hostile()) {
        let _ = Target::parse(&t);
        let (_, out, err) = run(&AnyTarget(None), &["list", "-t", &t]);
        prop_assert!(clean(&out) && clean(&err), "{:?} {:?}", out, err);
    }

    /// Targets built from parts parse back to those parts.
    #[test]
    fn targets_round_trip(
        scheme in prop::sample::select(vec!["s3", "dynamodb", "gs", "azblob", "consul"]),
        host in "[a-z][a-z0-9-]{0,20}",
        path in "[a-z0-9/._-]{0,30}",
        region in "[a-z0-9-]{1,12}",
    ) {
        let t = Target::parse(&format!("{scheme}://{host}/{path}?region={region}")).unwrap();
        prop_assert_eq!(t.scheme.as_str(), scheme);
        prop_assert_eq!(t.host.as_str(), host.as_str());
        prop_assert_eq!(t.path.as_str(), path.trim_start_matches('/'));
        prop_assert_eq!(t.param("region"), Some(region.as_str()));
    }

    /// Any tflock.toml: parsed or refused with file:line, never a panic; valid ones name
    /// their targets.
    #[test]
    fn any_config_file_never_panics(text in hostile(), name in "[a-z]{1,10}", host in "[a-z]{1,10}") {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("tflock.toml");
        let c = cfg.display().to_string();
        std::fs::write(&cfg, &text).unwrap();
        let (_, out, err) = run(&AnyTarget(None), &["list", "-c", &c]);
        prop_assert!(clean(&out) && clean(&err), "{:?} {:?}", out, err);
        std::fs::write(&cfg, format!("[targets.{name}]\nurl = \"memory://{host}\"\nregion = \"x\"\n")).unwrap();
        let (code, out, err) = run(&AnyTarget(None), &["list", "-c", &c]);
        prop_assert_eq!(code, 0, "{}", err);
        prop_assert_eq!(out, format!("No locks held. Looked in: memory://{host}\n"));
    }

    /// Discovery from any *.tf, *.tf.json and .terraform/terraform.tfstate contents: an
    /// answer or a one-line error, never a panic.
    #[test]
    fn discovery_from_any_files_never_panics(
        tf in hostile(), json in hostile(), state in hostile(), kind in "[a-z0-9]{0,8}",
        key in hostile(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let dir_arg = d.display().to_string();
        let check = |label: &str| -> Result<(), TestCaseError> {
            let (_, out, err) = run(&AnyTarget(None), &["list", "--dir", &dir_arg, "--request-timeout", "1s"]);
            prop_assert!(clean(&out) && clean(&err), "{label}: {:?} {:?}", out, err);
            prop_assert!(err.lines().count() <= 1, "{label}: {err}");
            Ok(())
        };
        std::fs::write(d.join("main.tf"), &tf).unwrap();
        check("tf")?;
        std::fs::write(d.join("main.tf"), format!("terraform {{\n  backend \"{kind}\" {{\n    key = {}\n  }}\n}}\n", serde_json::to_string(&key).unwrap())).unwrap();
        check("block")?;
        std::fs::remove_file(d.join("main.tf")).unwrap();
        std::fs::write(d.join("main.tf.json"), &json).unwrap();
        check("json")?;
        std::fs::create_dir_all(d.join(".terraform")).unwrap();
        std::fs::write(d.join(".terraform/terraform.tfstate"), &state).unwrap();
        check("state")?;
        std::fs::write(
            d.join(".terraform/terraform.tfstate"),
            serde_json::json!({"version": 3, "backend": {"type": kind, "config": {"bucket": key, "key": key, "prefix": key, "storage_account_name": key, "container_name": key, "use_lockfile": true}}}).to_string(),
        ).unwrap();
        check("initialised")?;
    }
}
