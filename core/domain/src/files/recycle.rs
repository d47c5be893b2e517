//! Recycle bin and version operations (CS3 ListRecycle / RestoreRecycleItem / PurgeRecycle,
//! ListFileVersions / RestoreFileVersion): restoring puts the item back under its node id,
//! restoring a version makes the current content a version in turn.

use super::ops::build_records;
use super::tree::{propagate, to_i64};
use super::{FileStore, MoveOutcome, PutOptions, ResourceInfo};
use crate::CoreError;
use hearth_store::{NodeKind, SpaceRecord, VersionRecord};
use hearth_types::{NodeId, RelPath, ResourceId, SpaceId};
use std::io::Read;

impl FileStore {
    /// The trash folder entry of an item.
    fn trash_path(&self, space: SpaceId, key: &str) -> std::path::PathBuf {
        self.trash_dir.join(space.to_string()).join(key)
    }

    pub(crate) fn restore_impl(
        &self,
        space: &SpaceRecord,
        key: &str,
        to: &RelPath,
        overwrite: bool,
    ) -> Result<MoveOutcome, CoreError> {
        let item = self
            .store
            .read(|tx| tx.trash_item(space.id, key))?
            .ok_or_else(|| CoreError::NotFound(format!("no trash item {key}")))?;
        let src = self.trash_path(space.id, key);
        if super::tree::probe(&src)?.is_none() {
            return Err(CoreError::NotFound(format!(
                "trash item {key} is gone from disk"
            )));
        }
        let (dparent, dname) = self.locate_parent(space, to)?;
        let target = dparent.disk.join(dname.as_str());
        let placed = self.place_over(
            space,
            &src,
            &target,
            to,
            overwrite,
            "restoring from the trash",
        )?;
        self.commit(|tx| -> Result<(), CoreError> {
            tx.remove_trash(space.id, key)?;
            let old_size = self.record_displaced(tx, space, dparent.id, &dname, &placed, to)?;
            let size = build_records(
                tx,
                space,
                &target,
                dparent.id,
                &dname,
                None,
                Some(item.node),
            )?;
            propagate(tx, dparent.id, to_i64(size) - to_i64(old_size))?;
            Ok(())
        })?;
        Ok(placed.replaced())
    }

    /// Empties a space's trash.
    pub(crate) fn purge_all_impl(&self, space: &SpaceRecord) -> Result<(), CoreError> {
        for item in self.trash_of(space)? {
            self.purge_trash_item(space, &item.key)?;
        }
        Ok(())
    }

    /// Finds a node by its resource id in one of the caller's spaces: (space, path, info).
    pub(crate) fn resolve_id_impl(
        &self,
        space: &SpaceRecord,
        id: &ResourceId,
    ) -> Result<ResourceInfo, CoreError> {
        let not_found = || CoreError::NotFound(format!("no resource {id}"));
        if id.storage != self.storage_id || id.space != space.id {
            return Err(not_found());
        }
        let path = self
            .store
            .read(|tx| -> Result<Option<RelPath>, CoreError> {
                match tx.node(id.node)? {
                    Some(rec) if rec.space == space.id => self.path_of(tx, id.node),
                    _ => Ok(None),
                }
            })?
            .ok_or_else(not_found)?;
        let loc = self.locate(space, &path)?;
        if loc.id != id.node {
            return Err(not_found());
        }
        Ok(self.info(space, path, loc.id, &loc.rec, false))
    }

    fn version_file(&self, node: NodeId, key: u64) -> std::path::PathBuf {
        self.versions_dir
            .join(node.to_string())
            .join(key.to_string())
    }

    /// A version's record and its content.
    pub(crate) fn open_version_impl(
        &self,
        node: NodeId,
        key: u64,
    ) -> Result<(VersionRecord, std::fs::File), CoreError> {
        let v = self
            .store
            .read(|tx| tx.versions(node))?
            .into_iter()
            .find(|v| v.key == key)
            .ok_or_else(|| CoreError::NotFound(format!("no version {key}")))?;
        let f = std::fs::File::open(self.version_file(node, key))
            .map_err(|e| CoreError::io("opening a version", e))?;
        Ok((v, f))
    }

    /// Makes a version the current content again; the current content becomes a version.
    pub(crate) fn restore_version_impl(
        &self,
        who: &crate::Principal,
        space: &SpaceRecord,
        file: &ResourceInfo,
        key: u64,
    ) -> Result<ResourceInfo, CoreError> {
        if file.kind != NodeKind::File {
            return Err(CoreError::Conflict("only files have versions".into()));
        }
        let (v, mut src) = self.open_version_impl(file.id.node, key)?;
        let mut up = self.begin_upload_impl()?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = src
                .read(&mut buf)
                .map_err(|e| CoreError::io("reading a version", e))?;
            if n == 0 {
                break;
            }
            up.write(buf.get(..n).unwrap_or_default())?;
        }
        let opts = PutOptions {
            if_match: Some(vec![file.etag.clone()]),
            mtime_secs: Some(v.mtime_ns.div_euclid(1_000_000_000)),
            ..PutOptions::default()
        };
        let (info, _) = self
            .stage_upload(who, space.id, &file.path, up, &opts)?
            .wait()?;
        Ok(info)
    }
}
