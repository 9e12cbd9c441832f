//! Finding (and, if allowed, installing) the external tools the twin runs: anvil.
//!
//! The search order is fixed and documented:
//! 1. an explicit path (`--anvil PATH`): used as given, never replaced by another;
//! 2. `anvil` on `$PATH`;
//! 3. the pinned npm package in the repository, at
//!    `<repo>/tools/node_modules/@foundry-rs/anvil-<os>-<arch>/bin/anvil`.
//!
//! The repository root is found from the current directory, from the
//! executable's location and from this crate's source directory at compile
//! time (in that order), as the first ancestor holding `tools/package.json`
//! of the `vana-load-tools` package. When anvil is found nowhere, [`ensure_anvil`]
//! runs `npm ci --prefix <repo>/tools` (announcing it on stderr) or fails with
//! an error that gives the exact command to run.
//!
//! The npm package's `bin` entry (`@foundry-rs/anvil/bin.mjs`) is a node
//! wrapper that spawns the real binary as a grandchild; the twin always runs
//! the native binary directly so that stopping it leaves no process behind.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The package name in `tools/package.json` that marks the repository root.
const TOOLS_PACKAGE_NAME: &str = "vana-load-tools";

/// Where anvil was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnvilSource {
    /// Given explicitly (`--anvil PATH`).
    Explicit,
    /// Found on `$PATH`.
    PathEnv,
    /// The pinned npm package under `<repo>/tools/node_modules`.
    Tools,
}

/// A located anvil binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundAnvil {
    pub path: PathBuf,
    pub source: AnvilSource,
}

/// Whether [`ensure_anvil`] may run `npm ci` when anvil is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallPolicy {
    /// Run `npm ci --prefix <repo>/tools` (saying so on stderr).
    Auto,
    /// Fail with the command to run.
    Never,
}

impl InstallPolicy {
    /// `Never` when `VANA_LOAD_NO_INSTALL` is set to a non-empty value other
    /// than `0`, `Auto` otherwise.
    pub fn from_env() -> Self {
        match std::env::var("VANA_LOAD_NO_INSTALL") {
            Ok(v) if !v.is_empty() && v != "0" => InstallPolicy::Never,
            _ => InstallPolicy::Auto,
        }
    }
}

/// Anvil could not be found or installed.
#[derive(Debug, thiserror::Error)]
pub enum ToolsError {
    #[error("anvil not found at {0} (given with --anvil); pass the path of an anvil binary")]
    ExplicitMissing(PathBuf),
    #[error("{0} (given with --anvil) is not an executable file")]
    ExplicitNotExecutable(PathBuf),
    #[error(
        "anvil not found on $PATH or in {tools}/node_modules; install the pinned tools with: {command}"
    )]
    Missing { tools: PathBuf, command: String },
    #[error(
        "anvil not found on $PATH and the vana-load repository (with tools/package.json) was not found from the current directory or the executable; install anvil (https://getfoundry.sh) or run from the repository and use: npm ci --prefix tools"
    )]
    NoRepo,
    #[error("`{command}` failed ({status}); run it yourself to see why")]
    InstallFailed { command: String, status: String },
    #[error("cannot run `{command}`: {source} (is npm installed?)")]
    NpmUnavailable {
        command: String,
        source: std::io::Error,
    },
    #[error("`{command}` succeeded but anvil is still missing at {expected}")]
    StillMissing { command: String, expected: PathBuf },
}

/// The inputs of the search, explicit so that the order can be tested.
#[derive(Debug, Clone, Default)]
pub struct AnvilSearch {
    /// `--anvil PATH`.
    pub explicit: Option<PathBuf>,
    /// The value of `$PATH`.
    pub path_var: Option<OsString>,
    /// Candidate repository roots, in order of preference.
    pub repo_roots: Vec<PathBuf>,
}

impl AnvilSearch {
    /// The search for this process: `explicit`, the real `$PATH` and the
    /// repository roots from [`repo_root_candidates`].
    pub fn from_env(explicit: Option<PathBuf>) -> Self {
        AnvilSearch {
            explicit,
            path_var: std::env::var_os("PATH"),
            repo_roots: repo_root_candidates(),
        }
    }

    /// The first repository root that holds the vana-load tools package.
    pub fn repo_root(&self) -> Option<&Path> {
        self.repo_roots
            .iter()
            .map(PathBuf::as_path)
            .find(|r| is_repo_root(r))
    }

    /// Runs the search without installing anything.
    pub fn locate(&self) -> Result<FoundAnvil, ToolsError> {
        if let Some(p) = &self.explicit {
            if !p.exists() {
                return Err(ToolsError::ExplicitMissing(p.clone()));
            }
            if !is_executable(p) {
                return Err(ToolsError::ExplicitNotExecutable(p.clone()));
            }
            return Ok(FoundAnvil {
                path: p.clone(),
                source: AnvilSource::Explicit,
            });
        }
        if let Some(p) = self.path_var.as_deref().and_then(find_on_path) {
            return Ok(FoundAnvil {
                path: p,
                source: AnvilSource::PathEnv,
            });
        }
        let Some(root) = self.repo_root() else {
            return Err(ToolsError::NoRepo);
        };
        let tools = root.join("tools");
        let bin = tools_anvil_path(&tools);
        if is_executable(&bin) {
            return Ok(FoundAnvil {
                path: bin,
                source: AnvilSource::Tools,
            });
        }
        Err(ToolsError::Missing {
            command: npm_ci_command(&tools),
            tools,
        })
    }
}

/// Finds anvil for `--anvil` (if any) and this process's environment, running
/// `npm ci --prefix <repo>/tools` when it is missing and `policy` allows it.
pub fn ensure_anvil(
    explicit: Option<PathBuf>,
    policy: InstallPolicy,
) -> Result<FoundAnvil, ToolsError> {
    let search = AnvilSearch::from_env(explicit);
    match search.locate() {
        Err(ToolsError::Missing { tools, command }) if policy == InstallPolicy::Auto => {
            eprintln!("anvil is missing; installing the pinned npm tools: {command}");
            let status = Command::new("npm")
                .arg("ci")
                .arg("--prefix")
                .arg(&tools)
                .stdout(std::process::Stdio::null())
                .status()
                .map_err(|source| ToolsError::NpmUnavailable {
                    command: command.clone(),
                    source,
                })?;
            if !status.success() {
                return Err(ToolsError::InstallFailed {
                    command,
                    status: status.to_string(),
                });
            }
            let expected = tools_anvil_path(&tools);
            if is_executable(&expected) {
                Ok(FoundAnvil {
                    path: expected,
                    source: AnvilSource::Tools,
                })
            } else {
                Err(ToolsError::StillMissing { command, expected })
            }
        }
        other => other,
    }
}

/// `npm ci --prefix <tools>`, as a user would type it.
pub fn npm_ci_command(tools: &Path) -> String {
    format!("npm ci --prefix {}", tools.display())
}

/// `<tools>/node_modules/@foundry-rs/anvil-<os>-<arch>/bin/anvil` for this platform.
pub fn tools_anvil_path(tools: &Path) -> PathBuf {
    let os = match std::env::consts::OS {
        "windows" => "win32",
        "macos" => "darwin",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let exe = if cfg!(windows) { "anvil.exe" } else { "anvil" };
    tools
        .join("node_modules")
        .join("@foundry-rs")
        .join(format!("anvil-{os}-{arch}"))
        .join("bin")
        .join(exe)
}

/// Candidate repository roots: ancestors of the current directory, of the
/// executable, and of this crate's source directory (compile time), in order,
/// without duplicates. Candidates are not checked here; see [`AnvilSearch::repo_root`].
pub fn repo_root_candidates() -> Vec<PathBuf> {
    let mut starts: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        starts.push(cwd);
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        starts.push(dir.to_path_buf());
    }
    starts.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let mut out: Vec<PathBuf> = Vec::new();
    for start in starts {
        for dir in start.ancestors() {
            if is_repo_root(dir) && !out.iter().any(|d| d == dir) {
                out.push(dir.to_path_buf());
            }
        }
    }
    out
}

/// The repository root this process would use, if any.
pub fn repo_root() -> Option<PathBuf> {
    repo_root_candidates().into_iter().next()
}

/// Whether `dir/tools/package.json` is the vana-load tools package.
fn is_repo_root(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("tools").join("package.json"))
        .map(|s| s.contains(&format!("\"{TOOLS_PACKAGE_NAME}\"")))
        .unwrap_or(false)
}

fn find_on_path(path_var: &OsStr) -> Option<PathBuf> {
    let exe = if cfg!(windows) { "anvil.exe" } else { "anvil" };
    std::env::split_paths(path_var)
        .filter(|d| !d.as_os_str().is_empty())
        .map(|d| d.join(exe))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(p) else {
        return false;
    };
    if !meta.is_file() {
        return false;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_exe(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "#!/bin/sh\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    fn fake_repo(root: &Path, with_anvil: bool) {
        std::fs::create_dir_all(root.join("tools")).unwrap();
        std::fs::write(
            root.join("tools/package.json"),
            format!("{{\"name\": \"{TOOLS_PACKAGE_NAME}\"}}"),
        )
        .unwrap();
        if with_anvil {
            fake_exe(&tools_anvil_path(&root.join("tools")));
        }
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        explicit: PathBuf,
        path_dir: PathBuf,
        repo: PathBuf,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let explicit = dir.path().join("explicit/anvil");
        fake_exe(&explicit);
        let path_dir = dir.path().join("bin");
        fake_exe(&path_dir.join("anvil"));
        let repo = dir.path().join("repo");
        fake_repo(&repo, true);
        Fixture {
            _dir: dir,
            explicit,
            path_dir,
            repo,
        }
    }

    #[test]
    fn explicit_wins_over_path_and_tools() {
        let f = fixture();
        let s = AnvilSearch {
            explicit: Some(f.explicit.clone()),
            path_var: Some(f.path_dir.clone().into_os_string()),
            repo_roots: vec![f.repo.clone()],
        };
        let found = s.locate().unwrap();
        assert_eq!(found.source, AnvilSource::Explicit);
        assert_eq!(found.path, f.explicit);
    }

    #[test]
    fn path_wins_over_tools() {
        let f = fixture();
        let empty = f.repo.join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let path_var = std::env::join_paths([empty, f.path_dir.clone()]).unwrap();
        let s = AnvilSearch {
            explicit: None,
            path_var: Some(path_var),
            repo_roots: vec![f.repo.clone()],
        };
        let found = s.locate().unwrap();
        assert_eq!(found.source, AnvilSource::PathEnv);
        assert_eq!(found.path, f.path_dir.join("anvil"));
    }

    #[test]
    fn tools_is_the_last_resort() {
        let f = fixture();
        let s = AnvilSearch {
            explicit: None,
            path_var: Some(OsString::from("/nonexistent-dir-for-test")),
            repo_roots: vec![f.repo.clone()],
        };
        let found = s.locate().unwrap();
        assert_eq!(found.source, AnvilSource::Tools);
        assert_eq!(found.path, tools_anvil_path(&f.repo.join("tools")));
    }

    #[test]
    fn non_executable_on_path_is_skipped() {
        let f = fixture();
        let dir = f.repo.join("noexec");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("anvil"), "not executable").unwrap();
        let s = AnvilSearch {
            explicit: None,
            path_var: Some(dir.into_os_string()),
            repo_roots: vec![f.repo.clone()],
        };
        assert_eq!(s.locate().unwrap().source, AnvilSource::Tools);
    }

    #[test]
    fn missing_explicit_is_an_error_and_does_not_fall_back() {
        let f = fixture();
        let s = AnvilSearch {
            explicit: Some(PathBuf::from("/nonexistent/anvil")),
            path_var: Some(f.path_dir.clone().into_os_string()),
            repo_roots: vec![f.repo.clone()],
        };
        let err = s.locate().unwrap_err();
        assert!(matches!(err, ToolsError::ExplicitMissing(_)), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("/nonexistent/anvil") && msg.contains("--anvil"),
            "{msg}"
        );
    }

    #[test]
    fn missing_everywhere_names_the_exact_command() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        fake_repo(&repo, false);
        let s = AnvilSearch {
            explicit: None,
            path_var: Some(OsString::new()),
            repo_roots: vec![dir.path().join("not-a-repo"), repo.clone()],
        };
        let err = s.locate().unwrap_err();
        let msg = err.to_string();
        let expected = format!("npm ci --prefix {}", repo.join("tools").display());
        assert!(msg.contains(&expected), "{msg}");
    }

    #[test]
    fn no_repo_and_no_path_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let s = AnvilSearch {
            explicit: None,
            path_var: None,
            repo_roots: vec![dir.path().to_path_buf()],
        };
        let err = s.locate().unwrap_err();
        assert!(matches!(err, ToolsError::NoRepo), "{err:?}");
        assert!(err.to_string().contains("npm ci --prefix tools"));
    }

    #[test]
    fn this_checkout_is_a_repo_root() {
        let roots = repo_root_candidates();
        let compiled = Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .nth(2)
            .unwrap()
            .to_path_buf();
        assert!(roots.contains(&compiled), "{roots:?}");
    }
}
