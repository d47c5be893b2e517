//! Integration tests: each starts the real server on port 0 in a temp dir and talks to it over
//! real sockets. One binary (kanidm's lesson: every file in tests/ would be its own link).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod app_passwords;
mod downloads;
mod harness;
mod history;
mod litmus;
mod ocs;
mod oidc;
mod storage;
mod tus;
mod webdav;
