//! Every redb table Hearth uses, in one place, with the schema version. A change to a table's key
//! or value layout bumps [`SCHEMA_VERSION`] and adds a step to `migrate.rs`.
//!
//! Values are records encoded by `records::encode` (a version byte, then JSON), so a record can
//! gain fields without a migration.

use redb::TableDefinition;

/// The layout version this build writes. (Still 1 after `UPLOADS` and `APP_PASSWORDS` were added: a
/// new table changes no existing layout, and `create_tables` creates it in older databases on open.)
pub const SCHEMA_VERSION: u32 = 1;

/// `key -> bytes`: `schema_version` (u32 LE), `storage_id` (16 bytes).
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// `username -> UserRecord`.
pub const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// `user id -> username` (index).
pub const USER_IDS: TableDefinition<u128, &str> = TableDefinition::new("user_ids");
/// `group name -> GroupRecord`.
pub const GROUPS: TableDefinition<&str, &[u8]> = TableDefinition::new("groups");
/// `space id -> SpaceRecord`.
pub const SPACES: TableDefinition<u128, &[u8]> = TableDefinition::new("spaces");
/// `node id -> NodeRecord` (files and folders; a space root's node id equals the space id).
pub const NODES: TableDefinition<u128, &[u8]> = TableDefinition::new("nodes");
/// `(parent node id, name) -> child node id`.
pub const CHILDREN: TableDefinition<(u128, &str), u128> = TableDefinition::new("children");
/// `(node id, property in Clark notation) -> XML fragment` (WebDAV dead properties).
pub const PROPS: TableDefinition<(u128, &str), &str> = TableDefinition::new("props");
/// `(user id, node id) -> ()` favourites.
pub const FAVORITES: TableDefinition<(u128, u128), ()> = TableDefinition::new("favorites");
/// `lock token -> LockRecord` (WebDAV write locks).
pub const LOCKS: TableDefinition<&str, &[u8]> = TableDefinition::new("locks");
/// `(space id, trash key) -> TrashRecord`.
pub const TRASH: TableDefinition<(u128, &str), &[u8]> = TableDefinition::new("trash");
/// `(node id, version key) -> VersionRecord`.
pub const VERSIONS: TableDefinition<(u128, u64), &[u8]> = TableDefinition::new("versions");
/// `upload id -> UploadRecord` (TUS resumable uploads in progress).
pub const UPLOADS: TableDefinition<&str, &[u8]> = TableDefinition::new("uploads");
/// `(user id, app password id) -> AppPasswordRecord` (per-device passwords for Basic-auth clients;
/// the id is the password's first group, kept in clear as a lookup key, see `AppPasswordRecord`).
pub const APP_PASSWORDS: TableDefinition<(u128, &str), &[u8]> =
    TableDefinition::new("app_passwords");
/// `hex SHA-256 of an OIDC refresh token -> RefreshTokenRecord` (the token itself is never stored).
pub const OIDC_REFRESH: TableDefinition<&str, &[u8]> = TableDefinition::new("oidc_refresh");
/// `OIDC grant family id -> unix seconds until which it stays listed` (revoked families: their
/// access and refresh tokens are refused).
pub const OIDC_REVOKED: TableDefinition<&str, i64> = TableDefinition::new("oidc_revoked");
