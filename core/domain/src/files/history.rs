//! Trash bin and file versions: what a delete or an overwrite keeps, bounded by the configured
//! retention (count and age for versions, age for trash).

use super::FileStore;
use crate::CoreError;
use crate::clock::{now_ns, now_secs};
use hearth_store::{SpaceRecord, TrashRecord, VersionRecord, WriteTx};
use hearth_types::NodeId;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Inside an upload's transaction: drops the records of `node`'s versions beyond `max_count`
/// and older than `max_age` (oldest first) and returns their files, to delete after the commit.
pub(crate) fn prune_versions(
    tx: &WriteTx,
    versions_dir: &Path,
    node: NodeId,
    max_count: usize,
    max_age: Duration,
) -> Result<Vec<PathBuf>, CoreError> {
    let versions = tx.versions(node)?;
    let max_age_ns = i64::try_from(max_age.as_nanos()).unwrap_or(i64::MAX);
    let cutoff = now_ns().saturating_sub(max_age_ns);
    let excess = versions.len().saturating_sub(max_count);
    let dir = versions_dir.join(node.to_string());
    let mut doomed = Vec::new();
    for (i, v) in versions.iter().enumerate() {
        if i < excess || i64::try_from(v.key).unwrap_or(i64::MAX) < cutoff {
            tx.remove_version(node, v.key)?;
            doomed.push(dir.join(v.key.to_string()));
        }
    }
    Ok(doomed)
}

impl FileStore {
    /// The versions of a file, oldest first.
    pub fn versions_of(&self, node: NodeId) -> Result<Vec<VersionRecord>, CoreError> {
        Ok(self.store.read(|tx| tx.versions(node))?)
    }

    /// The trash of a space, newest first.
    pub fn trash_of(&self, space: &SpaceRecord) -> Result<Vec<TrashRecord>, CoreError> {
        let mut items = self.store.read(|tx| tx.trash(space.id))?;
        items.sort_by_key(|t| std::cmp::Reverse(t.deleted_at));
        Ok(items)
    }

    /// Permanently removes one trash item.
    pub fn purge_trash_item(&self, space: &SpaceRecord, key: &str) -> Result<(), CoreError> {
        let found = self.store.write(|tx| -> Result<bool, CoreError> {
            let found = tx.trash_item(space.id, key)?.is_some();
            tx.remove_trash(space.id, key)?;
            Ok(found)
        })?;
        if !found {
            return Err(CoreError::NotFound(format!("no trash item {key}")));
        }
        let p = self.trash_dir.join(space.id.to_string()).join(key);
        let _ = std::fs::remove_dir_all(&p).or_else(|_| std::fs::remove_file(&p));
        Ok(())
    }

    /// Purges trash items older than the retention in every space (the background job).
    pub fn purge_expired_trash(&self) -> Result<usize, CoreError> {
        let retention = i64::try_from(self.opts.trash_retention.as_secs()).unwrap_or(i64::MAX);
        let cutoff = now_secs().saturating_sub(retention);
        let mut purged = 0;
        for space in self.spaces()? {
            for item in self.trash_of(&space)? {
                if item.deleted_at < cutoff {
                    self.purge_trash_item(&space, &item.key)?;
                    purged += 1;
                }
            }
        }
        Ok(purged)
    }
}
