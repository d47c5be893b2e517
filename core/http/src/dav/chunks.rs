//! Chunked uploads ("chunking NG", what nextcloudcmd uses with `dav.chunking: "1.0"`):
//! `MKCOL /remote.php/dav/uploads/<user>/<transfer>` (optionally `OC-Total-Length`),
//! `PUT …/<transfer>/<chunk>` (16-digit byte offsets from ownCloud, chunk indexes from
//! Nextcloud), `MOVE …/<transfer>/.file` with `Destination`, `OC-Total-Length`, `OC-Checksum`,
//! `X-OC-Mtime` and `If-Match` to assemble, `DELETE …/<transfer>` to abort.

use super::trash::multistatus_of;
use super::write::{put_options, upload_response};
use super::{method_not_allowed, own_user_segment, resolve_target, small_body};
use crate::util::{bad, blocking, header};
use crate::{ApiError, AppState};
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use hearth_dav_proto::{Prop, PropName, PropValue, parse_propfind, url_path};
use hearth_domain::StorageProvider;
use hearth_domain::{CoreError, Principal};
use hearth_types::Name;
use http::StatusCode;

fn name(s: &str) -> Result<Name, ApiError> {
    let decoded = percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned();
    Name::new(&decoded).map_err(|e| ApiError(CoreError::from(e)))
}

fn total_length(h: &http::HeaderMap) -> Result<Option<u64>, ApiError> {
    match header(h, "oc-total-length") {
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| bad(format!("invalid OC-Total-Length {v:?}"))),
        None => Ok(None),
    }
}

pub(crate) async fn handle(
    state: &AppState,
    who: &Principal,
    seg: &str,
    tail: &str,
    req: Request,
) -> Result<Response, ApiError> {
    let user = own_user_segment(who, seg)?;
    let base = format!("/remote.php/dav/uploads/{user}");
    let parts: Vec<&str> = tail.split('/').filter(|p| !p.is_empty()).collect();
    let space = state.core.files.personal_space(who.id).map_err(ApiError)?;
    match (req.method().as_str(), parts.as_slice()) {
        ("MKCOL", [transfer]) => {
            let transfer = name(transfer)?;
            let total = total_length(req.headers())?;
            let (files, w) = (state.core.files.clone(), who.clone());
            blocking(move || files.create_transfer(&w, space, &transfer, total)).await?;
            Ok(StatusCode::CREATED.into_response())
        }
        ("PUT", [transfer, chunk]) => {
            let (transfer, chunk) = (name(transfer)?, name(chunk)?);
            let (files, w) = (state.core.files.clone(), who.clone());
            let (t, c) = (transfer.clone(), chunk.clone());
            let up = blocking(move || files.begin_chunk(&w, &t, &c)).await?;
            let (up, whole) =
                crate::util::pump(req.into_body(), up, |u, b| u.write_bytes(b)).await?;
            if !whole {
                // Dropping the chunk removes its temporary file: nothing is stored.
                return Err(bad("the request body was cut off"));
            }
            let (files, w) = (state.core.files.clone(), who.clone());
            blocking(move || files.put_chunk(&w, &transfer, &chunk, up)).await?;
            Ok(StatusCode::CREATED.into_response())
        }
        ("PROPFIND", [transfer]) => {
            let transfer = name(transfer)?;
            let body = small_body(req).await?;
            let want =
                parse_propfind(&body).map_err(|e| bad(format!("invalid PROPFIND body: {e}")))?;
            let (files, w, t) = (state.core.files.clone(), who.clone(), transfer.clone());
            let chunks = blocking(move || files.list_chunks(&w, &t)).await?;
            let mut entries = vec![(
                format!("{base}/{}/", transfer.as_str()),
                vec![Prop {
                    name: PropName::dav("resourcetype"),
                    value: PropValue::Xml("<d:collection/>".into()),
                }],
            )];
            for (n, size) in chunks {
                entries.push((
                    format!("{base}/{}/{n}", transfer.as_str()),
                    vec![
                        Prop {
                            name: PropName::dav("resourcetype"),
                            value: PropValue::Empty,
                        },
                        Prop {
                            name: PropName::dav("getcontentlength"),
                            value: PropValue::Text(size.to_string()),
                        },
                    ],
                ));
            }
            Ok(multistatus_of(&want, entries))
        }
        ("MOVE", [transfer, ".file"]) => {
            let transfer = name(transfer)?;
            let h = req.headers();
            let dest =
                header(h, "destination").ok_or_else(|| bad("the Destination header is missing"))?;
            let dest = resolve_target(
                state,
                who,
                &url_path(dest).map_err(|e| bad(format!("invalid Destination: {e}")))?,
            )?;
            let mut opts = put_options(h)?;
            // The body of the MOVE is empty: the length to check is the assembled one.
            opts.expected_len = total_length(h)?;
            let mtime_set = opts.mtime_secs.is_some();
            let submitted = super::conditions::evaluate_if(state, who, &dest, h).await?;
            let (info, created) = super::on_target(state, who, &dest, move |c, w, space, path| {
                submitted.allow(c, w, space, path, false)?;
                c.files.assemble(w, &transfer, space, path, &opts)
            })
            .await?;
            tracing::info!(protocol = "chunking-ng", path = %info.path, size = info.size, "upload complete");
            Ok(upload_response(&info, created, mtime_set))
        }
        ("DELETE", [transfer]) => {
            let transfer = name(transfer)?;
            let (files, w) = (state.core.files.clone(), who.clone());
            blocking(move || files.abort_transfer(&w, &transfer)).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (m, _) if !matches!(m, "MKCOL" | "PUT" | "PROPFIND" | "MOVE" | "DELETE") => {
            Ok(method_not_allowed(m))
        }
        _ => Err(ApiError(CoreError::NotFound(
            "no such upload resource".into(),
        ))),
    }
}
