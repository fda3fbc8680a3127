//! Where the cluster is and who we are to it, found as kubectl (client-go's clientcmd)
//! finds it: the kubeconfig files (`?kubeconfig=` / the backend's `config_path(s)`, else
//! `KUBECONFIG`, else `~/.kube/config`), merged first-file-wins; the target's context or
//! `current-context`; then the backend block's own settings on top (host, token,
//! certificates, exec), as Terraform's `getInitialConfig` applies them; or the pod's
//! service account (`in_cluster_config`). Tokens, keys and passwords never leave this
//! module except as request headers.

use base64::Engine as _;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tflock_core::fsread::{read_bounded, ReadErrorKind};
use tflock_core::{Error, Target};

/// A kubeconfig or a token file is small; anything bigger is not one.
const FILE_MAX: u64 = 4 << 20;
/// The pod's service account, as client-go's `rest.InClusterConfig` reads it.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// A secret string: never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How requests authenticate (besides a TLS client certificate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    None,
    Bearer(Secret),
    /// Read when the first request is made (client-go re-reads it; a run is short).
    BearerFile(PathBuf),
    Basic {
        user: String,
        password: Secret,
    },
    Exec(Exec),
}

/// A client-go credential plugin (`users[].user.exec`, or the backend's `exec` block).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Exec {
    #[serde(default)]
    pub api_version: String,
    pub command: String,
    #[serde(default)]
    pub args: Option<Vec<String>>,
    #[serde(default)]
    pub env: Option<Vec<ExecEnv>>,
    #[serde(default)]
    pub install_hint: Option<String>,
    #[serde(default)]
    pub provide_cluster_info: bool,
    #[serde(default)]
    pub interactive_mode: Option<String>,
}

#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct ExecEnv {
    pub name: String,
    #[serde(default)]
    pub value: String,
}

impl std::fmt::Debug for ExecEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}=***", self.name)
    }
}

/// Everything needed to talk to one cluster as one user.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// `https://host:port` (no trailing `/`).
    pub server: url::Url,
    /// The context used, for messages (empty for in-cluster or a bare `host`).
    pub context: String,
    /// Where the settings came from, for messages: `kubeconfig ~/.kube/config`.
    pub source: String,
    pub ca_pem: Option<Vec<u8>>,
    pub insecure: bool,
    pub tls_server_name: Option<String>,
    pub proxy_url: Option<String>,
    /// PEM certificate and key for TLS client authentication.
    pub client_cert: Option<(Vec<u8>, Secret)>,
    pub credential: Credential,
}

// ---- kubeconfig, as clientcmd/api/v1 types spell it ----------------------------------

#[derive(Deserialize, Default)]
struct File {
    #[serde(default)]
    clusters: Option<Vec<NamedCluster>>,
    #[serde(default)]
    users: Option<Vec<NamedUser>>,
    #[serde(default)]
    contexts: Option<Vec<NamedContext>>,
    #[serde(default, rename = "current-context")]
    current_context: Option<String>,
}

#[derive(Deserialize)]
struct NamedCluster {
    name: String,
    #[serde(default)]
    cluster: Cluster,
}

#[derive(Deserialize)]
struct NamedUser {
    name: String,
    #[serde(default)]
    user: User,
}

#[derive(Deserialize)]
struct NamedContext {
    name: String,
    #[serde(default)]
    context: Context,
}

#[derive(Deserialize, Default, Clone)]
struct Cluster {
    #[serde(default)]
    server: Option<String>,
    #[serde(default, rename = "certificate-authority")]
    certificate_authority: Option<String>,
    #[serde(default, rename = "certificate-authority-data")]
    certificate_authority_data: Option<String>,
    #[serde(default, rename = "insecure-skip-tls-verify")]
    insecure_skip_tls_verify: Option<bool>,
    #[serde(default, rename = "tls-server-name")]
    tls_server_name: Option<String>,
    #[serde(default, rename = "proxy-url")]
    proxy_url: Option<String>,
}

#[derive(Deserialize, Default, Clone)]
struct User {
    #[serde(default)]
    token: Option<String>,
    #[serde(default, rename = "tokenFile")]
    token_file: Option<String>,
    #[serde(default, rename = "client-certificate")]
    client_certificate: Option<String>,
    #[serde(default, rename = "client-certificate-data")]
    client_certificate_data: Option<String>,
    #[serde(default, rename = "client-key")]
    client_key: Option<String>,
    #[serde(default, rename = "client-key-data")]
    client_key_data: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    exec: Option<Exec>,
    #[serde(default, rename = "auth-provider")]
    auth_provider: Option<serde_json::Value>,
}

#[derive(Deserialize, Default, Clone)]
struct Context {
    #[serde(default)]
    cluster: String,
    #[serde(default)]
    user: String,
}

/// The merged kubeconfig: for every name the first file that defines it wins, and so does
/// the first `current-context` (clientcmd's `ClientConfigLoadingRules.Load`). Paths in a
/// file are relative to that file's directory.
#[derive(Default)]
struct Merged {
    files: Vec<PathBuf>,
    clusters: BTreeMap<String, (Cluster, PathBuf)>,
    users: BTreeMap<String, (User, PathBuf)>,
    contexts: BTreeMap<String, Context>,
    current_context: Option<String>,
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// `~/` expanded (Terraform runs `homedir.Expand` on `config_path(s)`).
fn expand(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), home()) {
        (Some(rest), Some(h)) => h.join(rest),
        _ => PathBuf::from(p),
    }
}

/// The kubeconfig files to read, and whether they were named explicitly (then a missing
/// one is an error, as clientcmd's `ExplicitPath`).
fn config_files(target: &Target, env: &dyn Fn(&str) -> Option<String>) -> (Vec<PathBuf>, bool) {
    if let Some(list) = target.param("kubeconfig") {
        return (split_paths(list), true);
    }
    if let Some(list) = env("KUBECONFIG") {
        return (split_paths(&list), false);
    }
    let default = home()
        .map(|h| h.join(".kube").join("config"))
        .unwrap_or_else(|| PathBuf::from(".kube/config"));
    (vec![default], false)
}

fn split_paths(list: &str) -> Vec<PathBuf> {
    std::env::split_paths(list)
        .filter(|p| !p.as_os_str().is_empty())
        .map(|p| expand(&p.to_string_lossy()))
        .collect()
}

fn read_file(target: &str, path: &Path, what: &str) -> Result<Option<Vec<u8>>, Error> {
    match read_bounded(path, FILE_MAX) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == ReadErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::usage(target, format!("cannot read {what} {e}"))),
    }
}

fn load(target: &str, files: &[PathBuf], explicit: bool) -> Result<Merged, Error> {
    let mut merged = Merged::default();
    for path in files {
        let Some(bytes) = read_file(target, path, "kubeconfig")? else {
            if explicit {
                return Err(Error::usage(
                    target,
                    format!("kubeconfig {} does not exist", path.display()),
                )
                .with_hint("check config_path / config_paths or ?kubeconfig="));
            }
            continue;
        };
        // serde_norway's messages quote no values of ours beyond a line/column.
        let file: File = serde_norway::from_slice(&bytes).map_err(|e| {
            Error::usage(
                target,
                format!(
                    "kubeconfig {} is not valid: {}",
                    path.display(),
                    e.location()
                        .map(|l| format!("line {}, column {}", l.line(), l.column()))
                        .unwrap_or_else(|| "unreadable YAML".into())
                ),
            )
        })?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        merged.files.push(path.clone());
        for c in file.clusters.unwrap_or_default() {
            merged
                .clusters
                .entry(c.name)
                .or_insert((c.cluster, dir.clone()));
        }
        for u in file.users.unwrap_or_default() {
            merged.users.entry(u.name).or_insert((u.user, dir.clone()));
        }
        for c in file.contexts.unwrap_or_default() {
            merged.contexts.entry(c.name).or_insert(c.context);
        }
        if merged.current_context.is_none() {
            merged.current_context = file.current_context.filter(|c| !c.is_empty());
        }
    }
    Ok(merged)
}

fn relative_to(dir: &Path, p: &str) -> PathBuf {
    let path = expand(p);
    if path.is_relative() {
        dir.join(path)
    } else {
        path
    }
}

fn b64(target: &str, field: &str, data: &str) -> Result<Vec<u8>, Error> {
    base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|_| Error::usage(target, format!("{field} in the kubeconfig is not base64")))
}

/// The target's in-cluster switch (`?in_cluster=true`, the block's `in_cluster_config`).
fn in_cluster_wanted(target: &Target) -> Result<bool, Error> {
    match target.param("in_cluster") {
        None => Ok(false),
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(Error::usage(
                &target.url,
                format!("?in_cluster={v} must be true or false"),
            )),
        },
    }
}

/// The pod's own service account: `KUBERNETES_SERVICE_HOST`/`_PORT`, and the token and
/// CA mounted under `dir` (client-go `rest.InClusterConfig`).
pub fn in_cluster(
    target: &str,
    env: &dyn Fn(&str) -> Option<String>,
    dir: &Path,
) -> Result<Resolved, Error> {
    let (Some(host), Some(port)) = (
        env("KUBERNETES_SERVICE_HOST"),
        env("KUBERNETES_SERVICE_PORT"),
    ) else {
        return Err(Error::usage(
            target,
            "in-cluster configuration asked for, but KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are not set (not running in a pod)",
        ));
    };
    // An IPv6 service address needs brackets in a URL.
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host
    };
    let server = parse_server(target, &format!("https://{host}:{port}"))?;
    let token = dir.join("token");
    if read_file(target, &token, "the service account token")?.is_none() {
        return Err(Error::usage(
            target,
            format!("no service account token at {}", token.display()),
        ));
    }
    Ok(Resolved {
        server,
        context: String::new(),
        source: "the pod's service account".into(),
        ca_pem: read_file(target, &dir.join("ca.crt"), "the service account CA")?,
        insecure: false,
        tls_server_name: None,
        proxy_url: None,
        client_cert: None,
        credential: Credential::BearerFile(token),
    })
}

fn parse_server(target: &str, text: &str) -> Result<url::Url, Error> {
    let url = url::Url::parse(text.trim()).map_err(|e| {
        Error::usage(
            target,
            format!("the cluster server {text:?} is not a URL ({e})"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Error::usage(
            target,
            format!("the cluster server {text:?} must be an http:// or https:// URL"),
        ));
    }
    Ok(url)
}

/// Resolves `target` (`k8s://[CONTEXT]/NAMESPACE` plus its options) into a server and
/// credentials. Reads files only; runs nothing and sends nothing (an exec plugin runs at
/// the first request).
pub fn resolve(target: &Target, env: &dyn Fn(&str) -> Option<String>) -> Result<Resolved, Error> {
    let t = target.url.as_str();
    let mut resolved = if in_cluster_wanted(target)? {
        in_cluster(t, env, Path::new(SERVICE_ACCOUNT_DIR))?
    } else {
        let (files, explicit) = config_files(target, env);
        let merged = load(t, &files, explicit)?;
        if merged.files.is_empty() {
            if target.param("host").is_some() {
                // The block's own host and credentials, with no kubeconfig underneath.
                Resolved {
                    server: parse_server(t, target.param("host").unwrap_or_default())?,
                    context: String::new(),
                    source: "the backend's host setting".into(),
                    ca_pem: None,
                    insecure: false,
                    tls_server_name: None,
                    proxy_url: None,
                    client_cert: None,
                    credential: Credential::None,
                }
            } else if target.host.is_empty() && env("KUBERNETES_SERVICE_HOST").is_some() {
                // clientcmd's fallback when no kubeconfig exists: the pod's account.
                in_cluster(t, env, Path::new(SERVICE_ACCOUNT_DIR))?
            } else {
                let looked: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
                return Err(Error::usage(
                    t,
                    format!("no kubeconfig found (looked at {})", looked.join(", ")),
                )
                .with_hint(
                    "set KUBECONFIG, pass ?kubeconfig=PATH, or run in a pod with ?in_cluster=true",
                ));
            }
        } else {
            from_kubeconfig(target, &merged)?
        }
    };
    apply_block_settings(target, &mut resolved)?;
    Ok(resolved)
}

fn from_kubeconfig(target: &Target, m: &Merged) -> Result<Resolved, Error> {
    let t = target.url.as_str();
    let files: Vec<String> = m.files.iter().map(|f| f.display().to_string()).collect();
    let source = format!("kubeconfig {}", files.join(":"));
    let name = if target.host.is_empty() {
        m.current_context.clone().ok_or_else(|| {
            Error::usage(t, format!("{source} has no current-context"))
                .with_hint("name the context: k8s://CONTEXT/NAMESPACE")
        })?
    } else {
        target.host.clone()
    };
    let mut context = m.contexts.get(&name).cloned().ok_or_else(|| {
        let known: Vec<&str> = m.contexts.keys().map(String::as_str).collect();
        Error::usage(
            t,
            format!(
                "context {name:?} is not in {source} (contexts: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ),
        )
    })?;
    // config_context_cluster / config_context_auth_info override the context's own.
    if let Some(c) = target.param("context_cluster") {
        context.cluster = c.to_string();
    }
    if let Some(u) = target.param("context_user") {
        context.user = u.to_string();
    }
    let (cluster, cluster_dir) = m.clusters.get(&context.cluster).cloned().ok_or_else(|| {
        Error::usage(
            t,
            format!(
                "context {name:?} names cluster {:?}, which is not in {source}",
                context.cluster
            ),
        )
    })?;
    let server = match (&cluster.server, target.param("host")) {
        (_, Some(host)) => parse_server(t, host)?,
        (Some(s), None) if !s.trim().is_empty() => parse_server(t, s)?,
        _ => {
            return Err(Error::usage(
                t,
                format!("cluster {:?} in {source} has no server", context.cluster),
            ))
        }
    };
    let ca_pem = match (
        &cluster.certificate_authority_data,
        &cluster.certificate_authority,
    ) {
        (Some(data), _) if !data.trim().is_empty() => {
            Some(b64(t, "certificate-authority-data", data)?)
        }
        (_, Some(file)) if !file.trim().is_empty() => {
            let path = relative_to(&cluster_dir, file);
            Some(
                read_file(t, &path, "certificate-authority")?.ok_or_else(|| {
                    Error::usage(
                        t,
                        format!("certificate-authority {} does not exist", path.display()),
                    )
                })?,
            )
        }
        _ => None,
    };
    let mut resolved = Resolved {
        server,
        context: name.clone(),
        source,
        ca_pem,
        insecure: cluster.insecure_skip_tls_verify.unwrap_or(false),
        tls_server_name: cluster.tls_server_name.filter(|s| !s.is_empty()),
        proxy_url: cluster.proxy_url.filter(|s| !s.is_empty()),
        client_cert: None,
        credential: Credential::None,
    };
    if context.user.is_empty() {
        return Ok(resolved);
    }
    let Some((user, user_dir)) = m.users.get(&context.user).cloned() else {
        return Err(Error::usage(
            t,
            format!(
                "context {name:?} names user {:?}, which is not in {}",
                context.user, resolved.source
            ),
        ));
    };
    if user.auth_provider.is_some() {
        return Err(Error::usage(
            t,
            format!("user {:?} uses an auth-provider, which kubectl removed in 1.26", context.user),
        )
        .with_hint("switch the user to its exec credential plugin (e.g. kubelogin, gke-gcloud-auth-plugin)"));
    }
    let file_or_data =
        |data: &Option<String>, file: &Option<String>, field: &str| match (data, file) {
            (Some(d), _) if !d.trim().is_empty() => b64(t, &format!("{field}-data"), d).map(Some),
            (_, Some(f)) if !f.trim().is_empty() => {
                let path = relative_to(&user_dir, f);
                read_file(t, &path, field)?
                    .ok_or_else(|| {
                        Error::usage(t, format!("{field} {} does not exist", path.display()))
                    })
                    .map(Some)
            }
            _ => Ok(None),
        };
    let cert = file_or_data(
        &user.client_certificate_data,
        &user.client_certificate,
        "client-certificate",
    )?;
    let key = file_or_data(&user.client_key_data, &user.client_key, "client-key")?;
    match (cert, key) {
        (Some(c), Some(k)) => {
            resolved.client_cert = Some((c, Secret(String::from_utf8_lossy(&k).into_owned())))
        }
        (None, None) => {}
        _ => {
            return Err(Error::usage(
                t,
                format!(
                    "user {:?} has a client certificate or key without the other",
                    context.user
                ),
            ))
        }
    }
    resolved.credential = if let Some(token) = user.token.filter(|s| !s.trim().is_empty()) {
        Credential::Bearer(Secret(token.trim().to_string()))
    } else if let Some(file) = user.token_file.filter(|s| !s.trim().is_empty()) {
        Credential::BearerFile(relative_to(&user_dir, &file))
    } else if let Some(mut exec) = user.exec {
        // A relative command with a directory part is relative to the kubeconfig (clientcmd).
        if exec.command.contains('/') {
            exec.command = relative_to(&user_dir, &exec.command).display().to_string();
        }
        Credential::Exec(exec)
    } else if let Some(u) = user.username.filter(|s| !s.is_empty()) {
        Credential::Basic {
            user: u,
            password: Secret(user.password.unwrap_or_default()),
        }
    } else {
        Credential::None
    };
    Ok(resolved)
}

/// The backend block's settings over the kubeconfig, as Terraform's `Configure` does after
/// loading it (host, username, password, insecure, CA, client cert/key, token; exec and
/// proxy_url as clientcmd overrides).
fn apply_block_settings(target: &Target, r: &mut Resolved) -> Result<(), Error> {
    let t = target.url.as_str();
    if let Some(host) = target.param("host") {
        r.server = parse_server(t, host)?;
    }
    if let Some(v) = target.param("insecure") {
        r.insecure = matches!(v.to_ascii_lowercase().as_str(), "true" | "1");
    }
    if let Some(ca) = target.param("cluster_ca_certificate") {
        r.ca_pem = Some(ca.as_bytes().to_vec());
    }
    match (
        target.param("client_certificate"),
        target.param("client_key"),
    ) {
        (Some(c), Some(k)) => {
            r.client_cert = Some((c.as_bytes().to_vec(), Secret(k.to_string())));
        }
        (None, None) => {}
        _ => {
            return Err(Error::usage(
                t,
                "client_certificate and client_key must be set together",
            ))
        }
    }
    if let Some(p) = target.param("proxy_url") {
        r.proxy_url = Some(p.to_string());
    }
    if let Some(exec) = target.param("exec") {
        let exec: Exec = serde_json::from_str(exec).map_err(|e| {
            Error::usage(
                t,
                format!(
                    "the exec block cannot be read (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            )
        })?;
        r.credential = Credential::Exec(exec);
    }
    if let Some(user) = target.param("username") {
        r.credential = Credential::Basic {
            user: user.to_string(),
            password: Secret(target.param("password").unwrap_or_default().to_string()),
        };
    }
    if let Some(token) = target.param("token") {
        r.credential = Credential::Bearer(Secret(token.to_string()));
    }
    Ok(())
}

/// What an exec plugin gave back (`ExecCredential.status`).
#[derive(Debug, Default)]
pub struct ExecOutput {
    pub token: Option<Secret>,
    pub client_cert: Option<(Vec<u8>, Secret)>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecCredential {
    #[serde(default)]
    status: Option<ExecStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecStatus {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    client_certificate_data: Option<String>,
    #[serde(default)]
    client_key_data: Option<String>,
}

/// Runs a credential plugin the way client-go's `exec` authenticator does: its env on
/// top of ours, `KUBERNETES_EXEC_INFO` describing a non-interactive request, stdin
/// closed; its stdout is an `ExecCredential`. Bounded by `limit`; stderr is reported by
/// its last line only, and no output is ever echoed (it holds the token).
pub async fn run_exec(
    target: &str,
    exec: &Exec,
    server: &url::Url,
    limit: Duration,
) -> Result<ExecOutput, Error> {
    if exec.interactive_mode.as_deref() == Some("Always") {
        return Err(Error::usage(
            target,
            format!(
                "the credential plugin {} needs a terminal (interactiveMode: Always)",
                exec.command
            ),
        )
        .with_hint("log in with the plugin first (e.g. run kubectl once), or use a token"));
    }
    let api_version = if exec.api_version.is_empty() {
        "client.authentication.k8s.io/v1".to_string()
    } else {
        exec.api_version.clone()
    };
    let mut spec = serde_json::json!({ "interactive": false });
    if exec.provide_cluster_info {
        spec["cluster"] = serde_json::json!({ "server": server.as_str() });
    }
    let info =
        serde_json::json!({ "apiVersion": api_version, "kind": "ExecCredential", "spec": spec });
    let mut cmd = tokio::process::Command::new(&exec.command);
    cmd.args(exec.args.clone().unwrap_or_default())
        .env("KUBERNETES_EXEC_INFO", info.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    for e in exec.env.clone().unwrap_or_default() {
        cmd.env(e.name, e.value);
    }
    let hint = exec
        .install_hint
        .as_deref()
        .map(tflock_core::error::one_line)
        .unwrap_or_else(|| "check the users[].user.exec command of the kubeconfig".into());
    // "the credential plugin <command> <what went wrong>", about `target`.
    let plugin = |kind: tflock_core::Kind, what: String| {
        Error::new(
            kind,
            format!("the credential plugin {} {what}", exec.command),
        )
        .at(target)
    };
    let child = cmd.spawn().map_err(|e| {
        Error::new(
            tflock_core::Kind::Unauthenticated,
            format!(
                "cannot run the credential plugin {}: {}",
                exec.command,
                e.kind()
            ),
        )
        .at(target)
        .with_hint(hint.clone())
    })?;
    let out = match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => {
            return Err(plugin(
                tflock_core::Kind::Unauthenticated,
                format!("failed: {}", e.kind()),
            ))
        }
        Err(_) => {
            return Err(plugin(
                tflock_core::Kind::Timeout,
                format!("did not finish within {}s", limit.as_secs()),
            ))
        }
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        let last: String = tflock_core::text::escape_control(last)
            .chars()
            .take(200)
            .collect();
        return Err(plugin(
            tflock_core::Kind::Unauthenticated,
            format!(
                "failed ({}): {}",
                out.status,
                tflock_core::redact::url(&last)
            ),
        )
        .with_hint(hint));
    }
    let cred: ExecCredential = serde_json::from_slice(&out.stdout).map_err(|_| {
        plugin(
            tflock_core::Kind::Unauthenticated,
            "did not print an ExecCredential".into(),
        )
    })?;
    let status = cred.status.unwrap_or(ExecStatus {
        token: None,
        client_certificate_data: None,
        client_key_data: None,
    });
    let client_cert = match (status.client_certificate_data, status.client_key_data) {
        (Some(c), Some(k)) if !c.is_empty() && !k.is_empty() => Some((c.into_bytes(), Secret(k))),
        _ => None,
    };
    let token = status.token.filter(|t| !t.is_empty()).map(Secret);
    if token.is_none() && client_cert.is_none() {
        return Err(plugin(
            tflock_core::Kind::Unauthenticated,
            "gave neither a token nor a client certificate".into(),
        ));
    }
    Ok(ExecOutput { token, client_cert })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn target(url: &str, kubeconfig: &[&Path]) -> Target {
        let list: Vec<String> = kubeconfig.iter().map(|p| p.display().to_string()).collect();
        Target::parse(url)
            .unwrap()
            .with("kubeconfig", Some(list.join(":")))
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    const A: &str = r#"
apiVersion: v1
kind: Config
current-context: alpha
clusters:
- name: c1
  cluster:
    server: https://alpha.example:6443
    certificate-authority: ca.pem
- name: shared
  cluster:
    server: https://from-a.example
contexts:
- name: alpha
  context: {cluster: c1, user: u1, namespace: team}
- name: shared
  context: {cluster: shared, user: u2}
users:
- name: u1
  user:
    token: tok-alpha-0123
- name: u2
  user:
    tokenFile: tokens/u2
"#;

    const B: &str = r#"
current-context: beta
clusters:
- name: shared
  cluster: {server: "https://from-b.example"}
- name: c3
  cluster: {server: "https://beta.example", insecure-skip-tls-verify: true}
contexts:
- name: beta
  context: {cluster: c3, user: u3}
users:
- name: u3
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: ./bin/get-token
      args: ["--cluster", "beta"]
      env: [{name: SECRET_ENV, value: hidden}]
"#;

    #[test]
    fn kubeconfigs_merge_first_file_wins_and_paths_are_relative_to_their_file() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("b");
        std::fs::create_dir_all(&sub).unwrap();
        write(dir.path(), "ca.pem", CA);
        let a = write(dir.path(), "a.yaml", A);
        let b = write(&sub, "b.yaml", B);
        // current-context from the first file that sets one.
        let r = resolve(&target("k8s:///team", &[&a, &b]), &no_env).unwrap();
        assert_eq!(r.context, "alpha");
        assert_eq!(r.server.as_str(), "https://alpha.example:6443/");
        assert_eq!(r.ca_pem.as_deref(), Some(CA.as_bytes()));
        assert_eq!(
            r.credential,
            Credential::Bearer(Secret("tok-alpha-0123".into()))
        );
        // A name both files define: the first file's.
        let r = resolve(&target("k8s://shared/team", &[&a, &b]), &no_env).unwrap();
        assert_eq!(r.server.host_str(), Some("from-a.example"));
        assert_eq!(
            r.credential,
            Credential::BearerFile(dir.path().join("tokens/u2"))
        );
        // The second file's own context, its exec command relative to its directory.
        let r = resolve(&target("k8s://beta/x", &[&a, &b]), &no_env).unwrap();
        assert!(r.insecure);
        match r.credential {
            Credential::Exec(e) => {
                assert_eq!(e.command, sub.join("./bin/get-token").display().to_string());
                assert_eq!(e.args.unwrap(), ["--cluster", "beta"]);
            }
            other => panic!("{other:?}"),
        }
        // Order matters: b first makes beta current.
        let r = resolve(&target("k8s:///x", &[&b, &a]), &no_env).unwrap();
        assert_eq!(r.context, "beta");
    }

    #[test]
    fn kubeconfig_env_and_explicit_paths() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "ca.pem", CA);
        let a = write(dir.path(), "a.yaml", A);
        let missing = dir.path().join("nope.yaml");
        let list = format!("{}:{}", missing.display(), a.display());
        let env = |k: &str| (k == "KUBECONFIG").then(|| list.clone());
        // KUBECONFIG: a missing file in the list is skipped, as kubectl does.
        let r = resolve(&Target::parse("k8s:///ns").unwrap(), &env).unwrap();
        assert_eq!(r.context, "alpha");
        // An explicit path that does not exist is an error (clientcmd ExplicitPath).
        let err = resolve(&target("k8s:///ns", &[&missing]), &no_env).unwrap_err();
        assert_eq!(err.kind(), tflock_core::Kind::Usage);
        assert!(err.to_string().contains("does not exist"), "{err}");
    }

    #[test]
    fn unknown_context_lists_the_known_ones_and_secrets_never_show() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "ca.pem", CA);
        let a = write(dir.path(), "a.yaml", A);
        let err = resolve(&target("k8s://prod/ns", &[&a]), &no_env).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("\"prod\"") && text.contains("alpha, shared"),
            "{text}"
        );
        let r = resolve(&target("k8s:///ns", &[&a]), &no_env).unwrap();
        assert!(!format!("{r:?}").contains("tok-alpha"), "{r:?}");
        let bad = write(
            dir.path(),
            "bad.yaml",
            "clusters: [name: {token: tok-secret-9}",
        );
        let text = resolve(&target("k8s:///ns", &[&bad]), &no_env)
            .unwrap_err()
            .to_string();
        assert!(!text.contains("tok-secret"), "{text}");
    }

    #[test]
    fn block_settings_override_the_kubeconfig() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "ca.pem", CA);
        let a = write(dir.path(), "a.yaml", A);
        let t = target("k8s:///ns", &[&a])
            .with("host", Some("https://override.example"))
            .with("token", Some("block-token"))
            .with("context_cluster", Some("shared"));
        let r = resolve(&t, &no_env).unwrap();
        assert_eq!(r.server.host_str(), Some("override.example"));
        assert_eq!(
            r.credential,
            Credential::Bearer(Secret("block-token".into()))
        );
        // A host alone works without any kubeconfig.
        let t = target("k8s:///ns", &[])
            .with("kubeconfig", Some(""))
            .with("host", Some("http://127.0.0.1:1"));
        let t = Target {
            params: t
                .params
                .into_iter()
                .filter(|(k, _)| k != "kubeconfig")
                .collect(),
            ..t
        };
        let env = |k: &str| (k == "KUBECONFIG").then(|| "/nonexistent/kubeconfig".to_string());
        let r = resolve(&t, &env).unwrap();
        assert_eq!(r.server.as_str(), "http://127.0.0.1:1/");
    }

    #[test]
    fn in_cluster_reads_the_service_account() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "token", "sa-token");
        write(dir.path(), "ca.crt", CA);
        let env = |k: &str| match k {
            "KUBERNETES_SERVICE_HOST" => Some("10.0.0.1".to_string()),
            "KUBERNETES_SERVICE_PORT" => Some("443".to_string()),
            _ => None,
        };
        let r = in_cluster("k8s:///ns", &env, dir.path()).unwrap();
        assert_eq!(r.server.as_str(), "https://10.0.0.1/");
        assert_eq!(
            r.credential,
            Credential::BearerFile(dir.path().join("token"))
        );
        assert_eq!(r.ca_pem.as_deref(), Some(CA.as_bytes()));
        let err = in_cluster("k8s:///ns", &no_env, dir.path()).unwrap_err();
        assert!(err.to_string().contains("not running in a pod"), "{err}");
    }

    #[tokio::test]
    async fn exec_plugins_get_the_exec_info_and_their_token_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let script = write(
            dir.path(),
            "plugin.sh",
            "#!/bin/sh\necho \"$KUBERNETES_EXEC_INFO\" > \"$OUT\"\necho '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"exec-token-1\"}}'\n",
        );
        let fail = write(
            dir.path(),
            "fail.sh",
            "#!/bin/sh\necho 'printing exec-token-1 would be wrong' >&1\necho 'error: SSO session expired' >&2\nexit 3\n",
        );
        for s in [&script, &fail] {
            std::process::Command::new("chmod")
                .arg("+x")
                .arg(s)
                .status()
                .unwrap();
        }
        let out_file = dir.path().join("info.json");
        let exec = Exec {
            api_version: "client.authentication.k8s.io/v1".into(),
            command: script.display().to_string(),
            args: None,
            env: Some(vec![ExecEnv {
                name: "OUT".into(),
                value: out_file.display().to_string(),
            }]),
            install_hint: None,
            provide_cluster_info: true,
            interactive_mode: Some("IfAvailable".into()),
        };
        let server = url::Url::parse("https://k.example").unwrap();
        let got = run_exec("t", &exec, &server, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(got.token, Some(Secret("exec-token-1".into())));
        let info: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
        assert_eq!(info["kind"], "ExecCredential");
        assert_eq!(info["spec"]["interactive"], false);
        assert_eq!(info["spec"]["cluster"]["server"], "https://k.example/");
        let failing = Exec {
            command: fail.display().to_string(),
            ..exec
        };
        let err = run_exec("t", &failing, &server, Duration::from_secs(10))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert_eq!(err.kind(), tflock_core::Kind::Unauthenticated);
        assert!(text.contains("SSO session expired"), "{text}");
        assert!(!text.contains("exec-token-1"), "{text}");
    }
}
