//! Regain's domain: tenants, customer records, staff and roles, recovery cases and their state
//! machine, and the one-time-password algorithms.
//!
//! This crate never does IO. Time, identifiers and randomness come in through [`Clock`] and
//! [`Entropy`], so every test can pin them; transitions are plain functions
//! `(case, command, actor, now) -> Result<(case, events)>`.

pub use chrono;

#[macro_use]
mod macros;

pub mod access;
pub mod action;
pub mod case;
pub mod contact;
pub mod customer;
pub mod env;
pub mod identify;
pub mod ids;
pub mod password;
pub mod policy;
pub mod risk;
pub mod staff;
pub mod tenant;
pub mod totp;
pub mod validation;

pub use access::{Permission, Role};
pub use case::{Actor, Case, CaseCommand, CaseError, CaseEvent, CaseKind, CaseState, Channel, NewCase, Tier};
pub use contact::{EmailAddress, PhoneE164};
pub use customer::{Customer, CustomerFlags, CustomerStatus, FactorSummary, NewCustomer};
pub use env::{Clock, Entropy, Timestamp};
pub use ids::{ApiKeyId, CaseId, CustomerId, StaffId, TenantId};
pub use staff::{NewStaff, Staff};
pub use tenant::{NewTenant, Tenant, TenantSettings, TenantSlug};
pub use validation::ValidationError;
