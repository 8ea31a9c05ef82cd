//! What every ConcertMaster Lambda and AWS adapter shares, so that each builds it the same way
//! once: the AWS SDK configuration ([`sdk_config`]) and JSON logs ([`init_tracing`]).

#[cfg(feature = "secrets")]
pub mod secrets;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

/// The AWS SDK configuration from the environment (one `aws_config::defaults` load, to share
/// between every client a process builds): region and credentials by the SDK's default
/// chains (environment variables, profile files, web identity, ECS and EC2 instance metadata
/// — on Lambda the function's role), over HTTPS with rustls and the `ring` crypto provider
/// (no aws-lc), trusting the system's root certificates.
///
/// `endpoint_url` points every client built from it at an emulator (moto, LocalStack), e.g.
/// `http://127.0.0.1:5000`; the region is then `AWS_REGION` (or `AWS_DEFAULT_REGION`), else
/// `us-east-1`. Requests are SigV4-signed either way: give an emulator dummy credentials.
pub async fn sdk_config(endpoint_url: Option<&str>) -> SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http);
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
        let env_region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|r| !r.is_empty()));
        if !env_region {
            // An emulator: don't look further (the chain would end at instance metadata).
            loader = loader.region(Region::from_static("us-east-1"));
        }
    }
    loader.load().await
}

/// Logs as JSON lines on stdout (CloudWatch), at the level of `AWS_LAMBDA_LOG_LEVEL` or else
/// `RUST_LOG`, `info` when neither is set. See [`log_filter`] for the syntax.
pub fn init_tracing() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let directives = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_default();
    let format = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_ansi(false)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false);
    tracing_subscriber::registry()
        .with(format)
        .with(log_filter(&directives))
        .init();
}

/// The log filter of `directives`: comma-separated `level` (the default for every target) or
/// `target=level` entries (`info,cm_nodes=debug`), case-insensitive; `fatal` (a Lambda log
/// level) counts as `error`. Entries that do not parse are ignored; the default is `info`.
///
/// This is the target/level part of `tracing`'s `EnvFilter` syntax, without span and field
/// filters (whose regular-expression engine would weigh on the Lambda's size).
pub fn log_filter(directives: &str) -> tracing_subscriber::filter::Targets {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    let level = |s: &str| match s.trim().to_ascii_lowercase().as_str() {
        "" => None,
        "fatal" => Some(LevelFilter::ERROR),
        other => other.parse::<LevelFilter>().ok(),
    };
    let mut filter = Targets::new().with_default(LevelFilter::INFO);
    for directive in directives
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        match directive.split_once('=') {
            None => {
                if let Some(l) = level(directive) {
                    filter = filter.with_default(l);
                }
            }
            Some((target, l)) => {
                let target = target.trim();
                if let Some(l) = level(l)
                    && !target.is_empty()
                {
                    filter = filter.with_target(target, l);
                }
            }
        }
    }
    filter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_filter_reads_levels_and_targets() {
        use tracing::Level;
        use tracing_subscriber::filter::LevelFilter;
        let f = log_filter("");
        assert!(f.would_enable("cm_nodes", &Level::INFO));
        assert!(!f.would_enable("cm_nodes", &Level::DEBUG));
        let f = log_filter("DEBUG");
        assert!(f.would_enable("anything", &Level::DEBUG));
        assert!(!f.would_enable("anything", &Level::TRACE));
        let f = log_filter("warn, cm_nodes=trace,bad=nope,bad2=,=debug,???,");
        assert!(f.would_enable("cm_nodes::http", &Level::TRACE));
        assert!(!f.would_enable("hyper", &Level::INFO));
        assert!(f.would_enable("hyper", &Level::WARN));
        assert!(!f.would_enable("bad", &Level::INFO));
        assert!(!f.would_enable("bad2", &Level::INFO));
        assert!(f.would_enable("bad2", &Level::WARN));
        assert_eq!(
            log_filter("FATAL").default_level(),
            Some(LevelFilter::ERROR)
        );
        assert_eq!(log_filter("off").default_level(), Some(LevelFilter::OFF));
    }

    /// An emulator configuration has a region without asking instance metadata.
    #[tokio::test]
    async fn an_emulator_config_needs_no_metadata() {
        let c = sdk_config(Some("http://127.0.0.1:9")).await;
        assert!(c.region().is_some());
    }
}
