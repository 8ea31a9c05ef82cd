//! Serves the web builder (the `frontend/` app, built into a folder of static files) from the
//! API's own origin, so `concertmaster dev` needs no second server and no CORS.
//!
//! Any `GET`/`HEAD` that no API route takes and that is not under a reserved prefix is a
//! builder path: an existing file is served; a path without a file extension (a client-side
//! route such as `/workflows/hello` or `/approvals/<id>`) gets `index.html`, and the app's
//! router takes over. A missing file *with* an extension (`/assets/x.js`) stays a 404, so a
//! stale page does not get HTML for its script. API paths keep the API's JSON 404.
//!
//! `/config.json` is the builder's runtime configuration (the cloud deploys one beside it with
//! the API and WebSocket URLs and the Cognito pool). Served by the API itself, the builder
//! talks to this origin, so where the folder has none the answer is `{}`: the builder's
//! defaults, without a 404 on every page load.

use crate::error::ApiError;
use axum::http::{HeaderValue, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use std::path::{Component, Path, PathBuf};

/// Paths that belong to the API, never to the builder.
const RESERVED: [&str; 6] = [
    "/v1/",
    "/hooks/",
    "/ws",
    "/healthz",
    "/metrics",
    "/openapi.json",
];

/// The content type of a builder file, by extension.
fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The file under `root` that `uri_path` names, or `None` when the path tries to leave the
/// folder (`..`, absolute parts) or is not valid.
fn resolve(root: &Path, uri_path: &str) -> Option<PathBuf> {
    let rel = uri_path.trim_start_matches('/');
    let mut out = root.to_path_buf();
    for c in Path::new(rel).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

/// Answers a request no API route took: a builder file, `index.html` for an app route, or the
/// API's JSON 404.
pub(crate) async fn serve(root: Option<&Path>, method: &Method, uri: &Uri) -> Response {
    let path = uri.path();
    let not_found =
        || ApiError::NotFound(format!("no endpoint at {path}; see /openapi.json")).into_response();
    let Some(root) = root else {
        return not_found();
    };
    if (method != Method::GET && method != Method::HEAD)
        || RESERVED
            .iter()
            .any(|r| path == r.trim_end_matches('/') || path.starts_with(r))
    {
        return not_found();
    }
    let Some(file) = resolve(root, path) else {
        return not_found();
    };
    let (file, app_route) = match tokio::fs::metadata(&file).await {
        Ok(m) if m.is_file() => (file, false),
        _ if path == "/config.json" => {
            let mut res = "{}".into_response();
            let h = res.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            return res;
        }
        _ if file.extension().is_none() => (root.join("index.html"), true),
        _ => return not_found(),
    };
    let Ok(bytes) = tokio::fs::read(&file).await else {
        return not_found();
    };
    // Vite names everything under assets/ by content hash: cache it for good; the page itself
    // must be revalidated so a rebuilt builder is picked up.
    let cache = if !app_route && path.starts_with("/assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut res = if method == Method::HEAD {
        Vec::new().into_response()
    } else {
        bytes.into_response()
    };
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&file)),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_cannot_leave_the_folder() {
        let root = Path::new("/srv/b");
        assert_eq!(
            resolve(root, "/assets/a.js"),
            Some(PathBuf::from("/srv/b/assets/a.js"))
        );
        assert_eq!(resolve(root, "/../etc/passwd"), None);
        assert_eq!(resolve(root, "/assets/../../x"), None);
    }

    async fn get(root: Option<&Path>, method: Method, path: &str) -> (u16, String, String) {
        let uri: Uri = path.parse().expect("uri");
        let res = serve(root, &method, &uri).await;
        let status = res.status().as_u16();
        let ty = res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, ty, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn serves_files_app_routes_and_keeps_api_404s() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("assets")).expect("mkdir");
        std::fs::write(dir.path().join("index.html"), "<html>app</html>").expect("write");
        std::fs::write(dir.path().join("assets/app-1.js"), "console.log(1)").expect("write");
        let root = Some(dir.path());

        let (s, ty, body) = get(root, Method::GET, "/").await;
        assert_eq!(
            (s, ty.as_str(), body.as_str()),
            (200, "text/html; charset=utf-8", "<html>app</html>")
        );
        let (s, ty, _) = get(root, Method::GET, "/assets/app-1.js").await;
        assert_eq!((s, ty.as_str()), (200, "text/javascript; charset=utf-8"));
        // Client-side routes get the page; the app's router shows them.
        for route in ["/workflows/hello", "/approvals/abc", "/forms/xyz?x=1"] {
            let (s, _, body) = get(root, Method::GET, route).await;
            assert_eq!((s, body.as_str()), (200, "<html>app</html>"), "{route}");
        }
        // Paths are not percent-decoded: an encoded `..` is just a name (the app page).
        let (s, _, body) = get(root, Method::GET, "/%2e%2e/etc/passwd").await;
        assert_eq!((s, body.as_str()), (200, "<html>app</html>"));
        let (s, _, body) = get(root, Method::HEAD, "/").await;
        assert_eq!((s, body.as_str()), (200, ""));
        // A missing file with an extension, API paths, other methods and escapes stay 404s.
        for (m, p) in [
            (Method::GET, "/assets/gone.js"),
            (Method::GET, "/v1/nothing"),
            (Method::GET, "/hooks"),
            (Method::GET, "/ws"),
            (Method::POST, "/workflows/hello"),
            (Method::GET, "/../Cargo.toml"),
        ] {
            let (s, ty, body) = get(root, m.clone(), p).await;
            assert_eq!((s, ty.as_str()), (404, "application/json"), "{m} {p}");
            assert!(body.contains("not_found"), "{p}: {body}");
        }
        // The runtime configuration: the folder's, else the defaults.
        let (s, ty, body) = get(root, Method::GET, "/config.json").await;
        assert_eq!(
            (s, ty.as_str(), body.as_str()),
            (200, "application/json", "{}")
        );
        std::fs::write(dir.path().join("config.json"), r#"{"apiUrl":"x"}"#).expect("write");
        let (s, _, body) = get(root, Method::GET, "/config.json").await;
        assert_eq!((s, body.as_str()), (200, r#"{"apiUrl":"x"}"#));
        // No builder: every unknown path is the API's 404.
        let (s, _, body) = get(None, Method::GET, "/").await;
        assert_eq!(s, 404);
        assert!(body.contains("see /openapi.json"), "{body}");
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(
            content_type(Path::new("a/index.html")),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            content_type(Path::new("x.js")),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("x.bin")), "application/octet-stream");
    }
}
