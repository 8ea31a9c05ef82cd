//! Sending frames to WebSocket clients: the [`Poster`] port and its API Gateway Management
//! API adapter ([`SdkPoster`], `PostToConnection`).

use aws_config::SdkConfig;
use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_apigatewaymanagement::primitives::Blob;
use std::future::Future;
use std::sync::OnceLock;

/// Why a frame was not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostError {
    /// The connection is gone (`410 Gone`): the client disconnected; forget the connection.
    Gone,
    /// Anything else (throttling after retries, a frame over the limit, no endpoint, the
    /// network): the connection may still be there.
    Other(String),
}

impl std::fmt::Display for PostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PostError::Gone => f.write_str("the connection is gone (410)"),
            PostError::Other(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for PostError {}

/// Sends one frame (a text message) to one WebSocket connection.
pub trait Poster: Send + Sync + 'static {
    /// Posts `data` (UTF-8 JSON text) to connection `connection_id`.
    fn post(
        &self,
        connection_id: &str,
        data: Vec<u8>,
    ) -> impl Future<Output = Result<(), PostError>> + Send;

    /// Tells the poster the Management API endpoint of the WebSocket API that invoked the
    /// function (`https://<domainName>/<stage>`, from a route event), for posters configured
    /// without one. Does nothing by default.
    fn endpoint_hint(&self, _endpoint: &str) {}
}

/// The [`Poster`] over the API Gateway Management API (`PostToConnection`).
///
/// The endpoint is the WebSocket API stage's (`https://<api-id>.execute-api.<region>.
/// amazonaws.com/<stage>`): given, or else learnt from the first [`Poster::endpoint_hint`] (a
/// function serves one stage). Cloning is cheap.
#[derive(Debug, Clone)]
pub struct SdkPoster {
    aws: SdkConfig,
    client: std::sync::Arc<OnceLock<(String, Client)>>,
}

impl SdkPoster {
    /// A poster with clients built from `aws` (the shared configuration: credentials, region,
    /// HTTPS client), posting to `endpoint` if given.
    pub fn new(aws: &SdkConfig, endpoint: Option<&str>) -> SdkPoster {
        let poster = SdkPoster {
            aws: aws.clone(),
            client: Default::default(),
        };
        if let Some(e) = endpoint {
            let _ = poster.client.set(poster.build(e));
        }
        poster
    }

    fn build(&self, endpoint: &str) -> (String, Client) {
        let endpoint = endpoint.trim_end_matches('/').to_owned();
        let config = aws_sdk_apigatewaymanagement::config::Builder::from(&self.aws)
            .endpoint_url(&endpoint)
            .build();
        (endpoint, Client::from_conf(config))
    }

    /// The endpoint posts go to, once known.
    pub fn endpoint(&self) -> Option<String> {
        self.client.get().map(|(e, _)| e.clone())
    }
}

impl Poster for SdkPoster {
    async fn post(&self, connection_id: &str, data: Vec<u8>) -> Result<(), PostError> {
        let Some((_, client)) = self.client.get() else {
            return Err(PostError::Other(
                "no Management API endpoint: set CONCERTMASTER_WS_ENDPOINT".into(),
            ));
        };
        let res = client
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(data))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                if e.code() == Some("GoneException") || status == Some(410) {
                    Err(PostError::Gone)
                } else {
                    Err(PostError::Other(format!(
                        "PostToConnection {connection_id}: {}",
                        DisplayErrorContext(&e)
                    )))
                }
            }
        }
    }

    fn endpoint_hint(&self, endpoint: &str) {
        if self.client.get().is_none() {
            let _ = self.client.set(self.build(endpoint));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_endpoint_is_given_or_learnt_once() {
        let aws = crate::sdk_config(Some("http://127.0.0.1:9")).await;
        let given = SdkPoster::new(&aws, Some("https://a.example/prod/"));
        given.endpoint_hint("https://b.example/dev");
        assert_eq!(given.endpoint().as_deref(), Some("https://a.example/prod"));

        let learnt = SdkPoster::new(&aws, None);
        assert_eq!(learnt.endpoint(), None);
        assert!(matches!(
            learnt.post("c", b"{}".to_vec()).await,
            Err(PostError::Other(m)) if m.contains("CONCERTMASTER_WS_ENDPOINT")
        ));
        learnt.endpoint_hint("https://b.example/dev");
        learnt.endpoint_hint("https://c.example/x");
        assert_eq!(learnt.endpoint().as_deref(), Some("https://b.example/dev"));
    }
}
