//! Arbitrary metadata (WebDAV dead properties), favourites and quota.

use super::{FileStore, Quota, ResourceInfo};
use crate::CoreError;
use crate::auth::Principal;
use hearth_store::SpaceRecord;
use hearth_types::{RelPath, SpaceId};

impl FileStore {
    /// The dead properties of many nodes at once (one read transaction), in the order given.
    pub fn dead_properties(
        &self,
        ids: &[hearth_types::NodeId],
    ) -> Result<Vec<Vec<(String, String)>>, CoreError> {
        Ok(self.store.read(|tx| tx.props_many(ids))?)
    }

    pub(crate) fn properties_impl(
        &self,
        space: &SpaceRecord,
        path: &RelPath,
    ) -> Result<Vec<(String, String)>, CoreError> {
        let loc = self.locate(space, path)?;
        Ok(self.store.read(|tx| tx.props(loc.id))?)
    }

    pub(crate) fn patch_impl(
        &self,
        space: &SpaceRecord,
        path: &RelPath,
        ops: &[(String, Option<String>)],
    ) -> Result<(), CoreError> {
        let loc = self.locate(space, path)?;
        self.store.write(|tx| -> Result<(), CoreError> {
            for (name, value) in ops {
                match value {
                    Some(v) => tx.put_prop(loc.id, name, v)?,
                    None => tx.remove_prop(loc.id, name)?,
                }
            }
            Ok(())
        })
    }

    pub(crate) fn set_favorite_impl(
        &self,
        who: &Principal,
        space: &SpaceRecord,
        path: &RelPath,
        on: bool,
    ) -> Result<(), CoreError> {
        let loc = self.locate(space, path)?;
        self.store.write(|tx| tx.set_favorite(who.id, loc.id, on))?;
        Ok(())
    }

    pub(crate) fn favorites_impl(
        &self,
        who: &Principal,
    ) -> Result<Vec<(SpaceId, ResourceInfo)>, CoreError> {
        let found = self.store.read(|tx| -> Result<Vec<_>, CoreError> {
            let mut out = Vec::new();
            for id in tx.favorites(who.id)? {
                let Some(rec) = tx.node(id)? else { continue };
                let Some(space) = tx.space(rec.space)? else {
                    continue;
                };
                let Some(path) = self.path_of(tx, id)? else {
                    continue;
                };
                out.push((space, path, id, rec));
            }
            Ok(out)
        })?;
        Ok(found
            .into_iter()
            .filter(|(space, ..)| space.owner == Some(who.id))
            .map(|(space, path, id, rec)| (space.id, self.info(&space, path, id, &rec, true)))
            .collect())
    }

    pub(crate) fn quota_impl(&self, space: &SpaceRecord) -> Result<Quota, CoreError> {
        self.store.read(|tx| self.quota_in(tx, space))
    }

    /// The quota of a space inside a read transaction.
    pub(crate) fn quota_in(
        &self,
        tx: &hearth_store::ReadTx,
        space: &SpaceRecord,
    ) -> Result<Quota, CoreError> {
        let used = tx
            .node(hearth_types::NodeId(space.id.0))?
            .map_or(0, |r| r.size);
        let user_quota = match space.owner {
            Some(owner) => match tx.username_of(owner)? {
                Some(name) => tx.user(&name)?.and_then(|u| u.quota),
                None => None,
            },
            None => None,
        };
        Ok(Quota {
            used,
            total: user_quota.or(self.opts.default_quota),
        })
    }
}
