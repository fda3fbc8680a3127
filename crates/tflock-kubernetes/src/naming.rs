//! Terraform's names for the kubernetes backend (internal/backend/remote-state/kubernetes,
//! `client.go` `createSecretName`, `createLeaseName`, `getLabels`): state Secret
//! `tfstate-<ws>-<suffix>`, lock Lease `lock-tfstate-<ws>-<suffix>`, and the labels both
//! carry.

/// `tfstateKey`: `"true"` on every Secret and Lease Terraform creates.
pub const LABEL_TFSTATE: &str = "tfstate";
/// `tfstateSecretSuffixKey`: the backend's `secret_suffix`.
pub const LABEL_SUFFIX: &str = "tfstateSecretSuffix";
/// `tfstateWorkspaceKey`: the workspace.
pub const LABEL_WORKSPACE: &str = "tfstateWorkspace";
/// `tfstateLockInfoAnnotation`: the LockInfo JSON while locked.
pub const LOCK_INFO_ANNOTATION: &str = "app.terraform.io/lock-info";
/// Every lock Lease's name starts with this (`"lock-" + createSecretName(0)`).
pub const LEASE_PREFIX: &str = "lock-tfstate-";

/// The Lease Terraform locks `workspace` of a backend with `suffix` on.
pub fn lease_name(workspace: &str, suffix: &str) -> String {
    format!("{LEASE_PREFIX}{workspace}-{suffix}")
}

/// The Secret that holds the state of `workspace` (the first one, when chunked).
pub fn secret_name(workspace: &str, suffix: &str) -> String {
    format!("tfstate-{workspace}-{suffix}")
}

/// The label selector of the Leases to list: Terraform's own `tfstate=true` (what its
/// `Workspaces()` selects Secrets by), scoped to one `secret_suffix` when given.
pub fn selector(suffix: Option<&str>) -> String {
    match suffix {
        Some(s) => format!("{LABEL_TFSTATE}=true,{LABEL_SUFFIX}={s}"),
        None => format!("{LABEL_TFSTATE}=true"),
    }
}

/// Terraform refuses a `secret_suffix` ending in `-<number>` (`hasNumericSuffix`): it
/// would collide with the `-part-<n>` Secrets of a chunked state.
pub fn suffix_problem(suffix: &str) -> Option<String> {
    if suffix.is_empty() {
        return Some("secret_suffix is empty".into());
    }
    if let Some((_, last)) = suffix.rsplit_once('-') {
        if !last.is_empty() && last.parse::<i64>().is_ok() {
            return Some(format!(
                "secret_suffix {suffix:?} ends in -<number>, which Terraform refuses"
            ));
        }
    }
    if !is_dns_label_text(suffix) {
        return Some(format!(
            "secret_suffix {suffix:?} cannot be part of a Kubernetes name (lower-case letters, digits, '-' and '.')"
        ));
    }
    None
}

/// A namespace must be a DNS-1123 label (Kubernetes API conventions, `IsDNS1123Label`):
/// at most 63 lower-case alphanumerics or '-', starting and ending alphanumeric.
pub fn namespace_problem(ns: &str) -> Option<String> {
    let ok = !ns.is_empty()
        && ns.len() <= 63
        && ns
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !ns.starts_with('-')
        && !ns.ends_with('-');
    (!ok).then(|| {
        format!("namespace {ns:?} is not a Kubernetes namespace name (DNS-1123 label: a-z, 0-9, '-', at most 63)")
    })
}

/// Characters a DNS-1123 subdomain may hold (names of Secrets and Leases).
fn is_dns_label_text(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// The workspace and suffix of a lock Lease, from its labels (the name alone is ambiguous:
/// both may contain `-`), checked against the name Terraform would give them.
pub fn split_lease(
    name: &str,
    workspace_label: Option<&str>,
    suffix_label: Option<&str>,
) -> Option<(String, String)> {
    let (ws, suffix) = (workspace_label?, suffix_label?);
    (lease_name(ws, suffix) == name).then(|| (ws.to_string(), suffix.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_terraform_makes_them() {
        assert_eq!(lease_name("default", "state"), "lock-tfstate-default-state");
        assert_eq!(secret_name("dev", "app"), "tfstate-dev-app");
        assert_eq!(selector(None), "tfstate=true");
        assert_eq!(
            selector(Some("app")),
            "tfstate=true,tfstateSecretSuffix=app"
        );
    }

    #[test]
    fn suffixes_terraform_refuses_are_refused() {
        assert!(suffix_problem("state").is_none());
        assert!(suffix_problem("my-app.v2").is_none());
        assert!(suffix_problem("app-2").unwrap().contains("-<number>"));
        assert!(suffix_problem("App").is_some());
        assert!(suffix_problem("").is_some());
        assert!(namespace_problem("team-a").is_none());
        assert!(namespace_problem("Team").is_some());
        assert!(namespace_problem("-a").is_some());
        assert!(namespace_problem(&"a".repeat(64)).is_some());
    }

    #[test]
    fn workspace_and_suffix_come_from_labels_matching_the_name() {
        assert_eq!(
            split_lease("lock-tfstate-my-ws-my-app", Some("my-ws"), Some("my-app")),
            Some(("my-ws".into(), "my-app".into()))
        );
        // Labels that do not give the name back are not trusted.
        assert_eq!(
            split_lease("lock-tfstate-my-ws-my-app", Some("my"), Some("app")),
            None
        );
        assert_eq!(split_lease("lock-tfstate-a-b", None, Some("b")), None);
    }
}
