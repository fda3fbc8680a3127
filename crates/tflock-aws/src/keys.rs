//! How the s3 backend names things: state keys, workspace keys, DynamoDB `LockID`s and
//! lockfile keys. Pure functions, unit-tested here.

/// The default `workspace_key_prefix` of the s3 backend.
pub(crate) const WORKSPACE_PREFIX: &str = "env:";

/// The suffix of a native lockfile (`use_lockfile = true`): `<state key>.tflock`.
pub(crate) const LOCKFILE_SUFFIX: &str = ".tflock";

/// Splits a DynamoDB `LockID` (`<bucket>/<state key>`) on its first `/`. Bucket names
/// cannot contain `/`; state keys can.
pub(crate) fn split_lock_id(lock_id: &str) -> Option<(&str, &str)> {
    match lock_id.split_once('/') {
        Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => Some((bucket, key)),
        _ => None,
    }
}

/// The workspace a state key belongs to: `env:/<ws>/<key>` is workspace `<ws>`, anything
/// else the default workspace. A custom `workspace_key_prefix` cannot be recognised from
/// the key alone, so such states show as `default` (best effort).
pub(crate) fn workspace_of(state_key: &str) -> String {
    let ws = state_key
        .strip_prefix(WORKSPACE_PREFIX)
        .and_then(|rest| rest.strip_prefix('/'))
        .and_then(|rest| rest.split_once('/'))
        .filter(|(ws, key)| !ws.is_empty() && !key.is_empty())
        .map(|(ws, _)| ws);
    ws.unwrap_or("default").to_string()
}

/// The state key a lockfile protects, when `key` is a lockfile.
pub(crate) fn lockfile_state_key(key: &str) -> Option<&str> {
    key.strip_suffix(LOCKFILE_SUFFIX).filter(|k| !k.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_ids_split_on_the_first_slash() {
        assert_eq!(
            split_lock_id("b/app/terraform.tfstate"),
            Some(("b", "app/terraform.tfstate"))
        );
        assert_eq!(
            split_lock_id("b/env:/dev/terraform.tfstate"),
            Some(("b", "env:/dev/terraform.tfstate"))
        );
        assert_eq!(split_lock_id("b/k-md5"), Some(("b", "k-md5")));
        assert_eq!(split_lock_id("no-slash"), None);
        assert_eq!(split_lock_id("/key"), None);
        assert_eq!(split_lock_id("bucket/"), None);
    }

    #[test]
    fn workspaces_come_from_env_keys() {
        assert_eq!(workspace_of("terraform.tfstate"), "default");
        assert_eq!(workspace_of("app/terraform.tfstate"), "default");
        assert_eq!(workspace_of("env:/dev/terraform.tfstate"), "dev");
        assert_eq!(workspace_of("env:/prod/team/app.tfstate"), "prod");
        assert_eq!(workspace_of("env:/dev"), "default");
        assert_eq!(workspace_of("env://x"), "default");
        assert_eq!(workspace_of("env:dev/x"), "default");
        assert_eq!(workspace_of("workspaces/dev/x"), "default");
    }

    #[test]
    fn lockfiles_name_their_state() {
        assert_eq!(
            lockfile_state_key("env:/dev/terraform.tfstate.tflock"),
            Some("env:/dev/terraform.tfstate")
        );
        assert_eq!(lockfile_state_key("terraform.tfstate"), None);
        assert_eq!(lockfile_state_key(".tflock"), None);
    }
}
