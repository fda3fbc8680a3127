//! Terraform's keys for the consul backend (internal/backend/remote-state/consul):
//! state `<path>` for `default` and `<path>-env:<ws>` otherwise (`keyEnvPrefix`,
//! `statePath`); the lock keys `<state key>/.lock` and `<state key>/.lockinfo`, with the
//! state key's trailing `/` trimmed (`lockPath`).

pub const LOCK_SUFFIX: &str = "/.lock";
pub const INFO_SUFFIX: &str = "/.lockinfo";
pub const ENV_PREFIX: &str = "-env:";
/// `api.LockFlagValue` (hashicorp/consul api/lock.go): the flags Terraform's lock key
/// carries; a `.lock` with other flags makes Terraform fail ("Existing key does not
/// match lock use").
pub const LOCK_FLAGS: u64 = 0x2ddc_cbc0_58a5_0c18;

/// The state key of `workspace` under the backend's `path`.
pub fn state_key(path: &str, workspace: &str) -> String {
    if workspace == "default" {
        path.to_string()
    } else {
        format!("{path}{ENV_PREFIX}{workspace}")
    }
}

/// The key the lock keys hang under (`lockPath`).
pub fn lock_stem(state_key: &str) -> String {
    state_key.trim_end_matches('/').to_string()
}

/// Which lock key `key` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Lock,
    Info,
}

/// A lock key of the backend at `path`: `(workspace, stem, part)`. Everything else
/// (states, chunks, `<path>foo` keys that only share the text) is `None`.
pub fn classify(path: &str, key: &str) -> Option<(String, String, Part)> {
    let (stem, part) = match (key.strip_suffix(LOCK_SUFFIX), key.strip_suffix(INFO_SUFFIX)) {
        (Some(s), _) => (s, Part::Lock),
        (_, Some(s)) => (s, Part::Info),
        _ => return None,
    };
    if stem == lock_stem(path) {
        return Some(("default".into(), stem.to_string(), part));
    }
    let ws = stem.strip_prefix(&format!("{path}{ENV_PREFIX}"))?;
    // Workspace names hold no `/` (Terraform lists them with separator "/").
    (!ws.is_empty() && !ws.contains('/') && lock_stem(&state_key(path, ws)) == stem)
        .then(|| (ws.to_string(), stem.to_string(), part))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_as_terraform_names_them() {
        assert_eq!(state_key("tf/app", "default"), "tf/app");
        assert_eq!(state_key("tf/app", "dev"), "tf/app-env:dev");
        assert_eq!(lock_stem("tf/app/"), "tf/app");
        assert_eq!(
            classify("tf/app", "tf/app/.lock"),
            Some(("default".into(), "tf/app".into(), Part::Lock))
        );
        assert_eq!(
            classify("tf/app", "tf/app-env:dev/.lockinfo"),
            Some(("dev".into(), "tf/app-env:dev".into(), Part::Info))
        );
        // A trailing slash in path: the default lock is `<path>.lock` with one slash.
        assert_eq!(
            classify("tf/app/", "tf/app/.lock"),
            Some(("default".into(), "tf/app".into(), Part::Lock))
        );
        for other in [
            "tf/app",
            "tf/apple/.lock",
            "tf/app/sub/.lock",
            "tf/app-env:dev/x/.lock",
            "tf/app-env:/.lock",
            "tf/app/tfstate.abc/0",
            "tf/app/.lockx",
        ] {
            assert_eq!(classify("tf/app", other), None, "{other}");
        }
    }
}
