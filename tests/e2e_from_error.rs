//! From the pasted error to the fix: real terraform (s3 backend on moto, lockfile and
//! DynamoDB table) is killed mid-apply; its `Error acquiring the state lock` output, in
//! colour, `-no-color` and `-json`, with CI timestamps added, is given to `tflock inspect
//! --from-error` and `tflock break --from-error` in the working directory; the lock is
//! freed and `terraform plan` works. Nothing but the lock is touched.

mod common;
use common::aws::*;
use common::*;

/// Prefixes every line with a GitHub Actions timestamp and uses CRLF, as a log viewer's
/// download does.
fn as_ci_log(text: &str) -> String {
    text.lines()
        .map(|l| format!("2026-12-01T10:00:00.1234567Z {l}\r\n"))
        .collect()
}

#[test]
fn pasted_errors_in_every_form_lead_to_the_lock_and_break_it() {
    let Some(_) = require_terraform() else { return };
    let Some(endpoint) = moto() else { return };
    let moto = Moto::new(&endpoint, true);
    let mut wd = Workdir::new(&moto.backend_block(true));
    wd.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    wd.init();
    wd.apply();
    wd.start_holding_apply().kill9();

    // The three forms terraform prints the same lock error in.
    let plan = |extra: &[&str]| {
        let mut args = vec!["plan", "-lock-timeout=0s", "-input=false"];
        args.extend(extra);
        let out = wd.terraform(&args);
        assert!(!out.status.success(), "plan must fail on the stale lock");
        combined(&out)
    };
    let colour = plan(&[]);
    assert!(
        colour.contains('\u{1b}'),
        "terraform printed colour: {colour}"
    );
    let plain = plan(&["-no-color"]);
    let json = plan(&["-json"]);
    let id = lock_id_in(&plain).expect("terraform printed the lock ID");
    let before = moto.untouchables();

    for (name, text) in [
        ("colour.log", as_ci_log(&colour)),
        ("plain.log", as_ci_log(&plain)),
        ("json.log", as_ci_log(&json)),
    ] {
        std::fs::write(wd.file(name), text).unwrap();
        let out = wd.tflock(&["inspect", "--from-error", name]);
        let text = combined(&out);
        assert_eq!(code(&out), 0, "{name}: {text}");
        assert!(text.contains(&format!("Lock {id}")), "{name}: {text}");
        assert!(text.contains("tflock break --id"), "{name}: {text}");
        // A dry run of the break finds the same lock, both halves.
        let out = wd.tflock(&["break", "--from-error", name, "--dry-run"]);
        let text = combined(&out);
        assert_eq!(code(&out), 0, "{name}: {text}");
        assert!(
            text.contains(".tflock") && text.contains("dynamodb://"),
            "{text}"
        );
    }

    let out = wd.tflock(&["break", "--from-error", "json.log", "--yes"]);
    assert_eq!(code(&out), 0, "{}", combined(&out));
    assert!(
        combined(&out).contains(&format!("Lock {id} has been broken.")),
        "{}",
        combined(&out)
    );
    let (ok, out) = wd.plan();
    assert!(ok, "plan after the break:\n{out}");
    assert_eq!(moto.untouchables(), before, "something else was modified");

    // Pasted again after it was fixed: the lock is gone, exit 3, nothing touched.
    let out = wd.tflock(&["break", "--from-error", "plain.log", "--yes"]);
    assert_eq!(code(&out), 3, "{}", combined(&out));
    assert!(combined(&out).contains("is gone"), "{}", combined(&out));
}
