//! Copying a template row in bulk: the column list and the `SELECT` expressions of an
//! `INSERT … SELECT` that copies the row the service wrote, once per value of a series,
//! with text substitutions in its textual columns. Shared by both backends' seeding.

use anyhow::Context;

/// How a backend reads and writes a textual column as text.
pub struct Dialect {
    /// Whether a column of this (lower-case) type holds text or JSON.
    pub textual: fn(&str) -> bool,
    /// The column, as text.
    pub as_text: fn(&str) -> String,
    /// The substituted text, back to the column's type.
    pub back: fn(String, &str) -> String,
}

pub const POSTGRES: Dialect = Dialect {
    textual: |ty| matches!(ty, "text" | "character varying" | "json" | "jsonb"),
    as_text: |name| format!("t.\"{name}\"::text"),
    back: |e, ty| {
        if ty == "json" || ty == "jsonb" {
            format!("({e})::{ty}")
        } else {
            e
        }
    },
};

pub const SQLITE: Dialect = Dialect {
    textual: |ty| {
        ["char", "text", "json", "clob"]
            .iter()
            .any(|t| ty.contains(t))
    },
    as_text: |name| format!("t.\"{name}\""),
    back: |e, _| e,
};

/// From `name:type` lines: the quoted column names and, for each, its copy expression —
/// the override if one names it, the text with `replacements` applied if it is textual,
/// else the column as it is.
pub fn columns(
    lines: &str,
    dialect: &Dialect,
    replacements: &[(&str, String)],
    overrides: &[(&str, &str)],
) -> anyhow::Result<(String, String)> {
    let mut names = Vec::new();
    let mut exprs = Vec::new();
    for line in lines.lines() {
        let (name, ty) = line.split_once(':').context("column line")?;
        names.push(format!("\"{name}\""));
        if let Some((_, e)) = overrides.iter().find(|(c, _)| *c == name) {
            exprs.push((*e).to_owned());
            continue;
        }
        if !(dialect.textual)(ty) {
            exprs.push(format!("t.\"{name}\""));
            continue;
        }
        let mut e = (dialect.as_text)(name);
        for (from, to) in replacements {
            e = format!("replace({e}, '{from}', {to})");
        }
        exprs.push((dialect.back)(e, ty));
    }
    Ok((names.join(", "), exprs.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textual_columns_are_substituted_and_cast_back_others_copied_or_overridden() {
        let (names, exprs) = columns(
            "id:text\nresource:jsonb\nversion:bigint\ncreated_at:character varying",
            &POSTGRES,
            &[("zz", "'x'".to_owned())],
            &[("created_at", "'now'")],
        )
        .unwrap();
        assert_eq!(names, "\"id\", \"resource\", \"version\", \"created_at\"");
        assert_eq!(
            exprs,
            "replace(t.\"id\"::text, 'zz', 'x'), (replace(t.\"resource\"::text, 'zz', 'x'))::jsonb, \
             t.\"version\", 'now'"
        );
        let (_, exprs) = columns(
            "id:varchar(36)\nversion:integer",
            &SQLITE,
            &[("zz", "'x'".to_owned())],
            &[],
        )
        .unwrap();
        assert_eq!(exprs, "replace(t.\"id\", 'zz', 'x'), t.\"version\"");
    }
}
