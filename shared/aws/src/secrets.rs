//! A secret's text from AWS Secrets Manager, read once when a function starts (so it is
//! neither in the function's configuration nor fetched per request).

use aws_config::SdkConfig;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata};

/// Why a secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// `GetSecretValue` failed (the service's error name when it answered: e.g.
    /// `ResourceNotFoundException`, `AccessDeniedException`).
    #[error("Secrets Manager GetSecretValue of `{id}` failed: {detail}")]
    Fetch {
        /// The secret's ARN or name.
        id: String,
        /// The error.
        detail: String,
    },
    /// The secret holds binary data, not text.
    #[error("secret `{id}` has no text value (SecretString); binary secrets are not supported")]
    NotText {
        /// The secret's ARN or name.
        id: String,
    },
}

/// The current text value (`AWSCURRENT`) of secret `id` (an ARN or a name).
pub async fn secret_string(aws: &SdkConfig, id: &str) -> Result<String, SecretError> {
    let out = aws_sdk_secretsmanager::Client::new(aws)
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| SecretError::Fetch {
            id: id.to_owned(),
            detail: match e.code() {
                Some(code) => format!("{code}: {}", e.message().unwrap_or_default()),
                None => DisplayErrorContext(&e).to_string(),
            },
        })?;
    out.secret_string()
        .map(str::to_owned)
        .ok_or_else(|| SecretError::NotText { id: id.to_owned() })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn an_unreachable_service_names_the_secret() {
        // Nothing listens on port 9: the error must say which secret and why.
        let aws = crate::sdk_config(Some("http://127.0.0.1:9")).await;
        let e = secret_string(&aws, "arn:aws:secretsmanager:us-east-1:1:secret:k")
            .await
            .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("GetSecretValue of `arn:aws:secretsmanager:us-east-1:1:secret:k`"),
            "{text}"
        );
    }
}
