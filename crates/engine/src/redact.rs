//! Secrets out of everything a run writes or shows: one redaction, one strength,
//! for `events.jsonl`, `details.json`, `config.json` and the reports alike.
//!
//! - [`redact_url`] keeps a URL's scheme and host and drops its userinfo, its
//!   query, and a path holding a key-looking segment (a long alphanumeric run,
//!   as in `https://rpc.example.com/v2/<api key>`).
//! - [`redact_text`] hides, anywhere in a message: every URL (as [`redact_url`]),
//!   the token after `Bearer`, JWTs, the value of `key=`/`token=`/`secret=`-style
//!   parameters and of JSON fields `"apiKey": "…"` (any name ending in `key`,
//!   `token`, `secret`, `password`, `jwt` or `auth`), and 64-hex-digit strings with or without `0x` (private keys look
//!   like that, and so do transaction hashes, which are hidden too).
//!   BIP-39 mnemonics are not recognised.
//!
//! Secrets are replaced by [`MARK`]; redacting twice gives the same text as once.

/// What a secret is replaced by.
pub const MARK: &str = "<redacted>";

/// Hides credentials in a URL: userinfo, the query, and any path with a segment
/// that looks like an API key (16 or more of `[A-Za-z0-9_-]`), keeping scheme
/// and host. A string without `scheme://` is hidden whole.
pub fn redact_url(u: &str) -> String {
    let Some((scheme, rest)) = u.split_once("://") else {
        return MARK.into();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = authority.rsplit('@').next().unwrap_or(authority);
    let keyish = |seg: &str| {
        seg.len() >= 16
            && seg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    let tail = if tail.contains(['?', '#']) || tail.split('/').any(keyish) {
        "/<redacted>"
    } else {
        tail
    };
    format!("{scheme}://{host}{tail}")
}

/// Hides secrets in free text (an error message, a log line): URLs, bearer
/// tokens, JWTs, secret-named parameters and 64-hex-digit keys. See the module doc.
pub fn redact_text(msg: &str) -> String {
    let s = urls(msg);
    let s = bearer(&s);
    let s = jwts(&s);
    let s = params(&s);
    hex_keys(&s)
}

/// Ends a URL inside text.
fn url_stop(c: char) -> bool {
    c.is_whitespace() || "\"'`<>(){}|\\^".contains(c)
}

/// Every `scheme://…` in the text through [`redact_url`].
fn urls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("://") {
        let scheme_len = rest[..i]
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_alphanumeric() || "+-.".contains(*c))
            .count();
        let start = i - scheme_len;
        let len = rest[i..].find(url_stop).unwrap_or(rest.len() - i);
        let url = rest[start..i + len].trim_end_matches(['.', ',', ';', ':', '!', '?', ']']);
        out.push_str(&rest[..start]);
        if scheme_len == 0 {
            // `://` without a scheme: not a URL, but whatever follows may still be one.
            out.push_str("://");
            rest = &rest[i + 3..];
            continue;
        }
        out.push_str(&redact_url(url));
        rest = &rest[start + url.len()..];
    }
    out.push_str(rest);
    out
}

/// Splits text into words and the whitespace after them, in order.
fn words(s: &str) -> impl Iterator<Item = (&str, &str)> {
    s.split_inclusive(char::is_whitespace).map(|piece| {
        let w = piece.trim_end_matches(char::is_whitespace);
        (w, &piece[w.len()..])
    })
}

/// The token after `Bearer` (token68 characters: `A-Za-z0-9-._~+/=`).
fn bearer(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut after_bearer = false;
    for (w, sp) in words(s) {
        if w.is_empty() {
            out.push_str(sp);
            continue;
        }
        let token = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
        match (after_bearer, w.find(token)) {
            (true, Some(a)) if !w.contains(MARK) => {
                let b = w[a..].find(|c| !token(c)).map_or(w.len(), |b| a + b);
                out.push_str(&w[..a]);
                out.push_str(MARK);
                out.push_str(&w[b..]);
            }
            _ => out.push_str(w),
        }
        let tail: String = w
            .chars()
            .rev()
            .skip_while(|c| !c.is_ascii_alphabetic())
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        after_bearer = tail.eq_ignore_ascii_case("reraeb");
        out.push_str(sp);
    }
    out
}

/// Replaces the spans `find` returns, left to right; `find` gets the rest of the
/// text and whether it starts at a word boundary, and returns `(start, end)`.
fn replace_spans(s: &str, find: impl Fn(&str) -> Option<(usize, usize)>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some((a, b)) = find(rest) {
        out.push_str(&rest[..a]);
        out.push_str(MARK);
        rest = &rest[b..];
    }
    out.push_str(rest);
    out
}

/// Runs of characters satisfying `inner`, bounded by characters that do not,
/// from the start of `s`: `(start, end)` of each.
fn runs(s: &str, inner: impl Fn(char) -> bool) -> Vec<(usize, usize)> {
    let mut v = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices() {
        match (inner(c), start) {
            (true, None) => start = Some(i),
            (false, Some(a)) => {
                v.push((a, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(a) = start {
        v.push((a, s.len()));
    }
    v
}

/// JWTs: `eyJ…` with three non-empty base64url parts.
fn jwts(s: &str) -> String {
    let b64 = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.';
    replace_spans(s, |rest| {
        runs(rest, b64).into_iter().find_map(|(a, b)| {
            let run = &rest[a..b];
            let i = run.find("eyJ")?;
            let jwt = run[i..].trim_end_matches('.');
            let parts: Vec<&str> = jwt.split('.').collect();
            (parts.len() == 3 && parts.iter().all(|p| !p.is_empty()) && jwt.len() > 20)
                .then(|| (a + i, a + i + jwt.len()))
        })
    })
}

/// Whether a parameter name is a secret's: `apikey`, `api_key`, `access_token`,
/// `client_secret`, `password`, `jwt`, `auth`, …
fn secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "key", "token", "secret", "password", "passwd", "jwt", "auth",
    ]
    .iter()
    .any(|s| n.ends_with(s))
}

/// The parameter name that ends `t`: its trailing run of `[A-Za-z0-9_.-]`.
fn name_before(t: &str) -> &str {
    let n = t
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_alphanumeric() || "_-.".contains(*c))
        .count();
    &t[t.len() - n..]
}

/// The value of `name=value`, or of a JSON field `"name": "value"` (also with
/// escaped quotes), where `name` is a secret's.
fn params(s: &str) -> String {
    let value_stop = |c: char| c.is_whitespace() || "&\"'`<>,;()[]{}\\".contains(c);
    replace_spans(s, |rest| {
        rest.match_indices(['=', ':']).find_map(|(at, sep)| {
            let (name, v0, len) = if sep == "=" {
                let v0 = at + 1;
                let len = rest[v0..].find(value_stop).unwrap_or(rest.len() - v0);
                (name_before(&rest[..at]), v0, len)
            } else {
                // `"name": "value"`, or `\"name\": \"value\"` inside an escaped string.
                let before = rest[..at].trim_end();
                let before = before.strip_suffix('"')?;
                let name = name_before(before.strip_suffix('\\').unwrap_or(before));
                let after = rest[at + 1..].trim_start();
                let after = after.strip_prefix('\\').unwrap_or(after);
                let value = after.strip_prefix('"')?;
                let v0 = rest.len() - value.len();
                let len = value.find(['"', '\\']).unwrap_or(value.len());
                (name, v0, len)
            };
            let value = &rest[v0..v0 + len];
            (secret_name(name) && !value.is_empty() && !value.contains(MARK))
                .then_some((v0, v0 + len))
        })
    })
}

/// 64 hex digits, with or without `0x`, standing alone (not part of a longer
/// alphanumeric run).
fn hex_keys(s: &str) -> String {
    replace_spans(s, |rest| {
        runs(rest, |c| c.is_ascii_alphanumeric())
            .into_iter()
            .find(|&(a, b)| {
                let w = &rest[a..b];
                let hex = w.strip_prefix("0x").unwrap_or(w);
                hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit())
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl";

    #[test]
    fn urls_keep_scheme_and_host_only() {
        assert_eq!(
            redact_url("https://user:secret@rpc.example.org/v2/abcdef0123456789abcdef"),
            "https://rpc.example.org/<redacted>"
        );
        assert_eq!(redact_url("http://127.0.0.1:8545"), "http://127.0.0.1:8545");
        assert_eq!(
            redact_url("https://rpc.example.org/v1/rpc"),
            "https://rpc.example.org/v1/rpc"
        );
        // A query straight after the host is still a query.
        assert_eq!(
            redact_url("https://rpc.example.org?apikey=SECRET123"),
            "https://rpc.example.org/<redacted>"
        );
        assert_eq!(redact_url("rpc.example.org/KEY"), "<redacted>");
        assert_eq!(
            redact_text("[http://[::1]:8545/abcdef0123456789abcdef] and wss://u@h:443/?key=1#f."),
            "[http://[::1]:8545/<redacted>] and wss://h:443/<redacted>."
        );
    }

    #[test]
    fn text_loses_every_secret_and_keeps_the_hosts() {
        let key = format!("0x{}", "ab".repeat(32));
        let bare_key = "cd".repeat(32);
        let msg = format!(
            "POST https://rpc.example.com/v1/0123456789abcdef0123456789abcdef failed: 401; \
             retry (https://api.example.org/x?apikey=SECRET123), then ?apikey=SECRET456&chain=1 \
             with Authorization: Bearer abc.def and token {JWT} via https://user:pass@host.example.net/ \
             {{\"authorization\":\"Bearer xyz+/=\",\"access_token\":\"t0k3n\"}} \
             signer {key} or {bare_key}. client_secret=s3cr3t; password=hunter2 \
             body \"{{\\\"apiKey\\\": \\\"pl41n\\\"}}\""
        );
        let out = redact_text(&msg);
        for s in [
            "0123456789abcdef0123456789abcdef",
            "SECRET123",
            "SECRET456",
            "abc.def",
            "xyz+/=",
            JWT,
            "eyJ",
            "user",
            "pass@",
            &key,
            &bare_key,
            "s3cr3t",
            "hunter2",
            "t0k3n",
            "pl41n",
        ] {
            assert!(!out.contains(s), "`{s}` kept in {out}");
        }
        for s in [
            "POST https://rpc.example.com/<redacted> failed: 401;",
            "(https://api.example.org/<redacted>)",
            "?apikey=<redacted>&chain=1",
            "Authorization: Bearer <redacted> and token <redacted> via https://host.example.net/ ",
            "signer <redacted> or <redacted>.",
            "client_secret=<redacted>; password=<redacted>",
            r#"{"authorization":"Bearer <redacted>","access_token":"<redacted>"}"#,
            r#"\"apiKey\": \"<redacted>\""#,
        ] {
            assert!(out.contains(s), "`{s}` missing in {out}");
        }
        assert_eq!(redact_text(&out), out, "idempotent");
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        for m in [
            "401 from https://api.pinata.cloud: rejected",
            "timeout after 30 s waiting for receipt (nonce=7, gas=21000)",
            "the basic check failed: {\"status\": \"denied\", \"token\": 7}",
            "0x1234 is not 64 digits; a=b c:// d",
            "",
            "  two  spaces \n and a newline ",
        ] {
            assert_eq!(redact_text(m), m);
        }
        // A longer hex run (calldata, a signature) is not a key.
        let calldata = format!("0x{}", "ab".repeat(40));
        assert_eq!(redact_text(&calldata), calldata);
    }

    #[test]
    fn redacting_twice_is_redacting_once() {
        let inputs = [
            format!("Bearer {JWT}"),
            "Bearer <redacted>".to_string(),
            "Bearer".to_string(),
            "https://a.b/<redacted>?x=1".to_string(),
            "key=<redacted>&token=".to_string(),
            "ftp://u:p@h:21/p?q#f https://x.y/z".to_string(),
            format!("{}{}", "0x", "0".repeat(64)),
            "apikey=a=b=c".to_string(),
            "://x.y/secretsecretsecretsecret bearer bearer tok".to_string(),
        ];
        for m in inputs {
            let once = redact_text(&m);
            assert_eq!(redact_text(&once), once, "from {m:?}");
        }
    }
}
