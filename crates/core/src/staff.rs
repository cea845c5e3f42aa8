//! Staff accounts: the people who work the desk, and the deployment's administrators.

use crate::access::Role;
use crate::contact::EmailAddress;
use crate::env::Timestamp;
use crate::ids::{StaffId, TenantId};
use crate::validation::{bounded_text, ValidationError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staff {
    pub id: StaffId,
    /// `None` only for a deployment admin.
    pub tenant_id: Option<TenantId>,
    pub email: EmailAddress,
    pub display_name: String,
    pub role: Role,
    pub active: bool,
    pub created_at: Timestamp,
}

/// A staff account about to be created, already validated.
#[derive(Debug, Clone)]
pub struct NewStaff {
    pub tenant_id: Option<TenantId>,
    pub email: EmailAddress,
    pub display_name: String,
    pub role: Role,
}

impl NewStaff {
    pub fn parse(
        tenant_id: Option<TenantId>,
        email: &str,
        display_name: &str,
        role: &str,
    ) -> Result<Self, ValidationError> {
        let role = Role::parse("role", role)?;
        if role == Role::Integration {
            return Err(ValidationError::new("role", "integration is for API keys, not people"));
        }
        match (role.is_tenant_scoped(), tenant_id.is_some()) {
            (true, false) => return Err(ValidationError::new("tenant", "this role belongs to a tenant")),
            (false, true) => return Err(ValidationError::new("tenant", "a deployment admin belongs to no tenant")),
            _ => {}
        }
        Ok(Self {
            tenant_id,
            email: EmailAddress::parse("email", email)?,
            display_name: bounded_text("display_name", display_name, 1, 200)?,
            role,
        })
    }
}
