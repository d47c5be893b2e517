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
