//! Identification (issue 4 item 1, SECURITY.md G2): a recovery case receives the identifiers a
//! caller *claims*; they are parsed and normalized here, the caller fetches candidate records
//! with [`Claim::lookups`], and [`identify`] cross-references them. The answer is match / no match
//! per field and whether exactly one customer was identified — never a stored value.

use std::fmt;

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

use crate::contact::{EmailAddress, PhoneE164};
use crate::customer::{Customer, CustomerLookup};
use crate::ids::CustomerId;
use crate::validation::{bounded_text, ValidationError};

string_enum!(
    /// An identifier a caller may claim.
    IdField {
        FullName = "full_name",
        Username = "username",
        AccountNumber = "account_number",
        Email = "email",
        Phone = "phone",
    }
);

string_enum!(
    /// How one claimed field compares with a record.
    FieldMatch {
        Match = "match",
        NoMatch = "no_match",
        NotGiven = "not_given",
    }
);

impl IdField {
    /// Key identifiers find candidate records; a name only confirms one.
    pub fn is_key(self) -> bool {
        !matches!(self, Self::FullName)
    }
}

/// Characters a claimed name may have (stored names have at most as many).
pub const FULL_NAME_CHARS_MAX: usize = 200;
/// Characters a claimed username may have (as stored usernames).
pub const USERNAME_CHARS_MAX: usize = 64;
/// Characters a claimed account number may have, spaces included (stored ones have at most 64,
/// without spaces).
pub const ACCOUNT_NUMBER_CHARS_MAX: usize = 80;

/// Identifiers as they arrive (from an agent, or the self-service form), before validation.
#[derive(Debug, Clone, Default)]
pub struct ClaimedIdentity {
    pub full_name: Option<String>,
    pub username: Option<String>,
    pub account_number: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// A claim, parsed and normalized. Empty or whitespace-only values count as not given.
#[derive(Clone)]
pub struct Claim {
    /// The name's tokens, normalized (see [`name_tokens`]).
    full_name: Option<Vec<String>>,
    /// Trimmed, as given (the store lower-cases usernames for lookups itself).
    username: Option<String>,
    /// Trimmed, spaces removed: stored account numbers never contain spaces, and the store
    /// finds them by their exact text.
    account_number: Option<String>,
    email: Option<EmailAddress>,
    phone: Option<PhoneE164>,
}

impl Claim {
    /// The email address claimed, if any (the risk engine counts requests per address).
    pub fn email(&self) -> Option<&EmailAddress> {
        self.email.as_ref()
    }

    /// The phone number claimed, if any.
    pub fn phone(&self) -> Option<&PhoneE164> {
        self.phone.as_ref()
    }

    /// Parses every given field. A malformed value is a [`ValidationError`] naming the field;
    /// phone numbers without a `+` country code are read in `region` (the tenant's). At least
    /// one key identifier (username, account number, email, phone) must be given.
    pub fn parse(claimed: &ClaimedIdentity, region: &str) -> Result<Self, ValidationError> {
        let full_name = given(&claimed.full_name).map(parse_name).transpose()?;
        let username = given(&claimed.username).map(parse_username).transpose()?;
        let account_number = given(&claimed.account_number).map(parse_account_number).transpose()?;
        let email = given(&claimed.email).map(|v| EmailAddress::parse("email", v)).transpose()?;
        let phone = given(&claimed.phone).map(|v| PhoneE164::parse("phone", v, region)).transpose()?;
        let claim = Self { full_name, username, account_number, email, phone };
        if !claim.given().into_iter().any(IdField::is_key) {
            let keys: Vec<&str> = IdField::ALL.iter().filter(|f| f.is_key()).map(|f| f.as_str()).collect();
            return Err(ValidationError::new(
                "identifiers",
                format!("give at least one of {}; a name alone does not identify anyone", keys.join(", ")),
            ));
        }
        Ok(claim)
    }

    /// The lookups to find candidate records with: one per given key identifier.
    pub fn lookups(&self) -> Vec<CustomerLookup> {
        let mut lookups = Vec::with_capacity(4);
        if let Some(username) = &self.username {
            lookups.push(CustomerLookup::Username(username.clone()));
        }
        if let Some(account_number) = &self.account_number {
            lookups.push(CustomerLookup::AccountNumber(account_number.clone()));
        }
        if let Some(email) = &self.email {
            lookups.push(CustomerLookup::Email(email.clone()));
        }
        if let Some(phone) = &self.phone {
            lookups.push(CustomerLookup::Phone(phone.clone()));
        }
        lookups
    }

    /// Which fields were given, in [`IdField::ALL`] order.
    pub fn given(&self) -> Vec<IdField> {
        IdField::ALL.iter().copied().filter(|&field| self.is_given(field)).collect()
    }

    fn is_given(&self, field: IdField) -> bool {
        match field {
            IdField::FullName => self.full_name.is_some(),
            IdField::Username => self.username.is_some(),
            IdField::AccountNumber => self.account_number.is_some(),
            IdField::Email => self.email.is_some(),
            IdField::Phone => self.phone.is_some(),
        }
    }
}

/// Names the given fields only: a claim is personal data and stays out of logs.
impl fmt::Debug for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claim").field("given", &self.given()).finish_non_exhaustive()
    }
}

/// Per-field comparison of a claim with one record: every [`IdField`] in [`IdField::ALL`] order.
pub fn compare(claim: &Claim, customer: &Customer) -> Vec<(IdField, FieldMatch)> {
    IdField::ALL.iter().map(|&field| (field, compare_field(claim, customer, field))).collect()
}

/// What identification decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Identified(CustomerId),
    /// Several records fit; none is disclosed, ask for more.
    Ambiguous,
    /// The claim fits no record.
    NoMatch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identification {
    pub outcome: Outcome,
    /// Per field, in [`IdField::ALL`] order: against the one record identified, or the one
    /// candidate found that did not fit; every given field `NoMatch` when no candidate was
    /// found. Empty when several records were candidates, so none of them is disclosed.
    pub fields: Vec<(IdField, FieldMatch)>,
    /// The one record the claim pointed at (a key identifier matched) but did not fit: the
    /// failure is counted against this customer. `None` otherwise.
    pub mismatched: Option<CustomerId>,
}

/// Decides from the candidate records the caller fetched with [`Claim::lookups`] (duplicates
/// are ignored, and so is any record no given key identifier matches).
///
/// A record *fits* when every given field matches it and at least two do, one of them a key
/// identifier: a name never identifies alone, nor does a single key identifier.
pub fn identify(claim: &Claim, candidates: &[Customer]) -> Identification {
    let mut pointed: Vec<(CustomerId, Vec<(IdField, FieldMatch)>)> = Vec::new();
    for customer in candidates {
        if pointed.iter().any(|(id, _)| *id == customer.id) {
            continue;
        }
        let fields = compare(claim, customer);
        if fields.iter().any(|&(field, m)| field.is_key() && m == FieldMatch::Match) {
            pointed.push((customer.id, fields));
        }
    }
    let fitting: Vec<&(CustomerId, Vec<(IdField, FieldMatch)>)> =
        pointed.iter().filter(|(_, fields)| fits(fields)).collect();
    match (fitting.as_slice(), pointed.as_slice()) {
        ([(id, fields)], _) => {
            Identification { outcome: Outcome::Identified(*id), fields: fields.clone(), mismatched: None }
        }
        ([_, _, ..], _) => Identification { outcome: Outcome::Ambiguous, fields: Vec::new(), mismatched: None },
        ([], [(id, fields)]) => {
            Identification { outcome: Outcome::NoMatch, fields: fields.clone(), mismatched: Some(*id) }
        }
        ([], []) => Identification {
            outcome: Outcome::NoMatch,
            fields: IdField::ALL
                .iter()
                .map(|&field| (field, if claim.is_given(field) { FieldMatch::NoMatch } else { FieldMatch::NotGiven }))
                .collect(),
            mismatched: None,
        },
        ([], _) => Identification { outcome: Outcome::NoMatch, fields: Vec::new(), mismatched: None },
    }
}

/// Whether a record fits: no given field differs, at least two match, one of them a key.
fn fits(fields: &[(IdField, FieldMatch)]) -> bool {
    let matched = || fields.iter().filter(|(_, m)| *m == FieldMatch::Match);
    !fields.iter().any(|(_, m)| *m == FieldMatch::NoMatch)
        && matched().count() >= 2
        && matched().any(|(field, _)| field.is_key())
}

fn compare_field(claim: &Claim, customer: &Customer, field: IdField) -> FieldMatch {
    let matched = match field {
        IdField::FullName => {
            claim.full_name.as_ref().map(|tokens| names_match(tokens, &name_tokens(&customer.full_name)))
        }
        IdField::Username => {
            claim.username.as_ref().map(|u| u.to_lowercase() == customer.username.trim().to_lowercase())
        }
        IdField::AccountNumber => claim.account_number.as_ref().map(|a| {
            customer.account_number.as_deref().is_some_and(|stored| account_number_key(stored) == account_number_key(a))
        }),
        IdField::Email => claim.email.as_ref().map(|e| {
            let claimed = e.normalized();
            customer.emails.iter().any(|stored| stored.address.normalized() == claimed)
        }),
        IdField::Phone => claim.phone.as_ref().map(|p| customer.phones.iter().any(|stored| stored.number == *p)),
    };
    match matched {
        None => FieldMatch::NotGiven,
        Some(true) => FieldMatch::Match,
        Some(false) => FieldMatch::NoMatch,
    }
}

/// A given value: trimmed, and `None` when empty.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn parse_name(value: &str) -> Result<Vec<String>, ValidationError> {
    let name = bounded_text("full_name", value, 1, FULL_NAME_CHARS_MAX)?;
    let tokens = name_tokens(&name);
    if tokens.is_empty() {
        return Err(ValidationError::new("full_name", "must contain letters"));
    }
    Ok(tokens)
}

fn parse_username(value: &str) -> Result<String, ValidationError> {
    let username = bounded_text("username", value, 1, USERNAME_CHARS_MAX)?;
    if username.chars().any(char::is_whitespace) {
        return Err(ValidationError::new("username", "must not contain spaces"));
    }
    Ok(username)
}

fn parse_account_number(value: &str) -> Result<String, ValidationError> {
    let account_number = bounded_text("account_number", value, 1, ACCOUNT_NUMBER_CHARS_MAX)?;
    Ok(account_number.chars().filter(|c| !c.is_whitespace()).collect())
}

/// The form account numbers compare in: case, spaces and dashes ignored.
fn account_number_key(value: &str) -> String {
    value.chars().filter(|&c| !c.is_whitespace() && !is_dash(c)).flat_map(char::to_lowercase).collect()
}

fn is_dash(c: char) -> bool {
    matches!(c, '-' | '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{FE58}' | '\u{FE63}' | '\u{FF0D}')
}

/// A name's tokens, sorted: compatibility-decomposed (NFKD) without accents, case-folded,
/// apostrophes and periods removed ("O'Brien" is "obrien", "J." is "j"), every other
/// non-alphanumeric character a separator.
fn name_tokens(name: &str) -> Vec<String> {
    let mut folded = String::with_capacity(name.len());
    for c in name.nfkd().filter(|&c| !is_combining_mark(c)) {
        match c {
            '\'' | '\u{2018}' | '\u{2019}' | '\u{02BC}' | '\u{02B9}' | '`' | '\u{00B4}' | '.' => {}
            'ß' | 'ẞ' => folded.push_str("ss"),
            // Final sigma folds to sigma.
            'ς' => folded.push('σ'),
            c if c.is_alphanumeric() => folded.extend(c.to_lowercase()),
            _ => folded.push(' '),
        }
    }
    let mut tokens: Vec<String> = folded.split_whitespace().map(str::to_owned).collect();
    tokens.sort_unstable();
    tokens
}

/// Two names match when the shorter token list is contained (as a multiset) in the longer one
/// and has at least two tokens, or when both are the same single token.
fn names_match(a: &[String], b: &[String]) -> bool {
    let (shorter, longer) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if shorter.is_empty() || (shorter.len() == 1 && longer.len() != 1) {
        return false;
    }
    let mut remaining: Vec<&String> = longer.iter().collect();
    shorter.iter().all(|token| match remaining.iter().position(|r| *r == token) {
        Some(i) => {
            remaining.swap_remove(i);
            true
        }
        None => false,
    })
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::customer::{ContactEmail, ContactPhone, CustomerFlags, CustomerStatus, FactorSummary};
    use crate::ids::TenantId;

    const TENANT: &str = "01900000-0000-7000-8000-000000000000";

    fn customer(
        n: u8,
        username: &str,
        account_number: Option<&str>,
        full_name: &str,
        email: &str,
        phone: &str,
    ) -> Customer {
        let at = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        Customer {
            id: CustomerId::parse("id", &format!("01900000-0000-7000-8000-0000000000{n:02}")).unwrap(),
            tenant_id: TenantId::parse("tenant_id", TENANT).unwrap(),
            external_id: None,
            username: username.into(),
            account_number: account_number.map(str::to_owned),
            full_name: full_name.into(),
            emails: vec![ContactEmail {
                address: EmailAddress::parse("email", email).unwrap(),
                verified: true,
                added_at: at,
            }],
            phones: vec![ContactPhone {
                number: PhoneE164::parse("phone", phone, "US").unwrap(),
                verified: false,
                added_at: at,
            }],
            status: CustomerStatus::Active,
            flags: CustomerFlags::default(),
            factors: FactorSummary::default(),
            created_at: at,
            updated_at: at,
        }
    }

    fn jane() -> Customer {
        customer(1, "JDoe", Some("1234-5678 90"), "Jane Marie Doe", "Jane@Bücher.Example", "+12015550123")
    }

    fn try_claim(fields: &[(IdField, &str)]) -> Result<Claim, ValidationError> {
        let mut claimed = ClaimedIdentity::default();
        for &(field, value) in fields {
            let slot = match field {
                IdField::FullName => &mut claimed.full_name,
                IdField::Username => &mut claimed.username,
                IdField::AccountNumber => &mut claimed.account_number,
                IdField::Email => &mut claimed.email,
                IdField::Phone => &mut claimed.phone,
            };
            *slot = Some(value.to_owned());
        }
        Claim::parse(&claimed, "US")
    }

    fn claim(fields: &[(IdField, &str)]) -> Claim {
        try_claim(fields).unwrap()
    }

    /// The per-field answer as `field=m` words for the given fields; `-` for not given.
    fn summary(fields: &[(IdField, FieldMatch)]) -> String {
        let word = |m: FieldMatch| match m {
            FieldMatch::Match => "y",
            FieldMatch::NoMatch => "n",
            FieldMatch::NotGiven => "-",
        };
        fields.iter().map(|&(f, m)| format!("{f}={}", word(m))).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn names_normalize_to_sorted_tokens() {
        let cases = [
            ("Jane Doe", "doe jane"),
            ("  DOE,   Jane ", "doe jane"),
            ("Jané  Doe", "doe jane"),
            ("José Ñúñez-García", "garcia jose nunez"),
            ("Seán O'Brien", "obrien sean"),
            ("Seán O’Brien", "obrien sean"),
            ("J. R. R. Tolkien", "j r r tolkien"),
            ("Straße STRAẞE", "strasse strasse"),
            ("ＪＡＮＥ ﬁnn", "finn jane"),
            ("Zoë (Zoe) Smith-Jones", "jones smith zoe zoe"),
            ("ΟΔΥΣΣΕΥΣ", "οδυσσευσ"),
            ("Οδυσσεύς", "οδυσσευσ"),
            ("İlker", "ilker"),
            ("李 小龍", "小龍 李"),
            ("--", ""),
        ];
        for (name, want) in cases {
            assert_eq!(name_tokens(name).join(" "), want, "{name:?}");
        }
    }

    #[test]
    fn names_match_as_token_multisets() {
        let cases = [
            ("Jane Doe", "Jane Doe", true),
            ("Jane Doe", "Jane Marie Doe", true),
            ("Jane Marie Doe", "Jane Doe", true),
            ("DOE, Jane", "Jane Doe", true),
            ("Jané  Doe", "Jane Doe", true),
            ("José Ñúñez-García", "jose nunez garcia", true),
            ("Jane", "Jane Doe", false),
            ("Jane Doe", "Jane", false),
            ("Cher", "CHER", true),
            ("Cher", "Sonny", false),
            ("Jane Smith", "Jane Doe", false),
            ("Jane Jane", "Jane Doe", false),
            ("Jane Doe", "Jane Jane Doe", true),
            ("", "Jane Doe", false),
        ];
        for (a, b, want) in cases {
            assert_eq!(names_match(&name_tokens(a), &name_tokens(b)), want, "{a:?} ~ {b:?}");
        }
    }

    #[test]
    fn fields_compare_normalized() {
        use IdField::*;
        let cases: Vec<(Vec<(IdField, &str)>, &str)> = vec![
            (
                vec![(FullName, "DOE, Jané"), (Username, " jdoe "), (AccountNumber, "1234567890")],
                "full_name=y username=y account_number=y email=- phone=-",
            ),
            (
                vec![(AccountNumber, "1234-5678-90"), (Email, "JANE@xn--bcher-kva.example")],
                "full_name=- username=- account_number=y email=y phone=-",
            ),
            (
                vec![(Email, "jane@bücher.example"), (Phone, "(201) 555-0123")],
                "full_name=- username=- account_number=- email=y phone=y",
            ),
            (
                vec![(Phone, "+1 201 555 0123"), (FullName, "Jane Smith")],
                "full_name=n username=- account_number=- email=- phone=y",
            ),
            (
                vec![(Username, "jdoe2"), (AccountNumber, "123456789")],
                "full_name=- username=n account_number=n email=- phone=-",
            ),
            (
                vec![(Email, "jane@buecher.example"), (Phone, "(201) 555-0124")],
                "full_name=- username=- account_number=- email=n phone=n",
            ),
        ];
        for (fields, want) in cases {
            assert_eq!(summary(&compare(&claim(&fields), &jane())), want, "{fields:?}");
        }
        // A record without an account number does not match a claimed one.
        let mut no_account = jane();
        no_account.account_number = None;
        assert_eq!(
            compare(&claim(&[(AccountNumber, "1234567890")]), &no_account)[2],
            (AccountNumber, FieldMatch::NoMatch)
        );
    }

    #[test]
    fn claims_parse_and_name_bad_fields() {
        use IdField::*;
        let claim_full = claim(&[
            (FullName, "Jane Doe"),
            (Username, " JDoe "),
            (AccountNumber, " 1234-5678 90 "),
            (Email, "Jane@Bücher.Example"),
            (Phone, "(201) 555-0123"),
        ]);
        assert_eq!(claim_full.given(), IdField::ALL.to_vec());
        assert_eq!(
            claim_full.lookups(),
            vec![
                CustomerLookup::Username("JDoe".into()),
                CustomerLookup::AccountNumber("1234-567890".into()),
                CustomerLookup::Email(EmailAddress::parse("e", "Jane@bücher.example").unwrap()),
                CustomerLookup::Phone(PhoneE164::from_e164("p", "+12015550123").unwrap()),
            ]
        );
        // Debug output names fields, not values.
        assert!(!format!("{claim_full:?}").contains("Jane"));

        let blank = claim(&[(FullName, "  "), (Username, ""), (Email, "jane@example.com"), (Phone, " \t ")]);
        assert_eq!(blank.given(), vec![Email]);

        let long_name = "a ".repeat(101);
        let bad: Vec<(Vec<(IdField, &str)>, &str)> = vec![
            (vec![(FullName, "Jane Doe")], "identifiers"),
            (vec![], "identifiers"),
            (vec![(FullName, "Jane Doe"), (Username, "  ")], "identifiers"),
            (vec![(FullName, long_name.as_str()), (Username, "jdoe")], "full_name"),
            (vec![(FullName, "--"), (Username, "jdoe")], "full_name"),
            (vec![(Username, "j doe")], "username"),
            (vec![(Username, "jdoe\u{0}")], "username"),
            (vec![(Email, "jane@")], "email"),
            (vec![(Email, "Jane <jane@example.com>")], "email"),
            (vec![(Phone, "12")], "phone"),
            (vec![(Phone, "not a phone")], "phone"),
            (vec![(Username, "jdoe"), (Phone, "555")], "phone"),
        ];
        for (fields, field) in bad {
            assert_eq!(try_claim(&fields).unwrap_err().field, field, "{fields:?}");
        }
        let err = try_claim(&[(FullName, "Jane Doe")]).unwrap_err();
        assert_eq!(
            err.message,
            "give at least one of username, account_number, email, phone; a name alone does not identify anyone"
        );
    }

    #[test]
    fn a_unique_fit_is_identified() {
        use IdField::*;
        let other = customer(2, "jsmith", Some("999"), "John Smith", "john@example.com", "+12015550199");
        let by_account = claim(&[(FullName, "Jane Doe"), (AccountNumber, "1234567890")]);
        let got = identify(&by_account, &[jane(), other.clone(), jane()]);
        assert_eq!(got.outcome, Outcome::Identified(jane().id));
        assert_eq!(summary(&got.fields), "full_name=y username=- account_number=y email=- phone=-");
        assert_eq!(got.mismatched, None);

        let by_contacts = claim(&[(Email, "JANE@bücher.example"), (Phone, "201 555 0123")]);
        assert_eq!(identify(&by_contacts, &[other, jane()]).outcome, Outcome::Identified(jane().id));
    }

    #[test]
    fn a_key_match_with_a_wrong_name_counts_against_the_record() {
        use IdField::*;
        let claim = claim(&[(FullName, "Jane Smith"), (AccountNumber, "1234567890")]);
        let got = identify(&claim, &[jane()]);
        assert_eq!(
            got,
            Identification { outcome: Outcome::NoMatch, fields: compare(&claim, &jane()), mismatched: Some(jane().id) }
        );
        assert_eq!(summary(&got.fields), "full_name=n username=- account_number=y email=- phone=-");
    }

    #[test]
    fn a_key_identifier_alone_does_not_identify() {
        use IdField::*;
        let claim = claim(&[(Email, "jane@bücher.example")]);
        let got = identify(&claim, &[jane()]);
        assert_eq!(got.outcome, Outcome::NoMatch);
        assert_eq!(summary(&got.fields), "full_name=- username=- account_number=- email=y phone=-");
        assert_eq!(got.mismatched, Some(jane().id));
    }

    #[test]
    fn two_fitting_records_are_ambiguous_and_disclose_nothing() {
        use IdField::*;
        let twin = customer(3, "jdoe2", None, "Jane Doe", "jane@bücher.example", "+12015550177");
        let fitting_both = claim(&[(FullName, "Jane Doe"), (Email, "jane@bücher.example")]);
        let got = identify(&fitting_both, &[jane(), twin.clone()]);
        assert_eq!(got, Identification { outcome: Outcome::Ambiguous, fields: Vec::new(), mismatched: None });

        // Several candidates, none fitting: no match, and nothing said about any of them.
        let fitting_neither = claim(&[(FullName, "Jane Smith"), (Email, "jane@bücher.example")]);
        let got = identify(&fitting_neither, &[jane(), twin]);
        assert_eq!(got, Identification { outcome: Outcome::NoMatch, fields: Vec::new(), mismatched: None });
    }

    #[test]
    fn no_candidates_is_no_match_for_every_given_field() {
        use IdField::*;
        let claim = claim(&[(FullName, "Jane Doe"), (Username, "nobody"), (Phone, "+12015550100")]);
        let got = identify(&claim, &[]);
        assert_eq!(got.outcome, Outcome::NoMatch);
        assert_eq!(summary(&got.fields), "full_name=n username=n account_number=- email=- phone=n");
        assert_eq!(got.mismatched, None);
        // A record no given key identifier matches is not a candidate at all.
        let stranger = customer(4, "other", None, "Jane Doe", "other@example.com", "+12015550111");
        assert_eq!(identify(&claim, &[stranger]), got);
    }
}
