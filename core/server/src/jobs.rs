//! Background jobs (one supervised service): the scan that notices changes made directly on disk
//! by the host user, and the purge of expired trash, unfinished uploads and sign-in grants
//! (expired refresh tokens, revoked families whose tokens have all expired).

use crate::config::JobsConfig;
use hearth_domain::Core;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub(crate) async fn run(
    core: Core,
    cfg: JobsConfig,
    cancel: CancellationToken,
) -> Result<(), String> {
    let scan_every =
        (cfg.scan_interval_secs > 0).then(|| Duration::from_secs(cfg.scan_interval_secs));
    let purge_every = Duration::from_secs(cfg.purge_interval_secs.max(60));
    let mut scan = tokio::time::interval(scan_every.unwrap_or(Duration::from_secs(3600)));
    let mut purge = tokio::time::interval(purge_every);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = scan.tick(), if scan_every.is_some() => {
                let files = core.files.clone();
                let r = tokio::task::spawn_blocking(move || -> Result<usize, String> {
                    let mut folders = 0;
                    for space in files.spaces().map_err(|e| e.to_string())? {
                        folders += files.scan_space(&space).map_err(|e| e.to_string())?;
                    }
                    Ok(folders)
                }).await.map_err(|e| e.to_string())?;
                match r {
                    Ok(n) => tracing::debug!(folders = n, "scan done"),
                    Err(e) => return Err(format!("scan failed: {e}")),
                }
            }
            _ = purge.tick() => {
                let files = core.files.clone();
                let n = tokio::task::spawn_blocking(move || files.purge_expired_trash())
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| format!("trash purge failed: {e}"))?;
                if n > 0 {
                    tracing::info!(items = n, "purged expired trash");
                }
                let uploads = core.uploads.clone();
                let n = tokio::task::spawn_blocking(move || uploads.purge_expired())
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| format!("upload purge failed: {e}"))?;
                if n > 0 {
                    tracing::info!(uploads = n, "removed expired uploads");
                }
                let oidc = core.oidc.clone();
                let (families, tokens) = tokio::task::spawn_blocking(move || oidc.prune())
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| format!("pruning sign-in grants failed: {e}"))?;
                if families + tokens > 0 {
                    tracing::info!(families, tokens, "pruned expired sign-in grants");
                }
                // Chunked uploads nobody touched for a day are abandoned.
                let files = core.files.clone();
                let n = tokio::task::spawn_blocking(move || files.purge_stale_transfers(std::time::Duration::from_secs(86_400)))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| format!("upload purge failed: {e}"))?;
                if n > 0 {
                    tracing::info!(transfers = n, "purged stale chunked uploads");
                }
            }
        }
    }
}
