//! How the s3 backend names things: state keys, workspace keys, DynamoDB `LockID`s and
//! lockfile keys. Pure functions, unit-tested here; the one place these rules live.

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

/// One backend configuration's states: `key` for the default workspace and
/// `<workspace_key_prefix>/<ws>/<key>` for the others (the s3 backend's `Workspaces()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StateKeys {
    pub key: String,
    /// `workspace_key_prefix`, without trailing `/` (default `env:`).
    pub prefix: String,
}

impl StateKeys {
    pub fn new(key: &str, prefix: Option<&str>) -> Self {
        StateKeys {
            key: key.trim_start_matches('/').to_string(),
            prefix: prefix
                .unwrap_or(WORKSPACE_PREFIX)
                .trim_end_matches('/')
                .to_string(),
        }
    }

    /// The workspace of `state_key` when it is one of this configuration's states.
    pub fn workspace_of(&self, state_key: &str) -> Option<String> {
        if state_key == self.key {
            return Some("default".into());
        }
        let ws = state_key
            .strip_prefix(&self.prefix)?
            .strip_prefix('/')?
            .strip_suffix(&self.key)?
            .strip_suffix('/')?;
        (!ws.is_empty() && !ws.contains('/')).then(|| ws.to_string())
    }

    /// The configuration a scoped target names (`?key=`, `?workspace_key_prefix=`).
    pub fn from_target(target: &tflock_core::Target) -> Result<Option<Self>, tflock_core::Error> {
        let prefix = target.param("workspace_key_prefix");
        match target.param("key") {
            Some(key) => Ok(Some(StateKeys::new(key, prefix))),
            None if prefix.is_some() => Err(tflock_core::Error::usage(
                &target.url,
                "?workspace_key_prefix= needs ?key= (together they name one configuration's states)",
            )),
            None => Ok(None),
        }
    }

    /// What Terraform lists to find the workspaces: `<workspace_key_prefix>/`.
    pub fn listing_prefix(&self) -> String {
        format!("{}/", self.prefix)
    }

    /// The state key of `workspace`.
    pub fn state_key(&self, workspace: &str) -> String {
        if workspace == "default" {
            self.key.clone()
        } else {
            format!("{}/{workspace}/{}", self.prefix, self.key)
        }
    }
}

/// The workspace a state key belongs to when no backend configuration says: `env:/<ws>/<key>` is workspace `<ws>`, anything
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
    fn a_configuration_knows_its_own_workspaces() {
        let k = StateKeys::new("app/terraform.tfstate", None);
        assert_eq!(
            k.workspace_of("app/terraform.tfstate").as_deref(),
            Some("default")
        );
        assert_eq!(
            k.workspace_of("env:/dev/app/terraform.tfstate").as_deref(),
            Some("dev")
        );
        assert_eq!(k.workspace_of("other/terraform.tfstate"), None);
        assert_eq!(k.workspace_of("env:/a/b/app/terraform.tfstate"), None);
        assert_eq!(k.workspace_of("env://app/terraform.tfstate"), None);
        assert_eq!(k.state_key("dev"), "env:/dev/app/terraform.tfstate");
        let custom = StateKeys::new("k", Some("workspaces/"));
        assert_eq!(
            custom.workspace_of("workspaces/prod/k").as_deref(),
            Some("prod")
        );
        assert_eq!(custom.workspace_of("env:/prod/k"), None);
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
