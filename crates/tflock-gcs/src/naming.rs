//! Object names of the gcs backend (internal/backend/remote-state/gcs): state
//! `<prefix><ws>.tfstate`, lock `<prefix><ws>.tflock` (not `.tfstate.tflock`).

pub const LOCK_SUFFIX: &str = ".tflock";
pub const STATE_SUFFIX: &str = ".tfstate";

/// The prefix as Terraform normalises `prefix`: leading `/` stripped, trailing `/` added
/// if non-empty. `gs://b/app` therefore covers `app/...`, never `apple/...`.
pub fn normalize_prefix(prefix: &str) -> String {
    let p = prefix.trim_start_matches('/');
    if p.is_empty() || p.ends_with('/') {
        p.to_string()
    } else {
        format!("{p}/")
    }
}

/// A lock object found under the listed prefix, split the way Terraform names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockName {
    /// The workspace (`default`, `dev`, ...).
    pub workspace: String,
    /// The state object this lock protects: `<tf prefix><ws>.tfstate`.
    pub state_object: String,
    /// Under a deeper prefix than the one listed (another backend configuration's).
    pub nested: bool,
}

/// `Some` only for `<anything under prefix><ws>.tflock` with a non-empty workspace. Every
/// other name (state objects, anything else) is not a lock and must never be touched.
pub fn parse_lock_name(prefix: &str, object: &str) -> Option<LockName> {
    let rest = object.strip_prefix(prefix)?;
    let stem = rest.strip_suffix(LOCK_SUFFIX)?;
    let (dir, workspace) = match stem.rfind('/') {
        Some(i) => (&stem[..=i], &stem[i + 1..]),
        None => ("", stem),
    };
    if workspace.is_empty() {
        return None;
    }
    Some(LockName {
        workspace: workspace.to_string(),
        state_object: format!("{prefix}{dir}{workspace}{STATE_SUFFIX}"),
        nested: !dir.is_empty(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_normalised_like_terraform() {
        assert_eq!(normalize_prefix(""), "");
        assert_eq!(normalize_prefix("/"), "");
        assert_eq!(normalize_prefix("app"), "app/");
        assert_eq!(normalize_prefix("/team/app/"), "team/app/");
    }

    #[test]
    fn only_lock_objects_parse() {
        assert_eq!(
            parse_lock_name("app/", "app/default.tflock"),
            Some(LockName {
                workspace: "default".into(),
                state_object: "app/default.tfstate".into(),
                nested: false,
            })
        );
        assert_eq!(
            parse_lock_name("", "team/app/dev.tflock"),
            Some(LockName {
                workspace: "dev".into(),
                state_object: "team/app/dev.tfstate".into(),
                nested: true,
            })
        );
        assert_eq!(parse_lock_name("app/", "app/default.tfstate"), None);
        assert_eq!(
            parse_lock_name("app/", "app/default.tfstate.tflock").map(|n| n.workspace),
            Some("default.tfstate".into())
        );
        assert_eq!(parse_lock_name("app/", "apple/default.tflock"), None);
        assert_eq!(parse_lock_name("app/", "app/.tflock"), None);
        assert_eq!(parse_lock_name("app/", "app/x/.tflock"), None);
        assert_eq!(parse_lock_name("app/", "app/default.tflock.bak"), None);
    }
}
