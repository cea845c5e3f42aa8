//! The HTTP routes. Each module holds its handlers and their wire types.

pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod cases;
pub mod commands;
pub mod customers;
pub mod directory;
pub mod factors;
pub mod health;
pub mod policy;
pub mod recovery;
pub mod risk;
pub mod staff;
pub mod templates;
pub mod tenants;
pub mod verification;
pub mod webhooks;
