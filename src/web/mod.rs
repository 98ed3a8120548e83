//! The HTTP plumbing every area's pages and API share: page chrome, extractors, middleware
//! and static files. No area state lives here; `app` assembles it.

pub mod chrome;
pub mod download;
pub mod extract;
pub mod middleware;
pub mod static_files;
