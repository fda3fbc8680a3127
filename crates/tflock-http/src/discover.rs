//! The http backend as a driver: `gitlab://`, `http://` and `https://` targets, the
//! `backend "http"` block (and Terraform's `TF_HTTP_*` variables), and what people get
//! wrong about http lock IDs.

use crate::naming::{parse_gitlab_address, segment, split_userinfo, state_url, GitLabAddress};
use serde::Deserialize;
use tflock_core::block::de;
use tflock_core::{BackendBlock, Error, Kind, Scheme, Target};
use url::Url;

/// The settings of `backend "http"` tflock uses (update_method and retries are not).
#[derive(Deserialize, Default)]
struct Settings {
    #[serde(default, deserialize_with = "de::text")]
    address: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    lock_address: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    unlock_address: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    lock_method: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    unlock_method: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    update_method: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    username: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    password: Option<String>,
    #[serde(default, deserialize_with = "de::flag")]
    skip_cert_verification: Option<bool>,
    #[serde(default, deserialize_with = "de::text")]
    client_ca_certificate_pem: Option<String>,
    /// Passed on so the store refuses them instead of ignoring them.
    #[serde(default, deserialize_with = "de::text")]
    client_certificate_pem: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    client_private_key_pem: Option<String>,
}

/// `gitlab://HOST[:PORT]/PROJECT?state=NAME` for a state address, or the address itself
/// when GitLab lives under a relative root (`https://h/gitlab/api/v4/...`), which a
/// `gitlab://` target cannot name.
fn gitlab_target(addr: &GitLabAddress) -> String {
    let host = match addr.base.port() {
        Some(p) => format!("{}:{p}", addr.base.host_str().unwrap_or("")),
        None => addr.base.host_str().unwrap_or("").to_string(),
    };
    if addr.base.path() != "/" {
        return state_url(&addr.base, &addr.project, &addr.state).to_string();
    }
    let mut url = format!(
        "gitlab://{host}/{}?state={}",
        addr.project,
        segment(&addr.state)
    );
    if addr.base.scheme() == "http" {
        url.push_str("&scheme=http");
    }
    url
}

/// The targets of the block, with the environment read through `env`.
pub fn discover_with(
    block: &BackendBlock,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Target>, Error> {
    let s: Settings = block.settings()?;
    let Some(address) = s.address.clone().or_else(|| env("TF_HTTP_ADDRESS")) else {
        return Err(block.missing(&["address"]));
    };
    let bad = |setting: &str| {
        Error::new(
            Kind::Usage,
            format!(
                "the http backend ({}) has a {setting} that is not an http(s) URL",
                block.source
            ),
        )
    };
    let http_url = |text: &str, setting: &str| {
        Url::parse(text)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .map(|u| split_userinfo(&u))
            .ok_or_else(|| bad(setting))
    };
    let (address_url, address_creds) = http_url(&address, "address")?;
    let lock = s
        .lock_address
        .clone()
        .or_else(|| env("TF_HTTP_LOCK_ADDRESS"))
        .map(|l| http_url(&l, "lock_address"))
        .transpose()?;
    // Go sends the `user:password@` of a URL as Basic auth; tflock takes them as the
    // block's username/password (which win) and never shows them.
    let url_creds = lock.as_ref().and_then(|(_, c)| c.clone()).or(address_creds);
    let username = s
        .username
        .clone()
        .or_else(|| url_creds.as_ref().map(|c| c.0.clone()));
    let password = s
        .password
        .clone()
        .or_else(|| url_creds.as_ref().map(|c| c.1.clone()));
    let hidden = |t: Target| {
        t.with("username", username.clone())
            .with("password", password.clone())
            .with(
                "skip_cert_verification",
                s.skip_cert_verification.map(|b| b.to_string()),
            )
            .with(
                "client_ca_certificate_pem",
                s.client_ca_certificate_pem.clone(),
            )
            .with("client_certificate_pem", s.client_certificate_pem.clone())
            .with("client_private_key_pem", s.client_private_key_pem.clone())
    };
    // GitLab-managed state: the project's state, whatever lock settings say (other
    // people's configurations lock it too).
    if let Some(addr) = parse_gitlab_address(&address_url) {
        let target = Target::parse(&gitlab_target(&addr))?;
        return Ok(vec![hidden(target)]);
    }
    let Some((lock, _)) = lock else {
        return Err(Error::new(
            Kind::Usage,
            format!(
                "the http backend ({}) sets no lock_address: Terraform takes no lock for this state, so there is none to list or break",
                block.source
            ),
        ));
    };
    let target = hidden(Target::parse(lock.as_str())?)
        .with(
            "unlock_address",
            s.unlock_address
                .clone()
                .or_else(|| env("TF_HTTP_UNLOCK_ADDRESS")),
        )
        .with("lock_method", s.lock_method.clone())
        .with("unlock_method", s.unlock_method.clone())
        .with("update_method", s.update_method.clone())
        .with("address", Some(address_url.to_string()));
    Ok(vec![target])
}

pub const SCHEMES: &[Scheme] = &[
    Scheme {
        name: "gitlab",
        backend: "gitlab",
        form: "gitlab://HOST/GROUP/PROJECT[?state=NAME]",
        about: "GitLab-managed Terraform state: the project's locked states (IDs read by asking for the lock)",
    },
    Scheme {
        name: "https",
        backend: "http",
        form: "https://LOCK_ADDRESS",
        about: "the http backend: one state's lock address (a GitLab state address is read as GitLab)",
    },
    Scheme {
        name: "http",
        backend: "http",
        form: "http://LOCK_ADDRESS",
        about: "the http backend over plain HTTP",
    },
];

/// The holder's ID is not in the Lock Info block terraform prints for http.
pub fn id_hint(_target: &Target, _query: &str) -> Option<String> {
    Some("Terraform up to 1.14 prints the holder's ID of an http lock after `already locked: ID=`; the Lock Info block below it is the refused run's own".to_string())
}

pub fn target_for_path(path: &str) -> Option<String> {
    let url = Url::parse(path).ok()?;
    parse_gitlab_address(&url).map(|addr| gitlab_target(&addr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DRIVER;
    use serde_json::json;

    fn block(config: serde_json::Value) -> BackendBlock {
        BackendBlock::new("http", config.as_object().unwrap().clone())
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn gitlab_settings_become_a_gitlab_target_scoped_to_the_state() {
        let b = block(json!({
            "address": "https://gitlab.example.com/api/v4/projects/42/terraform/state/prod",
            "lock_address": "https://gitlab.example.com/api/v4/projects/42/terraform/state/prod/lock",
            "unlock_address": "https://gitlab.example.com/api/v4/projects/42/terraform/state/prod/lock",
            "lock_method": "POST", "unlock_method": "DELETE",
            "username": "alice", "password": "glpat-secret", "retry_wait_min": 5,
        }));
        let t = discover_with(&b, &no_env).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].url, "gitlab://gitlab.example.com/42?state=prod");
        assert_eq!(t[0].param("password"), Some("glpat-secret"));
        assert!(!t[0].url.contains("glpat"));
        // Plain http, a port, a path project and a name that needs escaping.
        let b = block(json!({
            "address": "http://127.0.0.1:8080/api/v4/projects/grp%2Fapp/terraform/state/env%2Fa%26b",
        }));
        let t = discover_with(&b, &no_env).unwrap();
        assert_eq!(
            t[0].url,
            "gitlab://127.0.0.1:8080/grp/app?state=env%2Fa%26b&scheme=http"
        );
        assert_eq!(t[0].param("state"), Some("env/a&b"));
        // Under a relative root the address itself is the target (read as GitLab).
        let b = block(json!({
            "address": "https://h/gitlab/api/v4/projects/7/terraform/state/s",
        }));
        let t = discover_with(&b, &no_env).unwrap();
        assert_eq!(
            t[0].url,
            "https://h/gitlab/api/v4/projects/7/terraform/state/s"
        );
    }

    #[test]
    fn generic_settings_and_terraforms_variables() {
        let b = block(json!({
            "address": "https://state.example.com/s/prod",
            "lock_address": "https://state.example.com/s/prod/lock?team=a",
            "unlock_address": "https://state.example.com/s/prod/lock?team=a",
            "username": "u", "password": "p", "skip_cert_verification": true,
        }));
        let t = &discover_with(&b, &no_env).unwrap()[0];
        // The address's own query values are masked in the name shown, kept in `raw`.
        assert_eq!(t.url, "https://state.example.com/s/prod/lock?team=***");
        assert_eq!(t.raw, "https://state.example.com/s/prod/lock?team=a");
        assert_eq!(
            t.param("unlock_address"),
            Some("https://state.example.com/s/prod/lock?team=a")
        );
        assert_eq!(t.param("address"), Some("https://state.example.com/s/prod"));
        assert_eq!(t.param("skip_cert_verification"), Some("true"));
        assert_eq!(t.param("lock_method"), None);
        let env = |k: &str| match k {
            "TF_HTTP_ADDRESS" => Some("http://s/a".to_string()),
            "TF_HTTP_LOCK_ADDRESS" => Some("http://s/a/lock".to_string()),
            "TF_HTTP_UNLOCK_ADDRESS" => Some("http://s/a/unlock".to_string()),
            _ => None,
        };
        let t = &discover_with(&block(json!({})), &env).unwrap()[0];
        assert_eq!(t.url, "http://s/a/lock");
        assert_eq!(t.param("unlock_address"), Some("http://s/a/unlock"));
    }

    #[test]
    fn credentials_in_addresses_become_hidden_options() {
        let b = block(json!({
            "address": "https://u:p4ss@state.example.com/s/prod",
            "lock_address": "https://u:p4ss@state.example.com/s/prod/lock",
            "unlock_address": "https://u:p4ss@state.example.com/s/prod/lock",
        }));
        let t = &discover_with(&b, &no_env).unwrap()[0];
        assert_eq!(t.url, "https://state.example.com/s/prod/lock");
        assert_eq!(t.param("address"), Some("https://state.example.com/s/prod"));
        assert_eq!(
            (t.param("username"), t.param("password")),
            (Some("u"), Some("p4ss"))
        );
        // The block's own username/password win.
        let b = block(json!({
            "address": "https://gitlab.com/api/v4/projects/1/terraform/state/s",
            "lock_address": "https://ci:tok@gitlab.com/api/v4/projects/1/terraform/state/s/lock",
            "password": "from-block",
        }));
        let t = &discover_with(&b, &no_env).unwrap()[0];
        assert_eq!(t.url, "gitlab://gitlab.com/1?state=s");
        assert_eq!(
            (t.param("username"), t.param("password")),
            (Some("ci"), Some("from-block"))
        );
        let b =
            block(json!({"address": "https://u:p@h/gitlab/api/v4/projects/7/terraform/state/s"}));
        let t = &discover_with(&b, &no_env).unwrap()[0];
        assert_eq!(
            t.url,
            "https://h/gitlab/api/v4/projects/7/terraform/state/s"
        );
    }

    #[test]
    fn no_lock_address_no_locks_and_a_missing_address_are_usage_errors() {
        let e = discover_with(&block(json!({"address": "https://s/a"})), &no_env).unwrap_err();
        assert_eq!(e.kind(), Kind::Usage);
        assert!(e.to_string().contains("sets no lock_address"), "{e}");
        let e = discover_with(&block(json!({})), &no_env).unwrap_err();
        assert!(e.to_string().contains("does not set address"), "{e}");
        let e = discover_with(
            &block(json!({"address": "https://s/a", "lock_address": "ftp://s/l"})),
            &no_env,
        )
        .unwrap_err();
        assert!(e.to_string().contains("lock_address that is not"), "{e}");
    }

    #[test]
    fn gitlab_paths_name_their_target() {
        assert_eq!(
            DRIVER
                .target_for_path("https://gitlab.com/api/v4/projects/g%2Fp/terraform/state/prod")
                .as_deref(),
            Some("gitlab://gitlab.com/g/p?state=prod")
        );
        assert_eq!(DRIVER.target_for_path("s3://b/k"), None);
        assert_eq!(DRIVER.target_for_path(""), None);
    }
}
