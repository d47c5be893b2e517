//! Hearth's shared vocabulary: resource identifiers (oCIS `<storage>$<space>!<opaque>`) and
//! normalised, confinement-checked paths. Pure and I/O-free, so it is property-tested and fuzzed.
#![deny(clippy::indexing_slicing)]

pub mod ids;
pub mod path;

pub use ids::{IdError, NodeId, ResourceId, SpaceId, StorageId, UserId};
pub use path::{Name, NameError, RelPath, encode_path, encode_segment};
