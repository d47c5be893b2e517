//! COPY and MOVE (RFC 4918 §9.8, §9.9): `Destination` as an absolute URL or a path (the desktop
//! clients send a path only), `Overwrite`, `Depth`; locks on the source (MOVE) and destination
//! are enforced.

use super::conditions::evaluate_if;
use super::{Target, on_target};
use crate::util::{bad, header};
use crate::{ApiError, AppState};
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use hearth_dav_proto::{Depth, parse_depth, parse_overwrite, url_path};
use hearth_domain::{MoveOutcome, Principal, StorageProvider};
use http::StatusCode;

pub(crate) async fn copy_or_move(
    state: &AppState,
    who: &Principal,
    t: &Target,
    req: Request,
    is_move: bool,
) -> Result<Response, ApiError> {
    let h = req.headers();
    let dest_raw =
        header(h, "destination").ok_or_else(|| bad("the Destination header is missing"))?;
    let dest_path = url_path(dest_raw).map_err(|e| bad(format!("invalid Destination: {e}")))?;
    let dest = match super::resolve_target(state, who, &dest_path) {
        Ok(d) => d,
        Err(_) => {
            return Ok(crate::error::plain(
                StatusCode::BAD_GATEWAY,
                "Sabre\\DAV\\Exception\\BadGateway",
                "the destination is not in this space",
            ));
        }
    };
    if dest.space != t.space {
        return Ok(crate::error::plain(
            StatusCode::BAD_GATEWAY,
            "Sabre\\DAV\\Exception\\BadGateway",
            "the destination is not in this space",
        ));
    }
    let overwrite = parse_overwrite(header(h, "overwrite")).map_err(|e| bad(e.to_string()))?;
    let depth = parse_depth(header(h, "depth")).map_err(|e| bad(e.to_string()))?;
    let recursive = match (is_move, depth) {
        (_, None | Some(Depth::Infinity)) => true,
        (false, Some(Depth::Zero)) => false,
        (true, Some(Depth::Zero)) => return Err(bad("MOVE needs Depth: infinity")),
        (_, Some(Depth::One)) => return Err(bad("Depth: 1 is not valid for COPY or MOVE")),
    };
    let submitted = evaluate_if(state, who, t, h).await?;
    let to = dest.path.clone();
    let outcome = on_target(state, who, t, move |c, w, space, from| {
        if is_move {
            submitted.allow(c, w, space, from, true)?;
        }
        submitted.allow(c, w, space, &to, true)?;
        let outcome = if is_move {
            c.files.move_to(w, space, from, &to, overwrite)?
        } else {
            c.files.copy_to(w, space, from, &to, overwrite, recursive)?
        };
        // Locks name paths: a moved source and a replaced destination lose theirs.
        if is_move {
            c.locks.release_under(space, from)?;
        }
        if outcome == MoveOutcome::Replaced {
            c.locks.release_under(space, &to)?;
        }
        Ok(outcome)
    })
    .await?;
    Ok(match outcome {
        MoveOutcome::Created => StatusCode::CREATED,
        MoveOutcome::Replaced => StatusCode::NO_CONTENT,
    }
    .into_response())
}
