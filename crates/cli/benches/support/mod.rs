//! Shared by the CPU benchmarks: this process's CPU time
//! (`getrusage(RUSAGE_SELF)`), and a twin in a child process so that its CPU
//! is not counted.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// This process's CPU time so far: user + system, all threads.
pub fn cpu_time() -> Duration {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a full `rusage` into the pointer it is given.
    let ru = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr());
        ru.assume_init()
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// `vana-load twin up` in a child process; killed on drop.
pub struct TwinProcess {
    child: Child,
    dir: PathBuf,
}

impl Drop for TwinProcess {
    fn drop(&mut self) {
        // SIGTERM lets the twin stop anvil; then reap it.
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts `vana-load twin up` (inference at 1 % of its service time) in a
/// child process and waits for its manifest; `name` tells benches apart.
pub fn start_twin(name: &str) -> (TwinProcess, protocol::manifest::Manifest) {
    let dir = std::env::temp_dir().join(format!("vana-load-{name}-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("twin.toml");
    let mut f = std::fs::File::create(&config).unwrap();
    writeln!(f, "[inference]\ntime_scale = 0.01").unwrap();
    let manifest = dir.join("manifest.json");
    let child = Command::new(env!("CARGO_BIN_EXE_vana-load"))
        .args(["twin", "up", "--port", "0", "--config"])
        .arg(&config)
        .arg("--manifest")
        .arg(&manifest)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn vana-load twin up");
    let proc = TwinProcess { child, dir };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !manifest.exists() {
        assert!(
            Instant::now() < deadline,
            "the twin did not write its manifest within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let m = protocol::manifest::Manifest::load(&manifest).unwrap();
    (proc, m)
}
