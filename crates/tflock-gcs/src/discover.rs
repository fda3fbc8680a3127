//! The gcs backend as a driver: `gs://` targets, the `backend "gcs"` block, and what
//! people get wrong about gcs lock IDs.

use crate::naming::normalize_prefix;
use serde::Deserialize;
use tflock_core::block::de;
use tflock_core::{BackendBlock, Error, Scheme, Target};

/// The settings of `backend "gcs"` tflock uses.
#[derive(Deserialize, Default)]
struct Settings {
    #[serde(default, deserialize_with = "de::text")]
    bucket: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    prefix: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    storage_custom_endpoint: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    access_token: Option<String>,
    #[serde(default, deserialize_with = "de::text")]
    credentials: Option<String>,
    /// Passed on so the store refuses it instead of ignoring it.
    #[serde(default, deserialize_with = "de::text")]
    impersonate_service_account: Option<String>,
}

pub const SCHEMES: &[Scheme] = &[Scheme {
    name: "gs",
    backend: "gcs",
    form: "gs://BUCKET[/PREFIX]",
    about: "the gcs backend's .tflock objects (lock ID = object generation)",
}];

pub fn targets(block: &BackendBlock) -> Result<Vec<Target>, Error> {
    let s: Settings = block.settings()?;
    let Some(bucket) = &s.bucket else {
        return Err(block.missing(&["bucket"]));
    };
    let prefix = normalize_prefix(s.prefix.as_deref().unwrap_or(""));
    let url = if prefix.is_empty() {
        format!("gs://{bucket}?nested=false")
    } else {
        format!(
            "gs://{bucket}/{}?nested=false",
            prefix.trim_end_matches('/')
        )
    };
    let endpoint = s.storage_custom_endpoint.clone().or_else(|| {
        std::env::var("GOOGLE_STORAGE_CUSTOM_ENDPOINT")
            .ok()
            .filter(|v| !v.trim().is_empty())
    });
    // access_token and credentials are hidden options: the shown target is the URL.
    Ok(vec![Target::parse(&url)?
        .with("endpoint", endpoint)
        .with("access_token", s.access_token)
        .with("credentials", s.credentials)
        .with(
            "impersonate_service_account",
            s.impersonate_service_account,
        )])
}

pub fn id_hint(target: &Target, query: &str) -> Option<String> {
    // A gcs lock's ID is its object generation, a number; people paste the UUID.
    (target.scheme == "gs" && !query.bytes().all(|b| b.is_ascii_digit())).then(|| {
        "gcs lock IDs are object generations, numbers, as terraform force-unlock takes them; the LockInfo ID inside a lock works as an alias".to_string()
    })
}

pub fn target_for_path(path: &str) -> Option<String> {
    // LockInfo.Path of the gcs backend: `gs://<bucket>/<prefix><ws>.tflock`.
    let rest = path.strip_prefix("gs://")?;
    let object_dir = rest.rsplit_once('/').map(|(dir, _)| dir)?;
    Some(format!("gs://{object_dir}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming::parse_lock_name;
    use crate::DRIVER;

    fn block(json: &str) -> BackendBlock {
        BackendBlock::new("gcs", serde_json::from_str(json).unwrap())
    }

    fn no_endpoint_in_env() -> bool {
        std::env::var_os("GOOGLE_STORAGE_CUSTOM_ENDPOINT").is_none()
    }

    /// The settings `terraform init` recorded (`.terraform/terraform.tfstate`, unset ones
    /// null): one target for every workspace of this prefix, credentials as hidden options.
    #[test]
    fn initialised_backend_becomes_one_scoped_target_with_hidden_credentials() {
        let b = block(
            r#"{"bucket":"b","prefix":"/team/app","storage_custom_endpoint":null,"access_token":"ya29.tok","credentials":"{\"type\":\"service_account\",\"private_key\":\"SECRETKEY\"}","impersonate_service_account":"tf@p.iam.gserviceaccount.com","encryption_key":null}"#,
        );
        let targets = DRIVER.discover(&b).unwrap();
        assert_eq!(targets.len(), 1);
        let t = &targets[0];
        assert_eq!(t.url, "gs://b/team/app?nested=false");
        assert_eq!(t.param("nested"), Some("false"));
        assert_eq!(t.param("access_token"), Some("ya29.tok"));
        assert!(t.param("credentials").unwrap().contains("SECRETKEY"));
        assert!(!t.url.contains("SECRETKEY") && !t.url.contains("ya29"));
        assert_eq!(
            t.param("impersonate_service_account"),
            Some("tf@p.iam.gserviceaccount.com")
        );
        if no_endpoint_in_env() {
            assert_eq!(t.param("endpoint"), None);
        }
        // The scope the store applies: `<prefix><ws>.tflock`, nothing deeper.
        let prefix = normalize_prefix(&t.path);
        assert_eq!(prefix, "team/app/");
        let ws = |object: &str| {
            parse_lock_name(&prefix, object)
                .filter(|n| !n.nested)
                .map(|n| n.workspace)
        };
        assert_eq!(ws("team/app/dev.tflock").as_deref(), Some("dev"));
        assert_eq!(ws("team/app/x/dev.tflock"), None);
        assert_eq!(ws("team/app/dev.tfstate"), None);
        assert_eq!(ws("team/apple/dev.tflock"), None);
    }

    #[test]
    fn no_prefix_and_a_custom_endpoint() {
        let t = &DRIVER
            .discover(&block(
                r#"{"bucket":"b","storage_custom_endpoint":"http://127.0.0.1:4443/storage/v1/"}"#,
            ))
            .unwrap()[0];
        assert_eq!(t.url, "gs://b?nested=false");
        assert_eq!(
            t.param("endpoint"),
            Some("http://127.0.0.1:4443/storage/v1/")
        );
        assert_eq!(t.param("access_token"), None);
        let t = &DRIVER
            .discover(&block(r#"{"bucket":"b","prefix":"/"}"#))
            .unwrap()[0];
        assert_eq!(t.url, "gs://b?nested=false");
    }

    #[test]
    fn a_block_without_bucket_names_what_is_missing() {
        let err = DRIVER
            .discover(&block(r#"{"prefix":"app","credentials":"SECRETKEY"}"#))
            .unwrap_err();
        assert_eq!(err.kind(), tflock_core::Kind::Usage);
        let text = err.to_string();
        assert!(text.contains("does not set bucket"), "{text}");
        assert!(text.contains("backend \"gcs\" block"), "{text}");
        assert!(!text.contains("SECRETKEY"), "{text}");
    }

    #[test]
    fn ids_and_paths() {
        let t = Target::parse("gs://b/app").unwrap();
        assert!(DRIVER
            .id_hint(&t, "9f2c8a51-3b7e-4d0a-8c6f-1e2d3c4b5a69")
            .is_some());
        assert!(DRIVER.id_hint(&t, "1795691440789684").is_none());
        assert_eq!(
            DRIVER
                .target_for_path("gs://b/team/app/default.tflock")
                .as_deref(),
            Some("gs://b/team/app")
        );
        assert_eq!(DRIVER.target_for_path("s3://b/k"), None);
    }
}
