//! A function's secrets from SSM. The one SSM call a function makes, `GetParameter`, is sent through the
//! SDK's own runtime (the DynamoDB and SQS clients' HTTPS client, timeouts and standard retries) and signed
//! with `aws-sigv4`, the SDK's signer. `aws-sdk-ssm` for this one operation was 0.9 MB of every binary, this 0.15 MB
//! (docs/performance.md).

use std::fmt;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_runtime::retries::classifiers::AwsErrorCodeClassifier;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_async::rt::sleep::TokioSleep;
use aws_smithy_async::time::SystemTimeSource;
use aws_smithy_runtime::client::orchestrator::operation::Operation;
use aws_smithy_runtime::client::retries::classifiers::{HttpStatusCodeClassifier, TransientErrorClassifier};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse, OrchestratorError, SensitiveOutput};
use aws_smithy_runtime_api::client::runtime_plugin::StaticRuntimePlugin;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::Layer;
use aws_smithy_types::error::metadata::{ErrorMetadata, ProvideErrorMetadata};
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use aws_types::service_config::ServiceConfigKey;
use aws_types::SdkConfig;
use lambda_http::http;

use crate::config::{SecretSource, TlsRoots};
use crate::error::{BoxError, SecretsError};
use crate::ports::SecretLoader;
use crate::verify::SecretSet;
use crate::verify::Secrets;

/// A function's secrets from where its configuration says: inline values, or SSM SecureString parameters
/// (`WEBHOOK_SECRETS_PARAM`, `MUDA_SIGNING_KEYS_PARAM`) in the same comma-separated format.
#[derive(Debug, Clone)]
pub struct SsmSecrets {
    client: SsmClient,
    webhook: SecretSource,
    signing_keys: Option<SecretSource>,
}

impl SsmSecrets {
    pub fn new(client: SsmClient, webhook: SecretSource, signing_keys: Option<SecretSource>) -> Self {
        Self { client, webhook, signing_keys }
    }

    async fn load_one(&self, source: &SecretSource, what: &'static str) -> Result<SecretSet, SecretsError> {
        let name = match source {
            SecretSource::Inline(set) => return Ok(set.clone()),
            SecretSource::SsmParameter(name) => name,
        };
        let fail = |source: BoxError| SecretsError { source_name: format!("SSM parameter {name}"), source };
        let value = self.client.get_decrypted(name).await.map_err(fail)?;
        SecretSet::parse(&value.0, what).map_err(|e| fail(e.into()))
    }
}

#[async_trait]
impl SecretLoader for SsmSecrets {
    async fn load(&self) -> Result<Secrets, SecretsError> {
        let webhook = self.load_one(&self.webhook, "WEBHOOK_SECRETS_PARAM").await?;
        let signing_keys = match &self.signing_keys {
            Some(source) => Some(self.load_one(source, "the signing keys' parameter").await?),
            None => None,
        };
        Ok(Secrets { webhook, signing_keys })
    }
}

/// SSM's `GetParameter` with decryption, on the SDK configuration's endpoint, region, credentials and HTTPS
/// client.
#[derive(Clone)]
pub struct SsmClient {
    operation: Operation<SignedRequest, ParameterValue, SsmError>,
    credentials: Option<SharedCredentialsProvider>,
    endpoint: Result<String, &'static str>,
    region: Option<String>,
}

impl fmt::Debug for SsmClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SsmClient").field("endpoint", &self.endpoint).field("region", &self.region).finish()
    }
}

/// The SDK's connect timeout for its current behavior version, which `SdkConfig` leaves unset.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

impl SsmClient {
    pub fn new(sdk: &SdkConfig) -> Self {
        let region = sdk.region().map(|r| r.as_ref().to_owned());
        let endpoint = endpoint(sdk, region.as_deref());
        let http_client = sdk.http_client().unwrap_or_else(|| super::https_client(TlsRoots::Amazon));
        let timeouts = sdk
            .timeout_config()
            .cloned()
            .unwrap_or_else(|| TimeoutConfig::builder().connect_timeout(CONNECT_TIMEOUT).build());
        let operation = Operation::builder()
            .service_name("ssm")
            .operation_name("GetParameter")
            .http_client(http_client)
            .endpoint_url(endpoint.as_deref().unwrap_or("http://unset.invalid"))
            .no_auth()
            .standard_retry(&sdk.retry_config().cloned().unwrap_or_else(RetryConfig::standard))
            .retry_classifier(AwsErrorCodeClassifier::<SsmError>::new())
            .retry_classifier(HttpStatusCodeClassifier::default())
            .retry_classifier(TransientErrorClassifier::<SsmError>::new())
            .timeout_config(timeouts)
            .sleep_impl(TokioSleep::new())
            .time_source(SystemTimeSource::new())
            .runtime_plugin(StaticRuntimePlugin::new().with_config(sensitive_output()))
            .serializer(|request: SignedRequest| Ok(request.0))
            .deserializer(parse_response)
            .build();
        Self { operation, credentials: sdk.credentials_provider(), endpoint, region }
    }

    /// The parameter's value, decrypted.
    async fn get_decrypted(&self, name: &str) -> Result<ParameterValue, BoxError> {
        let endpoint = self.endpoint.as_deref().map_err(|e| BoxError::from(*e))?;
        let region = self.region.as_deref().ok_or("no AWS region (AWS_REGION) to sign for")?;
        let provider = self.credentials.as_ref().ok_or("no AWS credentials in the environment")?;
        let credentials = provider.provide_credentials().await?;
        let request = get_parameter(endpoint, region, &credentials, name, SystemTime::now())?;
        Ok(self.operation.invoke(SignedRequest(request)).await?)
    }
}

/// The answer holds a secret: the runtime's trace of the response body shows it redacted, as `aws-sdk-ssm`
/// marks `GetParameter`'s.
fn sensitive_output() -> aws_smithy_types::config_bag::FrozenLayer {
    let mut layer = Layer::new("GetParameter");
    layer.store_put(SensitiveOutput);
    layer.freeze()
}

/// The endpoint as the SDK clients find theirs: `AWS_ENDPOINT_URL_SSM`, then `AWS_ENDPOINT_URL`, then the
/// region's (the `aws` and `aws-cn` partitions; any other needs `AWS_ENDPOINT_URL_SSM`).
fn endpoint(sdk: &SdkConfig, region: Option<&str>) -> Result<String, &'static str> {
    let key = ServiceConfigKey::builder().service_id("SSM").env("AWS_ENDPOINT_URL").profile("endpoint_url").build();
    let own = key.ok().and_then(|key| sdk.service_config().and_then(|c| c.load_config(key)));
    if let Some(url) = own.or_else(|| sdk.endpoint_url().map(str::to_owned)) {
        return Ok(url.trim_end_matches('/').to_owned());
    }
    let region = region.ok_or("no AWS region (AWS_REGION) for the SSM endpoint")?;
    let domain = if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
    Ok(format!("https://ssm.{region}.{domain}"))
}

/// A `GetParameter` request for `name`, signed (SigV4, service `ssm`) at `at`.
fn get_parameter(
    endpoint: &str,
    region: &str,
    credentials: &Credentials,
    name: &str,
    at: SystemTime,
) -> Result<HttpRequest, BoxError> {
    let url = format!("{endpoint}/");
    let uri: http::Uri = url.parse()?;
    let host = uri.authority().ok_or("the SSM endpoint has no host")?.as_str().to_owned();
    let body = serde_json::json!({ "Name": name, "WithDecryption": true }).to_string();
    let headers = [
        ("content-type", "application/x-amz-json-1.1"),
        ("host", host.as_str()),
        ("x-amz-target", "AmazonSSM.GetParameter"),
    ];
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("ssm")
        .time(at)
        .settings(SigningSettings::default())
        .build()?
        .into();
    let signable = SignableRequest::new("POST", &url, headers.iter().copied(), SignableBody::Bytes(body.as_bytes()))?;
    let (instructions, _signature) = sign(signable, &params)?.into_parts();
    let mut request = http::Request::builder().method("POST").uri("/");
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let mut request = request.body(body)?;
    instructions.apply_to_request_http1x(&mut request);
    Ok(HttpRequest::try_from(request.map(SdkBody::from))?)
}

fn parse_response(response: &HttpResponse) -> Result<ParameterValue, OrchestratorError<SsmError>> {
    let body = response.body().bytes().unwrap_or_default();
    let status = response.status().as_u16();
    if !(200..300).contains(&status) {
        // `{"__type": ..., "message": ...}`; an answer may carry both `message` and `Message` (moto does), and
        // the code may come only in the `x-amzn-errortype` header.
        let failure: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let text = |key: &str| failure.get(key).and_then(serde_json::Value::as_str).map(str::to_owned);
        let header = response.headers().get("x-amzn-errortype").map(str::to_owned);
        let kind = text("__type").or(header);
        let message = text("message").or_else(|| text("Message"));
        // `__type` may be `com.amazonaws.ssm#ParameterNotFound` or `ParameterNotFound:http://...`.
        let code = kind.as_deref().map(|k| k.rsplit('#').next().unwrap_or(k)).map(|k| k.split(':').next().unwrap_or(k));
        let mut meta = ErrorMetadata::builder();
        if let Some(code) = code {
            meta = meta.code(code);
        }
        if let Some(message) = message {
            meta = meta.message(message);
        }
        return Err(OrchestratorError::operation(SsmError { status, meta: meta.build() }));
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "Parameter")]
        parameter: Parameter,
    }
    #[derive(serde::Deserialize)]
    struct Parameter {
        #[serde(rename = "Value")]
        value: String,
    }
    let answer: Answer = serde_json::from_slice(body)
        .map_err(|e| OrchestratorError::other(format!("SSM GetParameter answer without Parameter.Value: {e}")))?;
    Ok(ParameterValue(answer.parameter.value))
}

/// A request signed before it is handed to the runtime: the runtime's own auth step is `no_auth`. Its
/// `Debug` (the runtime's debug logs of the input) shows neither the signature nor the session token.
struct SignedRequest(HttpRequest);

impl fmt::Debug for SignedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SignedRequest(GetParameter, ** signed headers redacted **)")
    }
}

/// A secret: its `Debug` (the runtime's debug logs) shows no value.
struct ParameterValue(String);

impl fmt::Debug for ParameterValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ParameterValue(** redacted **)")
    }
}

/// SSM's answer to a failed call: its status and error code (`ParameterNotFound`, `ThrottlingException`, ...).
#[derive(Debug)]
pub struct SsmError {
    status: u16,
    meta: ErrorMetadata,
}

impl fmt::Display for SsmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SSM answered {}: {}", self.status, self.meta.code().unwrap_or("no error code"))?;
        match self.meta.message() {
            Some(message) => write!(f, " ({message})"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for SsmError {}

impl ProvideErrorMetadata for SsmError {
    fn meta(&self) -> &ErrorMetadata {
        &self.meta
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::serve_once_each;
    use aws_credential_types::Credentials;
    use aws_types::region::Region;

    #[test]
    fn a_get_parameter_is_signed_as_botocore_signs_it() {
        // botocore 1.x `SigV4Auth(credentials, "ssm", "eu-west-1")` over the same request at the same time
        // (an independent signer): the header set, service name, region and body hash all enter the signature.
        let credentials = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None, None, "t");
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000);
        let request =
            get_parameter("https://ssm.eu-west-1.amazonaws.com", "eu-west-1", &credentials, "/payhooks/niobi", at)
                .unwrap();
        let header = |name: &str| request.headers().get(name).map(str::to_owned);
        assert_eq!(header("x-amz-date").as_deref(), Some("20260921T141320Z"));
        assert_eq!(header("authorization").as_deref(), Some(BOTOCORE_AUTHORIZATION));
        assert_eq!(request.body().bytes(), Some(&br#"{"Name":"/payhooks/niobi","WithDecryption":true}"#[..]));
        assert_eq!(header("x-amz-security-token"), None);

        let session = Credentials::new("AKIDEXAMPLE", "secret", Some("token".into()), None, "t");
        let request = get_parameter("http://127.0.0.1:5003", "us-east-1", &session, "p", at).unwrap();
        assert_eq!(request.headers().get("x-amz-security-token"), Some("token"));
        assert_eq!(request.headers().get("host"), Some("127.0.0.1:5003"));
    }

    const BOTOCORE_AUTHORIZATION: &str =
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260921/eu-west-1/ssm/aws4_request, \
        SignedHeaders=content-type;host;x-amz-date;x-amz-target, \
        Signature=923d9aaf63ffb6693de654a4ff7364104aad77c9609bcb10ebee6c09bded392f";

    #[test]
    fn the_endpoint_is_the_sdk_clients_endpoint() {
        let sdk = |endpoint: Option<&str>| {
            let mut b = SdkConfig::builder().region(Region::new("af-south-1"));
            if let Some(url) = endpoint {
                b = b.endpoint_url(url);
            }
            b.build()
        };
        assert_eq!(endpoint(&sdk(None), Some("af-south-1")).unwrap(), "https://ssm.af-south-1.amazonaws.com");
        assert_eq!(endpoint(&sdk(None), Some("cn-north-1")).unwrap(), "https://ssm.cn-north-1.amazonaws.com.cn");
        assert_eq!(endpoint(&sdk(Some("http://127.0.0.1:5000/")), None).unwrap(), "http://127.0.0.1:5000");
        assert!(endpoint(&sdk(None), None).is_err());
    }

    #[test]
    fn a_failure_names_its_code() {
        let answer =
            |status: u16, body: &str| HttpResponse::new(status.try_into().unwrap(), SdkBody::from(body.to_owned()));
        let err = parse_response(&answer(400, r#"{"__type":"ParameterNotFound","message":"no /x"}"#)).unwrap_err();
        let err = err.as_operation_error().unwrap();
        assert_eq!((err.status, err.code()), (400, Some("ParameterNotFound")));
        assert_eq!(err.to_string(), "SSM answered 400: ParameterNotFound (no /x)");
        let err = parse_response(&answer(400, r#"{"__type":"com.amazonaws.ssm#ThrottlingException"}"#)).unwrap_err();
        assert_eq!(err.as_operation_error().unwrap().code(), Some("ThrottlingException"));
        // Both spellings of the message (moto writes them), and a code given only in the header.
        let both = r#"{"__type": "ParameterNotFound", "message": "Parameter /x not found.", "Message": "Parameter /x not found."}"#;
        let err = parse_response(&answer(400, both)).unwrap_err();
        assert_eq!(
            err.as_operation_error().unwrap().to_string(),
            "SSM answered 400: ParameterNotFound (Parameter /x not found.)"
        );
        let mut in_header = answer(400, "");
        in_header.headers_mut().insert("x-amzn-errortype", "AccessDeniedException");
        assert_eq!(
            parse_response(&in_header).unwrap_err().as_operation_error().unwrap().code(),
            Some("AccessDeniedException")
        );
        let ok = parse_response(&answer(200, r#"{"Parameter":{"Name":"/x","Value":"a,b","Version":1}}"#)).unwrap();
        assert_eq!(ok.0, "a,b");
        assert_eq!(format!("{ok:?}"), "ParameterValue(** redacted **)");
        assert!(parse_response(&answer(200, "{}")).is_err());
    }

    fn client(url: &str) -> SsmClient {
        let credentials = Credentials::new("AKIDEXAMPLE", "secret", None, None, "t");
        let sdk = SdkConfig::builder()
            .region(Region::new("eu-west-1"))
            .endpoint_url(url)
            .credentials_provider(SharedCredentialsProvider::new(credentials))
            .http_client(crate::aws::https_client(TlsRoots::Amazon))
            .build();
        SsmClient::new(&sdk)
    }

    #[tokio::test]
    async fn a_throttled_get_parameter_is_retried() {
        let throttled = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
        let (url, server) =
            serve_once_each(vec![(400, throttled), (200, r#"{"Parameter":{"Value":"s1,s2"}}"#)], "WithDecryption")
                .await;
        let value = client(&url).get_decrypted("/payhooks/lipia").await.unwrap();
        assert_eq!(value.0, "s1,s2");
        let requests = server.await.unwrap();
        assert_eq!(requests.len(), 2);
        for request in &requests {
            let request = request.to_ascii_lowercase();
            assert!(request.starts_with("post / http/1.1\r\n"), "{request}");
            assert!(request.contains("x-amz-target: amazonssm.getparameter\r\n"), "{request}");
            assert!(request.contains("authorization: aws4-hmac-sha256 credential=akidexample/"), "{request}");
            assert!(request.contains("/eu-west-1/ssm/aws4_request"), "{request}");
        }
    }

    #[tokio::test]
    async fn a_missing_parameter_is_not_retried() {
        let (url, server) = serve_once_each(vec![(400, r#"{"__type":"ParameterNotFound"}"#)], "WithDecryption").await;
        let err = client(&url).get_decrypted("/payhooks/none").await.unwrap_err();
        assert!(format!("{err:?}").contains("ParameterNotFound"), "{err:?}");
        assert_eq!(server.await.unwrap().len(), 1);
    }
}
