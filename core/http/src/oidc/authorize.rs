//! The authorization endpoint: validates the request, shows a server-rendered login form, checks
//! the credentials (throttled, no user enumeration) and redirects back with a single-use code.

use super::grants::AuthRequest;
use super::{TlsConnection, clients, request_base};
use crate::AppState;
use crate::util::blocking;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use hearth_domain::CoreError;
use http::{HeaderValue, StatusCode, header};
use std::collections::HashMap;
use std::net::SocketAddr;

const COOKIE: &str = "hearth_login";

fn params(raw: &str) -> HashMap<String, String> {
    form_urlencoded::parse(raw.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// An error the user sees (the redirect URI is not trusted, so no redirect).
fn error_page(status: StatusCode, message: &str) -> Response {
    let body = page(&format!("<p class=\"err\">{}</p>", escape(message)));
    html(status, body)
}

/// Redirects an OAuth error to the (validated) client.
fn redirect_error(req: &AuthRequest, error: &str, description: &str) -> Response {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("error", error);
    q.append_pair("error_description", description);
    if let Some(s) = &req.state {
        q.append_pair("state", s);
    }
    redirect(&req.redirect_uri, &q.finish())
}

fn redirect(uri: &str, query: &str) -> Response {
    let sep = if uri.contains('?') { '&' } else { '?' };
    let target = format!("{uri}{sep}{query}");
    match HeaderValue::from_str(&target) {
        Ok(v) => (StatusCode::SEE_OTHER, [(header::LOCATION, v)]).into_response(),
        Err(_) => error_page(StatusCode::BAD_REQUEST, "Invalid redirect URI."),
    }
}

/// `GET /signin/v1/identifier/_/authorize`.
pub(crate) async fn show(State(state): State<AppState>, req: Request) -> Response {
    let Some(idp) = state.idp.clone() else {
        return super::unavailable();
    };
    let base = request_base(&state, &req);
    let tls = req.extensions().get::<TlsConnection>().is_some();
    let p = params(req.uri().query().unwrap_or_default());
    let get = |k: &str| p.get(k).filter(|v| !v.is_empty()).cloned();
    let Some(client) = get("client_id").as_deref().and_then(clients::find) else {
        return error_page(StatusCode::BAD_REQUEST, "Unknown client.");
    };
    let Some(redirect_uri) = get("redirect_uri").filter(|r| client.redirect_ok(r, &base)) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "The redirect URI is not registered for this client.",
        );
    };
    let auth = AuthRequest {
        client_id: client.id.to_owned(),
        redirect_uri,
        state: get("state"),
        scope: get("scope").unwrap_or_else(|| "openid".to_owned()),
        nonce: get("nonce"),
        challenge: get("code_challenge"),
    };
    if get("response_type").as_deref() != Some("code") {
        return redirect_error(
            &auth,
            "unsupported_response_type",
            "only response_type=code",
        );
    }
    match (&auth.challenge, get("code_challenge_method").as_deref()) {
        (Some(_), Some("S256")) => {}
        (Some(_), _) => {
            return redirect_error(
                &auth,
                "invalid_request",
                "code_challenge_method must be S256",
            );
        }
        (None, _) if client.secret.is_none() => {
            return redirect_error(&auth, "invalid_request", "PKCE (S256) is required");
        }
        (None, Some(_)) => {
            return redirect_error(&auth, "invalid_request", "code_challenge missing");
        }
        (None, None) => {}
    }
    let login_hint = get("login_hint").unwrap_or_default();
    let id = idp.grants.start_login(auth);
    let mut resp = html(StatusCode::OK, form(&id, &login_hint, None));
    let secure = if tls { "; Secure" } else { "" };
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{COOKIE}={id}; Path=/signin/; HttpOnly; SameSite=Lax; Max-Age=600{secure}"
    )) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// `POST /signin/v1/identifier/_/authorize`: the login form.
pub(crate) async fn submit(State(state): State<AppState>, req: Request) -> Response {
    let Some(idp) = state.idp.clone() else {
        return super::unavailable();
    };
    let addr = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let cookie = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| {
            c.trim()
                .strip_prefix(&format!("{COOKIE}="))
                .map(str::to_owned)
        })
        .next();
    let Ok(body) = axum::body::to_bytes(req.into_body(), 16 * 1024).await else {
        return error_page(StatusCode::BAD_REQUEST, "Invalid form.");
    };
    let p = params(&String::from_utf8_lossy(&body));
    let login = p.get("login").cloned().unwrap_or_default();
    // CSRF: the form's token must match the cookie set with it, and name a pending request.
    let csrf_ok = cookie.is_some_and(|c| clients::constant_eq(c.as_bytes(), login.as_bytes()));
    let pending = idp.grants.login(&login);
    let (true, Some(auth)) = (csrf_ok, pending) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "This sign-in form has expired. Go back to the app and start again.",
        );
    };
    let user = p.get("user").cloned().unwrap_or_default();
    let pass = p.get("password").cloned().unwrap_or_default();
    let core_auth = state.core.auth.clone();
    let u = user.clone();
    match blocking(move || core_auth.verify_login(&u, &pass, addr)).await {
        Ok(principal) => match idp.grants.issue_code(&login, principal.id) {
            Some(code) => {
                let mut q = form_urlencoded::Serializer::new(String::new());
                q.append_pair("code", &code);
                if let Some(s) = &auth.state {
                    q.append_pair("state", s);
                }
                redirect(&auth.redirect_uri, &q.finish())
            }
            None => error_page(StatusCode::BAD_REQUEST, "This sign-in form has expired."),
        },
        Err(e) => match e.0 {
            CoreError::Throttled(secs) => {
                let mut r = html(
                    StatusCode::TOO_MANY_REQUESTS,
                    form(
                        &login,
                        &user,
                        Some("Too many attempts. Wait a moment and try again."),
                    ),
                );
                if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
                r
            }
            CoreError::Unauthenticated => html(
                StatusCode::UNAUTHORIZED,
                form(&login, &user, Some("Wrong user name or password.")),
            ),
            _ => error_page(StatusCode::INTERNAL_SERVER_ERROR, "Internal error."),
        },
    }
}

fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"),
    );
    r
}

fn form(login: &str, user: &str, error: Option<&str>) -> String {
    let err = error
        .map(|e| format!("<p class=\"err\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    page(&format!(
        "{err}<form method=\"post\" action=\"/signin/v1/identifier/_/authorize\">\
<input type=\"hidden\" name=\"login\" value=\"{}\">\
<label>User name<input name=\"user\" autocomplete=\"username\" autocapitalize=\"none\" value=\"{}\" required autofocus></label>\
<label>Password<input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
<button type=\"submit\">Sign in</button></form>",
        escape(login),
        escape(user)
    ))
}

fn page(content: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Sign in – Hearth</title>\
<style>body{{font-family:system-ui,sans-serif;max-width:22rem;margin:3rem auto;padding:0 1rem}}\
label{{display:block;margin:1rem 0}}input{{display:block;width:100%;box-sizing:border-box;padding:.6rem;font-size:1rem}}\
button{{width:100%;padding:.7rem;font-size:1rem}}.err{{color:#b00020}}</style></head>\
<body><h1>Hearth</h1>{content}</body></html>"
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
