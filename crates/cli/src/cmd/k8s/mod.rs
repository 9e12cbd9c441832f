//! `vana-load k8s render`: the Kubernetes manifests of one sharded run, on
//! stdout, ready for `kubectl apply -f -`.
//!
//! The manifests are the templates committed in `deploy/k8s/` (readable and
//! usable by hand), parsed as YAML and filled in field by field, never by text
//! substitution: the run id, the start instant, the shard count, the image,
//! the target, the Secret's name and the profile's text land only in the
//! fields meant for them, and every string is written quoted ([`yaml`]). Out come, in
//! order: the profile ConfigMap, the results volume claim, the shards'
//! Indexed Job and the merge Job.
//!
//! The profile is checked here as the shards will read it, and a split that
//! would leave a shard without users or without a concurrency slot is refused.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use engine::config::{ConfigPatch, LoadTestConfig};
use serde_json::{Value, json};

use super::shard_arg::check_run_id;

mod yaml;

const CONFIGMAP: &str = include_str!("../../../../../deploy/k8s/profile-configmap.yaml");
const PVC: &str = include_str!("../../../../../deploy/k8s/results-pvc.yaml");
const SHARDS: &str = include_str!("../../../../../deploy/k8s/shards-job.yaml");
const MERGE: &str = include_str!("../../../../../deploy/k8s/merge-job.yaml");

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Print the manifests of a sharded run (ConfigMap, results volume, shards Job, merge Job).
    Render(RenderArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct RenderArgs {
    /// A preset (burst, conservative, smoke, debug) or a profile TOML file.
    #[arg(long, value_name = "NAME|FILE")]
    pub profile: String,
    /// Number of shards (pods).
    #[arg(long, value_name = "N")]
    pub shards: u32,
    /// The vana-load image (built from the Dockerfile), e.g. registry.example/vana-load:0.1.0.
    #[arg(long, value_name = "IMG")]
    pub image: String,
    /// `moksha` (shipped in the image) or a target TOML file (put in the ConfigMap).
    #[arg(long, value_name = "moksha|PATH", default_value = "moksha")]
    pub target: String,
    /// Run id: lowercase letters, digits and '-', at most 40 (default: load-<UTC time>).
    #[arg(long, value_name = "ID")]
    pub run_id: Option<String>,
    /// Seconds from now to the shared start (pulling the image and funding the
    /// wallets must fit in it).
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub start_in: u64,
    /// The Secret holding the target's environment (keys, JWTs).
    #[arg(long, value_name = "NAME", default_value = "vana-load-target")]
    pub secret: String,
    /// Namespace for every object (default: kubectl's current one).
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
}

pub async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Render(args) => {
            let now = chrono::Utc::now();
            print!("{}", render(&args, now)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A Kubernetes name part: lowercase letters, digits and '-', starting and ending alphanumeric.
fn check_label(what: &str, s: &str, max: usize) -> anyhow::Result<()> {
    let ok = !s.is_empty()
        && s.len() <= max
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if !ok {
        bail!(
            "{what} {s:?}: lowercase letters, digits and '-' (not first or last), at most {max} characters"
        );
    }
    Ok(())
}

/// The profile file the shards read, and its text.
fn profile_text(profile: &str) -> anyhow::Result<(LoadTestConfig, String)> {
    let none = ConfigPatch::default();
    let cfg = LoadTestConfig::from_profile(profile, &none, &none)
        .with_context(|| format!("--profile {profile}"))?;
    let path = Path::new(profile);
    if !(profile.ends_with(".toml") || path.is_file()) {
        // The preset, named as itself (a file would be named by its stem).
        let name = toml::Value::from(profile);
        return Ok((cfg, format!("preset = {name}\nprofile = {name}\n")));
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {profile}"))?;
    let table: toml::Table = toml::from_str(&text).with_context(|| format!("parsing {profile}"))?;
    // Mounted as profile.toml, a file naming no profile would be called
    // "profile": keep the name it has here.
    let text = if table.contains_key("profile") {
        text
    } else {
        format!(
            "profile = {}\n{text}",
            toml::Value::from(cfg.profile.clone())
        )
    };
    Ok((cfg, text))
}

/// Sets the value at `path` (object keys, or array indices as numbers).
fn set(root: &mut Value, path: &[&str], v: Value) -> anyhow::Result<()> {
    let mut at = root;
    for key in path {
        at = match key.parse::<usize>() {
            Ok(i) => at.get_mut(i),
            Err(_) => at.get_mut(*key),
        }
        .with_context(|| format!("template has no `{}`", path.join(".")))?;
    }
    *at = v;
    Ok(())
}

/// The env list with `name`'s value replaced.
fn set_env(container: &mut Value, name: &str, value: &str) -> anyhow::Result<()> {
    let env = container["env"]
        .as_array_mut()
        .context("template container has no env")?;
    let e = env
        .iter_mut()
        .find(|e| e["name"] == name)
        .with_context(|| format!("template container has no env {name}"))?;
    e["value"] = json!(value);
    Ok(())
}

fn labels(doc: &mut Value, run_id: &str) -> anyhow::Result<()> {
    set(
        doc,
        &["metadata", "labels", "app.kubernetes.io/instance"],
        json!(run_id),
    )?;
    if doc["spec"]["template"]["metadata"]["labels"].is_object() {
        set(
            doc,
            &[
                "spec",
                "template",
                "metadata",
                "labels",
                "app.kubernetes.io/instance",
            ],
            json!(run_id),
        )?;
    }
    Ok(())
}

fn parse(template: &str) -> anyhow::Result<Value> {
    serde_yaml_ng::from_str(template).context("a deploy/k8s template is not valid YAML")
}

/// The manifests of the run, as one multi-document YAML.
pub fn render(args: &RenderArgs, now: chrono::DateTime<chrono::Utc>) -> anyhow::Result<String> {
    let n = args.shards;
    if n == 0 {
        bail!("--shards must be at least 1");
    }
    if args.target == "local" {
        bail!(
            "--target local: the image runs against a network (moksha or a target file); a twin needs anvil, which the image does not have"
        );
    }
    let run_id = match &args.run_id {
        Some(id) => id.clone(),
        None => format!("load-{}", now.format("%Y%m%d-%H%M%S")),
    };
    check_label("--run-id", &run_id, 40)?;
    check_run_id(&run_id)?;
    check_label("--secret", &args.secret, 63)?;
    if let Some(ns) = &args.namespace {
        check_label("--namespace", ns, 63)?;
    }
    let (cfg, profile) = profile_text(&args.profile)?;
    engine::Shard::new(1, n)?.check(cfg.total_users, cfg.max_concurrent_users)?;
    let start = now + chrono::Duration::seconds(args.start_in as i64);
    let start_at = start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    // Bounded: the start, the schedule, then an hour for the drain.
    let (u, s, d) = cfg.scaled_phases();
    let deadline = args.start_in + (u + s + d).ceil() as u64 + 3600;
    let config_name = format!("vana-load-{run_id}-profile");

    let mut cm = parse(CONFIGMAP)?;
    set(&mut cm, &["metadata", "name"], json!(config_name))?;
    labels(&mut cm, &run_id)?;
    let mut data = serde_json::Map::new();
    data.insert("profile.toml".into(), json!(profile));
    let target = if Path::new(&args.target).is_file() || args.target.ends_with(".toml") {
        let text = std::fs::read_to_string(&args.target)
            .with_context(|| format!("--target {}", args.target))?;
        // Its `${VARS}` come from the Secret in the pod; here only its syntax is checked.
        toml::from_str::<toml::Table>(&text)
            .with_context(|| format!("--target {}: not a valid TOML file", args.target))?;
        data.insert("target.toml".into(), json!(text));
        "/etc/vana-load/target.toml".to_string()
    } else {
        args.target.clone()
    };
    set(&mut cm, &["data"], Value::Object(data))?;

    let pvc = parse(PVC)?;

    let mut job = parse(SHARDS)?;
    set(
        &mut job,
        &["metadata", "name"],
        json!(format!("vana-load-{run_id}")),
    )?;
    labels(&mut job, &run_id)?;
    set(&mut job, &["spec", "completions"], json!(n))?;
    set(&mut job, &["spec", "parallelism"], json!(n))?;
    set(
        &mut job,
        &["spec", "activeDeadlineSeconds"],
        json!(deadline),
    )?;
    let pod = &mut job["spec"]["template"]["spec"];
    set(
        pod,
        &["volumes", "0", "configMap", "name"],
        json!(config_name),
    )?;
    let c = &mut pod["containers"][0];
    set(c, &["image"], json!(args.image))?;
    set(
        c,
        &["args"],
        json!([
            "run",
            "--profile",
            "/etc/vana-load/profile.toml",
            "--target",
            target,
            "--live=off",
            "--out",
            format!("/results/{run_id}/index-$(JOB_COMPLETION_INDEX)"),
        ]),
    )?;
    set_env(c, "VANA_LOAD_RUN_ID", &run_id)?;
    set_env(c, "VANA_LOAD_START_AT", &start_at)?;
    set_env(c, "JOB_COMPLETIONS", &n.to_string())?;
    set(
        c,
        &["envFrom", "0", "secretRef", "name"],
        json!(args.secret),
    )?;

    let mut merge = parse(MERGE)?;
    set(
        &mut merge,
        &["metadata", "name"],
        json!(format!("vana-load-{run_id}-merge")),
    )?;
    labels(&mut merge, &run_id)?;
    let c = &mut merge["spec"]["template"]["spec"]["containers"][0];
    set(c, &["image"], json!(args.image))?;
    let mut margs = vec![json!("merge")];
    margs.extend((0..n).map(|k| json!(format!("/results/{run_id}/index-{k}"))));
    margs.extend([
        json!("--out"),
        json!(format!("/results/{run_id}/merged")),
        json!("--wait"),
        json!(deadline.to_string()),
    ]);
    set(c, &["args"], Value::Array(margs))?;

    let mut out = format!(
        "# vana-load run {run_id}: {n} shards of profile {} ({} users), starting at {start_at}\n",
        cfg.profile, cfg.total_users
    );
    for mut doc in [cm, pvc, job, merge] {
        if let Some(ns) = &args.namespace {
            doc["metadata"]
                .as_object_mut()
                .context("template has no metadata")?
                .insert("namespace".into(), json!(ns));
        }
        out.push_str("---\n");
        out.push_str(&yaml::to_yaml(&doc));
    }
    Ok(out)
}
