//! `tflock doctor` for the gcs backend: a `<prefix><ws>.tflock` whose `.tfstate` does not
//! exist, left by a first run that was killed before it wrote state (whose resources no
//! state records) or by a deleted workspace. Advice only: it is a lock, removed with
//! `tflock break` by its generation.

use crate::naming::parse_lock_name;
use crate::store::GcsStore;
use tflock_core::text::shell_quote;
use tflock_core::{Error, Finding, LockStore};

pub(crate) async fn diagnose(store: &GcsStore) -> Result<Vec<Finding>, Error> {
    let mut found = Vec::new();
    for lock in store.list().await? {
        // The listing made this lock from the object it read; its state object follows
        // from Terraform's naming.
        let Some(name) = lock
            .details
            .get("object")
            .and_then(|o| parse_lock_name(&store.prefix, o))
        else {
            continue;
        };
        if store.metadata(&name.state_object).await?.is_some() {
            continue;
        }
        let info = lock.info.as_ref();
        let mut evidence = vec![
            ("lock object".to_string(), lock.location.clone()),
            ("lock ID (generation)".to_string(), lock.id.clone()),
        ];
        match info {
            Some(i) => {
                evidence.push(("operation".into(), i.operation.clone()));
                evidence.push(("who".into(), i.who.clone()));
                evidence.push((
                    "created".into(),
                    lock.created()
                        .map(|c| tflock_core::lockinfo::go_time(Some(c)))
                        .unwrap_or_else(|| "?".into()),
                ));
            }
            None => evidence.push((
                "lock info".into(),
                lock.info_error
                    .clone()
                    .unwrap_or_else(|| "unreadable".into()),
            )),
        }
        evidence.push((
            "state object".into(),
            format!("gs://{}/{} does not exist", store.bucket, name.state_object),
        ));
        found.push(Finding {
            kind: "orphan-lockfile",
            target: store.target().to_string(),
            subject: format!("gs://{}/{}", store.bucket, name.state_object),
            workspace: Some(name.workspace.clone()),
            summary: format!(
                "{} locks a state that does not exist: a run that never wrote its state (a first apply that was killed) or a deleted workspace left it, and it blocks every run of workspace {}",
                lock.location, name.workspace
            ),
            evidence,
            advice: format!(
                "If no run is still going (see who and created), remove it. A killed first apply may have created resources that no state records: look for them before the next apply (terraform import).\ntflock break --id {}",
                shell_quote(&lock.id)
            ),
            fix: None,
        });
    }
    Ok(found)
}
