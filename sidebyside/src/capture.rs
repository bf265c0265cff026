//! Capturing the SQL scimbus issues for one unit of work, and turning it into a pgbench
//! script that replays exactly those statements.
//!
//! A second scimbus process (no relay, no maintenance) connects as role `capture`, for
//! which PostgreSQL logs every statement with its parameters to the CSV log. The bench
//! sends a few warm-up units to it, then writes a begin marker, sends one unit, writes an
//! end marker, and reads the statements between the markers.
//!
//! In the script each statement keeps its text and its parameters stay parameters
//! (`pgbench -M prepared` prepares every statement once per connection, as sqlx does):
//! values that vary per request (ids, user names, new UUIDs, event sequences) become
//! per-transaction pgbench variables; constant values are passed with `-D`. Only values
//! too large for a command-line argument, or statements with more than pgbench's 255
//! variables, are written as literals (`E'…'`, with `:` escaped so pgbench does not read a
//! variable in them).

use anyhow::{Context, bail};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

#[derive(Clone, Debug)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<Option<String>>,
}

/// Whether a statement belongs to scimbus's background work rather than to the request:
/// numbering events after commit (`events::sequencer`, PostgreSQL) and announcing them to
/// other processes (`events::announce`), and writing the request journal
/// (`service::journal`). They run on their own sessions while the request is answered;
/// their transactions are left out of the request's script.
fn is_background(sql: &str) -> bool {
    (sql.contains("outbox_pending") && !sql.contains("INSERT INTO outbox_pending"))
        || sql.contains("request_journal")
        || sql.contains("pg_notify(")
        || sql.starts_with("SELECT event_seq FROM tenants WHERE id = $1 FOR UPDATE")
        || sql.starts_with("UPDATE tenants SET event_seq = $2 WHERE id = $1")
}

/// The statements logged between two markers, without those of background transactions
/// (statements sharing a virtual transaction id with a background statement).
pub fn read_between(csv_log: &Path, begin: &str, end: &str) -> anyhow::Result<Vec<Statement>> {
    let logged = read_logged_between(csv_log, begin, end)?;
    let background: std::collections::HashSet<&str> = logged
        .iter()
        .filter(|(_, s)| is_background(&s.sql))
        .map(|(vxid, _)| vxid.as_str())
        .collect();
    Ok(logged
        .iter()
        .filter(|(vxid, s)| !background.contains(vxid.as_str()) && !is_background(&s.sql))
        .map(|(_, s)| s.clone())
        .collect())
}

/// Every statement logged between the markers, with its virtual transaction id.
fn read_logged_between(
    csv_log: &Path,
    begin: &str,
    end: &str,
) -> anyhow::Result<Vec<(String, Statement)>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(csv_log)
        .with_context(|| format!("reading {}", csv_log.display()))?;
    let mut inside = false;
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record?;
        let user = record.get(1).unwrap_or_default();
        let message = record.get(13).unwrap_or_default();
        let detail = record.get(14).unwrap_or_default();
        let vxid = record.get(9).unwrap_or_default().to_owned();
        if user != "capture" {
            continue;
        }
        if message.contains(begin) {
            inside = true;
            out.clear();
            continue;
        }
        if message.contains(end) {
            if !inside {
                bail!("end marker before begin marker in the statement log");
            }
            return Ok(out);
        }
        if !inside {
            continue;
        }
        let sql = if let Some(s) = message.strip_prefix("statement: ") {
            s
        } else if let Some(rest) = message.strip_prefix("execute ") {
            match rest.split_once(": ") {
                Some((_, s)) => s,
                None => continue,
            }
        } else {
            continue;
        };
        let params = match detail.strip_prefix("parameters: ") {
            Some(d) => parse_params(d)?,
            None => Vec::new(),
        };
        out.push((
            vxid,
            Statement {
                sql: sql.to_owned(),
                params,
            },
        ));
    }
    bail!("markers {begin} … {end} not found in the statement log")
}

/// `$1 = 'a''b', $2 = NULL` → [Some("a'b"), None]
fn parse_params(detail: &str) -> anyhow::Result<Vec<Option<String>>> {
    let mut out = Vec::new();
    let b = detail.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            bail!("unexpected parameter list at {i}: {}", &detail[i..]);
        }
        let eq = detail[i..].find(" = ").context("parameter without ' = '")?;
        let n: usize = detail[i + 1..i + eq].parse()?;
        i += eq + 3;
        let value = if detail[i..].starts_with("NULL") {
            i += 4;
            None
        } else if b.get(i) == Some(&b'\'') {
            i += 1;
            let mut v = Vec::new();
            loop {
                match b.get(i) {
                    None => bail!("unterminated parameter value"),
                    Some(b'\'') if b.get(i + 1) == Some(&b'\'') => {
                        v.push(b'\'');
                        i += 2;
                    }
                    Some(b'\'') => {
                        i += 1;
                        break;
                    }
                    Some(c) => {
                        v.push(*c);
                        i += 1;
                    }
                }
            }
            Some(String::from_utf8(v)?)
        } else {
            bail!("unexpected parameter value at {i}");
        };
        if n != out.len() + 1 {
            bail!("parameters out of order (${n})");
        }
        out.push(value);
        if detail[i..].starts_with(", ") {
            i += 2;
        }
    }
    Ok(out)
}

/// How captured values map to pgbench variables.
#[derive(Clone, Debug, Default)]
pub struct Bindings {
    /// Exact parameter value → variable name (set by the prelude).
    pub vars: Vec<(String, String)>,
    /// Meta-commands at the top of the script (`\set uid random(…)`).
    pub prelude: Vec<String>,
    /// UUID-shaped values that are not new (the tenant's id): kept constant.
    pub constant_uuids: Vec<String>,
    /// The tenant's event sequence just before the captured unit.
    pub seq_before: i64,
}

/// A generated pgbench script and its `-D` constants.
#[derive(Clone, Debug, Default)]
pub struct Script {
    pub text: String,
    pub defines: Vec<(String, String)>,
    pub statements: usize,
    /// Requests the script stands for (a pgbench transaction = one unit).
    pub requests: usize,
}

fn is_uuid(v: &str) -> bool {
    v.len() == 36
        && v.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn literal(v: Option<&str>) -> String {
    match v {
        None => "NULL".into(),
        Some(v) => {
            let mut s = String::with_capacity(v.len() + 4);
            s.push_str("E'");
            for c in v.chars() {
                match c {
                    '\\' => s.push_str("\\\\"),
                    '\'' => s.push_str("''"),
                    ':' => s.push_str("\\x3a"),
                    c => s.push(c),
                }
            }
            s.push('\'');
            s
        }
    }
}

/// Replaces `$n` placeholders in `sql` with `render(n)` (1-based), outside string literals.
fn substitute(sql: &str, render: &mut dyn FnMut(usize) -> String) -> String {
    let mut out = String::with_capacity(sql.len());
    let chars: Vec<char> = sql.chars().collect();
    let mut i = 0;
    let mut in_string = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            in_string = !in_string;
            out.push(c);
            i += 1;
            continue;
        }
        if !in_string && c == '$' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()) {
            let mut j = i + 1;
            let mut n = 0usize;
            while let Some(d) = chars.get(j).and_then(|d| d.to_digit(10)) {
                n = n * 10 + d as usize;
                j += 1;
            }
            out.push_str(&render(n));
            i = j;
            continue;
        }
        out.push(if c == '\n' || c == '\r' { ' ' } else { c });
        i += 1;
    }
    out
}

/// Largest constant passed with `-D` (a command-line argument is limited to 128 KiB).
const MAX_DEFINE: usize = 16 * 1024;
/// pgbench allows 255 variables per statement.
const MAX_VARS: usize = 250;

fn is_sequence_advance(sql: &str) -> bool {
    sql.starts_with("UPDATE \"tenants\" SET \"event_seq\" = \"event_seq\" +")
        && sql.contains("RETURNING \"event_seq\"")
}

/// Builds the pgbench script for `statements`, `prefix` naming its variables.
pub fn script(
    prefix: &str,
    statements: &[Statement],
    bindings: &Bindings,
    requests: usize,
) -> anyhow::Result<Script> {
    let mut text = String::new();
    for line in &bindings.prelude {
        writeln!(text, "{line}")?;
    }
    let mut vars: HashMap<String, String> = bindings.vars.iter().cloned().collect();
    let mut defines = Vec::new();
    let mut constants: HashMap<String, String> = HashMap::new();
    let mut new_uuids = 0;
    let mut seq = bindings.seq_before;
    let mut define_bytes = 0usize;
    for (si, st) in statements.iter().enumerate() {
        // New UUIDs (a created resource's id, an event's id) must differ per transaction.
        for v in st.params.iter().flatten() {
            if is_uuid(v) && !bindings.constant_uuids.contains(v) && !vars.contains_key(v) {
                new_uuids += 1;
                let name = format!("{prefix}_new{new_uuids}");
                writeln!(
                    text,
                    "\\set {name} random(1000000000000, 9000000000000000000)"
                )?;
                vars.insert(v.clone(), name);
            }
        }
        let var_count = st
            .params
            .iter()
            .filter(|p| {
                p.as_ref()
                    .is_some_and(|v| vars.contains_key(v) || v.len() <= MAX_DEFINE)
            })
            .count();
        let inline_all = var_count > MAX_VARS;
        let mut render = |n: usize| -> String {
            let Some(p) = st.params.get(n.wrapping_sub(1)) else {
                return format!("${n}");
            };
            let Some(v) = p else {
                return "NULL".into();
            };
            if let Some(name) = vars.get(v)
                && !inline_all
            {
                return format!(":{name}");
            }
            if inline_all || v.len() > MAX_DEFINE || define_bytes > 1024 * 1024 {
                return literal(Some(v));
            }
            let name = constants.entry(v.clone()).or_insert_with(|| {
                let name = format!("{prefix}_c{}", defines.len() + 1);
                define_bytes += v.len() + name.len();
                defines.push((name.clone(), v.clone()));
                name
            });
            format!(":{name}")
        };
        let sql = substitute(&st.sql, &mut render);
        if is_sequence_advance(&st.sql) {
            let n: i64 = st
                .params
                .first()
                .cloned()
                .flatten()
                .context("sequence advance without its increment")?
                .parse()?;
            seq += n;
            let base = format!("{prefix}_s{si}_");
            writeln!(text, "{sql} \\gset {base}")?;
            let returned = format!("{base}event_seq");
            vars.insert(seq.to_string(), returned.clone());
            for k in 1..n {
                let name = format!("{base}{k}");
                writeln!(text, "\\set {name} :{returned} - {k}")?;
                vars.insert((seq - k).to_string(), name);
            }
        } else {
            writeln!(text, "{sql};")?;
        }
    }
    Ok(Script {
        text,
        defines,
        statements: statements.len(),
        requests,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_parsed_with_quotes_and_nulls() -> anyhow::Result<()> {
        let p = parse_params("$1 = 'a''b', $2 = NULL, $3 = '', $4 = 'x, $5 = y'")?;
        assert_eq!(
            p,
            vec![
                Some("a'b".into()),
                None,
                Some(String::new()),
                Some("x, $5 = y".into())
            ]
        );
        Ok(())
    }

    #[test]
    fn placeholders_become_variables_constants_and_sequences() -> anyhow::Result<()> {
        let statements = vec![
            Statement {
                sql: "UPDATE \"tenants\" SET \"event_seq\" = \"event_seq\" + $1 WHERE \"tenants\".\"id\" = $2 RETURNING \"event_seq\"".into(),
                params: vec![Some("1".into()), Some("11111111-1111-1111-1111-111111111111".into())],
            },
            Statement {
                sql: "INSERT INTO t VALUES ($1, $2, $3, $10, '$1')".into(),
                params: vec![
                    Some("42".into()),
                    Some("urn:x".into()),
                    Some("22222222-2222-2222-2222-222222222222".into()),
                    None, None, None, None, None, None,
                    Some("1000000001".into()),
                ],
            },
        ];
        let bindings = Bindings {
            vars: vec![("42".into(), "uid".into())],
            prelude: vec!["\\set uid random(1, 9)".into()],
            constant_uuids: vec!["11111111-1111-1111-1111-111111111111".into()],
            seq_before: 1_000_000_000,
        };
        let s = script("t", &statements, &bindings, 1)?;
        assert!(s.text.starts_with("\\set uid random(1, 9)\n"));
        assert!(s.text.contains("RETURNING \"event_seq\" \\gset t_s0_\n"));
        assert!(
            s.text
                .contains("INSERT INTO t VALUES (:uid, :t_c3, :t_new1, :t_s0_event_seq, '$1');")
        );
        assert!(s.text.contains("\\set t_new1 random("));
        assert_eq!(s.defines[2], ("t_c3".into(), "urn:x".into()));
        Ok(())
    }

    #[test]
    fn literals_escape_what_pgbench_would_read() {
        assert_eq!(literal(Some("a:b'c\\d")), "E'a\\x3ab''c\\\\d'");
    }
}
