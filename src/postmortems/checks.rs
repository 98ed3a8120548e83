//! TEMPORARY placeholder until the writing checks land (replaced before commit).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingKind {
    Blame,
    Secret,
    PersonalData,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Blame => "blame",
            Self::Secret => "secret",
            Self::PersonalData => "personal_data",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Self::Blame => "Blameless language",
            Self::Secret => "Possible secret",
            Self::PersonalData => "Personal data",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: FindingKind,
    pub rule: String,
    pub line: usize,
    pub column: usize,
    pub start: usize,
    pub end: usize,
    pub excerpt: String,
    pub message: String,
}

pub fn check(text: &str, _people: &[&str]) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(start) = text.to_lowercase().find("human error") {
        out.push(Finding {
            kind: FindingKind::Blame,
            rule: "human error".into(),
            line: 1,
            column: start + 1,
            start,
            end: start + 11,
            excerpt: "human error".into(),
            message: "What in the system made this possible?".into(),
        });
    }
    out
}
