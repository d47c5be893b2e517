//! Server discovery: `GET /status.php` and `GET /status` (reva ocdav/status.go semantics).
//!
//! Unauthenticated, always 200 with a JSON object; the same object is embedded in the OCS
//! capabilities as `core.status`.

use crate::AppState;
use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use serde_json::{Value, json};

/// The ownCloud 10 version we claim to be compatible with (clients gate features on it).
pub(crate) const LEGACY_VERSION: &str = "10.11.0.0";
/// The same as a short string.
pub(crate) const LEGACY_VERSION_STRING: &str = "10.11.0";
/// Product name shown by the clients.
pub(crate) const PRODUCT: &str = "Hearth";
/// Edition string ownCloud clients expect.
pub(crate) const EDITION: &str = "Community";

/// The status object (also `capabilities.core.status`).
pub(crate) fn status_value() -> Value {
    json!({
        "installed": true,
        "maintenance": false,
        "needsDbUpgrade": false,
        "version": LEGACY_VERSION,
        "versionstring": LEGACY_VERSION_STRING,
        "edition": EDITION,
        "productname": PRODUCT,
        "product": PRODUCT,
        "productversion": env!("CARGO_PKG_VERSION"),
    })
}

/// The routes: `GET /status.php` and `GET /status` (HEAD answered by axum).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/status.php", get(status))
        .route("/status", get(status))
}

/// `GET /status.php`, `GET /status`.
///
/// CLIENT QUIRK (desktop checkserverjobfactory.cpp): the client refuses redirects, needs HTTP 200
/// and a JSON object with `installed`; nextcloudcmd sends Basic credentials here, which are
/// ignored (no authentication, no throttling).
async fn status() -> Response {
    // Pretty-printed with 4 spaces, as reva answers.
    let mut body = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut body, formatter);
    if status_value().serialize(&mut ser).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    body.push(b'\n');
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_has_the_fields_clients_read() {
        let v = status_value();
        assert_eq!(v["installed"], true);
        assert_eq!(v["maintenance"], false);
        assert_eq!(v["needsDbUpgrade"], false);
        assert_eq!(v["version"], "10.11.0.0");
        assert_eq!(v["versionstring"], "10.11.0");
        assert_eq!(v["productname"], "Hearth");
        assert_eq!(v["productversion"], env!("CARGO_PKG_VERSION"));
    }
}
