//! The demo's people: ACME Bank's staff, one or two in every role, and fifty customers with
//! varied names, contact points, statuses and factors. Fixed tables, so every demo looks the
//! same apart from ids and secrets.

use regain_server::routes::customers::{CustomerInput, EmailInput, FactorsInput, PhoneInput};

pub const TENANT_SLUG: &str = "acme";
pub const TENANT_NAME: &str = "ACME Bank";
pub const TENANT_REGION: &str = "US";
/// Every demo staff member's password, printed in the banner.
pub const STAFF_PASSWORD: &str = "demo-password-1234";
pub const ADMIN_KEY_NAME: &str = "demo admin key";
pub const INTEGRATION_KEY_NAME: &str = "demo CRM integration";

/// Who's who among the staff, for the case scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Who {
    Agent1,
    Agent2,
    Supervisor1,
    Supervisor2,
    Analyst,
    /// A second tier-3 analyst: approvals at tier 3 need two.
    Analyst2,
    TenantAdmin,
    Auditor,
    DeploymentAdmin,
    /// The tenant's CRM, calling with an API key.
    Integration,
}

pub struct StaffEntry {
    pub who: Who,
    pub email: &'static str,
    pub name: &'static str,
    pub role: &'static str,
    /// `false` only for the deployment admin.
    pub in_tenant: bool,
}

pub const STAFF: [StaffEntry; 9] = [
    staff(Who::Agent1, "maya.patel@acme-bank.example", "Maya Patel", "agent"),
    staff(Who::Agent2, "liam.obrien@acme-bank.example", "Liam O'Brien", "agent"),
    staff(Who::Supervisor1, "sofia.rossi@acme-bank.example", "Sofia Rossi", "supervisor"),
    staff(Who::Supervisor2, "kwame.mensah@acme-bank.example", "Kwame Mensah", "supervisor"),
    staff(Who::Analyst, "hana.kobayashi@acme-bank.example", "Hana Kobayashi", "security_analyst"),
    staff(Who::Analyst2, "noah.fischer@acme-bank.example", "Noah Fischer", "security_analyst"),
    staff(Who::TenantAdmin, "dana.whitfield@acme-bank.example", "Dana Whitfield", "tenant_admin"),
    staff(Who::Auditor, "erik.lindqvist@acme-bank.example", "Erik Lindqvist", "auditor"),
    StaffEntry {
        who: Who::DeploymentAdmin,
        email: "ops@regain.example",
        name: "Regain Operator",
        role: "deployment_admin",
        in_tenant: false,
    },
];

const fn staff(who: Who, email: &'static str, name: &'static str, role: &'static str) -> StaffEntry {
    StaffEntry { who, email, name, role, in_tenant: true }
}

/// (full name, username). Index 0 and 5 are the sample sign-ins the banner prints.
const NAMES: [(&str, &str); 50] = [
    ("José Álvarez", "jose.alvarez"),
    ("Amelia Chen", "amelia.chen"),
    ("Oluwaseun Adeyemi", "seun.adeyemi"),
    ("Priya Raghunathan", "priya.r"),
    ("Marcus O'Connell", "marcus.oconnell"),
    ("Zoë Müller", "zoe.muller"),
    ("Hiroshi Tanaka", "hiroshi.tanaka"),
    ("Fatima Al-Sayed", "fatima.alsayed"),
    ("Björn Åkesson", "bjorn.akesson"),
    ("Chloé Dubois", "chloe.dubois"),
    ("Daniel Kowalski", "dkowalski"),
    ("Ngozi Okafor", "ngozi.okafor"),
    ("Siobhán Ní Bhriain", "siobhan.nibhriain"),
    ("Carlos Mendoza", "carlos.mendoza"),
    ("Mei Ling Wong", "meiling.wong"),
    ("Ethan Brooks", "ethan.brooks"),
    ("Ana-María Ruiz", "anamaria.ruiz"),
    ("Tomasz Nowak", "tomasz.nowak"),
    ("Leilani Kahale", "leilani.k"),
    ("Rhys Llewellyn", "rhys.llewellyn"),
    ("Søren Jørgensen", "soren.jorgensen"),
    ("Isabella Rossi", "isabella.rossi"),
    ("Kwabena Asante", "kwabena.asante"),
    ("Olivia Martin", "olivia.martin"),
    ("Raúl Domínguez", "raul.dominguez"),
    ("Aaliyah Johnson", "aaliyah.johnson"),
    ("Dmitri Volkov", "dmitri.volkov"),
    ("Grace Kim", "grace.kim"),
    ("François Lefèvre", "francois.lefevre"),
    ("Niamh Gallagher", "niamh.gallagher"),
    ("Mateo Fernández", "mateo.fernandez"),
    ("Sophia Nguyen", "sophia.nguyen"),
    ("Lukas Schröder", "lukas.schroder"),
    ("Ava Thompson", "ava.thompson"),
    ("Emre Yılmaz", "emre.yilmaz"),
    ("Harper Davis", "harper.davis"),
    ("Inês Gonçalves", "ines.goncalves"),
    ("Benjamin Cohen", "ben.cohen"),
    ("Yuki Sato", "yuki.sato"),
    ("Eleanor Whitaker", "eleanor.whitaker"),
    ("Malik Washington", "malik.washington"),
    ("Camila Herrera", "camila.herrera"),
    ("Arjun Mehta", "arjun.mehta"),
    ("Noémie Laurent", "noemie.laurent"),
    ("Jackson Reed", "jackson.reed"),
    ("Astrid Nyström", "astrid.nystrom"),
    ("Diego Castillo", "diego.castillo"),
    ("Hannah Schmidt", "hannah.schmidt"),
    ("Kofi Boateng", "kofi.boateng"),
    ("Maëlys Bernard", "maelys.bernard"),
];

const WORDS: [&str; 10] =
    ["harbor", "lantern", "meadow", "copper", "orchid", "glacier", "saffron", "timber", "violet", "canyon"];

/// The customers who get a directory password (every fifth; all active).
pub fn has_password(index: usize) -> bool {
    index.is_multiple_of(5)
}

/// The demo password of customer `index`, if it has one: two words and a number, so
/// it can be typed and pasted into a shell as is.
pub fn customer_password(index: usize) -> Option<String> {
    has_password(index)
        .then(|| format!("{}-{}-{}", WORDS[index % WORDS.len()], WORDS[(index / 5 + 3) % WORDS.len()], 10 + index * 3))
}

/// The username of customer `index`.
pub fn customer_username(index: usize) -> &'static str {
    NAMES.get(index).map_or("", |(_, username)| username)
}

/// The full name of customer `index`.
pub fn customer_full_name(index: usize) -> &'static str {
    NAMES.get(index).map_or("", |(full_name, _)| full_name)
}

/// The customers the banner offers for a directory sign-in.
pub const SAMPLE_CUSTOMERS: [usize; 2] = [0, 5];

/// Customer records in the API's input shape, so they go through the one validation path.
pub fn customers() -> Vec<CustomerInput> {
    NAMES.iter().enumerate().map(|(i, (full_name, username))| customer(i, full_name, username)).collect()
}

fn customer(i: usize, full_name: &str, username: &str) -> CustomerInput {
    // Customers of long standing: their contact points were registered years ago, so proofs
    // sent there count (a recently added one would not).
    let since = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2023, 3, 1, 9, 0, 0)
        .single()
        .map(|t| t + chrono::Duration::days(i as i64 * 11));
    let domain = ["example.com", "mail.example.org", "example.net"][i % 3];
    let mut emails =
        vec![EmailInput { address: format!("{username}@{domain}"), verified: i % 5 != 4, added_at: since }];
    if i % 7 == 3 {
        emails.push(EmailInput { address: format!("{username}@work.example.com"), verified: false, added_at: since });
    }
    // A few customers in Britain; the rest in the 555-01xx range reserved for fiction.
    let number = if i % 10 == 9 { format!("+44 7400 1234{i:02}") } else { format!("(201) 555-01{i:02}") };
    let mut phones = vec![PhoneInput { number, verified: i % 4 != 3, added_at: since }];
    if i % 11 == 6 {
        phones.push(PhoneInput { number: format!("973-555-01{:02}", 99 - i), verified: false, added_at: None });
    }
    let status = match i {
        7 | 23 => Some("locked"),
        13 => Some("disabled"),
        31 | 44 => Some("frozen"),
        _ => None,
    };
    CustomerInput {
        external_id: Some(format!("CRM-{:05}", 10_000 + i * 37)),
        username: username.to_owned(),
        account_number: (i % 11 != 10).then(|| format!("ACME{:08}", 40_000_000 + i * 7_919)),
        full_name: full_name.to_owned(),
        emails,
        phones,
        status: status.map(str::to_owned),
        privileged: i % 12 == 5,
        vip: i % 9 == 2,
        factors: FactorsInput {
            totp: i.is_multiple_of(3),
            recovery_codes_remaining: match i % 6 {
                0 => 10,
                1 => 3,
                _ => 0,
            },
            passkeys: u32::from(i % 8 == 4),
        },
        password: customer_password(i),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regain_core::NewCustomer;

    #[test]
    fn every_demo_customer_is_valid() {
        let customers = customers();
        assert_eq!(customers.len(), 50);
        for c in &customers {
            NewCustomer::parse(&c.draft(), TENANT_REGION).unwrap_or_else(|e| panic!("{}: {e}", c.username));
        }
        assert!(customers.iter().any(|c| c.full_name.contains('ë')));
        assert!(customers.iter().any(|c| c.phones.iter().any(|p| p.number.starts_with("+44"))));
    }

    #[test]
    fn the_sample_customers_can_sign_in() {
        let customers = customers();
        for i in SAMPLE_CUSTOMERS {
            let c = &customers[i];
            assert!(c.status.is_none(), "{} must be active", c.username);
            let password = c.password.as_deref().unwrap();
            assert!(password.len() >= 8 && !password.contains('\''));
        }
        assert_eq!(customers.iter().filter(|c| c.password.is_some()).count(), 10);
    }
}
