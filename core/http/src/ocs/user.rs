//! OCS `cloud/user` and `cloud/users/{userid}` (reva cloud/user and cloud/users semantics, quota
//! as ownCloud 10 reports it).

use crate::util::blocking;
use crate::{ApiError, AppState};
use hearth_domain::{CoreError, Principal, Quota, StorageProvider};
use serde_json::{Value, json};

/// ownCloud's `SPACE_UNLIMITED`: `free` and `total` of an unlimited quota.
const UNLIMITED: i64 = -3;

/// `GET cloud/user`: the caller.
///
/// CLIENT QUIRK (owncloudcmd, nextcloudcmd): `id` becomes the path segment of
/// `/remote.php/dav/files/<id>/`, so it is the login name, which the WebDAV adapter accepts.
pub(crate) async fn current(state: &AppState, who: Principal) -> Result<Value, ApiError> {
    let quota = quota_of(state, &who).await?;
    Ok(json!({
        "id": who.username,
        "display-name": who.display_name,
        "email": who.email.unwrap_or_default(),
        "user-type": "primary",
        "quota": quota_value(&quota),
    }))
}

/// `GET cloud/users/{userid}`: only the caller itself (by login name or user id) until sharing and
/// administration exist; anyone else is "not found".
pub(crate) async fn by_id(
    state: &AppState,
    who: Principal,
    userid: &str,
) -> Result<Value, ApiError> {
    if userid != who.username && userid != who.id.to_string() {
        return Err(ApiError(CoreError::NotFound(format!("no user {userid}"))));
    }
    let quota = quota_of(state, &who).await?;
    Ok(json!({
        "id": who.username,
        "display-name": who.display_name,
        "displayname": who.display_name,
        "email": who.email.unwrap_or_default(),
        "quota": quota_value(&quota),
        "enabled": "true",
    }))
}

async fn quota_of(state: &AppState, who: &Principal) -> Result<Quota, ApiError> {
    let files = state.core.files.clone();
    let who = who.clone();
    blocking(move || {
        let space = files.personal_space(who.id)?;
        files.quota(&who, space)
    })
    .await
}

/// `{free, used, total, relative}`; `free` and `total` are -3 when unlimited, `relative` is the
/// used percentage with two decimals.
fn quota_value(q: &Quota) -> Value {
    match q.total {
        None => json!({
            "free": UNLIMITED,
            "used": q.used,
            "total": UNLIMITED,
            "relative": 0,
        }),
        Some(total) => {
            let relative = if total == 0 {
                0.0
            } else {
                // Display only: the precision loss of u64 -> f64 is irrelevant at two decimals.
                let pct = q.used as f64 * 100.0 / total as f64;
                (pct * 100.0).round() / 100.0
            };
            json!({
                "free": q.available().unwrap_or(0),
                "used": q.used,
                "total": total,
                "relative": relative,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_quota_is_minus_three() {
        let v = quota_value(&Quota {
            used: 42,
            total: None,
        });
        assert_eq!(v["free"], -3);
        assert_eq!(v["total"], -3);
        assert_eq!(v["used"], 42);
        assert_eq!(v["relative"], 0);
    }

    #[test]
    fn limited_quota_has_free_and_percentage() {
        let v = quota_value(&Quota {
            used: 1,
            total: Some(3),
        });
        assert_eq!(v["free"], 2);
        assert_eq!(v["total"], 3);
        assert_eq!(v["relative"], 33.33);
        let v = quota_value(&Quota {
            used: 5,
            total: Some(0),
        });
        assert_eq!(v["free"], 0);
        assert_eq!(v["relative"], 0.0);
    }
}
