//! Contact points, parsed at the edge: an [`EmailAddress`] and a phone number in E.164
//! ([`PhoneE164`]). After parsing only valid, normalized values exist, and both know how to
//! show themselves masked, which is all an agent ever sees of them.

use std::fmt;

use phonenumber::Mode;

use crate::validation::ValidationError;

/// An email address: trimmed, domain lower-cased, at most 254 characters (RFC 5321).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(field: &str, input: &str) -> Result<Self, ValidationError> {
        let trimmed = input.trim();
        if trimmed.len() > 254 {
            return Err(ValidationError::new(field, "must be at most 254 characters"));
        }
        if !email_address::EmailAddress::is_valid(trimmed) {
            return Err(ValidationError::new(field, "is not a valid email address"));
        }
        let Some((local, domain)) = trimmed.rsplit_once('@') else {
            return Err(ValidationError::new(field, "is not a valid email address"));
        };
        // Display names ("Jo <jo@example.com>") are accepted by the crate but are not addresses.
        if local.contains(['<', '>', ' ']) || domain.contains(['<', '>', ' ']) {
            return Err(ValidationError::new(field, "must be a bare address, without a display name"));
        }
        if !domain.contains('.') {
            return Err(ValidationError::new(field, "must have a fully qualified domain"));
        }
        Ok(Self(format!("{local}@{}", domain.to_lowercase())))
    }

    /// Rebuilds an address that was validated when stored; only its shape is checked, so a
    /// stricter validator never makes stored records unreadable.
    pub fn from_stored(field: &str, stored: &str) -> Result<Self, ValidationError> {
        match stored.rsplit_once('@') {
            Some((local, domain)) if !local.is_empty() && !domain.is_empty() => Ok(Self(stored.to_owned())),
            _ => Err(ValidationError::new(field, "is not an email address")),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form used to look an address up and to compare addresses: the local part lower-cased
    /// and the domain in its IDNA ASCII form, so `Jane@Bücher.Example` and
    /// `jane@xn--bcher-kva.example` are the same address. A domain IDNA rejects is only
    /// lower-cased, so a stored address always has a normalized form.
    pub fn normalized(&self) -> String {
        let Some((local, domain)) = self.0.rsplit_once('@') else {
            return self.0.to_lowercase();
        };
        format!("{}@{}", local.to_lowercase(), ascii_domain(domain).unwrap_or_else(|| domain.to_lowercase()))
    }

    /// `j***@e***.com`: first character of the local part and of the domain, and the top-level
    /// domain. Enough for a customer to recognise their address, not enough to learn it.
    pub fn masked(&self) -> String {
        let (local, domain) = self.0.rsplit_once('@').unwrap_or((&self.0, ""));
        let first = |s: &str| s.chars().next().map(String::from).unwrap_or_default();
        let tld = domain.rsplit_once('.').map(|(_, tld)| tld).unwrap_or("");
        format!("{}***@{}***.{tld}", first(local), first(domain))
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A phone number in E.164 form (`+15551234567`), validated against libphonenumber's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PhoneE164(String);

impl PhoneE164 {
    /// Parses a phone number as a person would type it; numbers without a `+` country code are
    /// read in `default_region` (ISO 3166-1 alpha-2, the tenant's setting).
    pub fn parse(field: &str, input: &str, default_region: &str) -> Result<Self, ValidationError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(ValidationError::new(field, "must not be empty"));
        }
        if trimmed.len() > 40 {
            return Err(ValidationError::new(field, "must be at most 40 characters"));
        }
        let region = default_region.parse::<phonenumber::country::Id>().ok();
        let number = phonenumber::parse(region, trimmed).map_err(|_| {
            ValidationError::new(
                field,
                format!("is not a phone number (numbers without +country code are read as {default_region})"),
            )
        })?;
        if !phonenumber::is_valid(&number) {
            return Err(ValidationError::new(field, "is not a valid phone number"));
        }
        Ok(Self(number.format().mode(Mode::E164).to_string()))
    }

    /// Rebuilds a number that was validated when stored. Only the E.164 shape is checked
    /// (`+` and 8 to 15 digits): a newer libphonenumber must never make a stored number unreadable.
    pub fn from_e164(field: &str, stored: &str) -> Result<Self, ValidationError> {
        let digits = stored.strip_prefix('+').unwrap_or("");
        if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ValidationError::new(field, "must be in E.164 form"));
        }
        Ok(Self(stored.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last two digits: "the phone ending 34".
    pub fn last_digits(&self) -> &str {
        let start = self.0.len().saturating_sub(2);
        self.0.get(start..).unwrap_or("")
    }

    /// `+1 *** *** **34`
    pub fn masked(&self) -> String {
        format!("*** ending {}", self.last_digits())
    }
}

impl fmt::Display for PhoneE164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A domain's IDNA ASCII form (lower-case), or `None` when IDNA rejects it.
fn ascii_domain(domain: &str) -> Option<String> {
    idna::domain_to_ascii(domain).ok().filter(|ascii| !ascii.is_empty()).map(|ascii| ascii.to_lowercase())
}

/// Whether `region` is an ISO 3166-1 alpha-2 code libphonenumber knows.
pub fn is_known_region(region: &str) -> bool {
    region.len() == 2 && region.parse::<phonenumber::country::Id>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_parse_and_mask() {
        let email = EmailAddress::parse("email", "  Jane.Doe@Example.COM ").unwrap();
        assert_eq!(email.as_str(), "Jane.Doe@example.com");
        assert_eq!(email.normalized(), "jane.doe@example.com");
        assert_eq!(email.masked(), "J***@e***.com");
        for bad in ["", "jane", "jane@", "@example.com", "jane@localhost", "Jane <j@example.com>"] {
            assert!(EmailAddress::parse("email", bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn international_domains_normalize_to_their_ascii_form() {
        let unicode = EmailAddress::parse("email", "Jane@Bücher.Example").unwrap();
        assert_eq!(unicode.as_str(), "Jane@bücher.example");
        let ascii = EmailAddress::parse("email", "jane@XN--BCHER-KVA.example").unwrap();
        assert_eq!(unicode.normalized(), "jane@xn--bcher-kva.example");
        assert_eq!(ascii.normalized(), unicode.normalized());
        assert_eq!(EmailAddress::parse("email", "JOSÉ@Example.COM").unwrap().normalized(), "josé@example.com");
        // Stored addresses always normalize, even with a domain IDNA rejects.
        let odd = EmailAddress::from_stored("email", "Jo@XN--ZZ.Example").unwrap();
        assert_eq!(odd.normalized(), "jo@xn--zz.example");
    }

    #[test]
    fn phones_parse_in_the_tenant_region() {
        let us = PhoneE164::parse("phone", "(201) 555-0123", "US").unwrap();
        assert_eq!(us.as_str(), "+12015550123");
        let gb = PhoneE164::parse("phone", "07400 123456", "GB").unwrap();
        assert_eq!(gb.as_str(), "+447400123456");
        let intl = PhoneE164::parse("phone", "+44 7400 123456", "US").unwrap();
        assert_eq!(intl, gb);
        assert_eq!(gb.last_digits(), "56");
        assert!(PhoneE164::parse("phone", "12", "US").is_err());
        assert!(PhoneE164::parse("phone", "not a phone", "US").is_err());
        assert_eq!(PhoneE164::from_e164("p", "+447400123456").unwrap(), gb);
        assert!(is_known_region("DE"));
        assert!(!is_known_region("XX"));
    }
}
