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
//!
//! The run may be allowed less than the whole machine: pinned to some CPUs
//! (`taskset`, `Cpus_allowed_list` in `/proc/self/status`) or given a CPU
//! quota by its cgroup (a container's CPU limit: cgroup v2 `cpu.max`, v1
//! `cpu.cfs_quota_us`). That limit is read once and recorded in every sample
//! ([`CpuLimit`]), so that a run which used all the CPU it may use is seen as
//! saturated even when the machine's other cores were idle.

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
    /// The CPU this run may use, when it is less than the online cores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_limit: Option<CpuLimit>,
}

/// CPU allowed to the run (vana-load and the processes it starts, which
/// inherit it), when less than the machine's online cores.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct CpuLimit {
    /// Cores' worth of CPU (a cgroup quota may be a fraction of a core).
    pub cores: f64,
    /// What sets it: `affinity` (the CPUs the process may run on) or
    /// `cgroup` (a CPU quota, e.g. a container's CPU limit).
    pub by: String,
}

impl CpuLimit {
    /// "1 core (CPU affinity)", "1.5 cores (cgroup CPU quota)".
    pub fn describe(&self) -> String {
        let n = if self.cores.fract() == 0.0 {
            format!("{:.0}", self.cores)
        } else {
            format!("{:.2}", self.cores)
        };
        let unit = if self.cores == 1.0 { "core" } else { "cores" };
        let by = match self.by.as_str() {
            "affinity" => "CPU affinity",
            "cgroup" => "cgroup CPU quota",
            other => other,
        };
        format!("{n} {unit} ({by})")
    }
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
    cpu_limit: Option<CpuLimit>,
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
            cpu_limit: std::fs::read_to_string("/proc/stat")
                .ok()
                .and_then(|stat| cpu_limit(count_cores(&stat))),
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
            cpu_limit: self.cpu_limit.clone(),
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

/// The CPU this process may use, when less than `online` cores: the smaller
/// of its CPU affinity and its cgroup's CPU quota.
fn cpu_limit(online: u32) -> Option<CpuLimit> {
    let affinity = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .and_then(count_cpu_list)
        })
        .map(|n| CpuLimit {
            cores: f64::from(n),
            by: "affinity".into(),
        });
    let quota = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|c| cgroup_quota_cores(&c, std::path::Path::new("/sys/fs/cgroup")))
        .map(|cores| CpuLimit {
            cores,
            by: "cgroup".into(),
        });
    [affinity, quota]
        .into_iter()
        .flatten()
        .filter(|l| online == 0 || l.cores < f64::from(online))
        .min_by(|a, b| a.cores.total_cmp(&b.cores))
}

/// CPUs in a list like `0-3,8,10-11` (`Cpus_allowed_list`).
fn count_cpu_list(list: &str) -> Option<u32> {
    let mut n = 0;
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        n += match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?);
                b.checked_sub(a)? + 1
            }
            None => part.trim().parse::<u32>().map(|_| 1).ok()?,
        };
    }
    (n > 0).then_some(n)
}

/// The tightest CPU quota, in cores, on the path of this process's cgroup
/// (`/proc/self/cgroup`'s text) under `root`: cgroup v2 `cpu.max` of the
/// cgroup and each ancestor, else v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`.
/// `None` when no quota is set or nothing can be read.
fn cgroup_quota_cores(proc_cgroup: &str, root: &std::path::Path) -> Option<f64> {
    let read = |p: std::path::PathBuf| std::fs::read_to_string(p).ok();
    let mut best: Option<f64> = None;
    let mut keep = |q: Option<f64>| {
        if let Some(q) = q {
            best = Some(best.map_or(q, |b| b.min(q)));
        }
    };
    for line in proc_cgroup.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let rel = path.trim_start_matches('/');
        if controllers.is_empty() {
            for dir in self_and_ancestors(root, rel) {
                keep(read(dir.join("cpu.max")).and_then(|s| parse_cpu_max(&s)));
            }
        } else if controllers.split(',').any(|c| c == "cpu") {
            // Mounted under the controllers' names, often also as `cpu`.
            let mut mounts = vec![controllers];
            if controllers != "cpu" {
                mounts.push("cpu");
            }
            for mount in mounts {
                for dir in self_and_ancestors(&root.join(mount), rel) {
                    let quota = read(dir.join("cpu.cfs_quota_us"));
                    let period = read(dir.join("cpu.cfs_period_us"));
                    keep(quota.zip(period).and_then(|(q, p)| parse_cfs(&q, &p)));
                }
            }
        }
    }
    best
}

/// `base/rel` and each of its parents up to `base`.
fn self_and_ancestors(base: &std::path::Path, rel: &str) -> Vec<std::path::PathBuf> {
    let mut dirs = Vec::new();
    let mut p = std::path::PathBuf::from(rel);
    loop {
        dirs.push(base.join(&p));
        if !p.pop() {
            return dirs;
        }
    }
}

/// cgroup v2 `cpu.max`: `"<quota> <period>"` in µs, or `"max <period>"`.
fn parse_cpu_max(s: &str) -> Option<f64> {
    let mut f = s.split_whitespace();
    let quota = f.next()?.parse::<f64>().ok()?;
    let period = f
        .next()
        .map_or(Some(100_000.0), |p| p.parse::<f64>().ok())?;
    (quota > 0.0 && period > 0.0).then(|| quota / period)
}

/// cgroup v1 `cpu.cfs_quota_us` (-1: none) and `cpu.cfs_period_us`.
fn parse_cfs(quota: &str, period: &str) -> Option<f64> {
    let quota = quota.trim().parse::<f64>().ok()?;
    let period = period.trim().parse::<f64>().ok()?;
    (quota > 0.0 && period > 0.0).then(|| quota / period)
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
    fn cpu_lists_and_quotas_parse() {
        assert_eq!(count_cpu_list(" 0-1\n"), Some(2));
        assert_eq!(count_cpu_list("0-3,8,10-11"), Some(7));
        assert_eq!(count_cpu_list("5"), Some(1));
        assert_eq!(count_cpu_list("3-1"), None);
        assert_eq!(count_cpu_list("x"), None);
        assert_eq!(parse_cpu_max("150000 100000\n"), Some(1.5));
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cfs("-1\n", "100000\n"), None);
        assert_eq!(parse_cfs("50000\n", "100000\n"), Some(0.5));
        let one = CpuLimit {
            cores: 1.0,
            by: "affinity".into(),
        };
        assert_eq!(one.describe(), "1 core (CPU affinity)");
        let part = CpuLimit {
            cores: 1.5,
            by: "cgroup".into(),
        };
        assert_eq!(part.describe(), "1.50 cores (cgroup CPU quota)");
    }

    #[test]
    fn the_tightest_cgroup_quota_on_the_path_is_found() {
        let root = tempfile::tempdir().unwrap();
        let put = |rel: &str, file: &str, text: &str| {
            let d = root.path().join(rel);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(file), text).unwrap();
        };
        // v2: the pod allows 2 cores, the container within it 0.5.
        put("kubepods/pod1", "cpu.max", "200000 100000\n");
        put("kubepods/pod1/ctr", "cpu.max", "50000 100000\n");
        put("", "cpu.max", "max 100000\n");
        assert_eq!(
            cgroup_quota_cores("0::/kubepods/pod1/ctr\n", root.path()),
            Some(0.5)
        );
        // Only an ancestor sets one.
        put("kubepods/pod2/ctr", "cpu.max", "max 100000\n");
        put("kubepods/pod2", "cpu.max", "300000 100000\n");
        assert_eq!(
            cgroup_quota_cores("0::/kubepods/pod2/ctr\n", root.path()),
            Some(3.0)
        );
        // None set anywhere; a malformed line is skipped.
        assert_eq!(cgroup_quota_cores("garbage\n0::/\n", root.path()), None);
        // v1: the cpu controller's own hierarchy.
        put("cpu,cpuacct/docker/abc", "cpu.cfs_quota_us", "150000\n");
        put("cpu,cpuacct/docker/abc", "cpu.cfs_period_us", "100000\n");
        assert_eq!(
            cgroup_quota_cores(
                "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n",
                root.path()
            ),
            Some(1.5)
        );
    }

    const PINNED_CHILD: &str = "VANA_LOAD_SYSMON_PINNED_CHILD";

    #[test]
    fn a_run_pinned_to_one_cpu_records_a_limit_of_one_core() {
        if std::env::var_os(PINNED_CHILD).is_some() {
            // The child: pinned by its parent, it reports what it records.
            let s = SysMon::new(Vec::new()).sample();
            println!("LIMIT={}", serde_json::to_string(&s.cpu_limit).unwrap());
            return;
        }
        let online = count_cores(&std::fs::read_to_string("/proc/stat").unwrap());
        // Unpinned, no affinity limit is recorded below the online cores
        // (a cgroup quota may still be: then it is below them).
        if let Some(l) = SysMon::new(Vec::new()).sample().cpu_limit {
            assert!(l.cores < f64::from(online) && l.by == "cgroup", "{l:?}");
        }
        assert!(online >= 2, "needs two cores to pin a run to one");
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new(std::env::current_exe().unwrap());
        child
            .args([
                "--exact",
                "sysmon::tests::a_run_pinned_to_one_cpu_records_a_limit_of_one_core",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(PINNED_CHILD, "1");
        // SAFETY: between fork and exec the hook only calls the
        // async-signal-safe sched_setaffinity on a stack value.
        unsafe {
            child.pre_exec(|| {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(0, &mut set);
                if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let out = child.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let limit = text
            .lines()
            .find_map(|l| l.split_once("LIMIT=").map(|(_, json)| json))
            .unwrap_or_else(|| panic!("child said no limit: {text}"));
        let limit: Option<CpuLimit> = serde_json::from_str(limit).unwrap();
        let limit = limit.expect("a limit recorded");
        assert_eq!(limit.cores, 1.0, "{limit:?}");
        assert!(limit.by == "affinity" || limit.by == "cgroup", "{limit:?}");
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
