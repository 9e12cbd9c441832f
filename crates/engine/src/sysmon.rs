//! The load generator watches itself: the host's CPU, and the CPU and resident
//! memory of vana-load and of the processes it names (the twin's anvil, for
//! one), sampled at each snapshot into the time series, so the report can tell
//! a saturated service from a saturated machine.
//!
//! Hand-written over Linux's `/proc` rather than a crate: the host's busy share
//! is two reads of `/proc/stat`, a process's CPU time and start time one read
//! of `/proc/<pid>/stat` and its RSS one of `/proc/<pid>/statm`; `libc` (already
//! a workspace dependency) gives the clock tick and the page size. Where `/proc`
//! cannot be read (not Linux, a locked-down container) every field is empty and
//! nothing panics.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// The name this process is recorded under.
pub const SELF_NAME: &str = "vana-load";

/// One sample of the machine and the watched processes.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(default)]
pub struct SystemSample {
    /// Busy share of all cores since the previous sample, 0–100 (None on the first).
    pub host_cpu_pct: Option<f64>,
    /// Online cores (0 when unknown).
    pub host_cores: u32,
    /// By name: `vana-load`, then the processes given to [`SysMon::new`] still running.
    pub processes: BTreeMap<String, ProcSample>,
}

/// One process in a [`SystemSample`].
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(default)]
pub struct ProcSample {
    /// CPU since the previous sample, 100 = one core busy (None on the first).
    pub cpu_pct: Option<f64>,
    /// Resident memory now, in MiB (2^20 bytes).
    pub rss_mb: Option<f64>,
}

/// A watched process: its name, pid, start time (to notice a reused pid) and
/// CPU ticks at the previous sample.
#[derive(Debug, Clone)]
struct Watched {
    name: String,
    pid: u32,
    start_ticks: Option<u64>,
    prev_ticks: Option<u64>,
}

/// Samples the host and a set of processes; see [`SysMon::sample`].
#[derive(Debug, Clone)]
pub struct SysMon {
    watched: Vec<Watched>,
    /// Host (busy, total) ticks at the previous sample.
    prev_host: Option<(u64, u64)>,
    prev_at: Option<Instant>,
    clk_tck: f64,
    page_bytes: f64,
}

impl SysMon {
    /// Watches this process (named "vana-load") plus `processes` (name, pid), e.g. ("anvil", 1234).
    pub fn new(processes: Vec<(String, u32)>) -> SysMon {
        let me = Watched {
            name: SELF_NAME.to_string(),
            pid: std::process::id(),
            start_ticks: None,
            prev_ticks: None,
        };
        let others = processes.into_iter().map(|(name, pid)| Watched {
            name,
            pid,
            start_ticks: None,
            prev_ticks: None,
        });
        SysMon {
            watched: std::iter::once(me).chain(others).collect(),
            prev_host: None,
            prev_at: None,
            clk_tck: clock_ticks_per_s(),
            page_bytes: page_size(),
        }
    }

    /// CPU shares since the previous call (None on the first call for CPU), RSS now. A process that exited is left out.
    pub fn sample(&mut self) -> SystemSample {
        let now = Instant::now();
        let elapsed = self.prev_at.map(|t| now.duration_since(t).as_secs_f64());
        self.prev_at = Some(now);
        let stat = std::fs::read_to_string("/proc/stat").ok();
        let host = stat.as_deref().and_then(host_ticks);
        let host_cpu_pct = match (self.prev_host, host) {
            (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => {
                Some((100.0 * b1.saturating_sub(b0) as f64 / (t1 - t0) as f64).clamp(0.0, 100.0))
            }
            _ => None,
        };
        if host.is_some() {
            self.prev_host = host;
        }
        let mut processes = BTreeMap::new();
        let (clk_tck, page_bytes) = (self.clk_tck, self.page_bytes);
        self.watched.retain_mut(|w| {
            let Some(st) = proc_stat(w.pid) else {
                // Gone (or never readable): left out from now on.
                return false;
            };
            if st.zombie || w.start_ticks.is_some_and(|s| s != st.start_ticks) {
                // Exited, or its pid now belongs to another process.
                return false;
            }
            w.start_ticks = Some(st.start_ticks);
            let cpu_pct = match (w.prev_ticks, elapsed) {
                (Some(p), Some(dt)) if dt > 0.0 && clk_tck > 0.0 => {
                    Some(100.0 * st.cpu_ticks.saturating_sub(p) as f64 / clk_tck / dt)
                }
                _ => None,
            };
            w.prev_ticks = Some(st.cpu_ticks);
            let rss_mb = proc_rss_pages(w.pid).map(|p| p as f64 * page_bytes / 1_048_576.0);
            processes.insert(w.name.clone(), ProcSample { cpu_pct, rss_mb });
            true
        });
        SystemSample {
            host_cpu_pct,
            host_cores: stat.as_deref().map_or(0, count_cores),
            processes,
        }
    }
}

/// `(busy, total)` ticks of the aggregate `cpu` line of `/proc/stat`; idle and
/// iowait are not busy, guest time is already in user time.
fn host_ticks(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map_while(|x| x.parse().ok())
        .collect();
    if v.len() < 4 {
        return None;
    }
    // user nice system idle iowait irq softirq steal [guest guest_nice]
    let total: u64 = v.iter().take(8).sum();
    let idle = v[3] + v.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// Lines `cpu0`, `cpu1`, … of `/proc/stat`: the online cores.
fn count_cores(stat: &str) -> u32 {
    stat.lines()
        .filter(|l| l.starts_with("cpu") && l[3..].starts_with(|c: char| c.is_ascii_digit()))
        .count() as u32
}

/// What `/proc/<pid>/stat` says of a process.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ProcStat {
    zombie: bool,
    /// utime + stime, in clock ticks.
    cpu_ticks: u64,
    /// Start time after boot, in clock ticks.
    start_ticks: u64,
}

fn proc_stat(pid: u32) -> Option<ProcStat> {
    parse_proc_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Parses `/proc/<pid>/stat`: the command name may hold spaces and
/// parentheses, so the fields are counted from its last `)`.
fn parse_proc_stat(s: &str) -> Option<ProcStat> {
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is field 3 (state); utime is field 14, stime 15, starttime 22.
    let num = |field: usize| f.get(field - 3)?.parse::<u64>().ok();
    Some(ProcStat {
        zombie: matches!(f.first(), Some(&"Z") | Some(&"X") | Some(&"x")),
        cpu_ticks: num(14)? + num(15)?,
        start_ticks: num(22)?,
    })
}

/// Resident pages of a process (`/proc/<pid>/statm`, second field).
fn proc_rss_pages(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/statm"))
        .ok()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[cfg(unix)]
fn clock_ticks_per_s() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if v > 0 { v as f64 } else { 100.0 }
}

#[cfg(not(unix))]
fn clock_ticks_per_s() -> f64 {
    100.0
}

#[cfg(unix)]
fn page_size() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if v > 0 { v as f64 } else { 4096.0 }
}

#[cfg(not(unix))]
fn page_size() -> f64 {
    4096.0
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_busy_thread_shows_in_this_process_cpu_and_host_cpu_stays_in_range() {
        let mut m = SysMon::new(Vec::new());
        let first = m.sample();
        let me = &first.processes[SELF_NAME];
        assert_eq!(me.cpu_pct, None, "no CPU share on the first sample");
        assert!(me.rss_mb.is_some_and(|r| r > 1.0), "{me:?}");
        assert_eq!(first.host_cpu_pct, None);
        assert!(first.host_cores >= 1);
        // Spin until this process has used 300 ms of CPU (however busy the
        // machine), then compare the sampled share with the process's own
        // CPU clock over the same stretch: a check of the arithmetic, not of speed.
        let cpu_clock = || {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: clock_gettime writes into the timespec we own.
            unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
            Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
        };
        let (c0, w0) = (cpu_clock(), Instant::now());
        let mut x = 0u64;
        while cpu_clock() - c0 < Duration::from_millis(300)
            && w0.elapsed() < Duration::from_secs(30)
        {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let (c1, w1) = (cpu_clock(), Instant::now());
        let second = m.sample();
        let cpu = second.processes[SELF_NAME].cpu_pct.expect("second sample");
        let expected = (c1 - c0).as_secs_f64() / (w1 - w0).as_secs_f64() * 100.0;
        assert!(
            (cpu - expected).abs() <= 0.3 * expected + 5.0,
            "sampled vana-load CPU {cpu:.1} %, its own clock says {expected:.1} %"
        );
        let host = second.host_cpu_pct.expect("second sample");
        assert!((0.0..=100.0).contains(&host), "host CPU {host} %");
    }

    #[test]
    fn a_child_is_sampled_by_pid_and_left_out_once_it_exits() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("spawn sleep");
        let mut m = SysMon::new(vec![("sleep".into(), child.id())]);
        let s = m.sample();
        let p = s.processes.get("sleep").expect("the child is sampled");
        assert!(p.rss_mb.is_some_and(|r| r > 0.0), "{p:?}");
        assert!(m.sample().processes.contains_key("sleep"));
        child.kill().expect("kill sleep");
        child.wait().expect("reap sleep");
        let after = m.sample();
        assert!(!after.processes.contains_key("sleep"), "{after:?}");
        assert!(after.processes.contains_key(SELF_NAME));
    }

    #[test]
    fn an_unknown_pid_is_left_out() {
        // Above the kernel's pid_max (at most 2^22).
        let mut m = SysMon::new(vec![("ghost".into(), 4_194_305 + 7)]);
        assert!(!m.sample().processes.contains_key("ghost"));
    }

    #[test]
    fn proc_stat_parses_names_with_spaces_and_parentheses() {
        let line =
            "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 1 0 9999 1000 10 0 0";
        let st = parse_proc_stat(line).expect("parses");
        assert_eq!((st.zombie, st.cpu_ticks, st.start_ticks), (false, 12, 9999));
        let z = parse_proc_stat(&line.replace(") S ", ") Z ")).expect("parses");
        assert!(z.zombie);
        let stat = "cpu  10 0 10 70 10 0 0 0 0 0\ncpu0 5 0 5 35 5 0 0 0 0 0\ncpu1 5 0 5 35 5 0 0 0 0 0\nintr 1\n";
        assert_eq!(host_ticks(stat), Some((20, 100)));
        assert_eq!(count_cores(stat), 2);
    }
}
