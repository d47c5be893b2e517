//! The trash bin over WebDAV (ownCloud/oCIS): `/remote.php/dav/trash-bin/<user>/` and
//! `/remote.php/dav/spaces/trash-bin/<space>/`. PROPFIND lists items with
//! `oc:trashbin-original-filename`, `-original-location`, `-delete-timestamp`, `-delete-datetime`;
//! MOVE of an item restores it (Destination, Overwrite); DELETE purges one item, or all on the
//! root.

use super::{
    Target, method_not_allowed, own_space_segment, own_user_segment, resolve_target, small_body,
};
use crate::util::{bad, blocking, header};
use crate::{ApiError, AppState};
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use hearth_dav_proto::{
    Depth, MultistatusWriter, Prop, PropName, PropStat, PropValue, PropfindRequest, parse_depth,
    parse_overwrite, parse_propfind, url_path,
};
use hearth_domain::{CoreError, MoveOutcome, NodeKind, Principal, StorageProvider, TrashRecord};
use hearth_types::{Name, SpaceId, encode_segment};
use http::StatusCode;
use std::time::{Duration, UNIX_EPOCH};

/// Renders the properties of a set of resources, answering exactly what was asked.
pub(crate) fn multistatus_of(
    want: &PropfindRequest,
    entries: Vec<(String, Vec<Prop>)>,
) -> Response {
    let mut w = MultistatusWriter::new();
    for (href, props) in entries {
        let stats = match want {
            PropfindRequest::AllProp { .. } => vec![PropStat { status: 200, props }],
            PropfindRequest::PropName => vec![PropStat {
                status: 200,
                props: props
                    .into_iter()
                    .map(|p| Prop {
                        name: p.name,
                        value: PropValue::Empty,
                    })
                    .collect(),
            }],
            PropfindRequest::Prop(names) => {
                let (mut found, mut missing) = (Vec::new(), Vec::new());
                for n in names {
                    match props.iter().find(|p| &p.name == n) {
                        Some(p) => found.push(p.clone()),
                        None => missing.push(Prop {
                            name: n.clone(),
                            value: PropValue::Empty,
                        }),
                    }
                }
                let mut v = vec![PropStat {
                    status: 200,
                    props: found,
                }];
                if !missing.is_empty() {
                    v.push(PropStat {
                        status: 404,
                        props: missing,
                    });
                }
                v
            }
        };
        w.response(&href, &stats);
    }
    super::propfind::multistatus(axum::body::Body::from(w.finish()))
}

fn item_props(item: &TrashRecord) -> Vec<Prop> {
    let deleted = UNIX_EPOCH + Duration::from_secs(item.deleted_at.max(0).unsigned_abs());
    let name = item
        .original_path
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let text = |ns: fn(&str) -> PropName, n: &str, v: String| Prop {
        name: ns(n),
        value: PropValue::Text(v),
    };
    let mut props = vec![
        text(PropName::oc, "trashbin-original-filename", name),
        // oCIS gives the location without a leading slash.
        text(
            PropName::oc,
            "trashbin-original-location",
            item.original_path.trim_start_matches('/').to_owned(),
        ),
        text(
            PropName::oc,
            "trashbin-delete-timestamp",
            item.deleted_at.to_string(),
        ),
        text(
            PropName::oc,
            "trashbin-delete-datetime",
            httpdate::fmt_http_date(deleted),
        ),
        text(
            PropName::dav,
            "getlastmodified",
            httpdate::fmt_http_date(deleted),
        ),
        text(PropName::oc, "size", item.size.to_string()),
        text(PropName::oc, "id", item.node.to_string()),
    ];
    if item.kind == NodeKind::Dir {
        props.push(Prop {
            name: PropName::dav("resourcetype"),
            value: PropValue::Xml("<d:collection/>".into()),
        });
    } else {
        props.push(Prop {
            name: PropName::dav("resourcetype"),
            value: PropValue::Empty,
        });
        props.push(text(
            PropName::dav,
            "getcontentlength",
            item.size.to_string(),
        ));
    }
    props
}

pub(crate) async fn handle(
    state: &AppState,
    who: &Principal,
    prefix: &str,
    seg: &str,
    tail: &str,
    req: Request,
) -> Result<Response, ApiError> {
    let (space, base) = if prefix.contains("/spaces/") {
        (
            own_space_segment(state, who, seg)?,
            format!("{prefix}{}", encode_segment(&percent(seg))),
        )
    } else {
        let seg = own_user_segment(who, seg)?;
        (
            state.core.files.personal_space(who.id).map_err(ApiError)?,
            format!("{prefix}{seg}"),
        )
    };
    let key = tail.trim_matches('/');
    if key.contains('/') {
        return Err(ApiError(CoreError::NotFound(
            "browsing inside trashed folders is not supported".into(),
        )));
    }
    let key = if key.is_empty() {
        None
    } else {
        Some(Name::new(key).map_err(CoreError::from)?)
    };
    match (req.method().as_str(), key) {
        ("PROPFIND", key) => propfind(state, who, space, &base, key, req).await,
        ("DELETE", key) => {
            let (files, w, k) = (
                state.core.files.clone(),
                who.clone(),
                key.map(|k| k.as_str().to_owned()),
            );
            blocking(move || files.purge_recycle(&w, space, k.as_deref())).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        ("MOVE", Some(key)) => restore(state, who, space, &key, req).await,
        (m, _) => Ok(method_not_allowed(m)),
    }
}

fn percent(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

async fn propfind(
    state: &AppState,
    who: &Principal,
    space: SpaceId,
    base: &str,
    key: Option<Name>,
    req: Request,
) -> Result<Response, ApiError> {
    let depth = parse_depth(header(req.headers(), "depth")).map_err(|e| bad(e.to_string()))?;
    let body = small_body(req).await?;
    let want = parse_propfind(&body).map_err(|e| bad(format!("invalid PROPFIND body: {e}")))?;
    let (files, w) = (state.core.files.clone(), who.clone());
    let items = blocking(move || files.list_recycle(&w, space)).await?;
    let mut entries = Vec::new();
    match key {
        Some(k) => {
            let item = items
                .iter()
                .find(|i| i.key == k.as_str())
                .ok_or_else(|| ApiError(CoreError::NotFound(format!("no trash item {k}"))))?;
            entries.push((format!("{base}/{}", item.key), item_props(item)));
        }
        None => {
            entries.push((
                format!("{base}/"),
                vec![Prop {
                    name: PropName::dav("resourcetype"),
                    value: PropValue::Xml("<d:collection/>".into()),
                }],
            ));
            if depth != Some(Depth::Zero) {
                for item in &items {
                    entries.push((format!("{base}/{}", item.key), item_props(item)));
                }
            }
        }
    }
    Ok(multistatus_of(&want, entries))
}

async fn restore(
    state: &AppState,
    who: &Principal,
    space: SpaceId,
    key: &Name,
    req: Request,
) -> Result<Response, ApiError> {
    let h = req.headers();
    let dest = header(h, "destination").ok_or_else(|| bad("the Destination header is missing"))?;
    let dest: Target = resolve_target(
        state,
        who,
        &url_path(dest).map_err(|e| bad(format!("invalid Destination: {e}")))?,
    )?;
    if dest.space != space {
        return Err(ApiError(CoreError::Conflict(
            "items are restored into their own space".into(),
        )));
    }
    let overwrite = parse_overwrite(header(h, "overwrite")).map_err(|e| bad(e.to_string()))?;
    let submitted = super::conditions::evaluate_if(state, who, &dest, h).await?;
    let key = key.as_str().to_owned();
    let outcome = super::on_target(state, who, &dest, move |c, w, space, path| {
        submitted.allow(c, w, space, path, true)?;
        c.files
            .restore_recycle_item(w, space, &key, path, overwrite)
    })
    .await?;
    Ok(match outcome {
        MoveOutcome::Created => StatusCode::CREATED,
        MoveOutcome::Replaced => StatusCode::NO_CONTENT,
    }
    .into_response())
}
