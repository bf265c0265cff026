//! Two filter spellings scim_v2's parser refuses, rewritten before parsing (DESIGN 5):
//! `not(` without a space, and Entra's value path followed by a sub-attribute comparison,
//! `emails[type eq "work"].value eq "x"`, which means `emails[type eq "work" and value eq
//! "x"]`. The rewrite works on tokens outside string literals only.

/// Rewrites `raw` into the grammar scim_v2 accepts.
pub fn normalize(raw: &str) -> String {
    entra_value_paths(&spaced_not(raw))
}

/// Byte ranges of the string literals in `s`.
fn literals(s: &str) -> Vec<(usize, usize)> {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'"' {
            let start = i;
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                if bytes[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            out.push((start, (i + 1).min(bytes.len())));
        }
        i += 1;
    }
    out
}

fn inside(literals: &[(usize, usize)], at: usize) -> bool {
    literals.iter().any(|(a, b)| at > *a && at < *b)
}

fn spaced_not(s: &str) -> String {
    let lits = literals(s);
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len() + 4);
    let mut last = 0;
    let mut i = 0;
    while i + 4 <= bytes.len() {
        // `get` is None inside a multi-byte character: no `not` starts there.
        let word = s.get(i..i + 3).unwrap_or_default();
        if word.eq_ignore_ascii_case("not")
            && bytes[i + 3] == b'('
            && !inside(&lits, i)
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'.'))
        {
            out.push_str(&s[last..i + 3]);
            out.push(' ');
            last = i + 3;
            i += 4;
            continue;
        }
        i += 1;
    }
    out.push_str(&s[last..]);
    out
}

/// The end of a comparison value starting at `at` (a string literal or a bare word).
fn value_end(s: &str, at: usize) -> usize {
    let bytes = s.as_bytes();
    if bytes.get(at) == Some(&b'"') {
        let mut i = at + 1;
        while i < bytes.len() && bytes[i] != b'"' {
            if bytes[i] == b'\\' {
                i += 1;
            }
            i += 1;
        }
        (i + 1).min(bytes.len())
    } else {
        let mut i = at;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b')' {
            i += 1;
        }
        i
    }
}

fn entra_value_paths(s: &str) -> String {
    let lits = literals(s);
    let bytes = s.as_bytes();
    // Find `]` followed by `.name <op> [value]`, and move the comparison inside.
    for (close, _) in s.match_indices(']') {
        if inside(&lits, close) || bytes.get(close + 1) != Some(&b'.') {
            continue;
        }
        let name_start = close + 2;
        let mut name_end = name_start;
        while name_end < bytes.len()
            && (bytes[name_end].is_ascii_alphanumeric()
                || matches!(bytes[name_end], b'_' | b'-' | b'$'))
        {
            name_end += 1;
        }
        if name_end == name_start {
            continue;
        }
        let rest = &s[name_end..];
        let trimmed = rest.trim_start();
        let op_start = name_end + (rest.len() - trimmed.len());
        let op: String = trimmed
            .chars()
            .take_while(char::is_ascii_alphabetic)
            .collect();
        let op_end = op_start + op.len();
        let comparison_end = if op.eq_ignore_ascii_case("pr") {
            op_end
        } else if ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]
            .iter()
            .any(|o| o.eq_ignore_ascii_case(&op))
        {
            let value_start = op_end + (s[op_end..].len() - s[op_end..].trim_start().len());
            value_end(s, value_start)
        } else {
            continue;
        };
        let Some(open) = (0..close)
            .rev()
            .find(|&i| bytes[i] == b'[' && !inside(&lits, i))
        else {
            continue;
        };
        let comparison = &s[name_start..comparison_end];
        let rewritten = format!(
            "{}({}) and {}]{}",
            &s[..=open],
            &s[open + 1..close],
            comparison,
            &s[comparison_end..]
        );
        // One rewrite at a time; the rest may contain more.
        return entra_value_paths(&rewritten);
    }
    s.to_owned()
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn not_gets_its_space() {
        assert_eq!(normalize(r#"not(title pr)"#), r#"not (title pr)"#);
        assert_eq!(normalize(r#"title eq "not(x)""#), r#"title eq "not(x)""#);
        assert_eq!(normalize(r#"knot(x)"#), r#"knot(x)"#);
        assert_eq!(
            normalize("title eq \"ÉÉé\" and not(x pr)"),
            "title eq \"ÉÉé\" and not (x pr)"
        );
        assert_eq!(normalize("ÉÉÉÉ"), "ÉÉÉÉ");
    }

    #[test]
    fn entra_value_paths_move_the_comparison_inside_the_brackets() {
        assert_eq!(
            normalize(r#"emails[type eq "work"].value eq "b@x.com""#),
            r#"emails[(type eq "work") and value eq "b@x.com"]"#
        );
        assert_eq!(
            normalize(r#"emails[type eq "a]b"].value pr and userName eq "x""#),
            r#"emails[(type eq "a]b") and value pr] and userName eq "x""#
        );
        assert_eq!(
            normalize(r#"emails[type eq "work"]"#),
            r#"emails[type eq "work"]"#
        );
    }
}
