//! Typed identifiers. Every entity id is a UUIDv7 (time-ordered, so keyset pagination by id is
//! pagination by creation time), wrapped so a `CaseId` can never be passed where a `CustomerId`
//! is expected.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::env::{Clock, Entropy};
use crate::validation::ValidationError;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// A new time-ordered id from the injected clock and entropy.
            pub fn generate(clock: &dyn Clock, entropy: &dyn Entropy) -> Self {
                Self(new_v7(clock, entropy))
            }

            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }

            pub fn parse(field: &str, value: &str) -> Result<Self, ValidationError> {
                Uuid::try_parse(value.trim())
                    .map(Self)
                    .map_err(|_| ValidationError::new(field, "must be a UUID"))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.as_hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = ValidationError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(stringify!($name), s)
            }
        }
    };
}

id_type!(
    /// A client company served by the desk.
    TenantId
);
id_type!(
    /// A customer record: the account the desk recovers.
    CustomerId
);
id_type!(
    /// A recovery case.
    CaseId
);
id_type!(
    /// A staff account (agent, supervisor, analyst, admin, auditor).
    StaffId
);
id_type!(
    /// A tenant's machine credential.
    ApiKeyId
);

/// A UUIDv7 whose timestamp comes from `clock` and whose random bits come from `entropy`.
pub fn new_v7(clock: &dyn Clock, entropy: &dyn Entropy) -> Uuid {
    let millis = u64::try_from(clock.now().timestamp_millis()).unwrap_or(0);
    let mut random = [0u8; 10];
    entropy.fill(&mut random);
    uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
}
