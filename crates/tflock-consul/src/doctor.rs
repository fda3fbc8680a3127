//! `tflock doctor` for consul: `.lockinfo` keys that no lock stands behind. Terraform
//! leaves one whenever its session ends without an unlock (a killed or crashed
//! terraform: the session's TTL runs out and Consul releases `.lock`). It blocks nothing
//! (Terraform only looks at `.lock`, and overwrites `.lockinfo` at its next lock), so it
//! is not listed as a lock; here it is reported, with a fix that deletes it only if it is
//! still exactly what was read and `.lock` is still free.

use crate::naming;
use crate::store::ConsulStore;
use tflock_core::{Error, Finding, Fix, Handle, Repaired};

struct OrphanFix {
    stem: String,
    index: u64,
}

pub async fn diagnose(store: &ConsulStore) -> Result<Vec<Finding>, Error> {
    let slots = store.scan().await?;
    let sessions = store.sessions(&slots).await?;
    let mut findings = Vec::new();
    for (slot, session) in slots.iter().zip(sessions) {
        let Some(info) = &slot.info else { continue };
        if session.is_some() {
            continue;
        }
        let info_key = format!("{}{}", slot.stem, naming::INFO_SUFFIX);
        let lock_state = match &slot.lock {
            None => "absent".to_string(),
            Some(l) => match l.holder() {
                None => "present, held by no session".to_string(),
                Some(s) => format!("names session {s}, which no longer exists"),
            },
        };
        let mut evidence = vec![
            ("key".to_string(), info_key.clone()),
            ("ModifyIndex".to_string(), info.modify_index.to_string()),
            (format!("{}{}", slot.stem, naming::LOCK_SUFFIX), lock_state),
        ];
        if let Ok(text) = info.text() {
            if let Ok(li) = tflock_core::LockInfo::parse(&text) {
                evidence.push(("ID (session)".into(), li.id.clone()));
                evidence.push(("Who".into(), li.who.clone()));
                evidence.push(("Operation".into(), li.operation.clone()));
                evidence.push(("Created".into(), tflock_core::lockinfo::go_time(li.created)));
            }
        }
        findings.push(Finding {
            kind: "orphan-lockinfo",
            target: store.conn.target.clone(),
            subject: store.location(&info_key),
            workspace: Some(slot.workspace.clone()),
            summary: format!(
                "{info_key} is left over from a lock whose session has ended; it blocks nothing"
            ),
            evidence,
            advice: "nothing to do: Terraform ignores it and overwrites it at its next lock; `tflock doctor --fix` deletes it if it is unchanged".into(),
            fix: Some(Fix::new(
                format!("delete {info_key} (ModifyIndex {}) if unchanged and unlocked", info.modify_index),
                Handle::new(
                    &store.conn.target,
                    OrphanFix {
                        stem: slot.stem.clone(),
                        index: info.modify_index,
                    },
                ),
            )),
        });
    }
    Ok(findings)
}

pub async fn repair(store: &ConsulStore, fix: &Fix) -> Result<Repaired, Error> {
    let t = store.conn.target.as_str();
    let Some(f) = fix
        .handle()
        .get::<OrphanFix>()
        .filter(|_| fix.handle().origin() == t)
    else {
        return Err(Error::usage(
            t,
            format!("not a fix of this target: {}", fix.description),
        ));
    };
    let info_key = format!("{}{}", f.stem, naming::INFO_SUFFIX);
    if let Some(s) = store.holder_now(&f.stem).await? {
        return Err(Error::changed(
            t,
            format!(
                "{}/.lock is held again (session {s}): {info_key} belongs to that lock now",
                f.stem
            ),
        ));
    }
    let what = format!("deleting {info_key}");
    let reply = store.delete_cas(&info_key, f.index, &what).await?;
    if reply.ok() && crate::error::is_true(&reply) {
        Ok(Repaired {
            done: vec![format!("deleted {}", store.location(&info_key))],
        })
    } else if reply.ok() {
        Err(Error::changed(
            t,
            format!("{info_key} changed since it was read"),
        ))
    } else {
        Err(crate::error::status_error(
            &store.conn,
            &what,
            &reply,
            crate::store::BREAK_ACL,
        ))
    }
}
