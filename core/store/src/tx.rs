//! Typed access to the tables of `schema.rs` inside read and write transactions.

use crate::records::{decode, encode};
use crate::schema::*;
use crate::{
    AppPasswordRecord, LockRecord, NodeRecord, RefreshTokenRecord, SpaceRecord, StoreError,
    TrashRecord, UploadRecord, UserRecord, VersionRecord,
};
use hearth_types::{NodeId, SpaceId, UserId};
use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};

type R<T> = Result<T, StoreError>;

fn id(n: &NodeId) -> u128 {
    n.0.as_u128()
}
fn nid(v: u128) -> NodeId {
    NodeId(uuid::Uuid::from_u128(v))
}

/// A read-only snapshot.
pub struct ReadTx {
    txn: ReadTransaction,
}

/// A write transaction; committed by [`crate::Store::write`] when its closure succeeds.
pub struct WriteTx {
    txn: WriteTransaction,
}

impl ReadTx {
    pub(crate) fn new(txn: ReadTransaction) -> Self {
        Self { txn }
    }
}

impl WriteTx {
    pub(crate) fn new(txn: WriteTransaction) -> Self {
        Self { txn }
    }
    pub(crate) fn into_inner(self) -> WriteTransaction {
        self.txn
    }
}

/// Read helpers shared by both transaction kinds, written once over `ReadableTable`.
mod read {
    use super::*;

    pub(super) fn bytes<'k, K: redb::Key + 'static>(
        t: &impl ReadableTable<K, &'static [u8]>,
        key: impl std::borrow::Borrow<K::SelfType<'k>>,
    ) -> R<Option<Vec<u8>>> {
        Ok(t.get(key)?.map(|g| g.value().to_vec()))
    }

    pub(super) fn children(
        t: &impl ReadableTable<(u128, &'static str), u128>,
        parent: u128,
    ) -> R<Vec<(String, NodeId)>> {
        let mut out = Vec::new();
        for item in t.range((parent, "")..)? {
            let (k, v) = item?;
            let (p, name) = k.value();
            if p != parent {
                break;
            }
            out.push((name.to_owned(), nid(v.value())));
        }
        Ok(out)
    }

    pub(super) fn props(
        t: &impl ReadableTable<(u128, &'static str), &'static str>,
        node: u128,
    ) -> R<Vec<(String, String)>> {
        let mut out = Vec::new();
        for item in t.range((node, "")..)? {
            let (k, v) = item?;
            let (n, name) = k.value();
            if n != node {
                break;
            }
            out.push((name.to_owned(), v.value().to_owned()));
        }
        Ok(out)
    }

    pub(super) fn all<T: serde::de::DeserializeOwned, K: redb::Key + 'static>(
        name: &'static str,
        t: &impl ReadableTable<K, &'static [u8]>,
    ) -> R<Vec<T>> {
        let mut out = Vec::new();
        for item in t.iter()? {
            let (_, v) = item?;
            out.push(decode(name, v.value())?);
        }
        Ok(out)
    }

    pub(super) fn trash(
        t: &impl ReadableTable<(u128, &'static str), &'static [u8]>,
        space: u128,
    ) -> R<Vec<TrashRecord>> {
        let mut out = Vec::new();
        for item in t.range((space, "")..)? {
            let (k, v) = item?;
            if k.value().0 != space {
                break;
            }
            out.push(decode("trash", v.value())?);
        }
        Ok(out)
    }

    pub(super) fn versions(
        t: &impl ReadableTable<(u128, u64), &'static [u8]>,
        node: u128,
    ) -> R<Vec<VersionRecord>> {
        let mut out = Vec::new();
        for item in t.range((node, 0u64)..=(node, u64::MAX))? {
            let (_, v) = item?;
            out.push(decode("versions", v.value())?);
        }
        Ok(out)
    }

    pub(super) fn app_passwords(
        t: &impl ReadableTable<(u128, &'static str), &'static [u8]>,
        user: u128,
    ) -> R<Vec<AppPasswordRecord>> {
        let mut out = Vec::new();
        for item in t.range((user, "")..)? {
            let (k, v) = item?;
            if k.value().0 != user {
                break;
            }
            out.push(decode("app_passwords", v.value())?);
        }
        Ok(out)
    }

    pub(super) fn favorites(
        t: &impl ReadableTable<(u128, u128), ()>,
        user: u128,
    ) -> R<Vec<NodeId>> {
        let mut out = Vec::new();
        for item in t.range((user, 0u128)..=(user, u128::MAX))? {
            let (k, _) = item?;
            out.push(nid(k.value().1));
        }
        Ok(out)
    }
}

/// Generates the read methods on a transaction type; `$open` opens a table for reading.
macro_rules! read_methods {
    ($ty:ty) => {
        impl $ty {
            fn open<K: redb::Key + 'static, V: redb::Value + 'static>(
                &self,
                def: TableDefinition<K, V>,
            ) -> R<impl ReadableTable<K, V> + '_> {
                Ok(self.txn.open_table(def)?)
            }

            /// A value from the meta table.
            pub fn meta(&self, key: &str) -> R<Option<Vec<u8>>> {
                read::bytes(&self.open(META)?, key)
            }
            /// An account by login name.
            pub fn user(&self, username: &str) -> R<Option<UserRecord>> {
                read::bytes(&self.open(USERS)?, username)?
                    .map(|b| decode("users", &b))
                    .transpose()
            }
            /// A login name by user id.
            pub fn username_of(&self, user: UserId) -> R<Option<String>> {
                Ok(self
                    .open(USER_IDS)?
                    .get(user.0.as_u128())?
                    .map(|g| g.value().to_owned()))
            }
            /// All accounts, ordered by login name.
            pub fn users(&self) -> R<Vec<UserRecord>> {
                read::all("users", &self.open(USERS)?)
            }
            /// A space.
            pub fn space(&self, space: SpaceId) -> R<Option<SpaceRecord>> {
                read::bytes(&self.open(SPACES)?, space.0.as_u128())?
                    .map(|b| decode("spaces", &b))
                    .transpose()
            }
            /// All spaces.
            pub fn spaces(&self) -> R<Vec<SpaceRecord>> {
                read::all("spaces", &self.open(SPACES)?)
            }
            /// A node.
            pub fn node(&self, node: NodeId) -> R<Option<NodeRecord>> {
                read::bytes(&self.open(NODES)?, id(&node))?
                    .map(|b| decode("nodes", &b))
                    .transpose()
            }
            /// Many nodes at once (one table open), in the order given.
            pub fn nodes(&self, ids: &[NodeId]) -> R<Vec<Option<NodeRecord>>> {
                let t = self.open(NODES)?;
                ids.iter()
                    .map(|n| {
                        read::bytes(&t, id(n))?
                            .map(|b| decode("nodes", &b))
                            .transpose()
                    })
                    .collect()
            }
            /// Whether `user` marked each of `ids` as a favourite.
            pub fn favorites_among(&self, user: UserId, ids: &[NodeId]) -> R<Vec<bool>> {
                let t = self.open(FAVORITES)?;
                ids.iter()
                    .map(|n| Ok(t.get((user.0.as_u128(), id(n)))?.is_some()))
                    .collect()
            }
            /// The dead properties of many nodes at once, in the order given.
            pub fn props_many(&self, ids: &[NodeId]) -> R<Vec<Vec<(String, String)>>> {
                let t = self.open(PROPS)?;
                ids.iter().map(|n| read::props(&t, id(n))).collect()
            }
            /// The child of `parent` called `name`.
            pub fn child(&self, parent: NodeId, name: &str) -> R<Option<NodeId>> {
                Ok(self
                    .open(CHILDREN)?
                    .get((id(&parent), name))?
                    .map(|g| nid(g.value())))
            }
            /// All children of `parent`, ordered by name (bytewise).
            pub fn children(&self, parent: NodeId) -> R<Vec<(String, NodeId)>> {
                read::children(&self.open(CHILDREN)?, id(&parent))
            }
            /// The dead properties of a node: (Clark name, XML fragment).
            pub fn props(&self, node: NodeId) -> R<Vec<(String, String)>> {
                read::props(&self.open(PROPS)?, id(&node))
            }
            /// Whether `user` marked `node` as a favourite.
            pub fn is_favorite(&self, user: UserId, node: NodeId) -> R<bool> {
                Ok(self
                    .open(FAVORITES)?
                    .get((user.0.as_u128(), id(&node)))?
                    .is_some())
            }
            /// All favourites of `user`.
            pub fn favorites(&self, user: UserId) -> R<Vec<NodeId>> {
                read::favorites(&self.open(FAVORITES)?, user.0.as_u128())
            }
            /// Every lock.
            pub fn locks(&self) -> R<Vec<LockRecord>> {
                read::all("locks", &self.open(LOCKS)?)
            }
            /// The trash items of a space.
            pub fn trash(&self, space: SpaceId) -> R<Vec<TrashRecord>> {
                read::trash(&self.open(TRASH)?, space.0.as_u128())
            }
            /// One trash item.
            pub fn trash_item(&self, space: SpaceId, key: &str) -> R<Option<TrashRecord>> {
                read::bytes(&self.open(TRASH)?, (space.0.as_u128(), key))?
                    .map(|b| decode("trash", &b))
                    .transpose()
            }
            /// The versions of a file, oldest first.
            pub fn versions(&self, node: NodeId) -> R<Vec<VersionRecord>> {
                read::versions(&self.open(VERSIONS)?, id(&node))
            }
            /// A resumable upload.
            pub fn upload(&self, upload: &str) -> R<Option<UploadRecord>> {
                read::bytes(&self.open(UPLOADS)?, upload)?
                    .map(|b| decode("uploads", &b))
                    .transpose()
            }
            /// Every resumable upload.
            pub fn uploads(&self) -> R<Vec<UploadRecord>> {
                read::all("uploads", &self.open(UPLOADS)?)
            }
            /// One app password of `user`.
            pub fn app_password(&self, user: UserId, id: &str) -> R<Option<AppPasswordRecord>> {
                read::bytes(&self.open(APP_PASSWORDS)?, (user.0.as_u128(), id))?
                    .map(|b| decode("app_passwords", &b))
                    .transpose()
            }
            /// The app passwords of `user`, ordered by id.
            pub fn app_passwords(&self, user: UserId) -> R<Vec<AppPasswordRecord>> {
                read::app_passwords(&self.open(APP_PASSWORDS)?, user.0.as_u128())
            }
            /// An OIDC refresh token by the hex SHA-256 of the token.
            pub fn refresh_token(&self, hash: &str) -> R<Option<RefreshTokenRecord>> {
                read::bytes(&self.open(OIDC_REFRESH)?, hash)?
                    .map(|b| decode("oidc_refresh", &b))
                    .transpose()
            }
            /// Every revoked OIDC grant family with the time until which it is kept.
            pub fn revoked_families(&self) -> R<Vec<(String, i64)>> {
                let mut out = Vec::new();
                for item in self.open(OIDC_REVOKED)?.iter()? {
                    let (k, v) = item?;
                    out.push((k.value().to_owned(), v.value()));
                }
                Ok(out)
            }
        }
    };
}

read_methods!(ReadTx);
read_methods!(WriteTx);

impl WriteTx {
    /// Sets a value in the meta table.
    pub fn put_meta(&self, key: &str, value: &[u8]) -> R<()> {
        self.txn.open_table(META)?.insert(key, value)?;
        Ok(())
    }
    /// Inserts or replaces an account (and its id index).
    pub fn put_user(&self, u: &UserRecord) -> R<()> {
        self.txn
            .open_table(USERS)?
            .insert(u.username.as_str(), encode(u).as_slice())?;
        self.txn
            .open_table(USER_IDS)?
            .insert(u.id.0.as_u128(), u.username.as_str())?;
        Ok(())
    }
    /// Removes an account.
    pub fn remove_user(&self, u: &UserRecord) -> R<()> {
        self.txn.open_table(USERS)?.remove(u.username.as_str())?;
        self.txn.open_table(USER_IDS)?.remove(u.id.0.as_u128())?;
        Ok(())
    }
    /// Inserts or replaces a space.
    pub fn put_space(&self, s: &SpaceRecord) -> R<()> {
        self.txn
            .open_table(SPACES)?
            .insert(s.id.0.as_u128(), encode(s).as_slice())?;
        Ok(())
    }
    /// Removes a space record.
    pub fn remove_space(&self, s: SpaceId) -> R<()> {
        self.txn.open_table(SPACES)?.remove(s.0.as_u128())?;
        Ok(())
    }
    /// Inserts or replaces a node.
    pub fn put_node(&self, node: NodeId, rec: &NodeRecord) -> R<()> {
        self.txn
            .open_table(NODES)?
            .insert(id(&node), encode(rec).as_slice())?;
        Ok(())
    }
    /// Removes a node record with its dead properties (not its children links).
    pub fn remove_node(&self, node: NodeId) -> R<()> {
        self.txn.open_table(NODES)?.remove(id(&node))?;
        let props: Vec<String> = self.props(node)?.into_iter().map(|(k, _)| k).collect();
        let mut t = self.txn.open_table(PROPS)?;
        for k in &props {
            t.remove((id(&node), k.as_str()))?;
        }
        Ok(())
    }
    /// Links `child` under `parent` as `name`.
    pub fn put_child(&self, parent: NodeId, name: &str, child: NodeId) -> R<()> {
        self.txn
            .open_table(CHILDREN)?
            .insert((id(&parent), name), id(&child))?;
        Ok(())
    }
    /// Unlinks `name` from `parent`.
    pub fn remove_child(&self, parent: NodeId, name: &str) -> R<()> {
        self.txn.open_table(CHILDREN)?.remove((id(&parent), name))?;
        Ok(())
    }
    /// Sets a dead property.
    pub fn put_prop(&self, node: NodeId, clark: &str, xml: &str) -> R<()> {
        self.txn
            .open_table(PROPS)?
            .insert((id(&node), clark), xml)?;
        Ok(())
    }
    /// Removes a dead property.
    pub fn remove_prop(&self, node: NodeId, clark: &str) -> R<()> {
        self.txn.open_table(PROPS)?.remove((id(&node), clark))?;
        Ok(())
    }
    /// Marks or unmarks a favourite.
    pub fn set_favorite(&self, user: UserId, node: NodeId, on: bool) -> R<()> {
        let mut t = self.txn.open_table(FAVORITES)?;
        if on {
            t.insert((user.0.as_u128(), id(&node)), ())?;
        } else {
            t.remove((user.0.as_u128(), id(&node)))?;
        }
        Ok(())
    }
    /// Inserts or replaces a lock.
    pub fn put_lock(&self, l: &LockRecord) -> R<()> {
        self.txn
            .open_table(LOCKS)?
            .insert(l.token.as_str(), encode(l).as_slice())?;
        Ok(())
    }
    /// Removes a lock.
    pub fn remove_lock(&self, token: &str) -> R<()> {
        self.txn.open_table(LOCKS)?.remove(token)?;
        Ok(())
    }
    /// Inserts a trash item.
    pub fn put_trash(&self, space: SpaceId, t: &TrashRecord) -> R<()> {
        self.txn
            .open_table(TRASH)?
            .insert((space.0.as_u128(), t.key.as_str()), encode(t).as_slice())?;
        Ok(())
    }
    /// Removes a trash item.
    pub fn remove_trash(&self, space: SpaceId, key: &str) -> R<()> {
        self.txn
            .open_table(TRASH)?
            .remove((space.0.as_u128(), key))?;
        Ok(())
    }
    /// Inserts a version.
    pub fn put_version(&self, node: NodeId, v: &VersionRecord) -> R<()> {
        self.txn
            .open_table(VERSIONS)?
            .insert((id(&node), v.key), encode(v).as_slice())?;
        Ok(())
    }
    /// Removes a version.
    pub fn remove_version(&self, node: NodeId, key: u64) -> R<()> {
        self.txn.open_table(VERSIONS)?.remove((id(&node), key))?;
        Ok(())
    }
    /// Inserts or replaces a resumable upload.
    pub fn put_upload(&self, u: &UploadRecord) -> R<()> {
        self.txn
            .open_table(UPLOADS)?
            .insert(u.id.as_str(), encode(u).as_slice())?;
        Ok(())
    }
    /// Removes a resumable upload.
    pub fn remove_upload(&self, upload: &str) -> R<()> {
        self.txn.open_table(UPLOADS)?.remove(upload)?;
        Ok(())
    }
    /// Inserts or replaces an app password.
    pub fn put_app_password(&self, p: &AppPasswordRecord) -> R<()> {
        self.txn
            .open_table(APP_PASSWORDS)?
            .insert((p.user.0.as_u128(), p.id.as_str()), encode(p).as_slice())?;
        Ok(())
    }
    /// Removes an app password; whether it existed.
    pub fn remove_app_password(&self, user: UserId, id: &str) -> R<bool> {
        Ok(self
            .txn
            .open_table(APP_PASSWORDS)?
            .remove((user.0.as_u128(), id))?
            .is_some())
    }
    /// Inserts or replaces an OIDC refresh token (keyed by the hex SHA-256 of the token).
    pub fn put_refresh_token(&self, hash: &str, r: &RefreshTokenRecord) -> R<()> {
        self.txn
            .open_table(OIDC_REFRESH)?
            .insert(hash, encode(r).as_slice())?;
        Ok(())
    }
    /// Removes what has expired by `now` (unix seconds): revoked grant families past their
    /// listing time and refresh tokens past their expiry. Returns (families, tokens) removed.
    pub fn prune_oidc(&self, now: i64) -> R<(usize, usize)> {
        let mut families = 0;
        self.txn.open_table(OIDC_REVOKED)?.retain(|_, until| {
            let keep = until > now;
            families += usize::from(!keep);
            keep
        })?;
        let mut tokens = 0;
        self.txn.open_table(OIDC_REFRESH)?.retain(|_, bytes| {
            // A record that does not decode is kept (never silently dropped).
            let keep = decode::<RefreshTokenRecord>("oidc_refresh", bytes)
                .map(|r| r.expires > now)
                .unwrap_or(true);
            tokens += usize::from(!keep);
            keep
        })?;
        Ok((families, tokens))
    }
    /// Removes every refresh token of a grant family; how many there were.
    pub fn remove_refresh_family(&self, family: &str) -> R<usize> {
        let mut removed = 0;
        self.txn.open_table(OIDC_REFRESH)?.retain(|_, bytes| {
            let keep = decode::<RefreshTokenRecord>("oidc_refresh", bytes)
                .map(|r| r.family != family)
                .unwrap_or(true);
            removed += usize::from(!keep);
            keep
        })?;
        Ok(removed)
    }
    /// Marks an OIDC grant family revoked until `until` (unix seconds).
    pub fn put_revoked_family(&self, family: &str, until: i64) -> R<()> {
        self.txn.open_table(OIDC_REVOKED)?.insert(family, until)?;
        Ok(())
    }
    /// Creates every table of the schema (so read transactions can open them).
    pub(crate) fn create_tables(&self) -> R<()> {
        self.txn.open_table(META)?;
        self.txn.open_table(USERS)?;
        self.txn.open_table(USER_IDS)?;
        self.txn.open_table(GROUPS)?;
        self.txn.open_table(SPACES)?;
        self.txn.open_table(NODES)?;
        self.txn.open_table(CHILDREN)?;
        self.txn.open_table(PROPS)?;
        self.txn.open_table(FAVORITES)?;
        self.txn.open_table(LOCKS)?;
        self.txn.open_table(TRASH)?;
        self.txn.open_table(VERSIONS)?;
        self.txn.open_table(UPLOADS)?;
        self.txn.open_table(APP_PASSWORDS)?;
        self.txn.open_table(OIDC_REFRESH)?;
        self.txn.open_table(OIDC_REVOKED)?;
        Ok(())
    }
}
