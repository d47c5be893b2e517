//! LOCK and UNLOCK (RFC 4918 §9.10, §9.11): exclusive and shared write locks, depth 0 or
//! infinity, refresh through the `If` header, and LOCK on an unmapped URL creating an empty file
//! (§7.3).

use super::conditions::evaluate_if;
use super::propfind::active_lock;
use super::{Target, on_target};
use crate::util::{bad, header};
use crate::{ApiError, AppState};
use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use hearth_dav_proto::{
    Condition, Depth, lockdiscovery_body, parse_depth, parse_if, parse_lockinfo, parse_timeout,
};
use hearth_domain::{LockRequest, Principal, PutOptions, StorageProvider};
use http::{HeaderValue, StatusCode, header as h};

/// Longest lock we grant (a client asking for `Infinite` gets this).
const MAX_TIMEOUT: u64 = 7 * 24 * 3600;

fn lock_response(
    status: StatusCode,
    lock: &hearth_store::LockRecord,
    t: &Target,
    with_token: bool,
) -> Response {
    let body = lockdiscovery_body(&[active_lock(lock, t)]);
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    let hm = resp.headers_mut();
    hm.insert(
        h::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    if with_token && let Ok(v) = HeaderValue::from_str(&format!("<{}>", lock.token)) {
        hm.insert("lock-token", v);
    }
    resp
}

pub(crate) async fn lock(
    state: &AppState,
    who: &Principal,
    t: &Target,
    req: Request,
) -> Result<Response, ApiError> {
    let headers = req.headers().clone();
    let timeout = parse_timeout(header(&headers, "timeout"))
        .unwrap_or(MAX_TIMEOUT)
        .min(MAX_TIMEOUT);
    let body = super::small_body(req).await?;
    let info = parse_lockinfo(&body).map_err(|e| bad(format!("invalid LOCK body: {e}")))?;
    let Some(info) = info else {
        // A refresh: the lock token comes in the If header.
        let ifh = header(&headers, "if")
            .ok_or_else(|| bad("a LOCK refresh needs an If header with the lock token"))?;
        let parsed = parse_if(ifh).map_err(|e| bad(format!("invalid If header: {e}")))?;
        let token = parsed
            .lists
            .iter()
            .flat_map(|l| l.conditions.iter())
            .find_map(|c| match c {
                Condition::Token { not: false, token } => Some(token.clone()),
                _ => None,
            })
            .ok_or_else(|| bad("the If header names no lock token"))?;
        let lock = on_target(state, who, t, move |c, w, space, path| {
            c.locks.refresh(w, space, path, &token, Some(timeout))
        })
        .await?;
        return Ok(lock_response(StatusCode::OK, &lock, t, false));
    };
    let depth_infinity =
        match parse_depth(header(&headers, "depth")).map_err(|e| bad(e.to_string()))? {
            None | Some(Depth::Infinity) => true,
            Some(Depth::Zero) => false,
            Some(Depth::One) => return Err(bad("Depth: 1 is not valid for LOCK")),
        };
    let exists = super::try_stat(state, who, t).await?.is_some();
    if exists {
        // Conflicting locks are reported by the lock call itself (423); only the If conditions here.
        evaluate_if(state, who, t, &headers).await?;
    }
    let req_lock = LockRequest {
        space: t.space,
        path: t.path.clone(),
        depth_infinity,
        shared: info.shared,
        owner_xml: info.owner_xml,
        timeout_secs: Some(timeout),
    };
    let lock = on_target(state, who, t, move |c, w, _, _| c.locks.lock(w, req_lock)).await?;
    if !exists {
        // LOCK on an unmapped URL creates an empty resource (RFC 4918 §7.3).
        let created = on_target(state, who, t, move |c, w, space, path| {
            let up = c.files.begin_upload()?;
            c.files
                .finish_upload(w, space, path, up, &PutOptions::default())
        })
        .await;
        if let Err(e) = created {
            let token = lock.token.clone();
            let _ = on_target(state, who, t, move |c, w, space, path| {
                c.locks.unlock(w, space, path, &token)
            })
            .await;
            return Err(e);
        }
        return Ok(lock_response(StatusCode::CREATED, &lock, t, true));
    }
    Ok(lock_response(StatusCode::OK, &lock, t, true))
}

pub(crate) async fn unlock(
    state: &AppState,
    who: &Principal,
    t: &Target,
    req: Request,
) -> Result<Response, ApiError> {
    let token = header(req.headers(), "lock-token")
        .map(|v| {
            v.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
        .filter(|v| !v.is_empty())
        .ok_or_else(|| bad("UNLOCK needs a Lock-Token header"))?;
    on_target(state, who, t, move |c, w, space, path| {
        c.locks.unlock(w, space, path, &token)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
