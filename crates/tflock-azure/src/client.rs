//! One set of SDK clients for `azblob://ACCOUNT/CONTAINER[/PREFIX]`: the container client
//! used for listing and per-blob clients sharing the same transport, retry budget and
//! credential.

pub(crate) mod transport;

use crate::auth::shared_key::SharedKeyPolicy;
use crate::auth::{self, Auth};
use crate::error::{self, Redactor};
use crate::naming;
use azure_core::credentials::TokenCredential;
use azure_core::http::{ClientOptions, RetryOptions, Url};
use azure_storage_blob::{
    BlobClient, BlobClientOptions, BlobContainerClient, BlobContainerClientOptions,
};
use std::sync::Arc;
use tflock_core::text::escape_control;
use tflock_core::{ConnectOptions, Error, Target};

pub(crate) struct Clients {
    pub target: String,
    pub account: String,
    pub container: String,
    pub prefix: String,
    /// One backend configuration's state blob (`?key=`): only `<key>` and
    /// `<key>env:<ws>` are covered.
    pub key: Option<String>,
    /// Container URL without any SAS, for messages and lock locations.
    pub container_url: Url,
    /// Container URL as sent (with the SAS query when authorizing by SAS).
    request_url: Url,
    options: BlobClientOptions,
    /// The same, without retries: for destructive requests, sent once.
    once_options: BlobClientOptions,
    credential: Option<Arc<dyn TokenCredential>>,
    pub container_client: BlobContainerClient,
    /// Blanks the credential in any text that came from the SDK.
    pub redact: Redactor,
}

/// Terraform's `metadata_host` (or `ARM_METADATA_HOSTNAME`) asks a custom cloud's metadata
/// service for its endpoints; tflock cannot yet, and must not quietly use the public cloud.
fn refuse_metadata_host(
    given: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), String> {
    let from = match given.map(str::trim).filter(|h| !h.is_empty()) {
        Some(h) => Some(("metadata_host", h.to_string())),
        None => ["ARM_METADATA_HOSTNAME", "ARM_METADATA_HOST"]
            .into_iter()
            .find_map(|n| env(n).filter(|v| !v.trim().is_empty()).map(|v| (n, v))),
    };
    match from {
        None => Ok(()),
        Some((name, host)) => Err(format!(
            "{name}={} is set: tflock cannot read a custom cloud's metadata host yet; pass the account's blob endpoint as ?endpoint=https://ACCOUNT.blob.SUFFIX (or tflock.toml endpoint = ...)",
            escape_control(host.trim())
        )),
    }
}

/// URLs resolve `.` and `..` segments (`a/../b` is `b`): such a blob name cannot be sent
/// as a path without addressing another blob.
fn has_dot_segment(name: &str) -> bool {
    name.split('/').any(|s| s == "." || s == "..")
}

/// Azure's rule for storage account names.
fn is_account_name(name: &str) -> bool {
    (3..=24).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

impl Clients {
    pub(crate) fn connect(
        target: &Target,
        opts: &ConnectOptions,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Clients, Error> {
        if target.scheme != "azblob" {
            return Err(Error::usage(
                &target.url,
                "not an Azure Blob target (expected azblob://ACCOUNT/CONTAINER[/PREFIX])",
            ));
        }
        target.refuse_secrets_in_url(
            &["access_key", "sas_token"],
            "set it in tflock.toml (access_key = \"...\") or use ARM_ACCESS_KEY / ARM_SAS_TOKEN",
        )?;
        target.check_params(&[
            "endpoint",
            "access_key",
            "sas_token",
            "environment",
            "use_azuread_auth",
            "metadata_host",
            "key",
        ])?;
        let account = target.host.trim().to_string();
        let (container, mut prefix) = match target.path.split_once('/') {
            Some((c, p)) => (c.to_string(), p.to_string()),
            None => (target.path.clone(), String::new()),
        };
        let key = target.param("key").map(str::to_string);
        if let Some(k) = &key {
            // Every workspace's blob starts with the key: list only those.
            prefix = k.clone();
        }
        if account.is_empty() || container.is_empty() {
            return Err(Error::usage(
                &target.url,
                "name the account and the container: azblob://ACCOUNT/CONTAINER[/PREFIX]",
            ));
        }
        let usage = |m: String| Error::usage(&target.url, m);
        // The account becomes the host `ACCOUNT.blob.core.windows.net`: a name from a
        // backend block such as `evil.example#` would send the credential elsewhere.
        if !is_account_name(&account) {
            return Err(usage(format!(
                "{} is not a storage account name (3 to 24 lowercase letters and digits)",
                escape_control(&account)
            )));
        }
        refuse_metadata_host(target.param("metadata_host"), env).map_err(usage)?;
        let use_azuread_auth = match target.param("use_azuread_auth") {
            None => None,
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Some(true),
                "false" | "0" => Some(false),
                _ => {
                    return Err(usage(format!(
                        "use_azuread_auth={} is not true or false",
                        escape_control(v)
                    )))
                }
            },
        };
        let given = auth::Given {
            endpoint: target.param("endpoint"),
            access_key: target.param("access_key"),
            sas_token: target.param("sas_token"),
            environment: target.param("environment"),
            use_azuread_auth,
        };
        let creds = auth::resolve(&account, given, env).map_err(usage)?;
        let mut client_options =
            transport::client_options(opts, &creds.endpoint, env).map_err(usage)?;

        let mut container_url = creds.endpoint.clone();
        container_url.set_query(None);
        match container_url.path_segments_mut() {
            Ok(mut segments) => {
                segments.pop_if_empty().push(&container);
            }
            Err(()) => return Err(usage(format!("cannot use endpoint {}", creds.endpoint))),
        }
        let mut request_url = container_url.clone();
        match &creds.auth {
            Auth::SharedKey(key) => {
                let policy = SharedKeyPolicy::new(&account, key)
                    .map_err(|m| usage(format!("{}: {m}", creds.source)))?;
                client_options.per_try_policies.push(Arc::new(policy));
            }
            Auth::Sas(sas) => request_url.set_query(Some(sas.secret())),
            Auth::Entra(_) => {}
        }
        let redact = Redactor::new(creds.secrets(env));
        let credential = creds
            .token_credential(env, &client_options)
            .map_err(|m| Error::backend(&target.url, redact.text(&m)))?;
        let container_options = BlobContainerClientOptions {
            client_options: client_options.clone(),
            ..Default::default()
        };
        let container_client = BlobContainerClient::new(
            request_url.clone(),
            credential.clone(),
            Some(container_options),
        )
        .map_err(|e| {
            Error::backend(
                &target.url,
                redact.text(&format!("cannot create the container client: {e}")),
            )
        })?;
        Ok(Clients {
            target: target.url.clone(),
            account,
            container,
            prefix,
            key,
            container_url,
            request_url,
            once_options: BlobClientOptions {
                client_options: ClientOptions {
                    retry: RetryOptions::none(),
                    ..client_options.clone()
                },
                ..Default::default()
            },
            options: BlobClientOptions {
                client_options,
                ..Default::default()
            },
            credential,
            container_client,
            redact,
        })
    }

    fn blob_url(base: &Url, name: &str) -> Url {
        let mut url = base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            // Each `/`-separated part is its own segment, so `env:/a/b` keeps its slashes.
            segments.pop_if_empty().extend(name.split('/'));
        }
        url
    }

    /// Whether blob `name` is one this target covers.
    pub(crate) fn covers(&self, name: &str) -> bool {
        match &self.key {
            None => true,
            Some(key) => naming::workspace_under(key, name).is_some(),
        }
    }

    /// The workspace whose state blob `name` is: by the key when the target has one.
    pub(crate) fn workspace_of(&self, name: &str) -> String {
        self.key
            .as_deref()
            .and_then(|key| naming::workspace_under(key, name))
            .unwrap_or_else(|| naming::workspace_of(name))
    }

    /// Where a blob lives, as shown to users (never with a SAS).
    pub(crate) fn location(&self, name: &str) -> String {
        if has_dot_segment(name) {
            // Not a URL that could be sent: shown as the name is.
            return format!(
                "{}/{}",
                self.container_url.as_str().trim_end_matches('/'),
                escape_control(name)
            );
        }
        Self::blob_url(&self.container_url, name).to_string()
    }

    /// `what` failed with the SDK error `e`: one line naming the target, with a hint.
    pub(crate) fn fail(&self, what: &str, e: &azure_core::Error) -> Error {
        error::storage(&self.target, what, e, &self.redact)
    }

    /// The same for a destructive request sent once: a failure that may have been
    /// applied is [`tflock_core::Kind::OutcomeUnknown`].
    pub(crate) fn fail_once(&self, what: &str, e: &azure_core::Error) -> Error {
        error::destructive(&self.target, what, e, &self.redact)
    }

    /// A client for one blob; `once`: no retries (destructive requests).
    pub(crate) fn blob(&self, name: &str, once: bool) -> Result<BlobClient, Error> {
        if has_dot_segment(name) {
            return Err(Error::refused(
                &self.target,
                format!(
                    "blob {} has a '.' or '..' path segment: a request URL for it would name another blob, so nothing was sent",
                    escape_control(name)
                ),
            ));
        }
        let options = if once {
            &self.once_options
        } else {
            &self.options
        };
        BlobClient::new(
            Self::blob_url(&self.request_url, name),
            self.credential.clone(),
            Some(options.clone()),
        )
        .map_err(|e| {
            Error::backend(
                &self.target,
                self.redact
                    .text(&format!("cannot create a client for blob {name}: {e}")),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(target: &Target, env: &[(&str, &str)]) -> Result<Clients, Error> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        Clients::connect(target, &ConnectOptions::default(), &lookup)
    }

    #[test]
    fn dot_segments_are_never_sent() {
        let mut t =
            Target::parse("azblob://acct/tfstate?endpoint=http://127.0.0.1:1/acct").unwrap();
        t.params.insert("access_key".into(), "a2V5".into());
        let c = connect(&t, &[]).unwrap();
        for name in ["a/../b.tfstate", "../other/x", "./y", "a/."] {
            let err = c.blob(name, true).err().unwrap();
            assert_eq!(err.kind(), tflock_core::Kind::Refused, "{name}: {err}");
            assert!(c.location(name).ends_with(&format!("/tfstate/{name}")));
        }
        // Dots inside a segment are ordinary names.
        assert!(c.blob("a..b/.c/x.", true).is_ok());
        assert_eq!(
            c.location("team a/env:dev"),
            "http://127.0.0.1:1/acct/tfstate/team%20a/env:dev"
        );
    }

    #[test]
    fn block_settings_reach_the_client_and_metadata_host_is_refused() {
        let mut t = Target::parse("azblob://acct/tfstate").unwrap();
        t.params
            .insert("access_key".into(), "c2VjcmV0LWtleQ==".into());
        t.params.insert("environment".into(), "usgovernment".into());
        let c = connect(&t, &[("ARM_ENVIRONMENT", "china")])
            .map_err(|e| e.to_string())
            .unwrap();
        assert_eq!(
            c.container_url.as_str(),
            "https://acct.blob.core.usgovcloudapi.net/tfstate"
        );

        t.params
            .insert("metadata_host".into(), "management.example.cloud".into());
        let err = connect(&t, &[]).err().unwrap();
        let text = err.to_string();
        assert_eq!(err.kind(), tflock_core::Kind::Usage, "{text}");
        assert!(
            text.contains("metadata_host=management.example.cloud"),
            "{text}"
        );
        assert!(!text.contains("c2VjcmV0LWtleQ=="), "{text}");
        t.params.remove("metadata_host");
        let err = connect(&t, &[("ARM_METADATA_HOSTNAME", "m.example")])
            .err()
            .unwrap();
        assert!(err.to_string().contains("ARM_METADATA_HOSTNAME"), "{err}");

        t.params.insert("use_azuread_auth".into(), "maybe".into());
        assert_eq!(
            connect(&t, &[]).err().unwrap().kind(),
            tflock_core::Kind::Usage
        );
        // Entra ID forced: the az CLI key in the environment is not used, and Entra needs https.
        let mut t =
            Target::parse("azblob://acct/tfstate?endpoint=http://127.0.0.1:1/acct").unwrap();
        t.params.insert("use_azuread_auth".into(), "true".into());
        let err = connect(&t, &[("AZURE_STORAGE_KEY", "a2V5")])
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("Entra ID tokens are only sent over https"),
            "{err}"
        );
    }
}
