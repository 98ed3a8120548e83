//! Post-mortem templates as data: checking what an admin typed (sections added, removed and
//! reordered; title, key, help text, required) into the values that are stored, and the two
//! admin changes (save, delete), each one write with its audit entry.

use super::{Section, TemplateValues, db};
use crate::auth::User;
use crate::db::Db;
use crate::error::{AppError, AppResult, FieldErrors};
use crate::incidents::Severity;

/// One section row of the template form.
#[derive(Debug, Clone, Default)]
pub struct SectionRow {
    pub key: String,
    pub title: String,
    pub help: String,
    pub required: bool,
    /// Where it goes (1, 2, 3…); rows without a number keep their place after numbered ones.
    pub position: String,
    pub remove: bool,
}

impl SectionRow {
    /// An empty slot of the form: nothing typed into it.
    pub fn is_blank(&self) -> bool {
        self.key.trim().is_empty() && self.title.trim().is_empty() && self.help.trim().is_empty()
    }
}

/// `Contributing factors` → `contributing_factors`.
pub fn key_from_title(title: &str) -> String {
    let mut key = String::new();
    for c in title.trim().chars() {
        if c.is_ascii_alphanumeric() {
            key.push(c.to_ascii_lowercase());
        } else if !key.ends_with('_') && !key.is_empty() {
            key.push('_');
        }
    }
    key.trim_end_matches('_').chars().take(40).collect()
}

/// Checks the template form. Blank rows (no key, title or help) and rows marked for removal are
/// dropped; the rest are ordered by their position numbers.
pub fn check(
    name: &str,
    description: &str,
    is_default: bool,
    default_for: &[String],
    rows: &[SectionRow],
) -> Result<TemplateValues, FieldErrors> {
    let mut errors = FieldErrors::new();
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 80 {
        errors.insert("name".into(), "must be 1 to 80 characters".into());
    }
    let description = description.trim();
    if description.chars().count() > 500 {
        errors.insert(
            "description".into(),
            "must be at most 500 characters".into(),
        );
    }
    let mut severities = Vec::new();
    for raw in default_for {
        match Severity::parse(raw) {
            Some(s) if !severities.contains(&s) => severities.push(s),
            Some(_) => {}
            None => {
                errors.insert("default_for".into(), Severity::field_error());
            }
        }
    }
    severities.sort();

    let mut kept: Vec<(u32, usize, Section)> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let blank =
            row.key.trim().is_empty() && row.title.trim().is_empty() && row.help.trim().is_empty();
        if row.remove || blank {
            continue;
        }
        let field = |part: &str| format!("sections[{i}].{part}");
        let title = row.title.trim();
        if title.is_empty() || title.chars().count() > 100 {
            errors.insert(field("title"), "must be 1 to 100 characters".into());
        }
        let key = match row.key.trim() {
            "" => key_from_title(title),
            k => k.to_owned(),
        };
        if key.is_empty()
            || key.len() > 40
            || !key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            errors.insert(
                field("key"),
                "must be 1 to 40 lower-case letters, digits or _".into(),
            );
        } else if kept.iter().any(|(_, _, s)| s.key == key) {
            errors.insert(field("key"), format!("{key:?} is used by another section"));
        }
        let help = row.help.trim();
        if help.chars().count() > 500 {
            errors.insert(field("help"), "must be at most 500 characters".into());
        }
        let position = match row.position.trim() {
            "" => u32::MAX,
            p => match p.parse::<u32>() {
                Ok(n) => n,
                Err(_) => {
                    errors.insert(field("position"), "must be a whole number".into());
                    u32::MAX
                }
            },
        };
        kept.push((
            position,
            i,
            Section {
                key,
                title: title.to_owned(),
                help: help.to_owned(),
                required: row.required,
                body: String::new(),
            },
        ));
    }
    if kept.is_empty() {
        errors.insert(
            "sections".into(),
            "a template needs at least one section".into(),
        );
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    kept.sort_by_key(|(position, i, _)| (*position, *i));
    Ok(TemplateValues {
        name: name.to_owned(),
        description: description.to_owned(),
        is_default,
        default_for: severities,
        sections: kept.into_iter().map(|(_, _, s)| s).collect(),
    })
}

/// A template as typed on the admin form, before `check`.
#[derive(Debug, Clone, Copy)]
pub struct TemplateInput<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub is_default: bool,
    pub default_for: &'a [String],
    pub rows: &'a [SectionRow],
}

/// Saves a template typed by an admin: a new one, or `existing` if it is still at the version
/// the form was loaded at. Refusals are field errors (422); a stale version is a conflict
/// carrying the template as it is now (if it still exists). Returns the template's id and what
/// was stored.
pub async fn save(
    db: &Db,
    user: &User,
    existing: Option<(&db::Template, i64)>,
    input: TemplateInput<'_>,
) -> AppResult<(String, TemplateValues)> {
    let values = check(
        input.name,
        input.description,
        input.is_default,
        input.default_for,
        input.rows,
    )
    .map_err(AppError::fields)?;
    if existing.is_some_and(|(t, _)| t.is_default) && !values.is_default {
        return Err(AppError::field(
            "is_default",
            "make another template the default instead; one template is always the default",
        ));
    }
    let mut tx = db.begin_write().await?;
    let saved = match db::save_template(&mut tx, existing.map(|(t, v)| (t.id.as_str(), v)), &values)
        .await
    {
        Ok(Some(id)) => id,
        Ok(None) => {
            drop(tx);
            let (id, version) = existing.map_or((String::new(), 0), |(t, v)| (t.id.clone(), v));
            let now = db::template(&db.writer, &id).await?;
            let version = now.as_ref().map_or(version, |t| t.version);
            return Err(AppError::conflict("this template", version, now));
        }
        Err(AppError::Database(e)) if crate::db::is_unique_violation(&e) => {
            return Err(AppError::field("name", "another template has this name"));
        }
        Err(e) => return Err(e),
    };
    crate::auth::db::audit(
        &mut tx,
        Some(&user.id),
        "postmortem_template.save",
        &saved,
        &values.name,
    )
    .await?;
    tx.commit().await?;
    Ok((saved, values))
}

/// Deletes a template; post-mortems started from it keep their sections and its name. The
/// default template cannot go (a field error on `is_default`): new post-mortems start from it.
pub async fn delete(db: &Db, user: &User, id: &str) -> AppResult<db::Template> {
    let t = db::template(&db.reader, id)
        .await?
        .ok_or_else(|| AppError::missing("template"))?;
    if t.is_default {
        return Err(AppError::field(
            "is_default",
            "The default template cannot be deleted; make another one the default first.",
        ));
    }
    let mut tx = db.begin_write().await?;
    db::delete_template(&mut tx, &t.id).await?;
    crate::auth::db::audit(
        &mut tx,
        Some(&user.id),
        "postmortem_template.delete",
        &t.id,
        &t.name,
    )
    .await?;
    tx.commit().await?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &str, title: &str, position: &str) -> SectionRow {
        SectionRow {
            key: key.into(),
            title: title.into(),
            position: position.into(),
            ..SectionRow::default()
        }
    }

    #[test]
    fn keys_come_from_titles() {
        assert_eq!(
            key_from_title("Contributing factors"),
            "contributing_factors"
        );
        assert_eq!(key_from_title("  What went well? "), "what_went_well");
        assert_eq!(key_from_title("Impact (users)"), "impact_users");
    }

    #[test]
    fn rows_are_reordered_removed_and_blank_ones_dropped() {
        let mut removed = row("old", "Old", "1");
        removed.remove = true;
        let rows = vec![
            row("b", "Second", "2"),
            removed,
            row("", "", ""),
            row("", "First one", "1"),
            row("c", "Unnumbered", ""),
        ];
        let t = check("Short", "", false, &["sev4".into(), "sev3".into()], &rows)
            .expect("valid template");
        let keys: Vec<&str> = t.sections.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["first_one", "b", "c"]);
        assert_eq!(t.default_for, vec![Severity::Sev3, Severity::Sev4]);
    }

    #[test]
    fn problems_are_named_by_row() {
        let rows = vec![
            row("Bad Key", "A", "x"),
            row("a", "", ""),
            row("a", "Dup", ""),
        ];
        let errors = check("", "", false, &["sev9".into()], &rows).expect_err("invalid");
        for field in [
            "name",
            "default_for",
            "sections[0].key",
            "sections[0].position",
            "sections[1].title",
            "sections[2].key",
        ] {
            assert!(errors.contains_key(field), "{field} missing: {errors:?}");
        }
        let errors = check("Empty", "", false, &[], &[]).expect_err("no sections");
        assert!(errors.contains_key("sections"));
    }
}
