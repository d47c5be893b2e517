//! The records kept in the tables of `schema.rs`, and their encoding: one version byte, then JSON.
//! Records are storage models only; protocol adapters never serialise them to clients.

use crate::StoreError;
use hearth_types::{NodeId, SpaceId, UserId};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// Current record encoding version.
const RECORD_V1: u8 = 1;

/// Encodes a record.
pub(crate) fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = vec![RECORD_V1];
    // Serialising plain structs of strings and numbers into a Vec cannot fail.
    if serde_json::to_writer(&mut out, v).is_err() {
        out.truncate(1);
    }
    out
}

/// Decodes a record written by [`encode`].
pub(crate) fn decode<T: DeserializeOwned>(
    table: &'static str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&RECORD_V1, json)) => serde_json::from_slice(json).map_err(|e| StoreError::Corrupt {
            table,
            detail: e.to_string(),
        }),
        Some((v, _)) => Err(StoreError::Corrupt {
            table,
            detail: format!("unknown record version {v}"),
        }),
        None => Err(StoreError::Corrupt {
            table,
            detail: "empty record".into(),
        }),
    }
}

/// An account.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserRecord {
    /// Stable id.
    pub id: UserId,
    /// Login name; also the path segment in `/remote.php/dav/files/<username>/`.
    pub username: String,
    /// Shown in clients.
    pub display_name: String,
    /// Optional e-mail address.
    #[serde(default)]
    pub email: Option<String>,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Bytes the user may store; `None` = the server default.
    #[serde(default)]
    pub quota: Option<u64>,
    /// Unix seconds.
    pub created: i64,
    /// Whether the account may administer the server.
    #[serde(default)]
    pub admin: bool,
}

/// An app password: a random per-device password for Basic-auth clients, shown once at creation.
///
/// The password is `ggggg-xxxxx-xxxxx-xxxxx-xxxxx-xxxxx` (30 characters from a 32-letter alphabet,
/// 150 random bits). The first group (`id`, 25 bits) is not secret: it is the lookup key, so a
/// Basic login costs one argon2 run however many app passwords the user has. `hash` is the argon2id
/// PHC string of the whole password without dashes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AppPasswordRecord {
    /// The first group of the password (unique per user).
    pub id: String,
    /// The owner.
    pub user: UserId,
    /// What the user called it (e.g. "laptop rclone").
    pub name: String,
    /// Argon2id PHC string of the password (dashes removed).
    pub hash: String,
    /// Unix seconds.
    pub created: i64,
    /// Unix seconds of the last successful login with it (updated at most once a minute).
    #[serde(default)]
    pub last_used: Option<i64>,
}

/// An OIDC refresh token (stored under the hash of the token).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    /// The OAuth client it was issued to.
    pub client_id: String,
    /// The account.
    pub user: UserId,
    /// Granted scopes (space separated).
    pub scope: String,
    /// The grant family (one authorization code and every token rotated from it).
    pub family: String,
    /// Unix seconds.
    pub expires: i64,
    /// Already exchanged (rotation): a second use is a replay.
    pub used: bool,
}

/// A group of accounts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GroupRecord {
    /// Group name.
    pub name: String,
    /// Member user ids.
    pub members: Vec<UserId>,
}

/// What kind of space.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SpaceKind {
    /// A user's home.
    Personal,
    /// A shared project space.
    Project,
}

/// A space: a tree of files rooted at one folder on disk.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SpaceRecord {
    /// Space id (= root node id).
    pub id: SpaceId,
    /// Personal or project.
    pub kind: SpaceKind,
    /// The owner of a personal space.
    pub owner: Option<UserId>,
    /// Display name.
    pub name: String,
    /// The root folder, relative to the data directory (e.g. `files/alice`).
    pub dir: String,
}

/// File or folder.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// A regular file.
    File,
    /// A folder.
    Dir,
}

/// Content checksums, lower-case hex; each is present when it was computed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Checksums {
    /// SHA-1.
    #[serde(default)]
    pub sha1: Option<String>,
    /// MD5.
    #[serde(default)]
    pub md5: Option<String>,
    /// Adler-32.
    #[serde(default)]
    pub adler32: Option<String>,
}

/// A file or folder. The bytes live on disk under the real name; this record holds what the file
/// system cannot.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeRecord {
    /// The space the node lives in.
    pub space: SpaceId,
    /// Parent folder; `None` for a space root.
    pub parent: Option<NodeId>,
    /// Name inside the parent (empty for a space root).
    pub name: String,
    /// File or folder.
    pub kind: NodeKind,
    /// File size, or for a folder the size of everything below it.
    pub size: u64,
    /// Modification time shown to clients (ns since the epoch; clients may set it with `X-OC-Mtime`).
    pub mtime_ns: i64,
    /// The etag; changes whenever the content (or, for a folder, anything below it) changes.
    pub etag: String,
    /// Content checksums, when known.
    #[serde(default)]
    pub checksums: Option<Checksums>,
    /// The on-disk modification time we last saw, to notice changes made by the host user.
    pub disk_mtime_ns: i64,
    /// The on-disk size we last saw (files).
    pub disk_size: u64,
}

/// A WebDAV write lock (RFC 4918 §6).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LockRecord {
    /// The lock token URI.
    pub token: String,
    /// The space of the locked resource.
    pub space: SpaceId,
    /// The lock root, as names from the space root.
    pub path: Vec<String>,
    /// Depth infinity (covers all members) or 0.
    pub depth_infinity: bool,
    /// Shared or exclusive.
    pub shared: bool,
    /// The client's owner XML fragment.
    pub owner_xml: Option<String>,
    /// Who created it.
    pub user: UserId,
    /// Requested timeout in seconds (`None` = infinite).
    pub timeout_secs: Option<u64>,
    /// Unix seconds after which the lock is gone (`None` = never).
    pub expires_at: Option<i64>,
}

/// An item in a space's trash bin.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TrashRecord {
    /// The key (also the name of its folder entry under the trash directory).
    pub key: String,
    /// Path it was deleted from, decoded, with a leading `/`.
    pub original_path: String,
    /// File or folder.
    pub kind: NodeKind,
    /// Size in bytes (tree size for folders).
    pub size: u64,
    /// Unix seconds.
    pub deleted_at: i64,
    /// The node id it had (kept on restore).
    pub node: NodeId,
}

/// A previous content of a file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct VersionRecord {
    /// The version key: ns timestamp of the moment it was superseded.
    pub key: u64,
    /// Size in bytes.
    pub size: u64,
    /// The file's modification time at that point (ns).
    pub mtime_ns: i64,
    /// The etag the content had.
    pub etag: String,
    /// Checksums, if known.
    pub checksums: Option<Checksums>,
}

/// A resumable (TUS) upload in progress; its bytes are in `<data>/system/uploads/<id>`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UploadRecord {
    /// The upload id (also the data file's name).
    pub id: String,
    /// Who created it.
    pub user: UserId,
    /// The space it goes to.
    pub space: SpaceId,
    /// The target path from the space root, decoded, names joined with `/`.
    pub path: String,
    /// Announced total length in bytes.
    pub length: u64,
    /// Bytes received and durable.
    pub offset: u64,
    /// Modification time to set on completion (Unix seconds).
    #[serde(default)]
    pub mtime_secs: Option<i64>,
    /// Announced whole-file checksum: (algorithm name, lower-case hex).
    #[serde(default)]
    pub checksum: Option<(String, String)>,
    /// Etags the target must have on completion (`If-Match`).
    #[serde(default)]
    pub if_match: Option<Vec<String>>,
    /// WebDAV lock tokens the client submitted at creation: a lock on the target must be one of
    /// them on completion too.
    #[serde(default)]
    pub lock_tokens: Vec<String>,
    /// Unix seconds.
    pub created: i64,
    /// Unix seconds after which the upload is gone.
    pub expires: i64,
}
