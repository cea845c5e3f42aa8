//! Who may do what. Every route names the [`Permission`] it needs; [`Role::allows`] is the one
//! place that decides, so the role × route matrix is this table and nothing else.

string_enum!(
    /// What a person or machine may do, as a set of [`Permission`]s.
    Role {
        /// Tier 1: takes cases from the queue and works them.
        Agent = "agent",
        /// Tier 2: approves high-risk actions, handles escalations.
        Supervisor = "supervisor",
        /// Tier 3: compromised accounts, fraud, lockdowns.
        SecurityAnalyst = "security_analyst",
        /// Per tenant: staff, API keys, settings, customer records.
        TenantAdmin = "tenant_admin",
        /// Read-only: cases, timelines, reports.
        Auditor = "auditor",
        /// Runs the deployment: creates tenants and their first admins. Belongs to no tenant.
        DeploymentAdmin = "deployment_admin",
        /// A client system calling with an API key: provisions customers, opens and follows cases.
        Integration = "integration",
    }
);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    TenantsManage,
    TenantRead,
    TenantSettingsWrite,
    StaffManage,
    StaffRead,
    ApiKeysManage,
    CustomersWrite,
    CustomersRead,
    /// Erase a customer's record and personal data (GDPR Art. 17).
    CustomersErase,
    CasesCreate,
    CasesRead,
    CasesWork,
    CasesApprove,
    /// Read audit entries (of one's own tenant).
    AuditRead,
    /// Read checkpoints and proofs: hashes only, nothing about anyone.
    AuditVerify,
}

impl Role {
    /// Roles a person can hold (an integration is a machine and only ever an API key).
    pub const STAFF: [Self; 6] =
        [Self::Agent, Self::Supervisor, Self::SecurityAnalyst, Self::TenantAdmin, Self::Auditor, Self::DeploymentAdmin];

    /// Roles an API key may carry.
    pub const API_KEY: [Self; 2] = [Self::Integration, Self::TenantAdmin];

    /// The tier of case work this role handles, for escalation.
    pub fn tier(self) -> Option<u8> {
        match self {
            Self::Agent => Some(1),
            Self::Supervisor => Some(2),
            Self::SecurityAnalyst => Some(3),
            _ => None,
        }
    }

    /// Whether the role belongs to a tenant (every role but the deployment admin).
    pub fn is_tenant_scoped(self) -> bool {
        self != Self::DeploymentAdmin
    }

    pub fn allows(self, permission: Permission) -> bool {
        use Permission as P;
        use Role as R;
        match permission {
            P::TenantsManage => self == R::DeploymentAdmin,
            P::TenantRead => self != R::DeploymentAdmin,
            P::TenantSettingsWrite | P::ApiKeysManage => self == R::TenantAdmin,
            P::StaffManage => matches!(self, R::TenantAdmin | R::DeploymentAdmin),
            P::StaffRead => {
                matches!(self, R::TenantAdmin | R::DeploymentAdmin | R::Supervisor | R::SecurityAnalyst | R::Auditor)
            }
            // Full records (with contact points) only for those who provision them; agents see
            // customers through cases, masked.
            P::CustomersWrite | P::CustomersRead | P::CustomersErase => {
                matches!(self, R::TenantAdmin | R::Integration)
            }
            P::CasesCreate | P::CasesWork => {
                matches!(self, R::Agent | R::Supervisor | R::SecurityAnalyst | R::Integration | R::TenantAdmin)
            }
            P::CasesRead => !matches!(self, R::DeploymentAdmin),
            P::CasesApprove => matches!(self, R::Supervisor | R::SecurityAnalyst),
            P::AuditRead => matches!(self, R::Auditor | R::SecurityAnalyst | R::DeploymentAdmin),
            P::AuditVerify => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip() {
        for &role in Role::ALL {
            assert_eq!(Role::parse("role", role.as_str()).unwrap(), role);
        }
        assert!(Role::parse("role", "root").is_err());
    }

    #[test]
    fn least_privilege_holds() {
        assert!(!Role::Agent.allows(Permission::CasesApprove));
        assert!(!Role::Agent.allows(Permission::CustomersRead));
        assert!(!Role::Auditor.allows(Permission::CasesWork));
        assert!(!Role::DeploymentAdmin.allows(Permission::CasesRead));
        assert!(Role::Supervisor.allows(Permission::CasesApprove));
    }
}
