//! `choice!`: the enumerations stored as lower-case text (statuses, kinds, priorities), each
//! with its allowed values, parsing that names the field, and conversion from a database row.

/// Enumerations as stored and typed, each with its allowed values.
macro_rules! choice {
    ($name:ident, $field:literal, [$($variant:ident = $text:literal),+ $(,)?]) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$(Self::$variant),+];

            pub fn parse(s: &str) -> Option<Self> {
                match s.trim() { $($text => Some(Self::$variant),)+ _ => None }
            }

            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            pub fn field_error() -> String {
                format!("must be one of {}", [$($text),+].join(", "))
            }

            pub fn parse_field(raw: &str, errors: &mut $crate::error::FieldErrors) -> Option<Self> {
                let parsed = Self::parse(raw);
                if parsed.is_none() {
                    errors.insert($field.into(), Self::field_error());
                }
                parsed
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                Self::parse(&s).ok_or_else(|| format!("unknown {} {s:?}", $field))
            }
        }
    };
}
