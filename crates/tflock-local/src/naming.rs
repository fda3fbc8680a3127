//! File names of Terraform's local backend (internal/states/statemgr/filesystem*.go):
//! `terraform.tfstate` for `default`, `terraform.tfstate.d/<ws>/terraform.tfstate` for the
//! other workspaces, and `.<state file name>.lock.info` beside a locked state.

/// The default workspace's state file (and every workspace's, in its own directory).
pub const STATE_FILE: &str = "terraform.tfstate";
/// Where the other workspaces live, one directory each.
pub const WORKSPACES_DIR: &str = "terraform.tfstate.d";
const INFO_PREFIX: &str = ".";
const INFO_SUFFIX: &str = ".lock.info";

/// The lock info file of a state file: `terraform.tfstate` -> `.terraform.tfstate.lock.info`.
pub fn info_name(state: &str) -> String {
    format!("{INFO_PREFIX}{state}{INFO_SUFFIX}")
}

/// The state file a lock info file belongs to, when `name` is one.
pub fn state_of_info(name: &str) -> Option<&str> {
    name.strip_prefix(INFO_PREFIX)?
        .strip_suffix(INFO_SUFFIX)
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_names_round_trip() {
        assert_eq!(info_name(STATE_FILE), ".terraform.tfstate.lock.info");
        assert_eq!(
            state_of_info(".terraform.tfstate.lock.info"),
            Some("terraform.tfstate")
        );
        assert_eq!(
            state_of_info(".prod.tfstate.lock.info"),
            Some("prod.tfstate")
        );
        assert_eq!(state_of_info("..lock.info"), None);
        assert_eq!(state_of_info("terraform.tfstate.lock.info"), None);
        assert_eq!(state_of_info(".terraform.tfstate.lock.info.bak"), None);
    }
}
