//! Hearth WebDAV wire protocol: pure, I/O-free parsing and rendering of RFC 4918 bodies and headers.
//!
//! Every parser is namespace-aware (elements are matched by namespace and local name, never by
//! prefix), bounded (body size, nesting depth, property count) and never expands entities.
//! Renderers produce UTF-8 XML with the fixed prefixes `d` (DAV:), `oc`, `nc`, `s` and `ocs`.
#![deny(clippy::indexing_slicing)]
#![warn(missing_docs)]

pub mod error;
pub mod error_body;
mod fragment;
pub mod headers;
pub mod lock;
pub mod multistatus;
pub mod name;
pub mod propfind;
pub mod proppatch;
pub mod report;
mod xml;

pub use error::{HeaderError, XmlError};
pub use error_body::{precondition_error, sabre_error};
pub use headers::{
    Condition, Depth, IfHeader, IfList, Timeout, parse_depth, parse_if, parse_overwrite,
    parse_timeout, parse_timeout_header, url_path,
};
pub use lock::{
    ActiveLock, LockInfo, activelock_xml, lockdiscovery_body, parse_lockinfo, supportedlock_xml,
};
pub use multistatus::{MultistatusWriter, Prop, PropStat, PropValue, reason_phrase, status_line};
pub use name::{DAV_NS, NC_NS, OC_NS, OCS_NS, PropName, SABRE_NS, well_known_prefix};
pub use propfind::{PropfindRequest, parse_propfind};
pub use proppatch::{DeadValue, PatchOp, parse_proppatch};
pub use report::{ReportRequest, parse_report};
pub use xml::{MAX_BODY_BYTES, MAX_DEPTH, MAX_ELEMENTS, MAX_PROPERTIES};
