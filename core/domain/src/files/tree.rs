//! The node tree: resolving paths to nodes while reconciling redb with what is really on disk
//! (files added, edited, deleted or renamed by the host user), and tree etag/size propagation:
//! any change below a folder gives it and every ancestor a new etag, which is how sync clients
//! know which folders to descend into.

use super::{FileStore, ResourceInfo};
use crate::CoreError;
use crate::clock::{now_ns, system_ns};
use hearth_store::{NodeKind, NodeRecord, ReadTx, SpaceRecord, StoreError, WriteTx};
use hearth_types::{Name, NodeId, RelPath, ResourceId, SpaceId, UserId};
use std::fs::Metadata;
use std::path::{Path, PathBuf};

/// A child entry: name, id, record.
type Entry = (String, NodeId, NodeRecord);

/// A fresh etag: 64 random bits in hex.
pub(crate) fn new_etag() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// A path resolved to its node.
pub(crate) struct Located {
    pub id: NodeId,
    pub rec: NodeRecord,
    pub disk: PathBuf,
}

/// What the disk says about one entry, if it is something we serve (a regular file or a folder;
/// never a symlink, which could point outside the space).
pub(crate) fn disk_kind(meta: &Metadata) -> Option<NodeKind> {
    let ft = meta.file_type();
    if ft.is_symlink() {
        None
    } else if ft.is_dir() {
        Some(NodeKind::Dir)
    } else if ft.is_file() {
        Some(NodeKind::File)
    } else {
        None
    }
}

/// `symlink_metadata` that maps "absent" and "not something we serve" to `None`.
pub(crate) fn probe(path: &Path) -> Result<Option<(NodeKind, Metadata)>, CoreError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) => Ok(disk_kind(&m).map(|k| (k, m))),
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                || e.kind() == std::io::ErrorKind::NotADirectory =>
        {
            Ok(None)
        }
        Err(e) => Err(CoreError::io("reading file metadata", e)),
    }
}

fn mtime_ns(m: &Metadata) -> i64 {
    m.modified().map(system_ns).unwrap_or(0)
}

/// Whether the record still describes the disk entry.
fn matches(rec: &NodeRecord, kind: NodeKind, m: &Metadata) -> bool {
    rec.kind == kind
        && (kind == NodeKind::Dir || (rec.disk_size == m.len() && rec.disk_mtime_ns == mtime_ns(m)))
}

/// A record for an entry found on disk.
pub(crate) fn record_from_disk(
    space: SpaceId,
    parent: NodeId,
    name: &str,
    kind: NodeKind,
    m: &Metadata,
) -> NodeRecord {
    let size = if kind == NodeKind::File { m.len() } else { 0 };
    NodeRecord {
        space,
        parent: Some(parent),
        name: name.to_owned(),
        kind,
        size,
        mtime_ns: mtime_ns(m),
        etag: new_etag(),
        checksums: None,
        disk_mtime_ns: mtime_ns(m),
        disk_size: size,
    }
}

/// Gives `start` and every ancestor a new etag and adds `delta` to their tree size.
pub(crate) fn propagate(tx: &WriteTx, start: NodeId, delta: i64) -> Result<(), CoreError> {
    let now = now_ns();
    let mut cur = Some(start);
    let mut guard = 0;
    while let Some(id) = cur {
        let Some(mut rec) = tx.node(id)? else { break };
        rec.etag = new_etag();
        rec.size = rec.size.saturating_add_signed(delta);
        rec.mtime_ns = rec.mtime_ns.max(now);
        tx.put_node(id, &rec)?;
        cur = rec.parent;
        guard += 1;
        if guard > 10_000 {
            return Err(CoreError::Internal("parent chain too deep (cycle?)".into()));
        }
    }
    Ok(())
}

/// Removes the records of a node and everything below it (not the link from its parent).
pub(crate) fn remove_subtree(tx: &WriteTx, root: NodeId) -> Result<(), StoreError> {
    let mut stack = vec![root];
    while let Some(id) = stack.pop() {
        for (name, child) in tx.children(id)? {
            tx.remove_child(id, &name)?;
            stack.push(child);
        }
        tx.remove_node(id)?;
    }
    Ok(())
}

/// Makes the records of `parent/name` match the disk (`disk` = what is there). Returns the entry's
/// node after the fix, `None` if there is nothing.
pub(crate) fn sync_entry(
    tx: &WriteTx,
    space: SpaceId,
    parent: NodeId,
    name: &str,
    disk: Option<&(NodeKind, Metadata)>,
) -> Result<Option<(NodeId, NodeRecord)>, CoreError> {
    let existing = match tx.child(parent, name)? {
        Some(id) => tx.node(id)?.map(|r| (id, r)),
        None => None,
    };
    match (existing, disk) {
        (None, None) => {
            // A dangling link (no record) is dropped too.
            tx.remove_child(parent, name)?;
            Ok(None)
        }
        (Some((id, rec)), None) => {
            remove_subtree(tx, id)?;
            tx.remove_child(parent, name)?;
            propagate(tx, parent, -to_i64(rec.size))?;
            Ok(None)
        }
        (Some((id, rec)), Some((kind, m))) if matches(&rec, *kind, m) => Ok(Some((id, rec))),
        (Some((id, mut rec)), Some((kind, m))) if rec.kind == *kind => {
            // Edited on disk by the host: new content, new etag, checksums unknown.
            let delta = to_i64(m.len()) - to_i64(rec.size);
            rec.size = m.len();
            rec.disk_size = m.len();
            rec.disk_mtime_ns = mtime_ns(m);
            rec.mtime_ns = rec.disk_mtime_ns;
            rec.etag = new_etag();
            rec.checksums = None;
            tx.put_node(id, &rec)?;
            propagate(tx, parent, delta)?;
            Ok(Some((id, rec)))
        }
        (old, Some((kind, m))) => {
            let mut delta = 0;
            if let Some((id, rec)) = old {
                remove_subtree(tx, id)?;
                delta -= to_i64(rec.size);
            }
            let id = NodeId::fresh();
            let rec = record_from_disk(space, parent, name, *kind, m);
            delta += to_i64(rec.size);
            tx.put_node(id, &rec)?;
            tx.put_child(parent, name, id)?;
            propagate(tx, parent, delta)?;
            Ok(Some((id, rec)))
        }
    }
}

pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl FileStore {
    /// The folder on disk of a space.
    pub(crate) fn space_dir(&self, space: &SpaceRecord) -> PathBuf {
        self.opts.data_dir.join(&space.dir)
    }

    /// The disk path of `path` in `space` (no checks).
    pub(crate) fn disk_path(&self, space: &SpaceRecord, path: &RelPath) -> PathBuf {
        let mut p = self.space_dir(space);
        for n in path.names() {
            p.push(n.as_str());
        }
        p
    }

    /// Resolves a path to its node, reconciling with the disk on the way. `NotFound` if absent.
    pub(crate) fn locate(&self, space: &SpaceRecord, path: &RelPath) -> Result<Located, CoreError> {
        let clean = self.store.read(|tx| walk_readonly(tx, self, space, path))?;
        match clean {
            Walk::Found(l) => Ok(*l),
            Walk::Missing => Err(not_found(path)),
            Walk::NeedsFix => {
                let found = self
                    .store
                    .write_lazy(|tx| walk_fixing(tx, self, space, path))?;
                found.ok_or_else(|| not_found(path))
            }
        }
    }

    /// The caller's space and the node at `path` (`None`: absent), in one read transaction when
    /// the records match the disk (the usual case); reconciles like [`FileStore::locate`]
    /// otherwise.
    pub(crate) fn space_and_locate(
        &self,
        who: &crate::auth::Principal,
        space: SpaceId,
        path: &RelPath,
    ) -> Result<(SpaceRecord, Option<Located>), CoreError> {
        let (rec, walk) = self.store.read(|tx| -> Result<_, CoreError> {
            let rec = super::owned_space(tx, who, space)?;
            let walk = walk_readonly(tx, self, &rec, path)?;
            Ok((rec, walk))
        })?;
        let found = match walk {
            Walk::Found(l) => Some(*l),
            Walk::Missing => None,
            Walk::NeedsFix => self
                .store
                .write_lazy(|tx| walk_fixing(tx, self, &rec, path))?,
        };
        Ok((rec, found))
    }

    /// Like [`FileStore::locate_parent`], with the space looked up in the same transaction.
    pub(crate) fn space_and_parent(
        &self,
        who: &crate::auth::Principal,
        space: SpaceId,
        path: &RelPath,
    ) -> Result<(SpaceRecord, Located, Name), CoreError> {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            // The space must exist for this answer, as in `locate_parent`'s callers.
            self.space_for(who, space)?;
            return Err(CoreError::PermissionDenied(
                "the space root cannot be replaced".into(),
            ));
        };
        let (rec, found) = self.space_and_locate(who, space, &parent)?;
        let Some(p) = found else {
            return Err(CoreError::Conflict(format!(
                "the parent folder {parent} does not exist"
            )));
        };
        if p.rec.kind != NodeKind::Dir {
            return Err(CoreError::Conflict(format!("{parent} is not a folder")));
        }
        Ok((rec, p, name.clone()))
    }

    /// The entry `name` in the folder `parent` (`None`: absent) and the space's quota, in one
    /// read transaction when the records match the disk; reconciles otherwise.
    pub(crate) fn child_and_quota(
        &self,
        space: &SpaceRecord,
        parent: &Located,
        name: &Name,
        path: &RelPath,
    ) -> Result<(Option<Located>, super::Quota), CoreError> {
        let (walk, quota) = self.store.read(|tx| -> Result<_, CoreError> {
            let walk = walk_step(tx, parent, name.as_str())?;
            Ok((walk, self.quota_in(tx, space)?))
        })?;
        match walk {
            Walk::Found(l) => Ok((Some(*l), quota)),
            Walk::Missing => Ok((None, quota)),
            // Reconciling may change sizes: the quota is read again afterwards.
            Walk::NeedsFix => Ok((self.try_locate(space, path)?, self.quota_impl(space)?)),
        }
    }

    /// Like [`FileStore::locate`] but `None` when absent.
    pub(crate) fn try_locate(
        &self,
        space: &SpaceRecord,
        path: &RelPath,
    ) -> Result<Option<Located>, CoreError> {
        match self.locate(space, path) {
            Ok(l) => Ok(Some(l)),
            Err(CoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Resolves the parent folder of `path` for a create/replace: 409 if it is missing or a file.
    pub(crate) fn locate_parent(
        &self,
        space: &SpaceRecord,
        path: &RelPath,
    ) -> Result<(Located, Name), CoreError> {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(CoreError::PermissionDenied(
                "the space root cannot be replaced".into(),
            ));
        };
        let p = match self.locate(space, &parent) {
            Ok(p) => p,
            Err(CoreError::NotFound(_)) => {
                return Err(CoreError::Conflict(format!(
                    "the parent folder {parent} does not exist"
                )));
            }
            Err(e) => return Err(e),
        };
        if p.rec.kind != NodeKind::Dir {
            return Err(CoreError::Conflict(format!("{parent} is not a folder")));
        }
        Ok((p, name.clone()))
    }

    /// The children of a folder, reconciled with the disk.
    pub(crate) fn list_dir(
        &self,
        space: &SpaceRecord,
        dir: &Located,
        dir_path: &RelPath,
    ) -> Result<Vec<(RelPath, NodeId, NodeRecord)>, CoreError> {
        let mut on_disk = Vec::new();
        let rd = std::fs::read_dir(&dir.disk).map_err(|e| CoreError::io("listing a folder", e))?;
        for entry in rd {
            let entry = entry.map_err(|e| CoreError::io("listing a folder", e))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            // Names no client could address (e.g. with a backslash) are not served.
            if Name::new(&name).is_err() {
                continue;
            }
            let Ok(m) = entry.metadata() else { continue };
            if let Some(k) = disk_kind(&m) {
                on_disk.push((name, (k, m)));
            }
        }
        on_disk.sort_by(|a, b| a.0.cmp(&b.0));
        let consistent = self
            .store
            .read(|tx| -> Result<Option<Vec<Entry>>, CoreError> {
                let links = tx.children(dir.id)?;
                if links.len() != on_disk.len() {
                    return Ok(None);
                }
                if links
                    .iter()
                    .zip(on_disk.iter())
                    .any(|((name, _), (dname, _))| name != dname)
                {
                    return Ok(None);
                }
                let ids: Vec<NodeId> = links.iter().map(|(_, id)| *id).collect();
                let recs = tx.nodes(&ids)?;
                let mut out = Vec::with_capacity(links.len());
                for (((name, id), (_, (k, m))), rec) in
                    links.into_iter().zip(on_disk.iter()).zip(recs)
                {
                    match rec {
                        Some(rec) if matches(&rec, *k, m) => out.push((name, id, rec)),
                        _ => return Ok(None),
                    }
                }
                Ok(Some(out))
            })?;
        let entries = match consistent {
            Some(v) => v,
            None => self.store.write_lazy(|tx| -> Result<_, CoreError> {
                let mut out = Vec::with_capacity(on_disk.len());
                let mut seen = std::collections::HashSet::new();
                for (name, d) in &on_disk {
                    seen.insert(name.as_str());
                    if let Some((id, rec)) = sync_entry(tx, space.id, dir.id, name, Some(d))? {
                        out.push((name.clone(), id, rec));
                    }
                }
                for (name, _) in tx.children(dir.id)? {
                    if !seen.contains(name.as_str()) {
                        sync_entry(tx, space.id, dir.id, &name, None)?;
                    }
                }
                Ok(out)
            })?,
        };
        entries
            .into_iter()
            .map(|(name, id, rec)| Ok((dir_path.join(&Name::new(&name)?), id, rec)))
            .collect()
    }

    /// Builds the client view of a node.
    pub(crate) fn info(
        &self,
        space: &SpaceRecord,
        path: RelPath,
        id: NodeId,
        rec: &NodeRecord,
        favorite: bool,
    ) -> ResourceInfo {
        ResourceInfo {
            id: ResourceId {
                storage: self.storage_id,
                space: space.id,
                node: id,
            },
            path,
            kind: rec.kind,
            size: rec.size,
            mtime_ns: rec.mtime_ns,
            etag: rec.etag.clone(),
            checksums: rec.checksums.clone(),
            owner: space.owner,
            favorite,
        }
    }

    /// Whether `user` marked these nodes as favourites (one read transaction).
    pub(crate) fn favorite_flags(
        &self,
        user: UserId,
        ids: &[NodeId],
    ) -> Result<Vec<bool>, CoreError> {
        Ok(self.store.read(|tx| tx.favorites_among(user, ids))?)
    }

    /// The path of a node from its space root.
    pub(crate) fn path_of(&self, tx: &ReadTx, id: NodeId) -> Result<Option<RelPath>, CoreError> {
        let mut names = Vec::new();
        let mut cur = id;
        loop {
            let Some(rec) = tx.node(cur)? else {
                return Ok(None);
            };
            match rec.parent {
                None => break,
                Some(p) => {
                    names.push(rec.name);
                    cur = p;
                }
            }
            if names.len() > 10_000 {
                return Err(CoreError::Internal("parent chain too deep (cycle?)".into()));
            }
        }
        names.reverse();
        Ok(Some(RelPath::from_decoded(&names.join("/"))?))
    }

    /// Reconciles a whole space with the disk (the background scan): every folder is listed.
    pub fn scan_space(&self, space: &SpaceRecord) -> Result<usize, CoreError> {
        let root = self.locate(space, &RelPath::root())?;
        let mut stack = vec![(RelPath::root(), root)];
        let mut folders = 0;
        while let Some((path, dir)) = stack.pop() {
            folders += 1;
            let children = match self.list_dir(space, &dir, &path) {
                Ok(c) => c,
                // Removed (on disk or by a request) since its parent was listed: the next scan
                // of the parent reconciles it. Not a reason to fail the whole scan.
                Err(CoreError::NotFound(_)) if !path.is_root() => continue,
                Err(e) => return Err(e),
            };
            for (p, id, rec) in children {
                if rec.kind == NodeKind::Dir {
                    let disk = self.disk_path(space, &p);
                    stack.push((p, super::tree::Located { id, rec, disk }));
                }
            }
        }
        Ok(folders)
    }
}

fn not_found(path: &RelPath) -> CoreError {
    CoreError::NotFound(format!("{path} does not exist"))
}

enum Walk {
    Found(Box<Located>),
    Missing,
    NeedsFix,
}

fn root_record(tx: &ReadTx, space: &SpaceRecord) -> Result<Option<NodeRecord>, CoreError> {
    Ok(tx.node(NodeId(space.id.0))?)
}

fn walk_readonly(
    tx: &ReadTx,
    fs: &FileStore,
    space: &SpaceRecord,
    path: &RelPath,
) -> Result<Walk, CoreError> {
    let Some(mut rec) = root_record(tx, space)? else {
        return Ok(Walk::NeedsFix);
    };
    let mut id = NodeId(space.id.0);
    let mut disk = fs.space_dir(space);
    for name in path.names() {
        disk.push(name.as_str());
        let probe = probe(&disk)?;
        let child = tx.child(id, name.as_str())?;
        match (child, probe) {
            (None, None) => return Ok(Walk::Missing),
            (None, Some(_)) | (Some(_), None) => return Ok(Walk::NeedsFix),
            (Some(c), Some((k, m))) => match tx.node(c)? {
                Some(r) if matches(&r, k, &m) => {
                    id = c;
                    rec = r;
                }
                _ => return Ok(Walk::NeedsFix),
            },
        }
    }
    Ok(Walk::Found(Box::new(Located { id, rec, disk })))
}

/// One step of a read-only walk: `name` in the folder `parent`.
fn walk_step(tx: &ReadTx, parent: &Located, name: &str) -> Result<Walk, CoreError> {
    if parent.rec.kind != NodeKind::Dir {
        return Ok(Walk::Missing);
    }
    let disk = parent.disk.join(name);
    let probe = probe(&disk)?;
    let child = tx.child(parent.id, name)?;
    match (child, probe) {
        (None, None) => Ok(Walk::Missing),
        (None, Some(_)) | (Some(_), None) => Ok(Walk::NeedsFix),
        (Some(c), Some((k, m))) => match tx.node(c)? {
            Some(r) if matches(&r, k, &m) => Ok(Walk::Found(Box::new(Located {
                id: c,
                rec: r,
                disk,
            }))),
            _ => Ok(Walk::NeedsFix),
        },
    }
}

fn walk_fixing(
    tx: &WriteTx,
    fs: &FileStore,
    space: &SpaceRecord,
    path: &RelPath,
) -> Result<Option<Located>, CoreError> {
    let root = NodeId(space.id.0);
    let mut rec = match tx.node(root)? {
        Some(r) => r,
        None => {
            let r = NodeRecord {
                space: space.id,
                parent: None,
                name: String::new(),
                kind: NodeKind::Dir,
                size: 0,
                mtime_ns: now_ns(),
                etag: new_etag(),
                checksums: None,
                disk_mtime_ns: 0,
                disk_size: 0,
            };
            std::fs::create_dir_all(fs.space_dir(space))
                .map_err(|e| CoreError::io("creating the space folder", e))?;
            tx.put_node(root, &r)?;
            r
        }
    };
    let mut id = root;
    let mut disk = fs.space_dir(space);
    for name in path.names() {
        if rec.kind != NodeKind::Dir {
            return Ok(None);
        }
        disk.push(name.as_str());
        let probe = probe(&disk)?;
        match sync_entry(tx, space.id, id, name.as_str(), probe.as_ref())? {
            Some((c, r)) => {
                id = c;
                rec = r;
            }
            None => return Ok(None),
        }
    }
    Ok(Some(Located { id, rec, disk }))
}
