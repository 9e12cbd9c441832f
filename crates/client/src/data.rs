//! Synthetic user data, as in the plan's "Test Data Management": a JSON
//! document with `user_profile`, `activity_logs`, `preferences` and
//! `metadata{generated_at, test_run_id, data_size}`, in three sizes
//! (small 1 KB, medium 10 KB, large 100 KB).
//!
//! The document is a pure function of (run seed, user index, run id,
//! generation time): the same inputs give the same bytes, so a failing
//! journey can be replayed. Its content is realistic (names, e-mail, city,
//! ISO timestamps, typed events with pages and durations) and its compact
//! JSON encoding is sized to the target exactly (the last activity entry's
//! `detail` absorbs the remainder), never more than a few bytes off.

use std::fmt::Write as _;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The plan's three data sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DataSize {
    /// 1 KB (1024 bytes).
    #[default]
    Small,
    /// 10 KB (10240 bytes).
    Medium,
    /// 100 KB (102400 bytes).
    Large,
}

impl DataSize {
    /// Target size of the encoded JSON in bytes.
    pub fn bytes(self) -> usize {
        match self {
            DataSize::Small => 1024,
            DataSize::Medium => 10240,
            DataSize::Large => 102400,
        }
    }
}

impl std::str::FromStr for DataSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "small" => Ok(DataSize::Small),
            "medium" => Ok(DataSize::Medium),
            "large" => Ok(DataSize::Large),
            other => Err(format!(
                "unknown data size {other:?}: expected small, medium or large"
            )),
        }
    }
}

/// The generated document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    pub user_profile: UserProfile,
    pub activity_logs: Vec<ActivityEvent>,
    pub preferences: Preferences,
    pub metadata: Metadata,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserProfile {
    pub user_id: String,
    pub name: String,
    pub email: String,
    pub age: u32,
    pub city: String,
    pub country: String,
    pub occupation: String,
    pub joined_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityEvent {
    pub timestamp: String,
    pub event: String,
    pub page: String,
    pub duration_ms: u32,
    pub device: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preferences {
    pub language: String,
    pub theme: String,
    pub notifications: bool,
    pub newsletter: bool,
    pub interests: Vec<String>,
    pub timezone: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// Unix milliseconds (as `Date.now()` in the plan).
    pub generated_at: i64,
    pub test_run_id: String,
    /// The target size in bytes (1024, 10240 or 102400).
    pub data_size: usize,
}

/// Generates datasets for one run.
#[derive(Debug, Clone)]
pub struct DataGenerator {
    pub run_seed: u64,
    pub test_run_id: String,
    /// Fixed per run so that the output is deterministic (Unix ms).
    pub generated_at_ms: i64,
}

impl DataGenerator {
    pub fn new(run_seed: u64, test_run_id: impl Into<String>, generated_at_ms: i64) -> Self {
        Self {
            run_seed,
            test_run_id: test_run_id.into(),
            generated_at_ms,
        }
    }

    /// The document of user `user_index` at `size`.
    pub fn dataset(&self, user_index: u64, size: DataSize) -> Dataset {
        let mut rng = Rng::for_user(self.run_seed, user_index);
        let now = Utc
            .timestamp_millis_opt(self.generated_at_ms)
            .single()
            .unwrap_or_else(Utc::now);
        let profile = profile(&mut rng, user_index, now);
        let preferences = preferences(&mut rng);
        let metadata = Metadata {
            generated_at: self.generated_at_ms,
            test_run_id: self.test_run_id.clone(),
            data_size: size.bytes(),
        };
        let mut ds = Dataset {
            user_profile: profile,
            activity_logs: Vec::new(),
            preferences,
            metadata,
        };
        fill(&mut ds, &mut rng, now, size.bytes());
        ds
    }

    /// The compact JSON bytes of [`dataset`](Self::dataset): what gets encrypted and uploaded.
    pub fn bytes(&self, user_index: u64, size: DataSize) -> Vec<u8> {
        encode(&self.dataset(user_index, size))
    }
}

fn encode(ds: &Dataset) -> Vec<u8> {
    serde_json::to_vec(ds).expect("a Dataset always serialises")
}

/// Adds activity events, oldest first, until the encoding reaches `target`;
/// the last event's `detail` is sized so the total is exactly `target`
/// whenever the fixed part fits.
fn fill(ds: &mut Dataset, rng: &mut Rng, now: DateTime<Utc>, target: usize) {
    let mut len = encode(ds).len();
    // Events walk forward from 30 days before `now`.
    let mut t = now - chrono::Duration::days(30);
    loop {
        let mut ev = event(rng, &mut t);
        ev.detail.clear();
        // Bytes the event adds with an empty detail (plus a comma if not first).
        let sep = usize::from(!ds.activity_logs.is_empty());
        let bare = serde_json::to_vec(&ev).map(|v| v.len()).unwrap_or(0) + sep;
        let remaining = target.saturating_sub(len);
        if remaining < bare {
            break;
        }
        let approx = 20 + rng.below(60) as usize;
        let natural = detail_text(rng, approx);
        // Take the natural detail if another event still fits after it; else fill exactly.
        let fill_exact = remaining < bare + natural.len() + bare + 40;
        ev.detail = if fill_exact {
            padded(&natural, remaining - bare)
        } else {
            natural
        };
        len += bare + ev.detail.len();
        ds.activity_logs.push(ev);
        if fill_exact {
            break;
        }
    }
}

/// `text` cut or extended (with more words) to exactly `n` ASCII bytes.
fn padded(text: &str, n: usize) -> String {
    let mut s = String::with_capacity(n);
    while s.len() < n {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(text);
    }
    s.truncate(n);
    // Avoid a trailing space, which looks odd but is harmless; replace with a period.
    if s.ends_with(' ') {
        s.pop();
        s.push('.');
    }
    s
}

const FIRST: &[&str] = &[
    "Olivia", "Liam", "Emma", "Noah", "Amara", "Mateo", "Sofia", "Kenji", "Aisha", "Lucas", "Maya",
    "Ethan", "Zara", "Diego", "Priya", "Jonas", "Chloe", "Omar", "Ingrid", "Tariq", "Lena", "Hugo",
    "Nadia", "Felix",
];
const LAST: &[&str] = &[
    "Smith",
    "Garcia",
    "Nguyen",
    "Okafor",
    "Müller",
    "Rossi",
    "Kowalski",
    "Tanaka",
    "Silva",
    "Haddad",
    "Johansson",
    "Patel",
    "Dubois",
    "Kim",
    "Novak",
    "Moreau",
    "Costa",
    "Ivanova",
    "Brown",
    "Fischer",
];
const PLACES: &[(&str, &str, &str)] = &[
    ("Lisbon", "PT", "Europe/Lisbon"),
    ("Berlin", "DE", "Europe/Berlin"),
    ("Austin", "US", "America/Chicago"),
    ("Toronto", "CA", "America/Toronto"),
    ("Lagos", "NG", "Africa/Lagos"),
    ("Osaka", "JP", "Asia/Tokyo"),
    ("São Paulo", "BR", "America/Sao_Paulo"),
    ("Bangalore", "IN", "Asia/Kolkata"),
    ("Warsaw", "PL", "Europe/Warsaw"),
    ("Melbourne", "AU", "Australia/Melbourne"),
];
const JOBS: &[&str] = &[
    "software engineer",
    "nurse",
    "teacher",
    "designer",
    "accountant",
    "student",
    "chef",
    "architect",
    "data analyst",
    "photographer",
    "pharmacist",
    "electrician",
];
const EVENTS: &[&str] = &[
    "page_view",
    "search",
    "click",
    "purchase",
    "add_to_cart",
    "login",
    "logout",
    "share",
    "like",
    "comment",
    "video_play",
    "download",
];
const PAGES: &[&str] = &[
    "/home",
    "/feed",
    "/search",
    "/product/1842",
    "/product/77",
    "/cart",
    "/checkout",
    "/settings",
    "/profile",
    "/articles/data-ownership",
    "/videos/intro",
    "/help",
];
const DEVICES: &[&str] = &[
    "ios",
    "android",
    "web-chrome",
    "web-firefox",
    "web-safari",
    "desktop-app",
];
const INTERESTS: &[&str] = &[
    "cooking",
    "cycling",
    "photography",
    "machine learning",
    "jazz",
    "hiking",
    "chess",
    "gardening",
    "travel",
    "football",
    "podcasts",
    "painting",
    "running",
    "open source",
];
const WORDS: &[&str] = &[
    "viewed",
    "the",
    "latest",
    "recommendations",
    "for",
    "weekend",
    "plans",
    "and",
    "compared",
    "prices",
    "across",
    "three",
    "stores",
    "before",
    "saving",
    "a",
    "list",
    "of",
    "items",
    "to",
    "revisit",
    "later",
    "with",
    "friends",
];

fn pick<'a>(rng: &mut Rng, xs: &[&'a str]) -> &'a str {
    xs[rng.below(xs.len() as u64) as usize]
}

fn profile(rng: &mut Rng, user_index: u64, now: DateTime<Utc>) -> UserProfile {
    let first = pick(rng, FIRST);
    let last = pick(rng, LAST);
    let (city, country, _) = PLACES[rng.below(PLACES.len() as u64) as usize];
    let joined = now - chrono::Duration::days(30 + rng.below(1500) as i64);
    let ascii_last: String = last.chars().filter(|c| c.is_ascii_alphabetic()).collect();
    UserProfile {
        user_id: format!("user-{user_index:06}"),
        name: format!("{first} {last}"),
        email: format!(
            "{}.{}{}@example.com",
            first.to_lowercase(),
            ascii_last.to_lowercase(),
            rng.below(100)
        ),
        age: 18 + rng.below(60) as u32,
        city: city.into(),
        country: country.into(),
        occupation: pick(rng, JOBS).into(),
        joined_at: joined.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }
}

fn preferences(rng: &mut Rng) -> Preferences {
    let (_, _, tz) = PLACES[rng.below(PLACES.len() as u64) as usize];
    let n = 2 + rng.below(3) as usize;
    let mut interests: Vec<String> = Vec::with_capacity(n);
    while interests.len() < n {
        let i = pick(rng, INTERESTS).to_string();
        if !interests.contains(&i) {
            interests.push(i);
        }
    }
    Preferences {
        language: pick(rng, &["en", "pt", "de", "es", "ja", "fr"]).into(),
        theme: pick(rng, &["light", "dark", "system"]).into(),
        notifications: rng.below(2) == 1,
        newsletter: rng.below(3) == 0,
        interests,
        timezone: tz.into(),
    }
}

fn event(rng: &mut Rng, t: &mut DateTime<Utc>) -> ActivityEvent {
    *t += chrono::Duration::seconds(30 + rng.below(3600) as i64);
    ActivityEvent {
        timestamp: t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        event: pick(rng, EVENTS).into(),
        page: pick(rng, PAGES).into(),
        duration_ms: 200 + rng.below(120_000) as u32,
        device: pick(rng, DEVICES).into(),
        detail: String::new(),
    }
}

fn detail_text(rng: &mut Rng, approx: usize) -> String {
    let mut s = String::with_capacity(approx + 16);
    while s.len() < approx {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(pick(rng, WORDS));
    }
    let _ = write!(s, " #{}", rng.below(10_000));
    s
}

/// SplitMix64 seeded from SHA-256(run seed ‖ user index): stable across
/// platforms and crate versions, unlike `StdRng`.
struct Rng(u64);

impl Rng {
    fn for_user(run_seed: u64, user_index: u64) -> Self {
        let mut h = Sha256::new();
        h.update(b"vana-load/data/v1");
        h.update(run_seed.to_be_bytes());
        h.update(user_index.to_be_bytes());
        let d = h.finalize();
        Rng(u64::from_be_bytes(d[..8].try_into().expect("8 bytes")))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform-enough in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generator() -> DataGenerator {
        DataGenerator::new(42, "run-test", 1_767_225_600_000)
    }

    #[test]
    fn sizes_hit_the_target_within_a_few_percent() {
        let g = generator();
        for size in [DataSize::Small, DataSize::Medium, DataSize::Large] {
            for user in [0u64, 1, 7, 999, 14_999] {
                let n = g.bytes(user, size).len() as f64;
                let target = size.bytes() as f64;
                assert!(
                    (n - target).abs() / target <= 0.03,
                    "{size:?} user {user}: {n} bytes vs {target}"
                );
            }
        }
    }

    #[test]
    fn deterministic_per_seed_and_user_and_distinct_otherwise() {
        let g = generator();
        assert_eq!(g.bytes(5, DataSize::Medium), g.bytes(5, DataSize::Medium));
        assert_ne!(g.bytes(5, DataSize::Medium), g.bytes(6, DataSize::Medium));
        let other_seed = DataGenerator::new(43, "run-test", 1_767_225_600_000);
        assert_ne!(
            g.bytes(5, DataSize::Small),
            other_seed.bytes(5, DataSize::Small)
        );
    }

    #[test]
    fn has_the_plans_fields_and_realistic_content() {
        let g = generator();
        let bytes = g.bytes(3, DataSize::Medium);
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        for k in ["user_profile", "activity_logs", "preferences", "metadata"] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        assert_eq!(v["metadata"]["data_size"], 10240);
        assert_eq!(v["metadata"]["test_run_id"], "run-test");
        assert_eq!(v["metadata"]["generated_at"], 1_767_225_600_000i64);
        let ds: Dataset = serde_json::from_slice(&bytes).unwrap();
        assert!(ds.user_profile.name.contains(' '));
        assert!(ds.user_profile.email.ends_with("@example.com"));
        assert!(
            ds.activity_logs.len() > 20,
            "{} events",
            ds.activity_logs.len()
        );
        // Timestamps parse and increase.
        let ts: Vec<DateTime<Utc>> = ds
            .activity_logs
            .iter()
            .map(|e| e.timestamp.parse::<DateTime<Utc>>().unwrap())
            .collect();
        assert!(ts.windows(2).all(|w| w[0] < w[1]));
        assert!(
            ds.activity_logs
                .iter()
                .all(|e| EVENTS.contains(&e.event.as_str()))
        );
    }

    #[test]
    fn data_size_parses() {
        assert_eq!("large".parse::<DataSize>().unwrap(), DataSize::Large);
        assert!(
            "huge"
                .parse::<DataSize>()
                .unwrap_err()
                .contains("small, medium or large")
        );
    }
}
