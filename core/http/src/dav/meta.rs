//! File metadata by id (ownCloud `/remote.php/dav/meta/<fileid>`): PROPFIND gives
//! `oc:meta-path-for-user`; `/meta/<fileid>/v` lists the file's versions (PROPFIND Depth 1),
//! `GET /meta/<fileid>/v/<key>` downloads one and `COPY` of it onto the file restores it.

use super::trash::multistatus_of;
use super::{method_not_allowed, resolve_target, small_body};
use crate::util::{bad, blocking, header};
use crate::{ApiError, AppState};
use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use hearth_dav_proto::{Depth, Prop, PropName, PropValue, parse_depth, parse_propfind, url_path};
use hearth_domain::{CoreError, Principal, ResourceInfo, StorageProvider, VersionRecord};
use hearth_types::ResourceId;
use http::{HeaderValue, StatusCode, header as h};
use std::time::{Duration, UNIX_EPOCH};

fn version_props(v: &VersionRecord) -> Vec<Prop> {
    let t = UNIX_EPOCH + Duration::from_nanos(v.mtime_ns.max(0).unsigned_abs());
    let text = |ns: fn(&str) -> PropName, n: &str, s: String| Prop {
        name: ns(n),
        value: PropValue::Text(s),
    };
    vec![
        Prop {
            name: PropName::dav("resourcetype"),
            value: PropValue::Empty,
        },
        text(PropName::dav, "getcontentlength", v.size.to_string()),
        text(PropName::dav, "getlastmodified", httpdate::fmt_http_date(t)),
        text(PropName::dav, "getetag", format!("\"{}\"", v.etag)),
        text(PropName::oc, "versionkey", v.key.to_string()),
    ]
}

pub(crate) async fn handle(
    state: &AppState,
    who: &Principal,
    id: &str,
    tail: &str,
    req: Request,
) -> Result<Response, ApiError> {
    let decoded = percent_encoding::percent_decode_str(id)
        .decode_utf8_lossy()
        .into_owned();
    let rid: ResourceId = decoded
        .parse()
        .map_err(|_| ApiError(CoreError::NotFound(format!("no resource {decoded}"))))?;
    let base = format!("/remote.php/dav/meta/{id}");
    let parts: Vec<&str> = tail.split('/').filter(|p| !p.is_empty()).collect();
    match (req.method().as_str(), parts.as_slice()) {
        ("PROPFIND", []) => {
            let body = small_body(req).await?;
            let want =
                parse_propfind(&body).map_err(|e| bad(format!("invalid PROPFIND body: {e}")))?;
            let (files, w) = (state.core.files.clone(), who.clone());
            let info: ResourceInfo = blocking(move || files.stat_by_id(&w, &rid)).await?;
            let props = vec![
                Prop {
                    name: PropName::oc("meta-path-for-user"),
                    value: PropValue::Text(info.path.to_string()),
                },
                Prop {
                    name: PropName::oc("id"),
                    value: PropValue::Text(info.id.to_string()),
                },
            ];
            Ok(multistatus_of(&want, vec![(base, props)]))
        }
        ("PROPFIND", ["v"]) => {
            let depth =
                parse_depth(header(req.headers(), "depth")).map_err(|e| bad(e.to_string()))?;
            let body = small_body(req).await?;
            let want =
                parse_propfind(&body).map_err(|e| bad(format!("invalid PROPFIND body: {e}")))?;
            let (files, w) = (state.core.files.clone(), who.clone());
            let (_, versions) = blocking(move || files.list_versions(&w, &rid)).await?;
            let mut entries = vec![(
                format!("{base}/v/"),
                vec![Prop {
                    name: PropName::dav("resourcetype"),
                    value: PropValue::Xml("<d:collection/>".into()),
                }],
            )];
            if depth != Some(Depth::Zero) {
                // Newest first, as the clients show them.
                for v in versions.iter().rev() {
                    entries.push((format!("{base}/v/{}", v.key), version_props(v)));
                }
            }
            Ok(multistatus_of(&want, entries))
        }
        ("GET" | "HEAD", ["v", key]) => {
            let with_body = req.method() == http::Method::GET;
            let key = parse_key(key)?;
            let (files, w) = (state.core.files.clone(), who.clone());
            let (v, file) = blocking(move || files.open_version(&w, &rid, key)).await?;
            let body = if with_body {
                super::read::file_body(file, 0, v.size, req.extensions().get())
            } else {
                Body::empty()
            };
            let mut resp = Response::new(body);
            let hm = resp.headers_mut();
            hm.insert(h::CONTENT_LENGTH, HeaderValue::from(v.size));
            if let Ok(e) = HeaderValue::from_str(&format!("\"{}\"", v.etag)) {
                hm.insert(h::ETAG, e);
            }
            let t = UNIX_EPOCH + Duration::from_nanos(v.mtime_ns.max(0).unsigned_abs());
            if let Ok(d) = HeaderValue::from_str(&httpdate::fmt_http_date(t)) {
                hm.insert(h::LAST_MODIFIED, d);
            }
            Ok(resp)
        }
        ("COPY", ["v", key]) => {
            let key = parse_key(key)?;
            let dest = header(req.headers(), "destination")
                .ok_or_else(|| bad("the Destination header is missing"))?;
            let dest = resolve_target(
                state,
                who,
                &url_path(dest).map_err(|e| bad(format!("invalid Destination: {e}")))?,
            )?;
            let (files, w) = (state.core.files.clone(), who.clone());
            blocking(move || {
                // A version is restored onto its own file only.
                let current = files.stat(&w, dest.space, &dest.path)?;
                if current.id != rid {
                    return Err(CoreError::Conflict(
                        "a version can only be restored onto its own file".into(),
                    ));
                }
                files.restore_version(&w, &rid, key)
            })
            .await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (m, _) if !matches!(m, "PROPFIND" | "GET" | "HEAD" | "COPY") => Ok(method_not_allowed(m)),
        _ => Err(ApiError(CoreError::NotFound(
            "no such meta resource".into(),
        ))),
    }
}

fn parse_key(key: &str) -> Result<u64, ApiError> {
    key.parse()
        .map_err(|_| ApiError(CoreError::NotFound(format!("no version {key}"))))
}
