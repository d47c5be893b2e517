//! PROPPATCH (RFC 4918 §9.2): dead properties are stored; live ones are protected (403, and every
//! other property in the request fails with 424, nothing changes). `oc:favorite` sets the caller's
//! favourite flag.

use super::conditions::evaluate_if;
use super::propfind::is_live;
use super::{Target, on_target};
use crate::util::bad;
use crate::{ApiError, AppState};
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use hearth_dav_proto::{
    MultistatusWriter, OC_NS, PatchOp, Prop, PropName, PropStat, PropValue, parse_proppatch,
};
use hearth_domain::{Principal, StorageProvider};
use http::{HeaderValue, StatusCode, header as h};

pub(crate) async fn proppatch(
    state: &AppState,
    who: &Principal,
    t: &Target,
    req: Request,
) -> Result<Response, ApiError> {
    let headers = req.headers().clone();
    let body = super::small_body(req).await?;
    let ops = parse_proppatch(&body).map_err(|e| bad(format!("invalid PROPPATCH body: {e}")))?;
    let submitted = evaluate_if(state, who, t, &headers).await?;
    let info = on_target(state, who, t, |c, w, space, path| {
        c.files.stat(w, space, path)
    })
    .await?;
    let name_of = |op: &PatchOp| match op {
        PatchOp::Set { name, .. } | PatchOp::Remove { name } => name.clone(),
    };
    let is_fav = |n: &PropName| n.ns == OC_NS && n.local == "favorite";
    let protected: Vec<PropName> = ops.iter().map(name_of).filter(is_live).collect();
    let mut stats = Vec::new();
    if protected.is_empty() {
        let mut dead = Vec::new();
        let mut favorite = None;
        for op in &ops {
            match op {
                PatchOp::Set { name, value } if is_fav(name) => {
                    favorite = Some(value.xml.trim() == "1" || value.xml.trim() == "true");
                }
                PatchOp::Remove { name } if is_fav(name) => favorite = Some(false),
                PatchOp::Set { name, value } => dead.push((name.clark(), Some(value.xml.clone()))),
                PatchOp::Remove { name } => dead.push((name.clark(), None)),
            }
        }
        on_target(state, who, t, move |c, w, space, path| {
            submitted.allow(c, w, space, path, false)?;
            c.files.patch_properties(w, space, path, &dead)?;
            if let Some(on) = favorite {
                c.files.set_favorite(w, space, path, on)?;
            }
            Ok(())
        })
        .await?;
        stats.push(PropStat {
            status: 200,
            props: ops
                .iter()
                .map(|op| Prop {
                    name: name_of(op),
                    value: PropValue::Empty,
                })
                .collect(),
        });
    } else {
        let others: Vec<Prop> = ops
            .iter()
            .map(name_of)
            .filter(|n| !protected.contains(n))
            .map(|name| Prop {
                name,
                value: PropValue::Empty,
            })
            .collect();
        stats.push(PropStat {
            status: 403,
            props: protected
                .into_iter()
                .map(|name| Prop {
                    name,
                    value: PropValue::Empty,
                })
                .collect(),
        });
        if !others.is_empty() {
            stats.push(PropStat {
                status: 424,
                props: others,
            });
        }
    }
    let mut w = MultistatusWriter::new();
    w.response(&t.href(&t.path, info.is_dir()), &stats);
    let mut resp = Response::new(Body::from(w.finish()));
    *resp.status_mut() = StatusCode::MULTI_STATUS;
    resp.headers_mut().insert(
        h::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    Ok(resp)
}
