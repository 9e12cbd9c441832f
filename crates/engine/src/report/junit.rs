//! `junit.xml`: a run's verdict, criteria and thresholds as JUnit test cases,
//! so a CI system's test view lists each one and shows why it failed.
//!
//! One `<testsuites>` holding one `<testsuite>` (tests and failures counted,
//! the run's wall-clock duration, its start time, the run's identity as
//! properties) with:
//! - `vana-load.verdict` / `verdict`: fails when the verdict is `fail`; an
//!   `inconclusive` verdict is an `<error>` (the load generator could not keep
//!   its schedule, so nothing was judged), not a `<failure>`;
//! - `vana-load.criteria` / one per criterion and `vana-load.thresholds` / one
//!   per threshold: a failed one carries `<failure message="measured …, limit
//!   …">`.
//!
//! The layout follows the JUnit XML that Jenkins, GitLab and GitHub test
//! reporters read (the `junit-10.xsd` schema; the engine's tests validate
//! against it). quick-xml writes and escapes; the one thing done by hand here
//! is dropping characters XML 1.0 cannot carry at all (control characters in
//! an error message), which no escaping can represent.

use std::borrow::Cow;
use std::io::Cursor;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

use super::checks::{Check, checks};
use super::data::RunData;
use crate::schema::Verdict;

/// The class name of the verdict's test case.
pub const VERDICT_CLASS: &str = "vana-load.verdict";

/// Characters XML 1.0 allows (`Char` production); others are dropped.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

fn xml_safe(s: &str) -> Cow<'_, str> {
    if s.chars().all(xml_char) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.chars().filter(|c| xml_char(*c)).collect())
    }
}

/// The run's wall-clock duration in seconds: `started_at` → `finished_at`
/// of `details.json`, else the time series' last point.
pub fn duration_s(d: &RunData) -> f64 {
    let parse = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok();
    match (parse(&d.details.started_at), parse(&d.details.finished_at)) {
        (Some(a), Some(b)) if b >= a => (b - a).as_seconds_f64(),
        _ => d.series.last().map_or(0.0, |p| p.t_s.max(0.0)),
    }
}

/// The run's start as JUnit's `timestamp` (UTC, no zone suffix, as the Ant
/// format has it), if `details.json` recorded one.
fn timestamp(d: &RunData) -> Option<String> {
    let t = chrono::DateTime::parse_from_rfc3339(&d.details.started_at).ok()?;
    Some(
        t.with_timezone(&chrono::Utc)
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string(),
    )
}

/// The verdict's test case: `None` when it passed, else (element, type, message).
fn verdict_outcome(d: &RunData) -> Option<(&'static str, &'static str, String)> {
    let s = &d.summary;
    let why = s.verdict_reason.clone().unwrap_or_default();
    match s.verdict {
        Verdict::Pass => None,
        Verdict::Fail => Some(("failure", "fail", format!("verdict fail: {why}"))),
        Verdict::Inconclusive => Some((
            "error",
            "inconclusive",
            format!("verdict inconclusive: {why}"),
        )),
    }
}

/// Renders `junit.xml`.
pub fn render(d: &RunData) -> std::io::Result<String> {
    let list = checks(d);
    let verdict = verdict_outcome(d);
    let tests = list.len() + 1;
    let failures = list.iter().filter(|c| !c.pass).count()
        + usize::from(matches!(verdict, Some(("failure", ..))));
    let errors = usize::from(matches!(verdict, Some(("error", ..))));
    let time = format!("{:.3}", duration_s(d));
    let (tests, failures, errors) = (tests.to_string(), failures.to_string(), errors.to_string());
    let suite_name = xml_safe(&format!("vana-load {}", d.profile())).into_owned();
    let props = [
        ("run_id", d.run_id()),
        ("profile", d.profile()),
        ("target", d.target()),
        ("verdict", d.summary.verdict.as_str().to_string()),
        (
            "verdict_reason",
            d.summary.verdict_reason.clone().unwrap_or_default(),
        ),
        ("results", d.dir.display().to_string()),
    ]
    .map(|(k, v)| (k, xml_safe(&v).into_owned()));
    let stamp = timestamp(d);

    let mut w = Writer::new_with_indent(Cursor::new(Vec::new()), b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.create_element("testsuites")
        .with_attributes([
            ("name", "vana-load"),
            ("tests", tests.as_str()),
            ("failures", failures.as_str()),
            ("errors", errors.as_str()),
            ("time", time.as_str()),
        ])
        .write_inner_content(|w| -> std::io::Result<()> {
            let mut suite = w.create_element("testsuite").with_attributes([
                ("name", suite_name.as_str()),
                ("tests", tests.as_str()),
                ("failures", failures.as_str()),
                ("errors", errors.as_str()),
                ("skipped", "0"),
                ("time", time.as_str()),
            ]);
            if let Some(t) = &stamp {
                suite = suite.with_attribute(("timestamp", t.as_str()));
            }
            suite.write_inner_content(|w| -> std::io::Result<()> {
                w.create_element("properties")
                    .write_inner_content(|w| -> std::io::Result<()> {
                        for (k, v) in &props {
                            w.create_element("property")
                                .with_attributes([("name", *k), ("value", v.as_str())])
                                .write_empty()?;
                        }
                        Ok(())
                    })?;
                let verdict_case = w.create_element("testcase").with_attributes([
                    ("classname", VERDICT_CLASS),
                    ("name", "verdict"),
                    ("time", time.as_str()),
                ]);
                match &verdict {
                    None => {
                        verdict_case.write_empty()?;
                    }
                    Some((elem, kind, msg)) => {
                        let msg = xml_safe(msg);
                        verdict_case.write_inner_content(|w| -> std::io::Result<()> {
                            w.create_element(*elem)
                                .with_attributes([("message", msg.as_ref()), ("type", *kind)])
                                .write_text_content(BytesText::new(&msg))?;
                            Ok(())
                        })?;
                    }
                }
                for c in &list {
                    write_check(w, c)?;
                }
                Ok(())
            })?;
            Ok(())
        })?;
    let mut bytes = w.into_inner().into_inner();
    bytes.push(b'\n');
    String::from_utf8(bytes).map_err(std::io::Error::other)
}

fn write_check(w: &mut Writer<Cursor<Vec<u8>>>, c: &Check) -> std::io::Result<()> {
    let name = xml_safe(&c.name);
    let case = w.create_element("testcase").with_attributes([
        ("classname", c.kind.classname()),
        ("name", name.as_ref()),
        ("time", "0"),
    ]);
    if c.pass {
        case.write_empty()?;
        return Ok(());
    }
    let msg = xml_safe(&c.message()).into_owned();
    let body = format!("{name}: {msg}");
    case.write_inner_content(|w| -> std::io::Result<()> {
        w.create_element("failure")
            .with_attributes([("message", msg.as_str()), ("type", c.kind.classname())])
            .write_text_content(BytesText::new(&body))?;
        Ok(())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_xml_cannot_carry_are_dropped_and_the_rest_kept() {
        assert_eq!(xml_safe("a\u{1}b\u{1b}[31mc\td"), "ab[31mc\td");
        assert!(matches!(xml_safe("p95 < 30 & ✓"), Cow::Borrowed(_)));
        assert_eq!(xml_safe("\u{FFFE}x"), "x");
    }
}
