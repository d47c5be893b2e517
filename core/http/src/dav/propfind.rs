//! PROPFIND (RFC 4918 §9.1) and REPORT `oc:filter-files`: the live DAV: properties, the ownCloud
//! `oc:` properties the sync clients read, and dead properties. The multistatus body is rendered on
//! a blocking thread and streamed in chunks, so a 10,000-entry listing is never held whole twice.

use super::Target;
use super::read::mtime;
use crate::util::{bad, header};
use crate::{ApiError, AppState};
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use hearth_dav_proto::{
    ActiveLock, DAV_NS, Depth, MultistatusWriter, OC_NS, Prop, PropName, PropStat, PropValue,
    PropfindRequest, ReportRequest, activelock_xml, parse_depth, parse_propfind, parse_report,
    supportedlock_xml,
};
use hearth_domain::files::Quota;
use hearth_domain::{CoreError, Principal, ResourceInfo, StorageProvider};
use hearth_store::LockRecord;
use hearth_types::{RelPath, SpaceId};
use http::{HeaderValue, StatusCode, header as h};

/// Per-request facts the property values need.
pub(crate) struct Ctx {
    pub who: Principal,
    pub quota: Quota,
    pub locks: Vec<LockRecord>,
    pub public_url: String,
    pub target: Target,
}

/// Live properties in `allprop` answers (dead ones are added per resource).
fn allprop_names() -> Vec<PropName> {
    let mut v: Vec<PropName> = [
        "resourcetype",
        "getetag",
        "getlastmodified",
        "getcontentlength",
        "getcontenttype",
        "lockdiscovery",
        "supportedlock",
    ]
    .iter()
    .map(|n| PropName::dav(n))
    .collect();
    v.extend(
        ["id", "fileid", "permissions", "size"]
            .iter()
            .map(|n| PropName::oc(n)),
    );
    v
}

/// Every live property a resource can have (for `propname`).
fn live_names(info: &ResourceInfo) -> Vec<PropName> {
    let mut v = allprop_names();
    v.extend(["displayname"].iter().map(|n| PropName::dav(n)));
    if info.is_dir() {
        v.extend(
            ["quota-used-bytes", "quota-available-bytes"]
                .iter()
                .map(|n| PropName::dav(n)),
        );
    }
    v.extend(
        [
            "favorite",
            "share-types",
            "privatelink",
            "owner-id",
            "owner-display-name",
            "data-fingerprint",
            "name",
            "spaceid",
        ]
        .iter()
        .map(|n| PropName::oc(n)),
    );
    if info.checksums.is_some() && !info.is_dir() {
        v.push(PropName::oc("checksums"));
    }
    v.retain(|n| live(n, info, None).is_some() || n.local == "lockdiscovery");
    v
}

/// Whether a name is a live (server-computed, protected) property.
pub(crate) fn is_live(name: &PropName) -> bool {
    match name.ns.as_str() {
        DAV_NS => matches!(
            name.local.as_str(),
            "resourcetype"
                | "getetag"
                | "getlastmodified"
                | "getcontentlength"
                | "getcontenttype"
                | "lockdiscovery"
                | "supportedlock"
                | "displayname"
                | "quota-used-bytes"
                | "quota-available-bytes"
                | "creationdate"
                | "source"
        ),
        OC_NS => matches!(
            name.local.as_str(),
            "id" | "fileid"
                | "permissions"
                | "size"
                | "checksums"
                | "share-types"
                | "privatelink"
                | "owner-id"
                | "owner-display-name"
                | "data-fingerprint"
                | "name"
                | "spaceid"
                | "downloadURL"
                | "dDC"
        ),
        _ => false,
    }
}

/// The value of a live property, `None` if the resource has no such property (a 404 propstat).
fn live(name: &PropName, info: &ResourceInfo, ctx: Option<&Ctx>) -> Option<PropValue> {
    let text = |s: String| Some(PropValue::Text(s));
    match (name.ns.as_str(), name.local.as_str()) {
        (DAV_NS, "resourcetype") => Some(if info.is_dir() {
            PropValue::Xml("<d:collection/>".into())
        } else {
            PropValue::Empty
        }),
        (DAV_NS, "getetag") => text(format!("\"{}\"", info.etag)),
        (DAV_NS, "getlastmodified") => text(httpdate::fmt_http_date(mtime(info))),
        (DAV_NS, "getcontentlength") if !info.is_dir() => text(info.size.to_string()),
        (DAV_NS, "getcontenttype") => text(info.mime()),
        (DAV_NS, "displayname") => text(
            info.path
                .file_name()
                .map(|n| n.as_str().to_owned())
                .unwrap_or_default(),
        ),
        (DAV_NS, "quota-used-bytes") if info.is_dir() => text(ctx?.quota.used.to_string()),
        // ownCloud semantics: -3 means unlimited.
        (DAV_NS, "quota-available-bytes") if info.is_dir() => text(
            ctx?.quota
                .available()
                .map_or("-3".into(), |a| a.to_string()),
        ),
        (DAV_NS, "supportedlock") => Some(PropValue::Xml(supportedlock_xml().into())),
        (DAV_NS, "lockdiscovery") => {
            let ctx = ctx?;
            let xml: String = ctx
                .locks
                .iter()
                .filter(|l| covers(l, info))
                .map(|l| activelock_xml(&active_lock(l, &ctx.target)))
                .collect();
            Some(if xml.is_empty() {
                PropValue::Empty
            } else {
                PropValue::Xml(xml)
            })
        }
        (OC_NS, "id" | "fileid") => text(info.id.to_string()),
        (OC_NS, "permissions") => text(info.permissions().into()),
        (OC_NS, "size") => text(info.size.to_string()),
        (OC_NS, "checksums") if !info.is_dir() => {
            let c = info.checksums.as_ref()?;
            let mut parts = Vec::new();
            if let Some(v) = &c.sha1 {
                parts.push(format!("SHA1:{v}"));
            }
            if let Some(v) = &c.md5 {
                parts.push(format!("MD5:{v}"));
            }
            if let Some(v) = &c.adler32 {
                parts.push(format!("ADLER32:{v}"));
            }
            Some(PropValue::Xml(format!(
                "<oc:checksum>{}</oc:checksum>",
                parts.join(" ")
            )))
        }
        (OC_NS, "favorite") => text(if info.favorite { "1" } else { "0" }.into()),
        (OC_NS, "share-types") => Some(PropValue::Empty),
        (OC_NS, "privatelink") => text(format!("{}/f/{}", ctx?.public_url, info.id)),
        (OC_NS, "owner-id") => text(ctx?.who.username.clone()),
        (OC_NS, "owner-display-name") => text(ctx?.who.display_name.clone()),
        (OC_NS, "data-fingerprint") => Some(PropValue::Empty),
        (OC_NS, "name") => text(
            info.path
                .file_name()
                .map(|n| n.as_str().to_owned())
                .unwrap_or_default(),
        ),
        (OC_NS, "spaceid") => text(format!("{}${}", info.id.storage, info.id.space)),
        _ => None,
    }
}

fn covers(l: &LockRecord, info: &ResourceInfo) -> bool {
    let p: Vec<&str> = info.path.names().iter().map(|n| n.as_str()).collect();
    p.len() >= l.path.len()
        && l.path.iter().zip(p.iter()).all(|(a, b)| a == b)
        && (l.depth_infinity || l.path.len() == p.len())
}

/// The wire view of a stored lock.
pub(crate) fn active_lock(l: &LockRecord, t: &Target) -> ActiveLock {
    let path = hearth_types::RelPath::from_decoded(&l.path.join("/")).unwrap_or_default();
    ActiveLock {
        token: l.token.clone(),
        root_href: t.href(&path, false),
        depth_infinity: l.depth_infinity,
        shared: l.shared,
        owner_xml: l.owner_xml.clone(),
        timeout_secs: l
            .expires_at
            .map(|e| u64::try_from(e - hearth_now()).unwrap_or(0)),
    }
}

fn hearth_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(0))
        .unwrap_or(0)
}

/// Which properties to render.
enum Want {
    All(Vec<PropName>),
    Names,
    Some(Vec<PropName>),
}

impl Want {
    fn needs_dead(&self) -> bool {
        match self {
            Want::All(_) | Want::Names => true,
            Want::Some(v) => v
                .iter()
                .any(|n| !(is_live(n) || n.ns == OC_NS && n.local == "favorite")),
        }
    }
}

/// Renders one `<d:response>`.
fn render(
    w: &mut MultistatusWriter,
    want: &Want,
    info: &ResourceInfo,
    dead: &[(String, String)],
    ctx: &Ctx,
    minimal: bool,
) {
    let href = ctx.target.href(&info.path, info.is_dir());
    let mut found = Vec::new();
    let mut missing = Vec::new();
    let dead_lookup = |n: &PropName| {
        let c = n.clark();
        dead.iter()
            .find(|(k, _)| *k == c)
            .map(|(_, v)| PropValue::Xml(v.clone()))
    };
    match want {
        Want::Names => {
            for n in live_names(info) {
                found.push(Prop {
                    name: n,
                    value: PropValue::Empty,
                });
            }
            for (k, _) in dead {
                if let Some(n) = PropName::from_clark(k) {
                    found.push(Prop {
                        name: n,
                        value: PropValue::Empty,
                    });
                }
            }
        }
        Want::All(include) => {
            for n in allprop_names().into_iter().chain(include.iter().cloned()) {
                if let Some(v) = live(&n, info, Some(ctx)).or_else(|| dead_lookup(&n)) {
                    found.push(Prop { name: n, value: v });
                }
            }
            for (k, v) in dead {
                if let Some(n) = PropName::from_clark(k)
                    && !include.contains(&n)
                {
                    found.push(Prop {
                        name: n,
                        value: PropValue::Xml(v.clone()),
                    });
                }
            }
        }
        Want::Some(names) => {
            for n in names {
                match live(n, info, Some(ctx))
                    .or_else(|| if is_live(n) { None } else { dead_lookup(n) })
                {
                    Some(v) => found.push(Prop {
                        name: n.clone(),
                        value: v,
                    }),
                    None => missing.push(Prop {
                        name: n.clone(),
                        value: PropValue::Empty,
                    }),
                }
            }
        }
    }
    let mut stats = vec![PropStat {
        status: 200,
        props: found,
    }];
    if !missing.is_empty() && !minimal {
        stats.push(PropStat {
            status: 404,
            props: missing,
        });
    }
    w.response(&href, &stats);
}

/// Gathers the resources on one blocking thread and streams their multistatus from it: facts
/// for the property values, then `gather` (whose error, e.g. 404, becomes the response), then the
/// rendering, sent in chunks of about 64 KiB.
async fn respond<G>(
    state: &AppState,
    who: &Principal,
    t: &Target,
    host: Option<&str>,
    want: Want,
    minimal: bool,
    gather: G,
) -> Result<Response, ApiError>
where
    G: FnOnce(
            &hearth_domain::Core,
            &Principal,
            SpaceId,
            &RelPath,
        ) -> Result<Vec<ResourceInfo>, CoreError>
        + Send
        + 'static,
{
    let public_url = state
        .opts
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", host.unwrap_or("localhost")));
    let (core, target, who) = (state.core.clone(), t.clone(), who.clone());
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<Result<(), CoreError>>();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let gathered = (|| {
            let quota = core.files.quota(&who, target.space)?;
            let locks = core.locks.covering_space(target.space)?;
            let infos = gather(&core, &who, target.space, &target.path)?;
            Ok((quota, locks, infos))
        })();
        let (quota, locks, infos) = match gathered {
            Ok(v) => {
                let _ = first_tx.send(Ok(()));
                v
            }
            Err(e) => {
                let _ = first_tx.send(Err(e));
                return;
            }
        };
        let ctx = Ctx {
            who,
            quota,
            locks,
            public_url,
            target,
        };
        let mut w = MultistatusWriter::new();
        for batch in infos.chunks(256) {
            let dead: Vec<Vec<(String, String)>> = if want.needs_dead() {
                let ids: Vec<_> = batch.iter().map(|i| i.id.node).collect();
                match core.files.dead_properties(&ids) {
                    Ok(d) => d,
                    Err(e) => {
                        let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                        return;
                    }
                }
            } else {
                Vec::new()
            };
            for (i, info) in batch.iter().enumerate() {
                let d = dead.get(i).map(Vec::as_slice).unwrap_or(&[]);
                render(&mut w, &want, info, d, &ctx, minimal);
            }
            if w.buffered_len() >= 64 * 1024 && tx.blocking_send(Ok(w.take_chunk().into())).is_err()
            {
                return;
            }
        }
        let _ = tx.blocking_send(Ok(w.finish().into()));
    });
    match first_rx.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(ApiError(e)),
        Err(_) => return Err(ApiError(CoreError::Internal("listing task failed".into()))),
    }
    let mut resp = multistatus(Body::from_stream(tokio_stream_from(rx)));
    if minimal {
        resp.headers_mut().insert(
            "preference-applied",
            HeaderValue::from_static("return=minimal"),
        );
    }
    Ok(resp)
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

pub(crate) fn multistatus(body: Body) -> Response {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::MULTI_STATUS;
    let hm = resp.headers_mut();
    // CLIENT QUIRK (owncloudcmd 2.11): rejects text/xml; it wants application/xml.
    hm.insert(
        h::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    hm.insert("dav", HeaderValue::from_static("1, 2"));
    hm.insert(h::VARY, HeaderValue::from_static("Prefer"));
    resp
}

pub(crate) async fn propfind(
    state: &AppState,
    who: &Principal,
    t: &Target,
    req: Request,
) -> Result<Response, ApiError> {
    let hdrs = req.headers().clone();
    let depth = parse_depth(header(&hdrs, "depth")).map_err(|e| bad(e.to_string()))?;
    let depth = depth.unwrap_or(Depth::One);
    if depth == Depth::Infinity && !state.opts.allow_depth_infinity {
        return Err(bad("Invalid Depth header value: infinity"));
    }
    let body = super::small_body(req).await?;
    let want =
        match parse_propfind(&body).map_err(|e| bad(format!("invalid PROPFIND body: {e}")))? {
            PropfindRequest::AllProp { include } => Want::All(include),
            PropfindRequest::PropName => Want::Names,
            PropfindRequest::Prop(names) => Want::Some(names),
        };
    let minimal = header(&hdrs, "prefer").is_some_and(|p| p.contains("return=minimal"));
    respond(
        state,
        who,
        t,
        header(&hdrs, "host"),
        want,
        minimal,
        move |c, w, space, path| {
            let root = c.files.stat(w, space, path)?;
            let mut out = vec![root];
            if out.first().is_some_and(ResourceInfo::is_dir) && depth != Depth::Zero {
                let mut stack = vec![path.clone()];
                while let Some(p) = stack.pop() {
                    for child in c.files.list(w, space, &p)? {
                        if depth == Depth::Infinity && child.is_dir() {
                            stack.push(child.path.clone());
                        }
                        out.push(child);
                    }
                }
            }
            Ok(out)
        },
    )
    .await
}

pub(crate) async fn report(
    state: &AppState,
    who: &Principal,
    t: &Target,
    req: Request,
) -> Result<Response, ApiError> {
    let host = header(req.headers(), "host").map(str::to_owned);
    let body = super::small_body(req).await?;
    match parse_report(&body).map_err(|e| bad(format!("invalid REPORT body: {e}")))? {
        ReportRequest::FilterFiles { props, favorite } => {
            let want = if props.is_empty() {
                Want::All(Vec::new())
            } else {
                Want::Some(props)
            };
            respond(
                state,
                who,
                t,
                host.as_deref(),
                want,
                false,
                move |c, w, space, _| {
                    if !favorite {
                        return Ok(Vec::new());
                    }
                    Ok(c.files
                        .favorites(w)?
                        .into_iter()
                        .filter(|(s, _)| *s == space)
                        .map(|(_, i)| i)
                        .collect())
                },
            )
            .await
        }
        ReportRequest::Unsupported(name) => Err(ApiError(CoreError::PermissionDenied(format!(
            "the report {} is not supported",
            name.clark()
        )))),
    }
}
