//! YAML for Kubernetes, with every string quoted.
//!
//! Kubernetes reads manifests as YAML 1.1 (through Go's yaml.v2), where plain
//! scalars such as `off`, `yes`, `y` or `2026-05-01T12:00:00Z` are booleans
//! and timestamps, not strings; serde_yaml_ng writes YAML 1.2 and leaves them
//! plain, so `--live off` would reach the API server as `false`. No
//! maintained Rust YAML writer can be told to quote every string, so this
//! small one does: strings are JSON string literals (which are valid YAML
//! double-quoted scalars), multi-line strings are literal blocks (`|`), which
//! every YAML version reads as strings; keys are plain only when they cannot
//! be read as anything else. Block style otherwise, as kubectl writes it.

use serde_json::{Map, Value};

/// `v` as one YAML document (without the `---` line).
pub fn to_yaml(v: &Value) -> String {
    let mut o = String::new();
    match v {
        Value::Object(m) if !m.is_empty() => map(&mut o, m, 0, false),
        Value::Array(a) if !a.is_empty() => seq(&mut o, a, 0),
        _ => {
            scalar(&mut o, v, 0);
            o.push('\n');
        }
    }
    o
}

fn pad(o: &mut String, n: usize) {
    o.extend(std::iter::repeat_n(' ', n));
}

/// Words YAML 1.1 reads as booleans or null.
fn special(s: &str) -> bool {
    matches!(
        s.to_ascii_lowercase().as_str(),
        "y" | "yes" | "n" | "no" | "true" | "false" | "on" | "off" | "null" | "~" | ""
    )
}

fn key(o: &mut String, k: &str) {
    let plain = k
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-'))
        && k.starts_with(|c: char| c.is_ascii_alphabetic())
        && !special(k);
    if plain {
        o.push_str(k);
    } else {
        o.push_str(&serde_json::to_string(k).unwrap_or_default());
    }
}

fn scalar(o: &mut String, v: &Value, indent: usize) {
    match v {
        Value::String(s) if block_ok(s) => literal(o, s, indent),
        Value::String(s) => o.push_str(&serde_json::to_string(s).unwrap_or_default()),
        Value::Object(_) => o.push_str("{}"),
        Value::Array(_) => o.push_str("[]"),
        other => o.push_str(&other.to_string()),
    }
}

/// A multi-line string of printable lines can be a literal block.
fn block_ok(s: &str) -> bool {
    s.contains('\n')
        && s.chars().all(|c| c == '\n' || !c.is_control())
        && s.lines().all(|l| !l.ends_with(' '))
}

/// `|2` (content two spaces in from the key), with the chomping indicator
/// that keeps the string's trailing newlines exactly.
fn literal(o: &mut String, s: &str, indent: usize) {
    let body = s.trim_end_matches('\n');
    let trailing = s.len() - body.len();
    o.push_str(match trailing {
        0 => "|2-",
        1 => "|2",
        _ => "|2+",
    });
    for line in s
        .split('\n')
        .take(body.split('\n').count() + trailing.saturating_sub(1))
    {
        o.push('\n');
        if !line.is_empty() {
            pad(o, indent + 2);
            o.push_str(line);
        }
    }
}

fn value_after_key(o: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            o.push('\n');
            map(o, m, indent + 2, false);
        }
        Value::Array(a) if !a.is_empty() => {
            o.push('\n');
            seq(o, a, indent);
        }
        _ => {
            o.push(' ');
            scalar(o, v, indent);
            o.push('\n');
        }
    }
}

/// A block mapping at `indent`; `inline` when its first key follows a `- `.
fn map(o: &mut String, m: &Map<String, Value>, indent: usize, inline: bool) {
    for (i, (k, v)) in m.iter().enumerate() {
        if !(inline && i == 0) {
            pad(o, indent);
        }
        key(o, k);
        o.push(':');
        value_after_key(o, v, indent);
    }
}

fn seq(o: &mut String, a: &[Value], indent: usize) {
    for item in a {
        pad(o, indent);
        match item {
            Value::Object(m) if !m.is_empty() => {
                o.push_str("- ");
                map(o, m, indent + 2, true);
            }
            Value::Array(x) if !x.is_empty() => {
                o.push_str("-\n");
                seq(o, x, indent + 2);
            }
            _ => {
                o.push_str("- ");
                scalar(o, item, indent);
                o.push('\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn back(y: &str) -> Value {
        serde_yaml_ng::from_str(y).unwrap()
    }

    #[test]
    fn every_string_is_quoted_and_reads_back_the_same() {
        let v = json!({
            "args": ["run", "--live", "off", "yes", "y", "on", "No", "2026-05-01T12:00:00Z",
                     "3", "1e3", "0x10", "~", "", "a: b", "# not a comment", "'quoted'", "é ✓"],
            "env": [{"name": "JOB_COMPLETIONS", "value": "3"}, {"name": "X", "value": "off"}],
            "n": 3, "f": 0.5, "b": true, "z": null, "empty": {}, "none": [],
            "on": "key that YAML 1.1 reads as a boolean",
            "app.kubernetes.io/name": "vana-load",
            "nested": [[1, "two"], []],
            "profile.toml": "# comment\npreset = \"smoke\"\n  indented = 1\n\nthresholds = [\"p95(e2e) < 45s\"]\n",
            "no_newline": "a\nb",
            "two_newlines": "a\n\n",
            "tab\tkey": "x\ty",
        });
        let y = to_yaml(&v);
        assert_eq!(back(&y), v, "{y}");
        for s in [
            "\"off\"",
            "\"yes\"",
            "\"y\"",
            "\"on\"",
            "\"2026-05-01T12:00:00Z\"",
            "\"3\"",
            "\"on\":",
        ] {
            assert!(y.contains(s), "{s} not quoted in\n{y}");
        }
        assert!(y.contains("profile.toml: |2\n  # comment\n"), "{y}");
        assert!(
            y.contains("\"n\": 3"),
            "YAML 1.1 reads a plain n as false: {y}"
        );
        assert!(!y.lines().any(|l| l.ends_with(' ')), "{y}");
        // No string is left plain: each single-line string appears as a
        // JSON (double-quoted) literal.
        fn strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
            match v {
                Value::String(s) => out.push(s),
                Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
                Value::Object(m) => m.values().for_each(|x| strings(x, out)),
                _ => {}
            }
        }
        let mut all = Vec::new();
        strings(&v, &mut all);
        for s in all.into_iter().filter(|s| !s.contains('\n')) {
            let quoted = serde_json::to_string(s).unwrap();
            assert!(y.contains(&quoted), "{quoted} not quoted in\n{y}");
        }
    }
}
