//! Which credential and endpoint to use, decided from the environment the way an operator
//! who runs Terraform's azurerm backend or the az CLI expects.
//!
//! Order: the target's own `access_key` / `sas_token` options (set from the user's
//! `backend "azurerm"` block by discovery, or in tflock.toml);
//! `AZURE_STORAGE_CONNECTION_STRING`; account key (`ARM_ACCESS_KEY`,
//! `AZURE_STORAGE_KEY`); SAS (`ARM_SAS_TOKEN`, `AZURE_STORAGE_SAS_TOKEN`); otherwise Entra
//! ID, picked like azurerm does: client secret, then OIDC / workload identity, then managed
//! identity (`ARM_USE_MSI=true`), then the Azure CLI's login.
//! With `use_azuread_auth` (or `ARM_USE_AZUREAD`) only Terraform's own sources come before
//! Entra ID, in Terraform's order: `access_key` / `ARM_ACCESS_KEY`, then `sas_token` /
//! `ARM_SAS_TOKEN`; the az CLI's `AZURE_STORAGE_*` variables are not read.
//! Resolution is pure (an env lookup function in, a plan out) so it is tested without
//! touching the process environment; [`Credentials::token_credential`] builds the SDK object.

pub(crate) mod shared_key;

use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientOptions, Url};
use azure_identity::{
    AzureCliCredential, AzureCliCredentialOptions, ClientAssertionCredentialOptions,
    ClientSecretCredential, ClientSecretCredentialOptions, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions, UserAssignedId, WorkloadIdentityCredential,
    WorkloadIdentityCredentialOptions,
};
use std::path::PathBuf;
use std::sync::Arc;

/// Azurite's and the storage emulator's well-known development account.
const DEV_ACCOUNT: &str = "devstoreaccount1";
const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// How requests are authorized.
pub(crate) enum Auth {
    /// Account key, signed by [`shared_key::SharedKeyPolicy`].
    SharedKey(Secret),
    /// A SAS token (query string without `?`), appended to every URL.
    Sas(Secret),
    /// An Entra ID token for `https://storage.azure.com/.default`.
    Entra(Entra),
}

/// The Entra ID credential azurerm would pick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entra {
    ClientSecret {
        tenant: String,
        client_id: String,
        secret_var: &'static str,
    },
    Workload {
        tenant: String,
        client_id: String,
        token_file: PathBuf,
    },
    ManagedIdentity {
        client_id: Option<String>,
    },
    AzureCli {
        tenant: Option<String>,
    },
}

/// The resolved plan: how to authorize, where the account's blob endpoint is, and which
/// variable decided it (shown in errors, never the secret).
pub(crate) struct Credentials {
    pub auth: Auth,
    /// The account's blob endpoint, without a trailing `/`: `https://ACCOUNT.blob.core.windows.net`
    /// or, path-style, `http://127.0.0.1:10000/ACCOUNT`.
    pub endpoint: Url,
    pub source: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.auth {
            Auth::SharedKey(_) => "shared key".to_string(),
            Auth::Sas(_) => "sas".to_string(),
            Auth::Entra(e) => format!("{e:?}"),
        };
        f.debug_struct("Credentials")
            .field("auth", &kind)
            .field("endpoint", &self.endpoint.as_str())
            .field("source", &self.source)
            .finish()
    }
}

/// First variable of `names` that is not blank, with its name, as set (not trimmed): for
/// secrets, which [`secret`] checks whole.
fn first_raw(
    env: &dyn Fn(&str) -> Option<String>,
    names: &[&'static str],
) -> Option<(&'static str, String)> {
    names
        .iter()
        .find_map(|n| env(n).filter(|v| !v.trim().is_empty()).map(|v| (*n, v)))
}

/// A key or SAS as set in `name`: spaces around it are dropped, and anything else that
/// is not printable ASCII (a line break, a control or invisible character) is refused
/// before it can reach a header or a URL. The error names the setting, never the value.
fn secret(name: &str, raw: &str) -> Result<Secret, String> {
    let value = raw.trim_matches(' ');
    if value.is_empty() || !value.chars().all(|c| c.is_ascii_graphic()) {
        return Err(format!(
            "{name} contains a line break, a space, a control character or a non-ASCII character; set it to the key or SAS alone"
        ));
    }
    Ok(Secret::new(value.to_string()))
}

/// A SAS token without its optional leading `?`.
fn sas(name: &str, raw: &str) -> Result<Secret, String> {
    secret(name, raw.trim_matches(' ').trim_start_matches('?'))
}

/// First non-empty variable of `names`, with its name.
fn first(
    env: &dyn Fn(&str) -> Option<String>,
    names: &[&'static str],
) -> Option<(&'static str, String)> {
    names.iter().find_map(|n| {
        env(n)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .map(|v| (*n, v))
    })
}

fn truthy(env: &dyn Fn(&str) -> Option<String>, name: &str) -> bool {
    matches!(
        env(name).map(|v| v.trim().to_ascii_lowercase()).as_deref(),
        Some("true" | "1" | "yes")
    )
}

/// The blob endpoint suffix of a cloud, by the names Terraform's `environment` setting
/// takes (go-azure-sdk's `environments.FromName`) and the az CLI's cloud names.
pub(crate) fn suffix_of(environment: &str) -> Result<&'static str, String> {
    match environment.trim().to_ascii_lowercase().as_str() {
        "" | "public" | "global" | "canary" | "azurecloud" => Ok("core.windows.net"),
        "usgovernment" | "usgovernmentl4" | "dod" | "usgovernmentl5" | "azureusgovernment" => {
            Ok("core.usgovcloudapi.net")
        }
        "china" | "azurechinacloud" => Ok("core.chinacloudapi.cn"),
        "german" | "germany" | "azuregermancloud" => Err(format!(
            "environment {environment:?}: Azure Germany was closed in 2021 and Terraform no longer accepts it; pass ?endpoint= on the target instead"
        )),
        other => Err(format!(
            "environment {other:?} is not known (public, usgovernment, dod, china); pass ?endpoint= on the target instead"
        )),
    }
}

/// The blob endpoint suffix: the backend block's `environment`, else `ARM_ENVIRONMENT`.
fn endpoint_suffix(
    given: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<&'static str, String> {
    match nonempty(given) {
        Some(name) => suffix_of(name),
        None => suffix_of(&env("ARM_ENVIRONMENT").unwrap_or_default())
            .map_err(|e| format!("ARM_ENVIRONMENT: {e}")),
    }
}

fn parse_endpoint(text: &str, what: &str) -> Result<Url, String> {
    // The URL parser silently drops tabs and line breaks: refuse them instead.
    if text.chars().any(char::is_control) {
        return Err(format!(
            "{what} contains a line break or a control character"
        ));
    }
    let url = Url::parse(text.trim().trim_end_matches('/'))
        .map_err(|e| format!("{what} {text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(format!("{what} {text:?} must be an http(s) URL"));
    }
    Ok(url)
}

/// A parsed `AZURE_STORAGE_CONNECTION_STRING` (keys are case-insensitive).
#[derive(Default)]
struct ConnectionString {
    account: Option<String>,
    key: Option<String>,
    sas: Option<String>,
    blob_endpoint: Option<String>,
    protocol: Option<String>,
    suffix: Option<String>,
    dev: bool,
}

fn parse_connection_string(text: &str) -> Result<ConnectionString, String> {
    const NAME: &str = "AZURE_STORAGE_CONNECTION_STRING";
    if text
        .trim_matches(' ')
        .chars()
        .any(|c| c.is_control() || !c.is_ascii())
    {
        return Err(format!(
            "{NAME} contains a line break, a control character or a non-ASCII character; set it to the connection string alone"
        ));
    }
    let mut cs = ConnectionString::default();
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, v)) = part.split_once('=') else {
            return Err(
                "AZURE_STORAGE_CONNECTION_STRING has a part without '=' (expected Key=Value;...)"
                    .into(),
            );
        };
        let v = v.trim().to_string();
        match k.trim().to_ascii_lowercase().as_str() {
            "accountname" => cs.account = Some(v),
            "accountkey" => cs.key = Some(v),
            "sharedaccesssignature" => cs.sas = Some(v),
            "blobendpoint" => cs.blob_endpoint = Some(v),
            "defaultendpointsprotocol" => cs.protocol = Some(v),
            "endpointsuffix" => cs.suffix = Some(v),
            "usedevelopmentstorage" => cs.dev = v.eq_ignore_ascii_case("true"),
            _ => {}
        }
    }
    if cs.dev {
        cs.account.get_or_insert_with(|| DEV_ACCOUNT.into());
        cs.key.get_or_insert_with(|| DEV_KEY.into());
        cs.blob_endpoint
            .get_or_insert_with(|| format!("http://127.0.0.1:10000/{DEV_ACCOUNT}"));
    }
    Ok(cs)
}

/// What the target itself says: `?endpoint=`, and the `access_key` / `sas_token` options
/// (the backend block's own settings, which win over the environment as in Terraform).
#[derive(Default, Clone, Copy)]
pub(crate) struct Given<'a> {
    pub endpoint: Option<&'a str>,
    pub access_key: Option<&'a str>,
    pub sas_token: Option<&'a str>,
    /// `environment` of the block (public, usgovernment, china).
    pub environment: Option<&'a str>,
    /// `use_azuread_auth` of the block; `None` falls back to `ARM_USE_AZUREAD`.
    pub use_azuread_auth: Option<bool>,
}

fn nonempty(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|v| !v.is_empty())
}

/// Decides credentials and endpoint for `account`. The target's `?endpoint=` wins over
/// every other endpoint, its `access_key` / `sas_token` over every other credential.
pub(crate) fn resolve(
    account: &str,
    given: Given<'_>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Credentials, String> {
    let explicit = given
        .endpoint
        .map(|e| parse_endpoint(e, "?endpoint="))
        .transpose()?;
    let default_endpoint = |suffix: &str, protocol: &str| -> Result<Url, String> {
        parse_endpoint(
            &format!("{protocol}://{account}.blob.{suffix}"),
            "the default endpoint",
        )
    };
    let blank = |v: Option<&'_ str>| v.is_none_or(|v| v.trim().is_empty());
    let own = match (given.access_key, given.sas_token) {
        (Some(key), _) if !blank(Some(key)) => Some((
            Auth::SharedKey(secret("the target's access_key", key)?),
            "access_key",
        )),
        (_, Some(token)) if !blank(Some(token)) => Some((
            Auth::Sas(sas("the target's sas_token", token)?),
            "sas_token",
        )),
        _ => None,
    };
    if let Some((auth, name)) = own {
        let endpoint = match explicit {
            Some(e) => e,
            None => default_endpoint(endpoint_suffix(given.environment, env)?, "https")?,
        };
        return Ok(Credentials {
            auth,
            endpoint,
            source: format!("the target's {name}"),
        });
    }

    // Terraform's use_azuread_auth: after its own key and SAS sources, Entra ID; the az
    // CLI's AZURE_STORAGE_* variables (which Terraform never reads) are skipped.
    let azuread = given
        .use_azuread_auth
        .unwrap_or_else(|| truthy(env, "ARM_USE_AZUREAD"));
    let (conn_vars, key_vars, sas_vars): (&[&'static str], &[&'static str], &[&'static str]) =
        if azuread {
            (&[], &["ARM_ACCESS_KEY"], &["ARM_SAS_TOKEN"])
        } else {
            (
                &["AZURE_STORAGE_CONNECTION_STRING"],
                &["ARM_ACCESS_KEY", "AZURE_STORAGE_KEY"],
                &["ARM_SAS_TOKEN", "AZURE_STORAGE_SAS_TOKEN"],
            )
        };
    if let Some((_, text)) = first_raw(env, conn_vars) {
        let cs = parse_connection_string(&text)?;
        if let Some(name) = &cs.account {
            if name != account {
                return Err(format!(
                    "AZURE_STORAGE_CONNECTION_STRING is for account {name:?}, but the target names account {account}"
                ));
            }
        }
        let endpoint = match (explicit, &cs.blob_endpoint) {
            (Some(e), _) => e,
            (None, Some(b)) => {
                parse_endpoint(b, "BlobEndpoint in AZURE_STORAGE_CONNECTION_STRING")?
            }
            (None, None) => default_endpoint(
                cs.suffix
                    .as_deref()
                    .unwrap_or(endpoint_suffix(given.environment, env)?),
                cs.protocol.as_deref().unwrap_or("https"),
            )?,
        };
        let auth = match (cs.key, cs.sas) {
            (Some(key), _) => Auth::SharedKey(secret(
                "AccountKey in AZURE_STORAGE_CONNECTION_STRING",
                &key,
            )?),
            (None, Some(token)) => Auth::Sas(sas(
                "SharedAccessSignature in AZURE_STORAGE_CONNECTION_STRING",
                &token,
            )?),
            (None, None) => return Err(
                "AZURE_STORAGE_CONNECTION_STRING has neither AccountKey nor SharedAccessSignature"
                    .into(),
            ),
        };
        return Ok(Credentials {
            auth,
            endpoint,
            source: "AZURE_STORAGE_CONNECTION_STRING".into(),
        });
    }

    let endpoint = match explicit {
        Some(e) => e,
        None => default_endpoint(endpoint_suffix(given.environment, env)?, "https")?,
    };
    if let Some((name, key)) = first_raw(env, key_vars) {
        return Ok(Credentials {
            auth: Auth::SharedKey(secret(name, &key)?),
            endpoint,
            source: name.into(),
        });
    }
    if let Some((name, token)) = first_raw(env, sas_vars) {
        return Ok(Credentials {
            auth: Auth::Sas(sas(name, &token)?),
            endpoint,
            source: name.into(),
        });
    }

    let tenant = first(env, &["ARM_TENANT_ID", "AZURE_TENANT_ID"]).map(|(_, v)| v);
    let client_id = first(env, &["ARM_CLIENT_ID", "AZURE_CLIENT_ID"]).map(|(_, v)| v);
    let client_secret = first_raw(env, &["ARM_CLIENT_SECRET", "AZURE_CLIENT_SECRET"]);
    if let Some((name, raw)) = &client_secret {
        secret(name, raw)?;
    }
    let (entra, source) = if let (Some((secret_var, _)), Some(tenant), Some(client_id)) =
        (client_secret, tenant.clone(), client_id.clone())
    {
        (
            Entra::ClientSecret {
                tenant,
                client_id,
                secret_var,
            },
            format!("service principal ({secret_var})"),
        )
    } else if let (Some((file_var, file)), Some(tenant), Some(client_id)) = (
        first(
            env,
            &["ARM_OIDC_TOKEN_FILE_PATH", "AZURE_FEDERATED_TOKEN_FILE"],
        ),
        tenant.clone(),
        client_id.clone(),
    ) {
        (
            Entra::Workload {
                tenant,
                client_id,
                token_file: PathBuf::from(file),
            },
            format!("workload identity ({file_var})"),
        )
    } else if truthy(env, "ARM_USE_MSI") {
        (
            Entra::ManagedIdentity { client_id },
            "managed identity (ARM_USE_MSI)".to_string(),
        )
    } else {
        (
            Entra::AzureCli { tenant },
            "Azure CLI login (no ARM_ACCESS_KEY, ARM_SAS_TOKEN or service principal set)"
                .to_string(),
        )
    };
    if endpoint.scheme() != "https" {
        return Err(format!(
            "{source}: Entra ID tokens are only sent over https, but the endpoint is {endpoint}; set ARM_ACCESS_KEY or ARM_SAS_TOKEN for an http emulator"
        ));
    }
    Ok(Credentials {
        auth: Auth::Entra(entra),
        endpoint,
        source,
    })
}

impl Credentials {
    /// The secret values of this plan, to blank wherever SDK text is shown: the key, the
    /// SAS and its signature, a service principal's secret.
    pub(crate) fn secrets(&self, env: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
        match &self.auth {
            Auth::SharedKey(key) => vec![key.secret().to_string()],
            Auth::Sas(sas) => {
                let mut out = vec![sas.secret().to_string()];
                out.extend(
                    url::form_urlencoded::parse(sas.secret().as_bytes())
                        .filter(|(k, _)| k == "sig")
                        .map(|(_, v)| v.into_owned()),
                );
                out
            }
            Auth::Entra(Entra::ClientSecret { secret_var, .. }) => env(secret_var)
                .map(|v| vec![v.trim().to_string()])
                .unwrap_or_default(),
            Auth::Entra(_) => Vec::new(),
        }
    }

    /// The SDK credential for an Entra plan; `None` for key and SAS plans.
    pub(crate) fn token_credential(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
        client_options: &ClientOptions,
    ) -> Result<Option<Arc<dyn TokenCredential>>, String> {
        let Auth::Entra(entra) = &self.auth else {
            return Ok(None);
        };
        let fail = |e: azure_core::Error| format!("{}: {e}", self.source);
        let credential: Arc<dyn TokenCredential> = match entra {
            Entra::ClientSecret {
                tenant,
                client_id,
                secret_var,
            } => {
                let secret = env(secret_var).unwrap_or_default();
                ClientSecretCredential::new(
                    tenant,
                    client_id.clone(),
                    Secret::new(secret.trim().to_string()),
                    Some(ClientSecretCredentialOptions {
                        client_options: client_options.clone(),
                    }),
                )
                .map_err(fail)?
            }
            Entra::Workload {
                tenant,
                client_id,
                token_file,
            } => WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
                credential_options: ClientAssertionCredentialOptions {
                    client_options: client_options.clone(),
                },
                client_id: Some(client_id.clone()),
                tenant_id: Some(tenant.clone()),
                token_file_path: Some(token_file.clone()),
            }))
            .map_err(fail)?,
            Entra::ManagedIdentity { client_id } => {
                ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                    user_assigned_id: client_id.clone().map(UserAssignedId::ClientId),
                    client_options: client_options.clone(),
                }))
                .map_err(fail)?
            }
            Entra::AzureCli { tenant } => {
                AzureCliCredential::new(Some(AzureCliCredentialOptions {
                    tenant_id: tenant.clone(),
                    ..Default::default()
                }))
                .map_err(fail)?
            }
        };
        Ok(Some(credential))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn at(endpoint: &str) -> Given<'_> {
        Given {
            endpoint: Some(endpoint),
            ..Given::default()
        }
    }

    fn kind(c: &Credentials) -> String {
        match &c.auth {
            Auth::SharedKey(k) => format!("key:{}", k.secret()),
            Auth::Sas(s) => format!("sas:{}", s.secret()),
            Auth::Entra(e) => format!("{e:?}"),
        }
    }

    #[test]
    fn connection_string_wins_and_gives_the_endpoint() {
        let e = env(&[
            ("AZURE_STORAGE_CONNECTION_STRING", "DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:10000/acct/;"),
            ("ARM_ACCESS_KEY", "b3RoZXI="),
        ]);
        let c = resolve("acct", Given::default(), &e).unwrap();
        assert_eq!(kind(&c), "key:a2V5");
        assert_eq!(c.endpoint.as_str(), "http://127.0.0.1:10000/acct");
        assert_eq!(c.source, "AZURE_STORAGE_CONNECTION_STRING");
        // ?endpoint= still wins.
        let c = resolve("acct", at("http://127.0.0.1:9/acct"), &e).unwrap();
        assert_eq!(c.endpoint.as_str(), "http://127.0.0.1:9/acct");
        // A SAS connection string; the SAS keeps its own '=' signs.
        let e = env(&[(
            "AZURE_STORAGE_CONNECTION_STRING",
            "BlobEndpoint=https://acct.blob.core.windows.net;SharedAccessSignature=?sv=2022-11-02&sig=abc%3D",
        )]);
        let c = resolve("acct", Given::default(), &e).unwrap();
        assert_eq!(kind(&c), "sas:sv=2022-11-02&sig=abc%3D");
        // Protocol and suffix build the endpoint.
        let e = env(&[(
            "AZURE_STORAGE_CONNECTION_STRING",
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.chinacloudapi.cn",
        )]);
        assert_eq!(
            resolve("acct", Given::default(), &e)
                .unwrap()
                .endpoint
                .as_str(),
            "https://acct.blob.core.chinacloudapi.cn/"
        );
    }

    #[test]
    fn connection_string_for_another_account_is_refused() {
        let e = env(&[(
            "AZURE_STORAGE_CONNECTION_STRING",
            "AccountName=other;AccountKey=a2V5",
        )]);
        let err = resolve("acct", Given::default(), &e).unwrap_err();
        assert!(
            err.contains("account \"other\"") && err.contains("account acct"),
            "{err}"
        );
        assert!(!err.contains("a2V5"));
        let e = env(&[("AZURE_STORAGE_CONNECTION_STRING", "AccountName=acct")]);
        assert!(resolve("acct", Given::default(), &e).is_err());
        let e = env(&[(
            "AZURE_STORAGE_CONNECTION_STRING",
            "UseDevelopmentStorage=true",
        )]);
        let c = resolve(DEV_ACCOUNT, Given::default(), &e).unwrap();
        assert_eq!(
            c.endpoint.as_str(),
            "http://127.0.0.1:10000/devstoreaccount1"
        );
    }

    #[test]
    fn key_then_sas_in_terraform_order() {
        let e = env(&[
            ("AZURE_STORAGE_KEY", "c2Vjb25k"),
            ("ARM_ACCESS_KEY", "Zmlyc3Q="),
            ("ARM_SAS_TOKEN", "sv=1"),
        ]);
        let c = resolve("acct", Given::default(), &e).unwrap();
        assert_eq!(kind(&c), "key:Zmlyc3Q=");
        assert_eq!(c.source, "ARM_ACCESS_KEY");
        assert_eq!(c.endpoint.as_str(), "https://acct.blob.core.windows.net/");
        let e = env(&[
            ("AZURE_STORAGE_SAS_TOKEN", "?sv=2&sig=x"),
            ("ARM_SAS_TOKEN", " "),
        ]);
        let c = resolve("acct", Given::default(), &e).unwrap();
        assert_eq!(kind(&c), "sas:sv=2&sig=x");
        assert_eq!(c.source, "AZURE_STORAGE_SAS_TOKEN");
    }

    #[test]
    fn entra_is_picked_like_azurerm() {
        let sp = env(&[
            ("ARM_TENANT_ID", "t"),
            ("ARM_CLIENT_ID", "c"),
            ("ARM_CLIENT_SECRET", "s"),
            ("ARM_OIDC_TOKEN_FILE_PATH", "/f"),
            ("ARM_USE_MSI", "true"),
        ]);
        assert_eq!(
            kind(&resolve("acct", Given::default(), &sp).unwrap()),
            r#"ClientSecret { tenant: "t", client_id: "c", secret_var: "ARM_CLIENT_SECRET" }"#
        );
        let wi = env(&[
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"),
        ]);
        assert_eq!(
            kind(&resolve("acct", Given::default(), &wi).unwrap()),
            r#"Workload { tenant: "t", client_id: "c", token_file: "/var/run/token" }"#
        );
        let msi = env(&[("ARM_USE_MSI", "true"), ("ARM_CLIENT_ID", "uai")]);
        assert_eq!(
            kind(&resolve("acct", Given::default(), &msi).unwrap()),
            r#"ManagedIdentity { client_id: Some("uai") }"#
        );
        let cli = env(&[("ARM_TENANT_ID", "t")]);
        assert_eq!(
            kind(&resolve("acct", Given::default(), &cli).unwrap()),
            r#"AzureCli { tenant: Some("t") }"#
        );
        // Tokens never go to an http endpoint.
        let err = resolve("acct", at("http://127.0.0.1:1/acct"), &cli).unwrap_err();
        assert!(err.contains("ARM_ACCESS_KEY"), "{err}");
    }

    #[test]
    fn sovereign_clouds_and_bad_endpoints() {
        let e = env(&[
            ("ARM_ACCESS_KEY", "a2V5"),
            ("ARM_ENVIRONMENT", "usgovernment"),
        ]);
        assert_eq!(
            resolve("acct", Given::default(), &e)
                .unwrap()
                .endpoint
                .as_str(),
            "https://acct.blob.core.usgovcloudapi.net/"
        );
        let e = env(&[("ARM_ACCESS_KEY", "a2V5"), ("ARM_ENVIRONMENT", "mars")]);
        assert!(resolve("acct", Given::default(), &e)
            .unwrap_err()
            .contains("mars"));
        let e = env(&[("ARM_ACCESS_KEY", "a2V5")]);
        assert!(resolve("acct", at("ftp://x"), &e).is_err());
        assert!(resolve("acct", at("not a url"), &e).is_err());
        assert!(!format!("{:?}", resolve("acct", Given::default(), &e).unwrap()).contains("a2V5"));
    }

    #[test]
    fn the_targets_own_key_or_sas_wins_over_the_environment() {
        // Everything the environment could offer, each of which the target's options beat.
        let e = env(&[
            (
                "AZURE_STORAGE_CONNECTION_STRING",
                "AccountName=other;AccountKey=Y3M=;BlobEndpoint=http://127.0.0.1:1/other",
            ),
            ("ARM_ACCESS_KEY", "ZW52"),
            ("ARM_SAS_TOKEN", "sv=env"),
            ("ARM_TENANT_ID", "t"),
        ]);
        let own_key = Given {
            access_key: Some("b3du"),
            sas_token: Some("sv=own"),
            ..Given::default()
        };
        let c = resolve("acct", own_key, &e).unwrap();
        assert_eq!(kind(&c), "key:b3du");
        assert_eq!(c.source, "the target's access_key");
        assert_eq!(c.endpoint.as_str(), "https://acct.blob.core.windows.net/");
        let own_sas = Given {
            sas_token: Some("?sv=own&sig=x"),
            access_key: Some(" "),
            endpoint: Some("https://127.0.0.1:9/acct"),
            ..Given::default()
        };
        let c = resolve("acct", own_sas, &e).unwrap();
        assert_eq!(kind(&c), "sas:sv=own&sig=x");
        assert_eq!(c.source, "the target's sas_token");
        assert_eq!(c.endpoint.as_str(), "https://127.0.0.1:9/acct");
        assert!(!format!("{c:?}").contains("sv=own"));
        // The cloud still comes from ARM_ENVIRONMENT.
        let e = env(&[("ARM_ENVIRONMENT", "china")]);
        let c = resolve("acct", own_key, &e).unwrap();
        assert_eq!(
            c.endpoint.as_str(),
            "https://acct.blob.core.chinacloudapi.cn/"
        );
    }

    #[test]
    fn use_azuread_auth_skips_the_az_cli_variables_in_terraforms_order() {
        let az_cli = [
            (
                "AZURE_STORAGE_CONNECTION_STRING",
                "AccountName=acct;AccountKey=Y3M=",
            ),
            ("AZURE_STORAGE_KEY", "c2Vjb25k"),
            ("AZURE_STORAGE_SAS_TOKEN", "sv=az"),
            ("ARM_TENANT_ID", "t"),
        ];
        let entra = Given {
            use_azuread_auth: Some(true),
            ..Given::default()
        };
        let c = resolve("acct", entra, &env(&az_cli)).unwrap();
        assert_eq!(kind(&c), r#"AzureCli { tenant: Some("t") }"#);
        // ARM_USE_AZUREAD does the same; the block's `false` wins over it.
        let mut with_var = az_cli.to_vec();
        with_var.push(("ARM_USE_AZUREAD", "true"));
        let c = resolve("acct", Given::default(), &env(&with_var)).unwrap();
        assert!(matches!(c.auth, Auth::Entra(_)), "{c:?}");
        let off = Given {
            use_azuread_auth: Some(false),
            ..Given::default()
        };
        let c = resolve("acct", off, &env(&with_var)).unwrap();
        assert_eq!(c.source, "AZURE_STORAGE_CONNECTION_STRING");
        // As in Terraform, access_key (ARM_ACCESS_KEY) and sas_token (ARM_SAS_TOKEN) still
        // come first: use_azuread_auth only decides what happens without them.
        let mut with_key = az_cli.to_vec();
        with_key.push(("ARM_SAS_TOKEN", "sv=arm"));
        let c = resolve("acct", entra, &env(&with_key)).unwrap();
        assert_eq!(
            (kind(&c).as_str(), c.source.as_str()),
            ("sas:sv=arm", "ARM_SAS_TOKEN")
        );
        with_key.push(("ARM_ACCESS_KEY", "YXJt"));
        let c = resolve("acct", entra, &env(&with_key)).unwrap();
        assert_eq!(c.source, "ARM_ACCESS_KEY");
    }

    #[test]
    fn the_blocks_environment_wins_over_arm_environment() {
        let e = env(&[("ARM_ACCESS_KEY", "a2V5"), ("ARM_ENVIRONMENT", "china")]);
        let endpoint = |environment: Option<&str>| {
            let given = Given {
                environment,
                ..Given::default()
            };
            resolve("acct", given, &e).map(|c| c.endpoint.to_string())
        };
        assert_eq!(
            endpoint(None).unwrap(),
            "https://acct.blob.core.chinacloudapi.cn/"
        );
        for (name, host) in [
            ("public", "acct.blob.core.windows.net"),
            ("USGovernment", "acct.blob.core.usgovcloudapi.net"),
            ("dod", "acct.blob.core.usgovcloudapi.net"),
            ("china", "acct.blob.core.chinacloudapi.cn"),
        ] {
            assert_eq!(endpoint(Some(name)).unwrap(), format!("https://{host}/"));
        }
        let german = endpoint(Some("german")).unwrap_err();
        assert!(german.contains("Azure Germany"), "{german}");
        let bad = resolve(
            "acct",
            Given::default(),
            &env(&[("ARM_ENVIRONMENT", "mars")]),
        )
        .unwrap_err();
        assert!(
            bad.starts_with("ARM_ENVIRONMENT: environment \"mars\""),
            "{bad}"
        );
    }
}
