//! Small macros the domain types share.

/// An enum of named values with its text form: `ALL`, `as_str`, `parse` (whose error lists the
/// accepted values) and `Display`. Used for every closed vocabulary that crosses the edge.
macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            pub fn parse(field: &str, value: &str) -> Result<Self, $crate::validation::ValidationError> {
                Self::ALL.iter().copied().find(|v| v.as_str() == value).ok_or_else(|| {
                    let names: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                    $crate::validation::ValidationError::new(field, format!("must be one of {}", names.join(", ")))
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// `Ord` by declaration order, for [`string_enum!`] types whose order means something (severity,
/// preference).
macro_rules! ordered_by_declaration {
    ($($name:ident),+) => {$(
        impl Ord for $name {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                (*self as u8).cmp(&(*other as u8))
            }
        }
        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }
    )+};
}
