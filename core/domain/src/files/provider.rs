//! [`StorageProvider`] for [`FileStore`]: access checks, then the operation.

use super::{
    FileStore, MoveOutcome, PutOptions, Quota, ResourceInfo, StorageProvider, TrashRecord, Upload,
    VersionRecord,
};
use crate::CoreError;
use crate::auth::Principal;
use hearth_types::{NodeId, RelPath, ResourceId, SpaceId, UserId};

impl StorageProvider for FileStore {
    fn personal_space(&self, user: UserId) -> Result<SpaceId, CoreError> {
        let id = SpaceId(user.0);
        match self.store.read(|tx| tx.space(id))? {
            Some(_) => Ok(id),
            None => Err(CoreError::NotFound("the user has no personal space".into())),
        }
    }

    fn stat(
        &self,
        who: &Principal,
        space: SpaceId,
        path: &RelPath,
    ) -> Result<ResourceInfo, CoreError> {
        let (space, loc) = self.space_and_locate(who, space, path)?;
        let loc = loc.ok_or_else(|| CoreError::NotFound(format!("{path} does not exist")))?;
        let fav = self
            .favorite_flags(who.id, &[loc.id])?
            .first()
            .copied()
            .unwrap_or(false);
        Ok(self.info(&space, path.clone(), loc.id, &loc.rec, fav))
    }

    fn list(
        &self,
        who: &Principal,
        space: SpaceId,
        path: &RelPath,
    ) -> Result<Vec<ResourceInfo>, CoreError> {
        let space = self.space_for(who, space)?;
        let dir = self.locate(&space, path)?;
        if dir.rec.kind != hearth_store::NodeKind::Dir {
            return Err(CoreError::Conflict(format!("{path} is not a folder")));
        }
        let entries = self.list_dir(&space, &dir, path)?;
        let ids: Vec<NodeId> = entries.iter().map(|(_, id, _)| *id).collect();
        let favs = self.favorite_flags(who.id, &ids)?;
        Ok(entries
            .into_iter()
            .zip(favs)
            .map(|((p, id, rec), fav)| self.info(&space, p, id, &rec, fav))
            .collect())
    }

    fn mkdir(
        &self,
        who: &Principal,
        space: SpaceId,
        path: &RelPath,
    ) -> Result<ResourceInfo, CoreError> {
        let space = self.space_for(who, space)?;
        self.mkdir_impl(&space, path)
    }

    fn delete(&self, who: &Principal, space: SpaceId, path: &RelPath) -> Result<(), CoreError> {
        let space = self.space_for(who, space)?;
        self.delete_impl(&space, path)
    }

    fn move_to(
        &self,
        who: &Principal,
        space: SpaceId,
        from: &RelPath,
        to: &RelPath,
        overwrite: bool,
    ) -> Result<MoveOutcome, CoreError> {
        let space = self.space_for(who, space)?;
        self.move_impl(&space, from, to, overwrite)
    }

    fn copy_to(
        &self,
        who: &Principal,
        space: SpaceId,
        from: &RelPath,
        to: &RelPath,
        overwrite: bool,
        recursive: bool,
    ) -> Result<MoveOutcome, CoreError> {
        let space = self.space_for(who, space)?;
        self.copy_impl(&space, from, to, overwrite, recursive)
    }

    fn begin_upload(&self) -> Result<Upload, CoreError> {
        self.begin_upload_impl()
    }

    fn finish_upload(
        &self,
        who: &Principal,
        space: SpaceId,
        path: &RelPath,
        upload: Upload,
        opts: &PutOptions,
    ) -> Result<(ResourceInfo, bool), CoreError> {
        self.stage_upload(who, space, path, upload, opts)?.wait()
    }

    fn open_read(
        &self,
        who: &Principal,
        space: SpaceId,
        path: &RelPath,
    ) -> Result<(ResourceInfo, Option<std::fs::File>), CoreError> {
        use std::os::unix::fs::OpenOptionsExt;
        let (space, loc) = self.space_and_locate(who, space, path)?;
        let loc = loc.ok_or_else(|| CoreError::NotFound(format!("{path} does not exist")))?;
        let info = self.info(&space, path.clone(), loc.id, &loc.rec, false);
        if loc.rec.kind == hearth_store::NodeKind::Dir {
            return Ok((info, None));
        }
        let file = std::fs::File::options()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&loc.disk)
            .map_err(|e| CoreError::io("opening a file", e))?;
        Ok((info, Some(file)))
    }

    fn quota(&self, who: &Principal, space: SpaceId) -> Result<Quota, CoreError> {
        let space = self.space_for(who, space)?;
        self.quota_impl(&space)
    }

    fn properties(
        &self,
        who: &Principal,
        space: SpaceId,
        path: &RelPath,
    ) -> Result<Vec<(String, String)>, CoreError> {
        let space = self.space_for(who, space)?;
        self.properties_impl(&space, path)
    }

    fn patch_properties(
        &self,
        who: &Principal,
        space: SpaceId,
        path: &RelPath,
        ops: &[(String, Option<String>)],
    ) -> Result<(), CoreError> {
        let space = self.space_for(who, space)?;
        self.patch_impl(&space, path, ops)
    }

    fn set_favorite(
        &self,
        who: &Principal,
        space: SpaceId,
        path: &RelPath,
        on: bool,
    ) -> Result<(), CoreError> {
        let space = self.space_for(who, space)?;
        self.set_favorite_impl(who, &space, path, on)
    }

    fn favorites(&self, who: &Principal) -> Result<Vec<(SpaceId, ResourceInfo)>, CoreError> {
        self.favorites_impl(who)
    }

    fn list_recycle(&self, who: &Principal, space: SpaceId) -> Result<Vec<TrashRecord>, CoreError> {
        let space = self.space_for(who, space)?;
        self.trash_of(&space)
    }

    fn restore_recycle_item(
        &self,
        who: &Principal,
        space: SpaceId,
        key: &str,
        to: &RelPath,
        overwrite: bool,
    ) -> Result<MoveOutcome, CoreError> {
        let space = self.space_for(who, space)?;
        self.restore_impl(&space, key, to, overwrite)
    }

    fn purge_recycle(
        &self,
        who: &Principal,
        space: SpaceId,
        key: Option<&str>,
    ) -> Result<(), CoreError> {
        let space = self.space_for(who, space)?;
        match key {
            Some(k) => self.purge_trash_item(&space, k),
            None => self.purge_all_impl(&space),
        }
    }

    fn stat_by_id(&self, who: &Principal, id: &ResourceId) -> Result<ResourceInfo, CoreError> {
        let space = self.space_for(who, id.space)?;
        self.resolve_id_impl(&space, id)
    }

    fn list_versions(
        &self,
        who: &Principal,
        id: &ResourceId,
    ) -> Result<(ResourceInfo, Vec<VersionRecord>), CoreError> {
        let file = self.stat_by_id(who, id)?;
        if file.is_dir() {
            return Err(CoreError::Conflict("folders have no versions".into()));
        }
        Ok((file, self.versions_of(id.node)?))
    }

    fn open_version(
        &self,
        who: &Principal,
        id: &ResourceId,
        key: u64,
    ) -> Result<(VersionRecord, std::fs::File), CoreError> {
        self.stat_by_id(who, id)?;
        self.open_version_impl(id.node, key)
    }

    fn restore_version(
        &self,
        who: &Principal,
        id: &ResourceId,
        key: u64,
    ) -> Result<ResourceInfo, CoreError> {
        let space = self.space_for(who, id.space)?;
        let file = self.resolve_id_impl(&space, id)?;
        self.restore_version_impl(who, &space, &file, key)
    }
}
