//! One mapping from SDK errors to tflock errors, for both services: the AWS error code,
//! the service's message, and a hint of what to do, on one line.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use tflock_core::error::{may_have_applied, one_line, source_chain};
use tflock_core::text::escape_control;
use tflock_core::{Broken, Error, Kind};

/// What a failed call was doing, for the message: `"listing bucket b"`.
pub(crate) struct Call<'a> {
    pub target: &'a str,
    pub action: String,
    pub region: &'a str,
    /// The custom endpoint in use, if any (named when it cannot be reached).
    pub endpoint: Option<&'a str>,
}

impl<'a> Call<'a> {
    /// `action` on `target`, through `endpoint` (`None`: AWS's own) in `region`.
    pub fn new(
        target: &'a str,
        region: &'a str,
        endpoint: Option<&'a str>,
        action: String,
    ) -> Self {
        Call {
            target,
            action,
            region,
            endpoint,
        }
    }
}

/// Credentials, resolved at the first request, that no AWS service could accept (a
/// control character in a profile's key): the user's to fix, said without the value.
#[derive(Debug)]
pub(crate) struct UnusableCredentials(pub String);

impl std::fmt::Display for UnusableCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UnusableCredentials {}

/// The first error of type `T` in `err`'s source chain.
fn find_source<'a, T: std::error::Error + 'static>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        next = e.source();
    }
    None
}

/// The error code of a service error, or `None` for transport failures. Falls back to an
/// XML `<Code>` in the body: some endpoints (moto's auth check, proxies) answer a JSON
/// service such as DynamoDB with an XML error the SDK cannot parse.
pub(crate) fn code<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> Option<String> {
    if let Some(c) = err.code().filter(|c| !c.is_empty()) {
        return Some(c.to_string());
    }
    let body = err.raw_response()?.body().bytes()?;
    xml_code(&String::from_utf8_lossy(body))
}

fn xml_code(body: &str) -> Option<String> {
    let start = body.find("<Code>")? + "<Code>".len();
    let len = body[start..].find("</Code>")?;
    let code = body[start..start + len].trim();
    (!code.is_empty() && code.len() < 100 && !code.contains('<')).then(|| code.to_string())
}

/// The HTTP status of a service response, when there was one.
pub(crate) fn status<E>(err: &SdkError<E, HttpResponse>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

/// Maps any SDK error of either service to a one-line backend error with a hint.
pub(crate) fn sdk_error<E>(call: &Call<'_>, err: &SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if let Some(bad) = find_source::<UnusableCredentials>(err) {
        return Error::usage(call.target, format!("{}: {bad}", call.action))
            .with_hint("fix the credentials where they are configured");
    }
    let (kind, message, hint) = match err {
        SdkError::ServiceError(_) | SdkError::ResponseError(_) => {
            let code = code(err)
                .or_else(|| status(err).map(|s| format!("HTTP {s}")))
                .unwrap_or_else(|| "unknown error".to_string());
            let detail = err.message().map(|m| format!(": {m}")).unwrap_or_default();
            let hint = hint_for_code(&code, call.region);
            (kind_of_code(&code), format!("{code}{detail}"), hint)
        }
        SdkError::TimeoutError(_) => (
            Kind::Timeout,
            "timed out".to_string(),
            Some("check the endpoint and the network, or raise --request-timeout".to_string()),
        ),
        SdkError::DispatchFailure(d) => {
            let text = source_chain(err);
            let credentials = text.contains("credentials") || text.contains("identity");
            let kind = if credentials {
                Kind::Unauthenticated
            } else if d.is_timeout() {
                Kind::Timeout
            } else {
                Kind::Unreachable
            };
            let hint = if credentials {
                "configure AWS credentials: AWS_PROFILE or ?profile=, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or `aws sso login`; with assume_role, check role_arn and that STS (endpoints.sts) is reachable"
            } else if d.is_timeout() {
                "the endpoint did not answer in time: check the endpoint and the network, or raise --request-timeout"
            } else {
                "cannot reach the endpoint: check AWS_ENDPOINT_URL / ?endpoint=, the region and the network"
            };
            let hint = match call.endpoint {
                Some(ep) if !hint.starts_with("configure") => format!("{ep}: {hint}"),
                _ => hint.to_string(),
            };
            (kind, text, Some(hint))
        }
        _ => (Kind::Backend, source_chain(err), None),
    };
    // Keys and prefixes come from buckets and targets: no control character is shown raw.
    let message = escape_control(&one_line(&format!("{}: {message}", call.action))).into_owned();
    let e = Error::new(kind, message).at(call.target);
    match hint {
        Some(h) => e.with_hint(h),
        None => e,
    }
}

/// Maps the error of a destructive request (sent once, never retried). A service's
/// definite answer (a 4xx with a code, a 503 that applied nothing) is what it says;
/// anything else (no reply, a timeout, a 5xx) may have been applied: the outcome is
/// unknown until the lock is read again.
pub(crate) fn destructive_error<E>(call: &Call<'_>, err: &SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let e = sdk_error(call, err);
    let applied_nothing = e.kind() == Kind::Usage
        || match err {
            SdkError::ServiceError(_) => !may_have_applied(status(err).unwrap_or(500)),
            // The request could not be built or signed: nothing left the process.
            SdkError::ConstructionFailure(_) => true,
            // A connection that was refused or never made carried nothing.
            SdkError::DispatchFailure(d) => {
                d.is_user() || source_chain(err).contains("Connection refused")
            }
            _ => false,
        };
    e.unknown_if(!applied_nothing)
}

/// The outcome of a compare-and-delete sent once: `removed` when it was applied;
/// `Changed` when the service says the condition failed (`what` was removed or re-taken
/// since it was read); otherwise the destructive request's error, for `call`.
pub(crate) fn deleted<T, E>(
    sent: Result<T, SdkError<E, HttpResponse>>,
    condition_failed: impl FnOnce(&SdkError<E, HttpResponse>) -> bool,
    what: &str,
    removed: String,
    call: &Call<'_>,
) -> Result<Broken, Error>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match sent {
        Ok(_) => Ok(Broken {
            removed: vec![removed],
            ..Broken::default()
        }),
        Err(e) if condition_failed(&e) => Err(Error::changed(
            call.target,
            format!("{what} was removed or re-taken since it was read"),
        )),
        Err(e) => Err(destructive_error(call, &e)),
    }
}

/// The kind of a service error code (S3 and DynamoDB spellings).
fn kind_of_code(code: &str) -> Kind {
    match code {
        "AccessDenied" | "AccessDeniedException" | "AllAccessDisabled" | "HTTP 403" => {
            Kind::PermissionDenied
        }
        "InvalidAccessKeyId"
        | "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "InvalidSignatureException"
        | "ExpiredToken"
        | "ExpiredTokenException"
        | "RequestExpired"
        | "TokenRefreshRequired"
        | "MissingAuthenticationToken"
        | "HTTP 401" => Kind::Unauthenticated,
        _ => Kind::Backend,
    }
}

/// What to do about a service error code (S3 and DynamoDB spellings).
fn hint_for_code(code: &str, region: &str) -> Option<String> {
    let hint = match code {
        "AccessDenied" | "AccessDeniedException" | "AllAccessDisabled" | "HTTP 403" => {
            "the credentials in use lack permission: tflock needs s3:ListBucket, s3:GetObject, s3:DeleteObject or dynamodb:Scan, dynamodb:DeleteItem".to_string()
        }
        "ResourceNotFoundException" => {
            format!("no such table in region {region}: check the table name and the region (?region=)")
        }
        "NoSuchBucket" => "no such bucket: check the bucket name".to_string(),
        "InvalidAccessKeyId" | "UnrecognizedClientException" | "InvalidClientTokenId" => {
            "the access key is not known to AWS: check AWS_PROFILE / ?profile= or AWS_ACCESS_KEY_ID".to_string()
        }
        "SignatureDoesNotMatch" | "InvalidSignatureException" => {
            "the secret key does not match the access key (or the clock is off): check the credentials".to_string()
        }
        "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" | "TokenRefreshRequired" => {
            "the credentials expired: refresh them (for SSO: aws sso login)".to_string()
        }
        "PermanentRedirect" | "AuthorizationHeaderMalformed" | "IllegalLocationConstraintException" => {
            format!("the bucket is not in region {region}: pass ?region= with the bucket's region")
        }
        "SlowDown" | "Throttling" | "ThrottlingException" | "ProvisionedThroughputExceededException"
        | "RequestLimitExceeded" => "throttled even after retries: try again shortly".to_string(),
        c if c.starts_with("HTTP 5") || c == "InternalError" || c == "ServiceUnavailable" => {
            "the service failed even after retries: try again shortly".to_string()
        }
        _ => return None,
    };
    Some(hint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::error::ErrorMetadata;
    use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Error;

    fn service_error(
        code: &str,
        msg: &str,
        status: u16,
    ) -> SdkError<ListObjectsV2Error, HttpResponse> {
        let meta = ErrorMetadata::builder().code(code).message(msg).build();
        let raw = HttpResponse::new(
            status.try_into().expect("valid status"),
            aws_sdk_s3::primitives::SdkBody::empty(),
        );
        SdkError::service_error(ListObjectsV2Error::generic(meta), raw)
    }

    fn call() -> Call<'static> {
        Call {
            target: "s3://b",
            action: "listing bucket b".into(),
            region: "eu-west-1",
            endpoint: None,
        }
    }

    #[test]
    fn service_errors_name_code_and_hint() {
        let e = sdk_error(
            &call(),
            &service_error("NoSuchBucket", "The specified bucket\ndoes not exist", 404),
        );
        assert_eq!(
            e.to_string(),
            "s3://b: listing bucket b: NoSuchBucket: The specified bucket does not exist (no such bucket: check the bucket name)"
        );
        assert_eq!(e.kind(), Kind::Backend);
        let e = sdk_error(
            &call(),
            &service_error(
                "ResourceNotFoundException",
                "Requested resource not found",
                400,
            ),
        );
        assert!(
            e.to_string().contains("ResourceNotFoundException")
                && e.to_string().contains("region eu-west-1"),
            "{e}"
        );
        for code in [
            "AccessDenied",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "UnrecognizedClientException",
            "ExpiredToken",
        ] {
            let e = sdk_error(&call(), &service_error(code, "m", 403));
            let text = e.to_string();
            assert!(text.contains(code) && text.contains(" ("), "{text}");
        }
    }

    #[test]
    fn each_code_has_its_kind() {
        for (code, status, kind) in [
            ("AccessDenied", 403, Kind::PermissionDenied),
            ("AccessDeniedException", 400, Kind::PermissionDenied),
            ("", 403, Kind::PermissionDenied),
            ("InvalidAccessKeyId", 403, Kind::Unauthenticated),
            ("UnrecognizedClientException", 400, Kind::Unauthenticated),
            ("ExpiredTokenException", 400, Kind::Unauthenticated),
            ("", 401, Kind::Unauthenticated),
            ("NoSuchBucket", 404, Kind::Backend),
            ("ResourceNotFoundException", 400, Kind::Backend),
            ("SlowDown", 503, Kind::Backend),
            ("", 500, Kind::Backend),
        ] {
            let e = sdk_error(&call(), &service_error(code, "m", status));
            assert_eq!(e.kind(), kind, "{code} {status}: {e}");
        }
        let hostile = sdk_error(&call(), &service_error("X", "evil\u{1b}[2Jtext", 400));
        assert!(
            !hostile.to_string().chars().any(char::is_control),
            "{hostile}"
        );
    }

    #[test]
    fn a_response_without_code_shows_the_status() {
        let e = sdk_error(&call(), &service_error("", "", 503));
        let text = e.to_string();
        assert!(
            text.contains("HTTP 503") || text.contains("listing bucket b"),
            "{text}"
        );
    }

    #[test]
    fn xml_codes_are_found_when_the_sdk_cannot_parse_them() {
        let body = r#"<?xml version="1.0"?><ErrorResponse><Errors><Error><Code>InvalidClientTokenId</Code></Error></Errors></ErrorResponse>"#;
        assert_eq!(xml_code(body).as_deref(), Some("InvalidClientTokenId"));
        assert_eq!(xml_code("<Code></Code>"), None);
        assert_eq!(xml_code("not xml"), None);
    }

    #[test]
    fn timeouts_say_so() {
        let err: SdkError<ListObjectsV2Error, HttpResponse> = SdkError::timeout_error(
            "operation timeout (all attempts including retries) occurred after 2s",
        );
        let e = sdk_error(&call(), &err);
        assert!(
            e.to_string().contains("timed out") && e.to_string().contains("--request-timeout"),
            "{e}"
        );
    }
}
