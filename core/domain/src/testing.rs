//! Test fixtures shared by the unit tests of this crate.
#![allow(clippy::unwrap_used)]

use crate::{Core, Principal, StorageOptions, StorageProvider, ThrottleConfig};
use hearth_types::SpaceId;

/// A core over `opts` with the user alice (password `pw`), signed in, and her personal space.
pub(crate) fn alice(opts: StorageOptions) -> (Core, Principal, SpaceId) {
    let core = Core::open(opts, ThrottleConfig::default()).unwrap();
    core.accounts.add("alice", "pw", None).unwrap();
    let who = core.auth.verify_basic("alice", "pw", None).unwrap();
    let space = core.files.personal_space(who.id).unwrap();
    (core, who, space)
}

/// The checksums Hearth stores for `data` (SHA-1, MD5, Adler-32), computed in one go.
pub(crate) fn checksums_of(data: &[u8]) -> hearth_store::Checksums {
    use sha1::Digest;
    hearth_store::Checksums {
        sha1: Some(hex::encode(sha1::Sha1::digest(data))),
        md5: Some(hex::encode(md5::Md5::digest(data))),
        adler32: Some(format!("{:08x}", adler2::adler32_slice(data))),
    }
}
