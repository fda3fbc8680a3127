//! Credentials, taken as Terraform's http backend takes them (`username`/`password`,
//! `TF_HTTP_USERNAME`/`TF_HTTP_PASSWORD`, Basic auth only when a username is set), and for
//! GitLab also from `GITLAB_TOKEN`. Never shown: `Debug` hides them, and errors name
//! where a secret came from, never the secret.

use base64::Engine;
use tflock_core::Target;

/// Options that hold secrets: refused on a `-t` URL (it is shown everywhere), accepted
/// from tflock.toml or a backend block.
pub(crate) const SECRET_OPTIONS: &[&str] = &["password", "token", "client_private_key_pem"];

pub(crate) const SECRET_HINT: &str =
    "set it in tflock.toml (token = \"...\" for GitLab, password = \"...\"), or use GITLAB_TOKEN / TF_HTTP_PASSWORD";

#[derive(Clone, Default)]
pub(crate) struct Credentials {
    username: Option<String>,
    secret: Option<String>,
    /// Where the secret came from, for hints: `GITLAB_TOKEN`, `the target's password`.
    pub from: Option<&'static str>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("from", &self.from)
            .finish()
    }
}

fn option(target: &Target, key: &str) -> Option<String> {
    target
        .param(key)
        .map(str::to_string)
        .filter(|v| !v.trim().is_empty())
}

impl Credentials {
    /// Terraform's http backend: `username`/`password` (the target's options, from the
    /// backend block or tflock.toml), else `TF_HTTP_USERNAME`/`TF_HTTP_PASSWORD`.
    pub fn for_http(target: &Target, env: &dyn Fn(&str) -> Option<String>) -> Credentials {
        let username = option(target, "username").or_else(|| env("TF_HTTP_USERNAME"));
        let (secret, from) = match option(target, "password") {
            Some(p) => (Some(p), Some("the target's password")),
            None => match env("TF_HTTP_PASSWORD") {
                Some(p) => (Some(p), Some("TF_HTTP_PASSWORD")),
                None => (None, None),
            },
        };
        Credentials {
            username,
            secret,
            from,
        }
    }

    /// GitLab: the token is the target's `token` or `password` option, else `GITLAB_TOKEN`,
    /// else `TF_HTTP_PASSWORD` (what CI configurations set for terraform). GitLab ignores
    /// the Basic username of a personal access token; `gitlab-ci-token` marks a job token.
    pub fn for_gitlab(target: &Target, env: &dyn Fn(&str) -> Option<String>) -> Credentials {
        let username = option(target, "username")
            .or_else(|| env("TF_HTTP_USERNAME"))
            .or_else(|| Some("tflock".to_string()));
        let found = option(target, "token")
            .map(|t| (t, "the target's token"))
            .or_else(|| option(target, "password").map(|t| (t, "the target's password")))
            .or_else(|| env("GITLAB_TOKEN").map(|t| (t, "GITLAB_TOKEN")))
            .or_else(|| env("TF_HTTP_PASSWORD").map(|t| (t, "TF_HTTP_PASSWORD")));
        let (secret, from) = match found {
            Some((t, from)) => (Some(t), Some(from)),
            None => (None, None),
        };
        Credentials {
            username,
            secret,
            from,
        }
    }

    /// `Authorization: Basic ...` when a username is set, as Terraform's http client does.
    pub fn basic(&self) -> Option<String> {
        let user = self.username.as_deref()?;
        let pass = self.secret.as_deref().unwrap_or("");
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        ))
    }

    /// `Authorization: Bearer <token>` (GitLab's GraphQL and project API).
    pub fn bearer(&self) -> Option<String> {
        self.secret.as_deref().map(|t| format!("Bearer {t}"))
    }

    pub fn has_secret(&self) -> bool {
        self.secret.is_some()
    }

    /// Values to blank out of anything shown (a server may echo a header back).
    pub fn secrets(&self) -> Vec<&str> {
        self.secret.iter().map(String::as_str).collect()
    }

    pub fn is_job_token(&self) -> bool {
        self.username.as_deref() == Some("gitlab-ci-token")
    }
}

/// The process environment, trimmed, empty as unset.
pub(crate) use tflock_core::env_var as process_env;

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn gitlab_token_order_options_then_gitlab_token_then_tf_http_password() {
        let vars = [
            ("GITLAB_TOKEN", "glpat-env"),
            ("TF_HTTP_PASSWORD", "tf-env"),
        ];
        let t = Target::parse("gitlab://h/g/p").unwrap();
        let c = Credentials::for_gitlab(&t, &env(&vars));
        assert_eq!(c.bearer().as_deref(), Some("Bearer glpat-env"));
        assert_eq!(c.from, Some("GITLAB_TOKEN"));
        let c = Credentials::for_gitlab(&t, &env(&vars[1..]));
        assert_eq!(c.from, Some("TF_HTTP_PASSWORD"));
        let t = t.with("password", Some("from-block"));
        let c = Credentials::for_gitlab(&t, &env(&vars));
        assert_eq!(c.bearer().as_deref(), Some("Bearer from-block"));
        let t = t.with("token", Some("from-toml"));
        assert_eq!(
            Credentials::for_gitlab(&t, &env(&vars)).bearer().as_deref(),
            Some("Bearer from-toml")
        );
        // Basic: any username with the token as password (GitLab ignores the name).
        let c = Credentials::for_gitlab(&Target::parse("gitlab://h/g/p").unwrap(), &env(&[]));
        assert!(!c.has_secret());
        assert_eq!(c.basic().as_deref(), Some("Basic dGZsb2NrOg=="));
    }

    #[test]
    fn http_basic_auth_only_with_a_username_as_terraform() {
        let t = Target::parse("https://s/lock").unwrap();
        let c = Credentials::for_http(&t, &env(&[("TF_HTTP_PASSWORD", "p")]));
        assert_eq!(c.basic(), None);
        let c = Credentials::for_http(
            &t,
            &env(&[("TF_HTTP_USERNAME", "u"), ("TF_HTTP_PASSWORD", "p")]),
        );
        assert_eq!(c.basic().as_deref(), Some("Basic dTpw"));
        let t = t.with("username", Some("a")).with("password", Some("b"));
        let c = Credentials::for_http(&t, &env(&[("TF_HTTP_PASSWORD", "p")]));
        assert_eq!(c.basic().as_deref(), Some("Basic YTpi"));
    }

    #[test]
    fn debug_hides_the_secret() {
        let t = Target::parse("gitlab://h/g/p").unwrap();
        let c = Credentials::for_gitlab(&t, &env(&[("GITLAB_TOKEN", "glpat-s3cret")]));
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}
