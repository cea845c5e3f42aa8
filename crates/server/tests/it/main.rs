//! The service through its real HTTP API, on real databases.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod access;
mod audit;
mod auth;
mod bad_input;
mod cases;
mod connectors;
mod database_down;
mod directory;
mod external;
mod openapi;
mod recovery;
mod restart;
mod risk;
mod support;
mod verification;
