//! `choice!`: the one way to declare an enumeration stored and typed as lower-case text
//! (severities, statuses, kinds, roles, …). Every such enum gets the same rules: parsing trims
//! and ignores ASCII case (`SEV1` and `P1` parse like `sev1` and `p1`), the refusal says
//! "must be one of …" with the allowed values in order, serde and the database use the same
//! text, and `ALL` lists the values in declaration order.
//!
//! ```text
//! choice! {
//!     /// How bad it is.
//!     pub enum Severity, "severity" {
//!         Sev1 = "sev1",
//!         Sev2 = "sev2",
//!     }
//! }
//! ```
//! A variant may accept other spellings on input (`Incident = "incident" | "incidents"`); it is
//! always written as its first text.

/// Declares a text enumeration; see the module documentation.
macro_rules! choice {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident, $field:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal $(| $alias:literal)* ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash,
            serde::Serialize, serde::Deserialize,
        )]
        $vis enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant ),+
        }

        #[allow(dead_code)]
        impl $name {
            /// Every value, in declaration order.
            pub const ALL: [$name; [$($text),+].len()] = [$(Self::$variant),+];

            /// The field this value is typed into, as named in error messages.
            pub const FIELD: &'static str = $field;

            /// Reads a value: surrounding space and ASCII case are ignored.
            pub fn parse(s: &str) -> Option<Self> {
                let s = s.trim();
                $(
                    if s.eq_ignore_ascii_case($text) $(|| s.eq_ignore_ascii_case($alias))* {
                        return Some(Self::$variant);
                    }
                )+
                None
            }

            /// The stored and displayed text.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            /// "must be one of a, b, c": the one refusal message of every choice.
            pub fn field_error() -> String {
                format!("must be one of {}", [$($text),+].join(", "))
            }

            /// Parses `raw`, recording the refusal under this choice's field name.
            pub fn parse_field(raw: &str, errors: &mut $crate::error::FieldErrors) -> Option<Self> {
                let parsed = Self::parse(raw);
                if parsed.is_none() {
                    errors.insert($field.into(), Self::field_error());
                }
                parsed
            }

            /// Parses `raw` or refuses it with a validation error naming the field (422).
            pub fn parse_or_refuse(raw: &str) -> Result<Self, $crate::error::AppError> {
                Self::parse(raw).ok_or_else(|| $crate::error::AppError::field($field, Self::field_error()))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        // Stored as its text, so SQL binds and reads it directly (`.bind(severity)`, and
        // `severity AS "severity: Severity"` in the checked macros).
        impl sqlx::Type<sqlx::Sqlite> for $name {
            fn type_info() -> sqlx::sqlite::SqliteTypeInfo {
                <&str as sqlx::Type<sqlx::Sqlite>>::type_info()
            }
            fn compatible(ty: &sqlx::sqlite::SqliteTypeInfo) -> bool {
                <&str as sqlx::Type<sqlx::Sqlite>>::compatible(ty)
            }
        }

        impl<'q> sqlx::Encode<'q, sqlx::Sqlite> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut <sqlx::Sqlite as sqlx::Database>::ArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<'q, sqlx::Sqlite>>::encode_by_ref(&self.as_str(), buf)
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Sqlite> for $name {
            fn decode(
                value: <sqlx::Sqlite as sqlx::Database>::ValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <&str as sqlx::Decode<'r, sqlx::Sqlite>>::decode(value)?;
                Self::parse(text).ok_or_else(|| format!("unknown {} {text:?}", $field).into())
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                Self::parse(&s).ok_or_else(|| format!("unknown {} {s:?}", $field))
            }
        }
    };
    // The short form: `choice!(Priority, "priority", [P1 = "p1", P2 = "p2"]);`
    ($name:ident, $field:literal, [$($variant:ident = $text:literal),+ $(,)?]) => {
        choice! { pub enum $name, $field { $($variant = $text),+ } }
    };
}

#[cfg(test)]
// The generated methods are `pub`; here they belong to a private test enum.
#[allow(unreachable_pub)]
mod tests {
    choice! {
        /// A test enumeration.
        enum Colour, "colour" {
            Red = "red",
            DarkBlue = "dark_blue" | "navy",
        }
    }

    #[test]
    fn parsing_ignores_case_and_space_and_accepts_aliases() {
        assert_eq!(Colour::parse(" RED "), Some(Colour::Red));
        assert_eq!(Colour::parse("Navy"), Some(Colour::DarkBlue));
        assert_eq!(Colour::parse("green"), None);
        assert_eq!(Colour::DarkBlue.as_str(), "dark_blue");
        assert_eq!(Colour::ALL, [Colour::Red, Colour::DarkBlue]);
    }

    #[test]
    fn refusals_name_the_field_and_every_value() {
        let mut errors = crate::error::FieldErrors::new();
        assert_eq!(Colour::parse_field("pink", &mut errors), None);
        assert_eq!(
            errors.get("colour").map(String::as_str),
            Some("must be one of red, dark_blue")
        );
        let json = serde_json::to_string(&Colour::DarkBlue).expect("serializes");
        assert_eq!(json, "\"dark_blue\"");
    }
}
