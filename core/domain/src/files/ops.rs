//! Namespace operations: create folder, delete (to the trash), move and copy. A replaced
//! destination is swapped out atomically (Linux `renameat2(RENAME_EXCHANGE)`) and then moved to the
//! trash, so a crash at any point leaves either the old or the new destination under its name.
//! Renames and their metadata become durable together in [`FileStore::commit`].

use super::tree::{Located, new_etag, probe, propagate, record_from_disk, remove_subtree, to_i64};
use super::{FileStore, MoveOutcome, ResourceInfo};
use crate::CoreError;
use crate::clock::now_secs;
use hearth_store::{NodeKind, SpaceRecord, TrashRecord, WriteTx};
use hearth_types::{Name, NodeId, RelPath};
use std::path::{Path, PathBuf};

/// An entry placed at its destination by [`FileStore::place_over`]; the destination stays locked
/// while this lives.
pub(crate) struct Placed {
    _guard: super::path_locks::PathGuard,
    /// What was at the destination before, and its key in the trash.
    displaced: Option<(Located, String)>,
}

impl Placed {
    /// Whether an existing destination was replaced.
    pub(crate) fn replaced(&self) -> MoveOutcome {
        if self.displaced.is_some() {
            MoveOutcome::Replaced
        } else {
            MoveOutcome::Created
        }
    }
}

/// Atomically swaps two paths.
pub(crate) fn exchange(a: &Path, b: &Path) -> Result<(), CoreError> {
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        a,
        rustix::fs::CWD,
        b,
        rustix::fs::RenameFlags::EXCHANGE,
    )
    .map_err(|e| CoreError::io("replacing the destination", std::io::Error::from(e)))
}

fn check_pair(from: &RelPath, to: &RelPath) -> Result<(), CoreError> {
    if from.is_root() {
        return Err(CoreError::PermissionDenied(
            "the space root cannot be moved or copied".into(),
        ));
    }
    if to.is_root() {
        return Err(CoreError::BadRequest(
            "the space root cannot be overwritten".into(),
        ));
    }
    if from == to {
        return Err(CoreError::PermissionDenied(
            "source and destination are the same".into(),
        ));
    }
    if to.starts_with(from) {
        return Err(CoreError::Conflict(
            "a folder cannot be moved or copied into itself".into(),
        ));
    }
    Ok(())
}

impl FileStore {
    pub(crate) fn mkdir_impl(
        &self,
        space: &SpaceRecord,
        path: &RelPath,
    ) -> Result<ResourceInfo, CoreError> {
        if path.is_root() || self.try_locate(space, path)?.is_some() {
            return Err(CoreError::AlreadyExists(format!("{path} already exists")));
        }
        let (parent, name) = self.locate_parent(space, path)?;
        let disk = parent.disk.join(name.as_str());
        match std::fs::create_dir(&disk) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(CoreError::AlreadyExists(format!("{path} already exists")));
            }
            Err(e) => return Err(CoreError::io("creating a folder", e)),
        }
        let meta =
            std::fs::symlink_metadata(&disk).map_err(|e| CoreError::io("creating a folder", e))?;
        let id = NodeId::fresh();
        let rec = record_from_disk(space.id, parent.id, name.as_str(), NodeKind::Dir, &meta);
        self.commit(|tx| -> Result<(), CoreError> {
            tx.put_node(id, &rec)?;
            tx.put_child(parent.id, name.as_str(), id)?;
            propagate(tx, parent.id, 0)?;
            Ok(())
        })?;
        Ok(self.info(space, path.clone(), id, &rec, false))
    }

    pub(crate) fn delete_impl(&self, space: &SpaceRecord, path: &RelPath) -> Result<(), CoreError> {
        if path.is_root() {
            return Err(CoreError::PermissionDenied(
                "the space root cannot be deleted".into(),
            ));
        }
        let loc = self.locate(space, path)?;
        let key = self.stash_in_trash(space, &loc.disk)?;
        self.commit(|tx| -> Result<(), CoreError> {
            let parent = loc
                .rec
                .parent
                .ok_or_else(|| CoreError::Internal("node without parent".into()))?;
            tx.remove_child(parent, &loc.rec.name)?;
            self.trash_records(tx, space, &key, &loc, path)?;
            propagate(tx, parent, -to_i64(loc.rec.size))?;
            Ok(())
        })
    }

    /// Moves a disk entry into the space's trash folder; returns its trash key.
    /// Puts the entry at `src` on disk at `target` (the path `to` of `space`), holding the
    /// destination's lock until the returned [`Placed`] is dropped. An existing destination is
    /// replaced atomically when `overwrite` (else 412): it is exchanged into `src`'s place and
    /// then moved to the trash, so a crash leaves either the old or the new entry under the name.
    /// Move, copy and trash restore all place their entry this way.
    pub(crate) fn place_over(
        &self,
        space: &SpaceRecord,
        src: &Path,
        target: &Path,
        to: &RelPath,
        overwrite: bool,
        what: &'static str,
    ) -> Result<Placed, CoreError> {
        let guard = self.lock_path(target);
        let old = self.try_locate(space, to)?;
        let displaced = match old {
            Some(_) if !overwrite => {
                return Err(CoreError::PreconditionFailed(format!(
                    "{to} exists and Overwrite is F"
                )));
            }
            Some(o) => {
                exchange(src, &o.disk)?;
                // The old destination now sits at `src`.
                let key = self.stash_in_trash(space, src)?;
                Some((o, key))
            }
            None => {
                std::fs::rename(src, target).map_err(|e| CoreError::io(what, e))?;
                None
            }
        };
        Ok(Placed {
            _guard: guard,
            displaced,
        })
    }

    /// In the commit of a [`Self::place_over`]: the displaced entry leaves its folder for the
    /// trash. Returns its size (0 if nothing was displaced).
    pub(crate) fn record_displaced(
        &self,
        tx: &WriteTx,
        space: &SpaceRecord,
        parent: NodeId,
        name: &Name,
        placed: &Placed,
        to: &RelPath,
    ) -> Result<u64, CoreError> {
        let Some((old, key)) = &placed.displaced else {
            return Ok(0);
        };
        tx.remove_child(parent, name.as_str())?;
        self.trash_records(tx, space, key, old, to)?;
        Ok(old.rec.size)
    }

    pub(crate) fn stash_in_trash(
        &self,
        space: &SpaceRecord,
        disk: &Path,
    ) -> Result<String, CoreError> {
        let dir = self.trash_dir.join(space.id.to_string());
        std::fs::create_dir_all(&dir).map_err(|e| CoreError::io("creating the trash folder", e))?;
        let key = uuid::Uuid::new_v4().simple().to_string();
        std::fs::rename(disk, dir.join(&key))
            .map_err(|e| CoreError::io("moving to the trash", e))?;
        Ok(key)
    }

    /// Records a trashed node and drops its live records.
    pub(crate) fn trash_records(
        &self,
        tx: &WriteTx,
        space: &SpaceRecord,
        key: &str,
        loc: &Located,
        path: &RelPath,
    ) -> Result<(), CoreError> {
        remove_subtree(tx, loc.id)?;
        tx.put_trash(
            space.id,
            &TrashRecord {
                key: key.to_owned(),
                original_path: path.to_string(),
                kind: loc.rec.kind,
                size: loc.rec.size,
                deleted_at: now_secs(),
                node: loc.id,
            },
        )?;
        Ok(())
    }

    pub(crate) fn move_impl(
        &self,
        space: &SpaceRecord,
        from: &RelPath,
        to: &RelPath,
        overwrite: bool,
    ) -> Result<MoveOutcome, CoreError> {
        check_pair(from, to)?;
        let src = self.locate(space, from)?;
        let (dparent, dname) = self.locate_parent(space, to)?;
        let target = dparent.disk.join(dname.as_str());
        let placed = self.place_over(space, &src.disk, &target, to, overwrite, "moving")?;
        self.commit(|tx| -> Result<(), CoreError> {
            let sparent = src
                .rec
                .parent
                .ok_or_else(|| CoreError::Internal("node without parent".into()))?;
            tx.remove_child(sparent, &src.rec.name)?;
            let old_size = self.record_displaced(tx, space, dparent.id, &dname, &placed, to)?;
            let mut rec = src.rec.clone();
            rec.parent = Some(dparent.id);
            rec.name = dname.as_str().to_owned();
            tx.put_node(src.id, &rec)?;
            tx.put_child(dparent.id, dname.as_str(), src.id)?;
            propagate(tx, sparent, -to_i64(rec.size))?;
            propagate(tx, dparent.id, to_i64(rec.size) - to_i64(old_size))?;
            Ok(())
        })?;
        Ok(placed.replaced())
    }

    pub(crate) fn copy_impl(
        &self,
        space: &SpaceRecord,
        from: &RelPath,
        to: &RelPath,
        overwrite: bool,
        recursive: bool,
    ) -> Result<MoveOutcome, CoreError> {
        check_pair(from, to)?;
        let src = self.locate(space, from)?;
        let (dparent, dname) = self.locate_parent(space, to)?;
        let target = dparent.disk.join(dname.as_str());
        let tmp = self.tmp_dir.join(uuid::Uuid::new_v4().simple().to_string());
        let copied = copy_tree(&src.disk, &tmp, recursive);
        if let Err(e) = copied {
            let _ = std::fs::remove_dir_all(&tmp).or_else(|_| std::fs::remove_file(&tmp));
            return Err(e);
        }
        // The copy's content is durable before it takes the destination name.
        self.sync_data()?;
        let placed = match self.place_over(space, &tmp, &target, to, overwrite, "copying") {
            Ok(p) => p,
            Err(e) => {
                // Nothing took the destination name: the copy goes.
                let _ = std::fs::remove_dir_all(&tmp).or_else(|_| std::fs::remove_file(&tmp));
                return Err(e);
            }
        };
        self.commit(|tx| -> Result<(), CoreError> {
            let old_size = self.record_displaced(tx, space, dparent.id, &dname, &placed, to)?;
            let size = build_records(tx, space, &target, dparent.id, &dname, Some(src.id), None)?;
            propagate(tx, dparent.id, to_i64(size) - to_i64(old_size))?;
            Ok(())
        })?;
        Ok(placed.replaced())
    }
}

/// Copies a file or folder tree on disk, keeping modification times; files are fsynced.
fn copy_tree(src: &Path, dst: &Path, recursive: bool) -> Result<(), CoreError> {
    let mut stack: Vec<(PathBuf, PathBuf, bool)> =
        vec![(src.to_path_buf(), dst.to_path_buf(), true)];
    while let Some((s, d, descend)) = stack.pop() {
        let Some((kind, meta)) = probe(&s)? else {
            continue;
        };
        match kind {
            NodeKind::File => {
                std::fs::copy(&s, &d).map_err(|e| CoreError::io("copying a file", e))?;
                let f = std::fs::File::options()
                    .write(true)
                    .open(&d)
                    .map_err(|e| CoreError::io("copying a file", e))?;
                if let Ok(t) = meta.modified() {
                    f.set_modified(t)
                        .map_err(|e| CoreError::io("copying a file", e))?;
                }
            }
            NodeKind::Dir => {
                std::fs::create_dir(&d).map_err(|e| CoreError::io("copying a folder", e))?;
                if descend && recursive {
                    for entry in
                        std::fs::read_dir(&s).map_err(|e| CoreError::io("copying a folder", e))?
                    {
                        let entry = entry.map_err(|e| CoreError::io("copying a folder", e))?;
                        let name = entry.file_name();
                        if name.to_str().is_none_or(|n| Name::new(n).is_err()) {
                            continue;
                        }
                        stack.push((s.join(&name), d.join(&name), true));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Creates records for a freshly copied tree at `disk` (named `name` under `parent`), carrying over
/// checksums and dead properties from the source nodes. Returns the tree size.
pub(crate) fn build_records(
    tx: &WriteTx,
    space: &SpaceRecord,
    disk: &Path,
    parent: NodeId,
    name: &Name,
    source: Option<NodeId>,
    keep_id: Option<NodeId>,
) -> Result<u64, CoreError> {
    let Some((kind, meta)) = probe(disk)? else {
        return Ok(0);
    };
    let id = keep_id.unwrap_or_else(NodeId::fresh);
    let mut rec = record_from_disk(space.id, parent, name.as_str(), kind, &meta);
    let src_rec = match source {
        Some(s) => tx.node(s)?,
        None => None,
    };
    if let (Some(s), Some(sr)) = (source, &src_rec) {
        if kind == NodeKind::File && sr.disk_size == rec.disk_size {
            rec.checksums = sr.checksums.clone();
        }
        for (k, v) in tx.props(s)? {
            tx.put_prop(id, &k, &v)?;
        }
    }
    if kind == NodeKind::Dir {
        let mut total = 0u64;
        let mut names: Vec<String> = std::fs::read_dir(disk)
            .map_err(|e| CoreError::io("copying a folder", e))?
            .filter_map(|e| e.ok().and_then(|e| e.file_name().into_string().ok()))
            .collect();
        names.sort();
        for n in names {
            let Ok(child_name) = Name::new(&n) else {
                continue;
            };
            let child_src = match source {
                Some(s) => tx.child(s, &n)?,
                None => None,
            };
            total += build_records(tx, space, &disk.join(&n), id, &child_name, child_src, None)?;
        }
        rec.size = total;
    }
    rec.etag = new_etag();
    tx.put_node(id, &rec)?;
    tx.put_child(parent, name.as_str(), id)?;
    Ok(rec.size)
}
