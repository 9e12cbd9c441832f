//! Number formatting shared by the report renderers.
//!
//! There is no HTML escaping here: the report's HTML (`html.rs`), its SVG
//! charts (`svg.rs`) and the comparison page (`compare.rs`) are built with
//! maud, which escapes every interpolated value by default. `PreEscaped` is
//! used only for the constant stylesheets inside `<style>` (raw text in HTML,
//! where entities would not be decoded).

/// A latency in milliseconds, readable: `850 ms`, `2.41 s`, `3.2 min`.
pub fn ms(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let a = v.abs();
    if a >= 120_000.0 {
        format!("{:.1} min", v / 60_000.0)
    } else if a >= 1000.0 {
        format!("{:.2} s", v / 1000.0)
    } else if a >= 10.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v:.1} ms")
    }
}

/// An optional latency in milliseconds.
pub fn oms(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), ms)
}

/// Seconds since the schedule start: `t`-style `12.5 s` or `3.1 min`.
pub fn secs(v: f64) -> String {
    if v >= 600.0 {
        format!("{:.1} min", v / 60.0)
    } else {
        format!("{v:.1} s")
    }
}

/// A number with about three significant digits and thousands separators.
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let a = v.abs();
    if a >= 1000.0 {
        group(v.round() as i128)
    } else if a >= 100.0 || v == v.round() {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 0.01 {
        format!("{v:.2}")
    } else {
        format!("{v:.2e}")
    }
}

/// An integer with thousands separators.
pub fn group(v: i128) -> String {
    let s = v.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if v < 0 { format!("-{out}") } else { out }
}

/// An amount of VANA: up to 6 decimals for small amounts, trailing zeros trimmed.
pub fn vana(v: f64) -> String {
    if v.abs() >= 100.0 || v == 0.0 {
        return num(v);
    }
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "0" || s == "-0" {
        format!("{v:.2e}")
    } else {
        s.to_string()
    }
}

/// A measured value as judged against a limit: no thousands separators (it
/// also goes into JUnit messages), integers as they are, otherwise about four
/// significant digits with trailing zeros trimmed: `61.24`, `0.0123`, `1234.5`.
pub fn measured(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    if v == v.trunc() && v.abs() < 1e15 {
        return format!("{v:.0}");
    }
    let a = v.abs();
    let digits = if a >= 100.0 {
        1
    } else if a >= 1.0 {
        2
    } else {
        (3 - a.log10().floor() as i32).clamp(3, 12) as usize
    };
    let s = format!("{v:.digits$}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// A percentage from a ratio: `1.5 %`.
pub fn pct(r: f64) -> String {
    format!("{:.1} %", r * 100.0)
}

/// The users line of a summary, with the population of its error rate:
/// "N of M users succeeded, … ; error rate X of users that arrived; R journeys/s (peak P/s)".
pub fn users_sentence(s: &crate::schema::Summary) -> String {
    let u = &s.users;
    format!(
        "{} of {} users succeeded, {} failed, {} delayed, {} dropped; error rate {} of users that arrived; {} journeys/s (peak {}/s)",
        group(u.succeeded as i128),
        group(u.planned as i128),
        u.failed,
        u.delayed,
        u.dropped,
        s.rates.error_rate.map_or("–".into(), pct),
        num(s.throughput.flows_per_s),
        num(s.throughput.peak_flows_per_s)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(ms(850.0), "850 ms");
        assert_eq!(ms(2410.0), "2.41 s");
        assert_eq!(group(1234567), "1,234,567");
        assert_eq!(vana(0.00091), "0.00091");
        assert_eq!(vana(91.0), "91");
        assert_eq!(measured(61.2449), "61.24");
        assert_eq!(measured(0.0123), "0.0123");
        assert_eq!(measured(0.5), "0.5");
        assert_eq!(measured(1234.56), "1234.6");
        assert_eq!(measured(40.0), "40");
    }
}
