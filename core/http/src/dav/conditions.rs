//! Conditional requests on the WebDAV side: the `If` header (RFC 4918 §10.4) and lock-token
//! enforcement (§7.5). The `If` conditions are evaluated first (false is 412 Precondition
//! Failed), then, inside the operation, the locks (a missing or wrong token is 423 Locked), as
//! Apache mod_dav orders them.

use super::{Target, on_target, resolve_target};
use crate::util::{bad, header};
use crate::{ApiError, AppState};
use hearth_dav_proto::{Condition, parse_if, url_path};
use hearth_domain::{CoreError, Principal};
use http::HeaderMap;

/// The lock tokens a client submitted in its `If` header, for the lock check that the write
/// itself runs (on the same blocking call as the operation).
#[derive(Debug, Clone, Default)]
pub(crate) struct Submitted(Vec<String>);

impl Submitted {
    /// The submitted tokens (for a write the domain checks later, e.g. a TUS upload's completion).
    pub(crate) fn into_tokens(self) -> Vec<String> {
        self.0
    }

    /// `Locked` unless every lock on `path` (and below it, if `recursive`) was submitted by `who`.
    pub(crate) fn allow(
        &self,
        core: &hearth_domain::Core,
        who: &Principal,
        space: hearth_types::SpaceId,
        path: &hearth_types::RelPath,
        recursive: bool,
    ) -> Result<(), CoreError> {
        core.locks.check_write(who, space, path, &self.0, recursive)
    }
}

/// Evaluates the `If` header for a write to `target` (412 when it is false) and returns the
/// submitted lock tokens. Without an `If` header this does no I/O.
pub(crate) async fn evaluate_if(
    state: &AppState,
    who: &Principal,
    target: &Target,
    headers: &HeaderMap,
) -> Result<Submitted, ApiError> {
    let parsed = match header(headers, "if") {
        Some(v) => Some(parse_if(v).map_err(|e| bad(format!("invalid If header: {e}")))?),
        None => None,
    };
    let tokens: Vec<String> = parsed
        .iter()
        .flat_map(|h| h.lists.iter())
        .flat_map(|l| l.conditions.iter())
        .filter_map(|c| match c {
            Condition::Token { token, .. } => Some(token.clone()),
            Condition::Etag { .. } => None,
        })
        .collect();
    if let Some(h) = parsed {
        let mut any = false;
        for list in &h.lists {
            let res = match &list.resource {
                Some(url) => {
                    let p = url_path(url).map_err(|e| bad(format!("invalid If header: {e}")))?;
                    match resolve_target(state, who, &p) {
                        Ok(t) => t,
                        Err(_) => continue,
                    }
                }
                None => target.clone(),
            };
            let etag = super::try_stat(state, who, &res).await?.map(|i| i.etag);
            let covering: Vec<String> = on_target(state, who, &res, |c, _, space, path| {
                c.locks.covering(space, path)
            })
            .await?
            .into_iter()
            .map(|l| l.token)
            .collect();
            let holds = list.conditions.iter().all(|c| match c {
                Condition::Token { not, token } => covering.iter().any(|t| t == token) != *not,
                Condition::Etag { not, etag: want } => {
                    let want = want.trim_start_matches("W/").trim_matches('"');
                    (etag.as_deref() == Some(want)) != *not
                }
            });
            if holds {
                any = true;
                break;
            }
        }
        if !any {
            return Err(ApiError(CoreError::PreconditionFailed(
                "the If header conditions do not hold".into(),
            )));
        }
    }
    Ok(Submitted(tokens))
}
