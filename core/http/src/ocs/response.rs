//! OCS v1/v2 response envelope (reva ocs/response/response.go semantics): one renderer for both
//! API versions and both formats (XML by default, JSON with `?format=json`), and the one place
//! where `CoreError` becomes an OCS status code.

use axum::response::{IntoResponse, Response};
use hearth_domain::CoreError;
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use std::fmt::Write as _;

/// OCS status codes (reva `response.Meta*`).
pub(crate) mod code {
    /// v1 success.
    pub const OK_V1: u16 = 100;
    /// v2 success.
    pub const OK_V2: u16 = 200;
    /// Invalid input.
    pub const INVALID_INPUT: u16 = 102;
    /// Forbidden.
    pub const FORBIDDEN: u16 = 104;
    /// Bad request (passed through as HTTP 400 in v2).
    pub const BAD_REQUEST: u16 = 400;
    /// Locked (passed through as HTTP 423 in v2).
    pub const LOCKED: u16 = 423;
    /// Server error.
    pub const SERVER_ERROR: u16 = 996;
    /// Unauthorised.
    pub const UNAUTHORISED: u16 = 997;
    /// Not found.
    pub const NOT_FOUND: u16 = 998;
}

/// The `WWW-Authenticate` challenge sent with every 401.
const CHALLENGE: &str = "Basic realm=\"Hearth\", charset=\"UTF-8\"";

/// OCS API version, from the URL (`/ocs/v1.php` or `/ocs/v2.php`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// `/ocs/v1.php`: HTTP 200 always, success code 100.
    V1,
    /// `/ocs/v2.php`: real HTTP statuses, success code 200.
    V2,
}

/// Body format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// The default.
    Xml,
    /// `?format=json`.
    Json,
}

/// How to answer one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ctx {
    /// API version.
    pub version: Version,
    /// Body format.
    pub format: Format,
}

impl Ctx {
    /// The context of a request to `version` with this (raw) query string.
    pub fn new(version: Version, query: Option<&str>) -> Self {
        let json = query.is_some_and(|q| {
            q.split('&').any(|pair| {
                pair.split_once('=')
                    .is_some_and(|(k, v)| k == "format" && v.eq_ignore_ascii_case("json"))
            })
        });
        Self {
            version,
            format: if json { Format::Json } else { Format::Xml },
        }
    }

    /// A success answer carrying `data`.
    pub fn ok(self, data: Value) -> Response {
        let statuscode = match self.version {
            Version::V1 => code::OK_V1,
            Version::V2 => code::OK_V2,
        };
        self.render(StatusCode::OK, "ok", statuscode, "OK", &data)
    }

    /// An error answer for a domain error.
    pub fn error(self, e: &CoreError) -> Response {
        let (statuscode, message) = classify(e);
        // Authentication problems keep their HTTP status in both versions: the clients treat
        // 401 as "ask for credentials again" and 429 as "wait".
        let status = match e {
            CoreError::Unauthenticated => StatusCode::UNAUTHORIZED,
            CoreError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            _ => self.http_status(statuscode),
        };
        let mut resp = self.render(status, "error", statuscode, &message, &Value::Array(vec![]));
        let h = resp.headers_mut();
        match e {
            CoreError::Unauthenticated => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(CHALLENGE),
                );
                // The desktop client chooses OAuth when it sees a Bearer challenge.
                h.append(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"Hearth\""),
                );
            }
            CoreError::Throttled(secs) => {
                if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                    h.insert(header::RETRY_AFTER, v);
                }
            }
            _ => {}
        }
        resp
    }

    /// The HTTP status of an OCS status code: v1 is always 200; v2 as reva `OcsV2StatusCodes`.
    fn http_status(self, statuscode: u16) -> StatusCode {
        if self.version == Version::V1 {
            return StatusCode::OK;
        }
        let http = match statuscode {
            code::OK_V1 => 200,
            code::NOT_FOUND => 404,
            code::UNAUTHORISED => 401,
            code::FORBIDDEN => 403,
            101..=199 => 400,
            200..=599 => statuscode,
            _ => 500,
        };
        StatusCode::from_u16(http).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn render(
        self,
        status: StatusCode,
        meta_status: &str,
        statuscode: u16,
        message: &str,
        data: &Value,
    ) -> Response {
        let (body, content_type) = match self.format {
            Format::Json => (
                render_json(meta_status, statuscode, message, data),
                "application/json; charset=utf-8",
            ),
            Format::Xml => (
                render_xml(meta_status, statuscode, message, data),
                "text/xml; charset=utf-8",
            ),
        };
        let mut resp = (status, body).into_response();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        h.insert(
            "ocs-api-version",
            HeaderValue::from_static(match self.version {
                Version::V1 => "1",
                Version::V2 => "2",
            }),
        );
        resp
    }
}

/// The one mapping of `CoreError` to an OCS status code and message. Internal details are logged
/// and never sent.
pub(crate) fn classify(e: &CoreError) -> (u16, String) {
    use CoreError::*;
    match e {
        NotFound(_) | UploadExpired(_) => (code::NOT_FOUND, e.to_string()),
        Unauthenticated | Throttled(_) => (code::UNAUTHORISED, e.to_string()),
        PermissionDenied(_) => (code::FORBIDDEN, e.to_string()),
        BadRequest(_) | ChecksumMismatch(_) => (code::INVALID_INPUT, e.to_string()),
        AlreadyExists(_) | Conflict(_) | PreconditionFailed(_) | QuotaExceeded(_) => {
            (code::BAD_REQUEST, e.to_string())
        }
        Locked(_) => (code::LOCKED, e.to_string()),
        Internal(detail) => {
            tracing::error!(%detail, "internal error");
            (code::SERVER_ERROR, "Internal error".to_owned())
        }
    }
}

fn meta(meta_status: &str, statuscode: u16, message: &str) -> Value {
    json!({
        "status": meta_status,
        "statuscode": statuscode,
        "message": message,
        "totalitems": "",
        "itemsperpage": "",
    })
}

/// `{"ocs":{"meta":{…},"data":…}}`.
fn render_json(meta_status: &str, statuscode: u16, message: &str, data: &Value) -> String {
    // Written by hand so that `meta` comes before `data`, as in ownCloud and reva.
    format!(
        "{{\"ocs\":{{\"meta\":{},\"data\":{data}}}}}",
        meta(meta_status, statuscode, message)
    )
}

/// `<?xml version="1.0"?><ocs><meta>…</meta><data>…</data></ocs>`, with the meta fields in
/// ownCloud's order.
fn render_xml(meta_status: &str, statuscode: u16, message: &str, data: &Value) -> String {
    let mut out = String::from("<?xml version=\"1.0\"?>\n<ocs><meta><status>");
    escape_into(&mut out, meta_status);
    let _ = write!(
        out,
        "</status><statuscode>{statuscode}</statuscode><message>"
    );
    escape_into(&mut out, message);
    out.push_str("</message><totalitems></totalitems><itemsperpage></itemsperpage></meta>");
    element(&mut out, "data", data);
    out.push_str("</ocs>\n");
    out
}

/// One element: objects become child elements, arrays repeated `<element>`, booleans 1/0, null
/// an empty element.
fn element(out: &mut String, name: &str, v: &Value) {
    let name = if is_xml_name(name) { name } else { "element" };
    let _ = write!(out, "<{name}>");
    match v {
        Value::Null => {}
        Value::Bool(b) => out.push(if *b { '1' } else { '0' }),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => escape_into(out, s),
        Value::Array(items) => {
            for item in items {
                element(out, "element", item);
            }
        }
        Value::Object(fields) => {
            for (k, item) in fields {
                element(out, k, item);
            }
        }
    }
    let _ = write!(out, "</{name}>");
}

fn is_xml_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !s.to_ascii_lowercase().starts_with("xml")
}

/// Escapes text for XML content, dropping characters XML 1.0 cannot carry.
fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body(r: Response) -> String {
        let b = r.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(b.to_vec()).unwrap()
    }

    const V1_XML: Ctx = Ctx {
        version: Version::V1,
        format: Format::Xml,
    };
    const V2_JSON: Ctx = Ctx {
        version: Version::V2,
        format: Format::Json,
    };

    #[test]
    fn format_comes_from_the_query() {
        assert_eq!(Ctx::new(Version::V1, None).format, Format::Xml);
        assert_eq!(
            Ctx::new(Version::V1, Some("a=b&format=json")).format,
            Format::Json
        );
        assert_eq!(
            Ctx::new(Version::V2, Some("format=JSON")).format,
            Format::Json
        );
        assert_eq!(
            Ctx::new(Version::V2, Some("format=xml")).format,
            Format::Xml
        );
        assert_eq!(
            Ctx::new(Version::V2, Some("xformat=json")).format,
            Format::Xml
        );
    }

    #[tokio::test]
    async fn xml_envelope_with_elements_and_booleans() {
        let r = V1_XML.ok(json!({"a": true, "b": false, "list": ["x<", "y"], "n": 5, "z": null}));
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "text/xml; charset=utf-8");
        assert_eq!(r.headers()["ocs-api-version"], "1");
        assert_eq!(
            body(r).await,
            "<?xml version=\"1.0\"?>\n<ocs><meta><status>ok</status><statuscode>100</statuscode>\
             <message>OK</message><totalitems></totalitems><itemsperpage></itemsperpage></meta>\
             <data><a>1</a><b>0</b><list><element>x&lt;</element><element>y</element></list>\
             <n>5</n><z></z></data></ocs>\n"
        );
    }

    #[tokio::test]
    async fn json_envelope_v2() {
        let r = V2_JSON.ok(json!({"flag": true, "list": [1, 2]}));
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["content-type"],
            "application/json; charset=utf-8"
        );
        assert_eq!(r.headers()["ocs-api-version"], "2");
        let v: Value = serde_json::from_str(&body(r).await).unwrap();
        assert_eq!(v["ocs"]["meta"]["status"], "ok");
        assert_eq!(v["ocs"]["meta"]["statuscode"], 200);
        assert_eq!(v["ocs"]["meta"]["message"], "OK");
        assert_eq!(v["ocs"]["data"]["flag"], true);
        assert_eq!(v["ocs"]["data"]["list"], json!([1, 2]));
    }

    #[test]
    fn json_meta_comes_first() {
        let s = render_json("ok", 100, "OK", &json!({"a": "b"}));
        assert!(s.starts_with("{\"ocs\":{\"meta\":{"), "{s}");
        assert!(s.ends_with(",\"data\":{\"a\":\"b\"}}}"), "{s}");
    }

    #[test]
    fn v2_http_statuses_follow_reva() {
        let v2 = V2_JSON;
        let cases = [
            (100, 200),
            (102, 400),
            (104, 403),
            (400, 400),
            (423, 423),
            (996, 500),
            (997, 401),
            (998, 404),
            (999, 500),
        ];
        for (ocs, http) in cases {
            assert_eq!(v2.http_status(ocs).as_u16(), http, "{ocs}");
            assert_eq!(V1_XML.http_status(ocs).as_u16(), 200, "{ocs}");
        }
    }

    #[tokio::test]
    async fn errors_in_both_versions() {
        let e = CoreError::NotFound("nothing here".into());
        let r = V1_XML.error(&e);
        assert_eq!(r.status(), 200);
        let b = body(r).await;
        assert!(
            b.contains("<status>error</status><statuscode>998</statuscode>"),
            "{b}"
        );
        assert!(b.contains("<message>nothing here</message>"), "{b}");
        assert!(b.contains("<data></data>"), "{b}");
        let r = V2_JSON.error(&e);
        assert_eq!(r.status(), 404);
        let v: Value = serde_json::from_str(&body(r).await).unwrap();
        assert_eq!(v["ocs"]["meta"]["statuscode"], 998);
        assert_eq!(v["ocs"]["data"], json!([]));
    }

    #[tokio::test]
    async fn authentication_errors_keep_their_http_status() {
        for ctx in [V1_XML, V2_JSON] {
            let r = ctx.error(&CoreError::Unauthenticated);
            assert_eq!(r.status(), 401);
            assert_eq!(r.headers()["www-authenticate"], CHALLENGE);
            assert!(body(r).await.contains("997"));
            let r = ctx.error(&CoreError::Throttled(7));
            assert_eq!(r.status(), 429);
            assert_eq!(r.headers()["retry-after"], "7");
        }
    }

    #[tokio::test]
    async fn internal_details_stay_inside() {
        let r = V2_JSON.error(&CoreError::Internal("secret detail".into()));
        assert_eq!(r.status(), 500);
        let b = body(r).await;
        assert!(!b.contains("secret"), "{b}");
        assert!(b.contains("996"), "{b}");
    }

    #[test]
    fn every_error_has_an_ocs_code() {
        let cases = [
            (CoreError::NotFound("x".into()), 998),
            (CoreError::Unauthenticated, 997),
            (CoreError::Throttled(1), 997),
            (CoreError::PermissionDenied("x".into()), 104),
            (CoreError::BadRequest("x".into()), 102),
            (CoreError::AlreadyExists("x".into()), 400),
            (CoreError::Conflict("x".into()), 400),
            (CoreError::PreconditionFailed("x".into()), 400),
            (CoreError::QuotaExceeded("x".into()), 400),
            (CoreError::Locked("x".into()), 423),
            (CoreError::Internal("x".into()), 996),
        ];
        for (e, c) in cases {
            assert_eq!(classify(&e).0, c, "{e:?}");
        }
    }

    #[test]
    fn xml_text_is_escaped_and_names_are_safe() {
        let mut out = String::new();
        element(&mut out, "1bad name", &json!("a&b\u{1}'\""));
        assert_eq!(out, "<element>a&amp;b&apos;&quot;</element>");
    }
}
