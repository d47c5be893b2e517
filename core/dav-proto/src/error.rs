//! Error types for WebDAV XML body parsing and HTTP header parsing.

/// Why an XML request body was rejected. Every variant maps to `400 Bad Request` except
/// [`XmlError::TooLarge`], which a server may prefer to answer with `413`.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum XmlError {
    /// The body is not well-formed XML (or not UTF-8).
    #[error("malformed XML: {0}")]
    Malformed(String),
    /// A namespace prefix was used without being declared.
    #[error("undeclared namespace prefix `{0}`")]
    UndeclaredPrefix(String),
    /// The body contains a document type declaration (`<!DOCTYPE`/`<!ENTITY`); never expanded.
    #[error("DOCTYPE and entity declarations are forbidden")]
    DoctypeForbidden,
    /// Elements are nested deeper than [`crate::MAX_DEPTH`].
    #[error("XML nesting too deep")]
    TooDeep,
    /// The body, its element count or its property count exceeds a limit.
    #[error("XML body too large")]
    TooLarge,
    /// The root element is not the one this request expects; holds its Clark name.
    #[error("unexpected root element {0}")]
    UnexpectedRoot(String),
    /// Well-formed XML that violates the WebDAV grammar (missing or conflicting children).
    #[error("invalid request body: {0}")]
    Invalid(String),
}

/// Why a WebDAV request header was rejected (answer `400 Bad Request`).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum HeaderError {
    /// The header value does not follow its grammar.
    #[error("invalid {header} header: {value:?}")]
    Invalid {
        /// Header name, e.g. `"Depth"`.
        header: &'static str,
        /// The offending value as received.
        value: String,
    },
}

impl HeaderError {
    /// Shorthand for [`HeaderError::Invalid`].
    pub(crate) fn invalid(header: &'static str, value: &str) -> Self {
        HeaderError::Invalid {
            header,
            value: value.to_owned(),
        }
    }
}
