//! The functions' settings (environment variables), the shared AWS SDK configuration and
//! logging.

use aws_config::SdkConfig;
use cm_api::auth::TokenKey;
use cm_store_dynamodb::DynamoStore;

/// The settings of the live-status functions, from their environment. Each function checks
/// the ones it needs ([`Config::require_signing_key`], [`Config::require_ws_endpoint`]).
#[derive(Debug, Clone)]
pub struct Config {
    /// `CONCERTMASTER_TABLE`: the control plane's DynamoDB table (required by every function).
    pub table: String,
    /// `CONCERTMASTER_SIGNING_KEY`: base64 of at least 32 bytes, the key of the HS256 tokens
    /// (the api function's); ws-connect verifies `?token=` with it. Or
    /// `CONCERTMASTER_SIGNING_KEY_SECRET_ARN`: the Secrets Manager secret holding that text,
    /// read once at cold start by [`Config::load`].
    pub signing_key: Option<TokenKey>,
    /// `CONCERTMASTER_WS_ENDPOINT`: the Management API endpoint of the WebSocket API's stage,
    /// `https://<api-id>.execute-api.<region>.amazonaws.com/<stage>` (or the custom domain's
    /// URL with its base path). Required by the status-pusher; ws-message learns it from its
    /// events (`https://<domainName>/<stage>`) when it is not set.
    pub ws_endpoint: Option<String>,
    /// `CONCERTMASTER_ENDPOINT_URL` (or `AWS_ENDPOINT_URL`): an emulator for every AWS client.
    pub endpoint_url: Option<String>,
}

impl Config {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Config, String> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the settings through `get` (a variable's value, `None` when unset); empty values
    /// count as unset. A signing key that is set but malformed is an error naming it.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        let var = |k: &str| {
            get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let table = var("CONCERTMASTER_TABLE")
            .ok_or("CONCERTMASTER_TABLE is not set: the control plane's DynamoDB table")?;
        let signing_key = var("CONCERTMASTER_SIGNING_KEY")
            .map(|k| {
                TokenKey::from_base64(&k).map_err(|e| format!("CONCERTMASTER_SIGNING_KEY: {e}"))
            })
            .transpose()?;
        let ws_endpoint = var("CONCERTMASTER_WS_ENDPOINT")
            .map(|u| {
                if u.starts_with("https://") || u.starts_with("http://") {
                    Ok(u.trim_end_matches('/').to_owned())
                } else {
                    Err(format!(
                        "CONCERTMASTER_WS_ENDPOINT must be an http(s) URL, got `{u}`"
                    ))
                }
            })
            .transpose()?;
        Ok(Config {
            table,
            signing_key,
            ws_endpoint,
            endpoint_url: var("CONCERTMASTER_ENDPOINT_URL").or_else(|| var("AWS_ENDPOINT_URL")),
        })
    }

    /// The settings of this process's environment with the AWS SDK configuration they imply
    /// (one load, shared by every client): [`Config::from_env`], except that with
    /// `CONCERTMASTER_SIGNING_KEY` unset the signing key is read here, once, from the Secrets
    /// Manager secret `CONCERTMASTER_SIGNING_KEY_SECRET_ARN` names (when it is set).
    pub async fn load() -> Result<(Config, SdkConfig), String> {
        Config::load_from(|k| std::env::var(k).ok()).await
    }

    /// [`Config::load`] with the variables read through `get`.
    pub async fn load_from(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<(Config, SdkConfig), String> {
        let mut config = Config::from_lookup(&get)?;
        let aws = cm_aws::sdk_config(config.endpoint_url.as_deref()).await;
        let arn = get("CONCERTMASTER_SIGNING_KEY_SECRET_ARN")
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty());
        if let (None, Some(arn)) = (&config.signing_key, arn) {
            let text = cm_aws::secrets::secret_string(&aws, &arn)
                .await
                .map_err(|e| format!("CONCERTMASTER_SIGNING_KEY_SECRET_ARN: {e}"))?;
            config.signing_key = Some(TokenKey::from_base64(&text).map_err(|e| {
                format!(
                    "CONCERTMASTER_SIGNING_KEY_SECRET_ARN: the secret `{arn}` is not a signing key: {e}"
                )
            })?);
        }
        Ok((config, aws))
    }

    /// The signing key, or an error naming the variables.
    pub fn require_signing_key(&self) -> Result<TokenKey, String> {
        self.signing_key.clone().ok_or_else(|| {
            "neither CONCERTMASTER_SIGNING_KEY (base64 of the api function's token signing key) nor CONCERTMASTER_SIGNING_KEY_SECRET_ARN (the Secrets Manager secret holding it) is set"
                .to_owned()
        })
    }

    /// The Management API endpoint, or an error naming the variable.
    pub fn require_ws_endpoint(&self) -> Result<String, String> {
        self.ws_endpoint.clone().ok_or_else(|| {
            "CONCERTMASTER_WS_ENDPOINT is not set: https://<api-id>.execute-api.<region>.amazonaws.com/<stage>"
                .to_owned()
        })
    }

    /// The store on the table, with a client of `aws`.
    pub fn store(&self, aws: &SdkConfig) -> DynamoStore {
        DynamoStore::new(aws_sdk_dynamodb::Client::new(aws), &self.table)
    }
}

pub use cm_aws::{init_tracing, log_filter, sdk_config};

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|k| vars.get(k).cloned())
    }

    #[test]
    fn settings_are_read_and_checked() {
        const KEY: &str = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=";
        let c = config(&[
            ("CONCERTMASTER_TABLE", "cm"),
            ("CONCERTMASTER_SIGNING_KEY", KEY),
            (
                "CONCERTMASTER_WS_ENDPOINT",
                "https://x.execute-api.eu-west-1.amazonaws.com/prod/",
            ),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
        ])
        .unwrap();
        assert_eq!(c.table, "cm");
        assert_eq!(
            c.require_ws_endpoint().unwrap(),
            "https://x.execute-api.eu-west-1.amazonaws.com/prod"
        );
        assert!(c.require_signing_key().is_ok());
        assert_eq!(c.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));

        let bare = config(&[("CONCERTMASTER_TABLE", "cm")]).unwrap();
        assert!(
            bare.require_signing_key()
                .unwrap_err()
                .contains("SIGNING_KEY")
        );
        assert!(
            bare.require_ws_endpoint()
                .unwrap_err()
                .contains("WS_ENDPOINT")
        );

        assert!(config(&[]).unwrap_err().contains("CONCERTMASTER_TABLE"));
        for (k, v, why) in [
            ("CONCERTMASTER_SIGNING_KEY", "c2hvcnQ=", "at least 32"),
            ("CONCERTMASTER_SIGNING_KEY", "not base64!", "not base64"),
            ("CONCERTMASTER_WS_ENDPOINT", "wss://x/prod", "http(s) URL"),
        ] {
            let err = config(&[("CONCERTMASTER_TABLE", "cm"), (k, v)]).unwrap_err();
            assert!(err.contains(why), "{err}");
        }
    }
}
