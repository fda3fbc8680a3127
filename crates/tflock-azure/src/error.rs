//! Storage errors turned into one-line tflock errors: what failed, the service's error
//! code, and what to do about it.

use azure_core::error::ErrorKind;
use tflock_core::error::{may_have_applied, root_cause};
use tflock_core::redact;
use tflock_core::{Error, Kind};

/// The storage error code (`ContainerNotFound`, `LeaseIdMismatchWithLeaseOperation`, ...),
/// or the HTTP status when the service gave none.
pub(crate) fn code_of(e: &azure_core::Error) -> Option<String> {
    match e.kind() {
        ErrorKind::HttpResponse {
            status, error_code, ..
        } => Some(
            error_code
                .clone()
                .unwrap_or_else(|| format!("HTTP {}", u16::from(*status))),
        ),
        _ => None,
    }
}

pub(crate) fn status_of(e: &azure_core::Error) -> Option<u16> {
    e.http_status().map(u16::from)
}

/// Blanks the credential in text that came from the SDK or the HTTP client (a request URL
/// carries the SAS; an error may quote it).
pub(crate) struct Redactor {
    secrets: Vec<String>,
}

/// Query keys whose values are kept in messages: what a request was, never a credential.
const HARMLESS: &[&str] = &[
    "endpoint",
    "key",
    "comp",
    "restype",
    "prefix",
    "include",
    "maxresults",
];

impl Redactor {
    pub(crate) fn new(secrets: Vec<String>) -> Redactor {
        Redactor { secrets }
    }

    pub(crate) fn text(&self, text: &str) -> String {
        let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        redact::secrets(&redact::url_keeping(text, HARMLESS), &secrets)
    }
}

/// `what` failed on `target` (`listing container tfstate`, `releasing the lease on B`).
pub(crate) fn storage(target: &str, what: &str, e: &azure_core::Error, redact: &Redactor) -> Error {
    if let Some(code) = code_of(e) {
        let status = status_of(e)
            .map(|s| format!(" (HTTP {s})"))
            .unwrap_or_default();
        let kind = match code.as_str() {
            "AuthenticationFailed"
            | "InvalidAuthenticationInfo"
            | "NoAuthenticationInformation" => Kind::Unauthenticated,
            c if c.starts_with("AuthorizationPermissionMismatch")
                || c.starts_with("AuthorizationFailure")
                || c == "HTTP 403" =>
            {
                Kind::PermissionDenied
            }
            _ => Kind::Backend,
        };
        return Error::new(kind, format!("{what}: {code}{status}"))
            .at(target)
            .with_hint(hint_for(&code));
    }
    let cause = redact.text(&root_cause(e as &(dyn std::error::Error + 'static)));
    let kind = match e.kind() {
        ErrorKind::Credential => Kind::Unauthenticated,
        _ if timed_out(e) => Kind::Timeout,
        _ => Kind::Unreachable,
    };
    let hint = match e.kind() {
        ErrorKind::Credential => {
            "no usable credential: set ARM_ACCESS_KEY, ARM_SAS_TOKEN or AZURE_STORAGE_CONNECTION_STRING, or sign in with az login"
        }
        _ if cause.contains("certificate") || cause.contains("UnknownIssuer") => {
            "the endpoint's TLS certificate is not trusted: set SSL_CERT_FILE to a PEM bundle that includes its CA"
        }
        _ => {
            "check that the endpoint is reachable (?endpoint= on the target, HTTPS_PROXY/NO_PROXY) or raise --request-timeout"
        }
    };
    Error::new(kind, format!("{what}: {cause}"))
        .at(target)
        .with_hint(hint)
}

/// No answer in time: our deadline over the whole request, or the HTTP client's own
/// connect or per-try timeout.
fn timed_out(e: &azure_core::Error) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return true;
            }
        }
        if err
            .downcast_ref::<reqwest::Error>()
            .is_some_and(reqwest::Error::is_timeout)
        {
            return true;
        }
        next = err.source();
    }
    false
}

/// The error of a destructive request, sent once. A response below 500 (or a 503) applied
/// nothing; no response, or another 5xx, may have: the outcome is then unknown until the
/// blob is read again.
pub(crate) fn destructive(
    target: &str,
    what: &str,
    e: &azure_core::Error,
    redact: &Redactor,
) -> Error {
    let err = storage(target, what, e, redact);
    match status_of(e) {
        Some(s) if !may_have_applied(s) => err,
        _ if matches!(e.kind(), ErrorKind::Credential) => err,
        _ => err.with_kind(Kind::OutcomeUnknown),
    }
}

fn hint_for(code: &str) -> &'static str {
    match code {
        "AuthenticationFailed" => {
            "the request signature was refused: check the account key (ARM_ACCESS_KEY) and that the account name matches it"
        }
        "AuthorizationFailure" => {
            "the request was refused: check the account key or SAS for this account; Entra ID needs the Storage Blob Data Contributor role"
        }
        "AuthorizationPermissionMismatch" | "InsufficientAccountPermissions" => {
            "the credential may not do this: Entra ID needs the Storage Blob Data Contributor role; a SAS needs read, write and list permissions"
        }
        "ContainerNotFound" => "check the container name in azblob://ACCOUNT/CONTAINER",
        "BlobNotFound" => "the blob is gone; list again",
        "AccountIsDisabled" | "AccountNotFound" | "ResourceNotFound" => {
            "check the account name and the endpoint"
        }
        "InvalidHeaderValue" | "InvalidQueryParameterValue" => {
            "the service refused the API version: for Azurite start it with --skipApiVersionCheck"
        }
        c if c.starts_with("LeaseIdMismatch") || c.starts_with("LeaseNotPresent") || c == "LeaseIdMissing" || c == "ConditionNotMet" => {
            "the lease changed since it was read: list again"
        }
        _ => "see the storage error code in the Azure Blob REST documentation",
    }
}

/// A request conditioned on a lease id, refused because another lease holds the blob:
/// `LeaseIdMismatchWithBlobOperation` (409 on Azure, 412 on Azurite), or
/// `...WithLeaseOperation` for a lease action.
pub(crate) fn is_other_lease(e: &azure_core::Error) -> bool {
    matches!(status_of(e), Some(409 | 412))
        && code_of(e).is_some_and(|c| c.starts_with("LeaseIdMismatch"))
}

/// Is this the service saying the lease or the blob is no longer what was read?
pub(crate) fn is_changed(e: &azure_core::Error) -> bool {
    let code = code_of(e).unwrap_or_default();
    matches!(status_of(e), Some(409 | 412 | 404))
        && (code.starts_with("LeaseIdMismatch")
            || code.starts_with("LeaseNotPresent")
            || code.starts_with("LeaseIsBroken")
            || code.starts_with("LeaseIsBreaking")
            || code == "LeaseIdMissing"
            || code == "LeaseAlreadyPresent"
            || code == "ConditionNotMet"
            || code == "BlobNotFound"
            || code == "HTTP 412")
}

#[cfg(test)]
mod tests {
    use super::*;
    use azure_core::http::StatusCode;

    fn http(status: StatusCode, code: Option<&str>) -> azure_core::Error {
        azure_core::Error::with_message(
            ErrorKind::HttpResponse {
                status,
                error_code: code.map(str::to_string),
                raw_response: None,
            },
            "refused",
        )
    }

    #[test]
    fn names_code_and_hint_in_one_line() {
        let none = Redactor::new(Vec::new());
        let e = storage(
            "azblob://acct/tfstate",
            "listing container tfstate",
            &http(StatusCode::NotFound, Some("ContainerNotFound")),
            &none,
        );
        assert_eq!(
            e.to_string(),
            "azblob://acct/tfstate: listing container tfstate: ContainerNotFound (HTTP 404) (check the container name in azblob://ACCOUNT/CONTAINER)"
        );
        assert_eq!(e.kind(), Kind::Backend);
        let e = storage(
            "t",
            "x",
            &http(StatusCode::Forbidden, Some("AuthenticationFailed")),
            &none,
        );
        assert!(e.to_string().contains("ARM_ACCESS_KEY"));
    }

    #[test]
    fn sdk_text_never_shows_the_credential() {
        // What BlobClient::new says of a bad URL, and a transport error quoting the key.
        let r = Redactor::new(vec!["U0VDUkVUU0lH".into(), "a2V5LWtleS1rZXk=".into()]);
        let e = azure_core::Error::with_message(
            ErrorKind::Other,
            "https://acct.blob.core.windows.net/c?comp=list&sv=2019-12-12&sig=U0VDUkVUU0lH is not a valid base URL (key a2V5LWtleS1rZXk=)",
        );
        let text = storage("azblob://acct/c", "listing container c", &e, &r).to_string();
        assert!(
            !text.contains("U0VDUkVUU0lH") && !text.contains("a2V5LWtleS1rZXk="),
            "{text}"
        );
        assert!(text.contains("comp=list"), "{text}");
        let once = destructive("t", "releasing", &e, &r).to_string();
        assert!(!once.contains("U0VDUkVUU0lH"), "{once}");
    }

    #[test]
    fn lease_refusals_are_changes() {
        assert!(is_changed(&http(
            StatusCode::Conflict,
            Some("LeaseIdMismatchWithLeaseOperation")
        )));
        assert!(is_changed(&http(
            StatusCode::PreconditionFailed,
            Some("ConditionNotMet")
        )));
        assert!(is_changed(&http(StatusCode::PreconditionFailed, None)));
        assert!(is_changed(&http(
            StatusCode::NotFound,
            Some("BlobNotFound")
        )));
        assert!(!is_changed(&http(
            StatusCode::NotFound,
            Some("ContainerNotFound")
        )));
        assert!(!is_changed(&http(
            StatusCode::Forbidden,
            Some("AuthorizationFailure")
        )));
        // Another lease: 409 on Azure, 412 on Azurite; a stale ETag is not that.
        for status in [StatusCode::Conflict, StatusCode::PreconditionFailed] {
            assert!(is_other_lease(&http(
                status,
                Some("LeaseIdMismatchWithBlobOperation")
            )));
        }
        assert!(!is_other_lease(&http(
            StatusCode::PreconditionFailed,
            Some("LeaseNotPresentWithBlobOperation")
        )));
        assert!(!is_other_lease(&http(
            StatusCode::PreconditionFailed,
            Some("ConditionNotMet")
        )));
    }
}
