//! Hostile input: credentials with line breaks or invisible characters are usage errors
//! naming the setting (never a panic or an injected header), lock metadata that is huge,
//! not base64 or not UTF-8 is listed as unreadable, and no message on any path (connect,
//! list, break) carries the account key or a SAS signature.

mod support;

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::{base64_of, fixture, Azurite, STATE};
use tflock_azure::testing::open_with_env;
use tflock_core::testkit::relay::{closed_port, silent_endpoint, Relay, Seen, Verdict};
use tflock_core::testkit::sample_info;
use tflock_core::{BreakOptions, ConnectOptions, Error, Kind, LockStore, Status, Target};

/// A well-formed account key that is not the emulator's: what a leak would show.
const FAKE_KEY: &str = "dGZsb2NrLXNlY3JldC1rZXktRE8tTk9ULVBSSU5ULTAxMjM0NTY3ODk=";
/// The signature of a SAS the emulator does not accept.
const FAKE_SIG: &str = "RkFLRVNJR0RPTk9UUFJJTlQwMTIzNDU2Nzg5YWJjZGVm";

fn fake_sas() -> String {
    format!("sv=2019-12-12&ss=b&srt=sco&sp=rwdl&se=2099-01-01T00%3A00%3A00Z&spr=https%2Chttp&sig={FAKE_SIG}")
}

/// An account SAS for the emulator's account, signed with its key (version 2019-12-12:
/// account, permissions, services, resource types, start, expiry, IP, protocol, version).
fn account_sas(az: &Azurite) -> (String, String) {
    let (sp, ss, srt, se, spr, sv) = (
        "rwdlacup",
        "b",
        "sco",
        "2099-01-01T00:00:00Z",
        "https,http",
        "2019-12-12",
    );
    let to_sign = format!("{}\n{sp}\n{ss}\n{srt}\n\n{se}\n\n{spr}\n{sv}\n", az.account);
    let key = base64::engine::general_purpose::STANDARD
        .decode(&az.key)
        .unwrap();
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).unwrap();
    mac.update(to_sign.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let enc = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    let sas = format!(
        "sv={sv}&ss={ss}&srt={srt}&sp={sp}&se={}&spr={}&sig={}",
        enc(se),
        enc(spr),
        enc(&sig)
    );
    (sas, sig)
}

type Env = Box<dyn Fn(&str) -> Option<String>>;
/// (the setting the error must name, the target, the environment)
type BadSetting = (&'static str, Target, Vec<(&'static str, String)>);
/// (case, which request, what the relay does with it, and with every later request)
type BreakFault = (&'static str, fn(&Seen) -> bool, Verdict, bool);

fn env_of(pairs: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
    move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
}

fn opts(secs: u64) -> ConnectOptions {
    ConnectOptions {
        timeout: Duration::from_secs(secs),
        ..Default::default()
    }
}

/// Everything an error shows: its line and its debug form (which carries the source).
fn shown(e: &Error) -> String {
    format!("{e}\n{e:?}")
}

/// No secret in `text`, in any of its forms.
fn assert_clean(case: &str, text: &str, secrets: &[&str]) {
    for s in secrets {
        let encoded: String = url::form_urlencoded::byte_serialize(s.as_bytes()).collect();
        assert!(
            !text.contains(s) && !text.contains(&encoded),
            "{case}: a secret is shown: {text}"
        );
    }
}

#[tokio::test]
async fn bad_characters_in_credentials_are_usage_errors_naming_the_setting() {
    let Some(az) = fixture().await else { return };
    let sas = fake_sas();
    let target = az.target("c");
    let with = |k: &str, v: &str| {
        let mut t = target.clone();
        t.params.insert(k.into(), v.into());
        t
    };
    let cases: Vec<BadSetting> = vec![
        (
            "ARM_ACCESS_KEY",
            target.clone(),
            vec![("ARM_ACCESS_KEY", format!("{FAKE_KEY}\r\nx-ms-injected: 1"))],
        ),
        (
            "AZURE_STORAGE_KEY",
            target.clone(),
            vec![("AZURE_STORAGE_KEY", format!("\u{7}{FAKE_KEY}"))],
        ),
        (
            "ARM_SAS_TOKEN",
            target.clone(),
            vec![("ARM_SAS_TOKEN", format!("{sas}\n"))],
        ),
        (
            "AZURE_STORAGE_SAS_TOKEN",
            target.clone(),
            vec![(
                "AZURE_STORAGE_SAS_TOKEN",
                sas.replace("sig=", "sig=\u{200b}"),
            )],
        ),
        (
            "access_key",
            with("access_key", &format!("{FAKE_KEY}\n")),
            vec![],
        ),
        ("sas_token", with("sas_token", &format!("?{sas}\r")), vec![]),
        (
            "AZURE_STORAGE_CONNECTION_STRING",
            target.clone(),
            vec![(
                "AZURE_STORAGE_CONNECTION_STRING",
                format!("AccountName={};AccountKey={FAKE_KEY}\r\n", az.account),
            )],
        ),
        (
            "AZURE_STORAGE_CONNECTION_STRING",
            target.clone(),
            vec![(
                "AZURE_STORAGE_CONNECTION_STRING",
                format!("SharedAccessSignature={sas}\u{0}"),
            )],
        ),
        (
            "AZURE_STORAGE_CONNECTION_STRING",
            target.clone(),
            vec![(
                "AZURE_STORAGE_CONNECTION_STRING",
                format!("AccountName=other;AccountKey={FAKE_KEY}"),
            )],
        ),
        (
            "ARM_ACCESS_KEY",
            target.clone(),
            vec![("ARM_ACCESS_KEY", format!("{FAKE_KEY}!!"))],
        ),
        (
            "ARM_CLIENT_SECRET",
            Target::parse("azblob://acct/c").unwrap(),
            vec![
                ("ARM_TENANT_ID", "t".into()),
                ("ARM_CLIENT_ID", "c".into()),
                ("ARM_CLIENT_SECRET", format!("{FAKE_KEY}\n")),
            ],
        ),
        (
            "?endpoint=",
            Target::parse("azblob://acct/c?endpoint=http://127.0.0.1:1/ac%0Act").unwrap(),
            vec![("ARM_ACCESS_KEY", FAKE_KEY.to_string())],
        ),
    ];
    for (setting, target, env) in cases {
        let err = match open_with_env(&target, &opts(2), &env_of(env)) {
            Ok(_) => panic!("{setting}: accepted"),
            Err(e) => e,
        };
        assert_eq!(err.kind(), Kind::Usage, "{setting}: {err}");
        let text = err.to_string();
        assert!(text.contains(setting), "{setting}: {text}");
        assert!(
            !text.contains('\n') && !text.contains('\r'),
            "{setting}: {text:?}"
        );
        assert_clean(
            setting,
            &shown(&err),
            &[FAKE_KEY, FAKE_SIG, "x-ms-injected"],
        );
    }
}

#[tokio::test]
async fn account_names_that_are_not_storage_accounts_are_refused() {
    // A backend block's name must not move the request (and the credential) to another
    // host: https://ACCOUNT.blob.core.windows.net with ACCOUNT = `evil.example#`.
    let env = env_of(vec![("ARM_SAS_TOKEN", fake_sas())]);
    for account in [
        "evil.example#",
        "evil.example%2F",
        "Upper",
        "ab",
        "a\u{1b}b1",
    ] {
        let mut t = Target::parse("azblob://placeholder/c").unwrap();
        t.host = account.to_string();
        let err = open_with_env(&t, &opts(2), &env).err().unwrap();
        assert_eq!(err.kind(), Kind::Usage, "{account:?}: {err}");
        assert!(err.to_string().contains("storage account name"), "{err}");
        assert!(!err.to_string().contains('\u{1b}'), "{err}");
    }
}

/// Relay rule: lose or answer the request `when` matches (and, with `after`, every
/// request after it).
fn fault(relay: &Relay, when: fn(&Seen) -> bool, verdict: Verdict, after: bool) {
    let hit = AtomicBool::new(false);
    relay.set_rule(move |s| {
        if when(s) || (after && hit.load(Ordering::SeqCst)) {
            hit.store(true, Ordering::SeqCst);
            return verdict.clone();
        }
        Verdict::Forward
    });
}

fn is_release(s: &Seen) -> bool {
    s.method == "PUT" && s.header("x-ms-lease-action") == Some("release")
}

fn is_metadata_write(s: &Seen) -> bool {
    s.method == "PUT" && s.target.contains("comp=metadata")
}

fn is_conditional_read(s: &Seen) -> bool {
    s.method == "HEAD" && s.header("if-match").is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_message_shows_the_key_or_a_sas_signature() {
    let Some(az) = fixture().await else { return };
    let (sas, sig) = account_sas(&az);
    let secrets = [az.key.as_str(), FAKE_KEY, sig.as_str(), FAKE_SIG];
    let by_sas = || env_of(vec![("ARM_SAS_TOKEN", sas.clone())]);
    let by_key = |key: &str| env_of(vec![("ARM_ACCESS_KEY", key.to_string())]);

    // The SAS really authorizes: the paths below go as deep as they can.
    let container = az.container("secrets").await;
    let store = open_with_env(&az.target(&container), &opts(5), &by_sas()).unwrap();
    assert!(store.list().await.unwrap().is_empty());

    // Listing: dead, silent, refused and missing.
    let silent = silent_endpoint().await;
    let closed = closed_port();
    let list_cases: Vec<(&str, Target, Env)> = vec![
        (
            "closed port, key",
            az.target_via("c", &closed),
            Box::new(by_key(&az.key)),
        ),
        (
            "closed port, SAS",
            az.target_via("c", &closed),
            Box::new(by_sas()),
        ),
        (
            "silent endpoint, SAS",
            az.target_via("c", &silent.url),
            Box::new(by_sas()),
        ),
        (
            "wrong key",
            az.target(&container),
            Box::new(by_key(FAKE_KEY)),
        ),
        (
            "wrong SAS",
            az.target(&container),
            Box::new(env_of(vec![("ARM_SAS_TOKEN", fake_sas())])),
        ),
        (
            "missing container, SAS",
            az.target("no-such-container-secrets"),
            Box::new(by_sas()),
        ),
    ];
    for (case, target, env) in list_cases {
        let err = open_with_env(&target, &opts(1), env.as_ref())
            .unwrap()
            .list()
            .await
            .unwrap_err();
        assert!(tflock_core::testkit::is_operational(&err), "{case}: {err}");
        assert_clean(case, &shown(&err), &secrets);
    }

    // Breaking through a relay that loses or answers the requests of the break.
    let break_cases: Vec<BreakFault> = vec![
        ("release dropped", is_release, Verdict::Drop, false),
        (
            "release answered 500",
            is_release,
            Verdict::Answer(500, String::new()),
            false,
        ),
        (
            "release dropped, second read fails",
            is_release,
            Verdict::Drop,
            true,
        ),
        (
            "re-read refused",
            is_conditional_read,
            Verdict::Answer(403, String::new()),
            false,
        ),
        (
            "clean-up answered 500",
            is_metadata_write,
            Verdict::Answer(500, String::new()),
            false,
        ),
    ];
    for (i, (case, when, verdict, after)) in break_cases.into_iter().enumerate() {
        let container = az.container(&format!("secrets-break{i}")).await;
        let h = az.harness(&container);
        h.put_state("t.tfstate", STATE, &[]).await.unwrap();
        h.lock_like_terraform("t.tfstate", &sample_info("OperationTypeApply", "p"))
            .await
            .unwrap();
        let relay = Relay::start(&az.endpoint).await;
        let store =
            open_with_env(&az.target_via(&container, &relay.url), &opts(2), &by_sas()).unwrap();
        let lock = store.list().await.unwrap().remove(0);
        fault(&relay, when, verdict, after);
        let text = match store.break_lock(&lock, &BreakOptions::default()).await {
            Ok(broken) => format!("{broken:?}"),
            Err(e) => shown(&e),
        };
        assert_clean(case, &text, &secrets);
        // The requests did carry the signature: the check above could have caught it.
        assert!(
            relay.seen().iter().any(|s| s.target.contains("sig=")),
            "{case}"
        );
    }
}

#[tokio::test]
async fn huge_not_base64_and_not_utf8_metadata_is_unreadable() {
    let Some(az) = fixture().await else { return };
    let container = az.container("hostilemeta").await;
    let h = az.harness(&container);
    let store: Arc<dyn LockStore> = az.store(&container);
    let lease = || sample_info("x", "x").id;
    // Valid LockInfo, base64 and all, but longer than Azure allows any blob's metadata.
    let huge = base64_of(&format!(
        r#"{{"ID":"{}","Info":"{}"}}"#,
        lease(),
        "a".repeat(9000)
    ));
    let not_utf8 = base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe, 0x7b, 0x7d]);
    let control_id =
        base64_of(r#"{"ID":"cd24335b-1181-d45c-3332-48dff0945500\r\nx-ms-lease-action: break"}"#);
    let cases = [
        ("huge.tfstate", huge.as_str(), "more than the 8 KiB"),
        ("notb64.tfstate", "%%% not base64 %%%", "not base64"),
        ("notutf8.tfstate", not_utf8.as_str(), "not UTF-8"),
        ("badid.tfstate", control_id.as_str(), "not a GUID"),
    ];
    for (blob, value, _) in cases {
        h.put_state(blob, STATE, &[]).await.unwrap();
        h.lease(blob, &lease(), Some(value))
            .await
            .unwrap_or_else(|e| panic!("{blob}: {e}"));
    }
    let locks = store.list().await.unwrap();
    assert_eq!(locks.len(), cases.len(), "{locks:#?}");
    for (blob, _, why) in cases {
        let lock = locks
            .iter()
            .find(|l| l.location.ends_with(&format!("/{blob}")))
            .unwrap_or_else(|| panic!("{blob} not listed: {locks:#?}"));
        assert_eq!(
            lock.status(chrono::Utc::now(), chrono::Duration::zero()),
            Status::Unreadable,
            "{blob}: {lock:#?}"
        );
        let reason = lock.info_error.as_deref().unwrap_or_default();
        assert!(reason.contains(why), "{blob}: {reason}");
        match store.break_lock(lock, &BreakOptions::default()).await {
            Err(e) if e.kind() == Kind::Refused => {
                assert!(e.to_string().contains("--force-foreign"), "{e}")
            }
            other => panic!("{blob}: expected Refused, got {other:?}"),
        }
    }
    // With the flag, the lease of the one whose ID would have been a header is broken by
    // Break Lease, which sends no lease id.
    let bad = locks
        .iter()
        .find(|l| l.location.ends_with("/badid.tfstate"))
        .unwrap();
    let force = BreakOptions {
        force_foreign: true,
    };
    store.break_lock(bad, &force).await.unwrap();
    assert_eq!(h.current("badid.tfstate").await.unwrap(), None);
}
