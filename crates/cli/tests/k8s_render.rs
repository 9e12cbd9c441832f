//! `vana-load k8s render`, run as the built binary: the manifests it prints
//! parse as Kubernetes objects, and the fields that make a sharded run work
//! hold what they must — an Indexed Job with parallelism = completions = the
//! shard count, every pod given the run id, the start instant and the count,
//! the target's Secret, the profile's ConfigMap (whose text reads back as the
//! same config), the shared results volume, and a merge Job over every
//! shard's directory. Bad input is refused before anything is printed. And
//! `run` reads an Indexed Job's environment (0-based index) as the shard.
//!
//! No Kubernetes API server is installable from the registries this project
//! uses, so the server-side dry run is left to a real cluster (README,
//! "Running on Kubernetes").

use std::process::{Command, Output, Stdio};

use serde::Deserialize;
use serde_json::Value;

fn vana_load(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vana-load"));
    for (k, _) in std::env::vars() {
        if k.starts_with("VANA_LOAD_") || k.starts_with("LOAD_TEST_") || k.starts_with("JOB_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn docs(yaml: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(yaml)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn env<'a>(container: &'a Value, name: &str) -> &'a str {
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no env {name}"))["value"]
        .as_str()
        .unwrap()
}

/// A list of strings (a container's args).
fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect()
}

fn render(args: &[&str]) -> Vec<Value> {
    let mut all = vec!["k8s", "render"];
    all.extend_from_slice(args);
    let o = vana_load(&all);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    docs(&String::from_utf8(o.stdout).unwrap())
}

#[test]
fn rendered_manifests_run_n_shards_and_a_merge() {
    let before = chrono::Utc::now();
    let d = render(&[
        "--profile",
        "smoke",
        "--shards",
        "3",
        "--image",
        "registry.example/vana-load:0.1.0",
        "--run-id",
        "rehearsal-1",
        "--start-in",
        "120",
        "--namespace",
        "load",
    ]);
    let kinds: Vec<&str> = d.iter().map(|x| x["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ConfigMap", "PersistentVolumeClaim", "Job", "Job"]);
    let (cm, pvc, job, merge) = (&d[0], &d[1], &d[2], &d[3]);
    for x in &d {
        assert_eq!(x["metadata"]["namespace"], "load");
    }
    for x in [cm, job, merge] {
        assert_eq!(
            x["metadata"]["labels"]["app.kubernetes.io/instance"],
            "rehearsal-1"
        );
    }

    // The shards: an Indexed Job, one pod per shard, all at once, no retries.
    assert_eq!(job["apiVersion"], "batch/v1");
    assert_eq!(job["metadata"]["name"], "vana-load-rehearsal-1");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(spec["completions"], 3);
    assert_eq!(spec["parallelism"], 3);
    assert_eq!(spec["backoffLimit"], 0);
    assert!(spec["activeDeadlineSeconds"].as_u64().unwrap() > 120 + 90);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    let c = &pod["containers"][0];
    assert_eq!(c["image"], "registry.example/vana-load:0.1.0");
    let args = strs(&c["args"]);
    assert_eq!(
        args,
        [
            "run",
            "--profile",
            "/etc/vana-load/profile.toml",
            "--target",
            "moksha",
            "--live=off",
            "--out",
            "/results/rehearsal-1/index-$(JOB_COMPLETION_INDEX)"
        ]
    );
    assert_eq!(env(c, "VANA_LOAD_RUN_ID"), "rehearsal-1");
    assert_eq!(env(c, "JOB_COMPLETIONS"), "3");
    let at = chrono::DateTime::parse_from_rfc3339(env(c, "VANA_LOAD_START_AT")).unwrap();
    let ahead = (at.with_timezone(&chrono::Utc) - before).num_seconds();
    assert!((118..=125).contains(&ahead), "start {ahead} s ahead");
    assert_eq!(c["envFrom"][0]["secretRef"]["name"], "vana-load-target");
    // Its volumes: the profile's ConfigMap and the shared results claim.
    let vols = pod["volumes"].as_array().unwrap();
    let vol = |name: &str| vols.iter().find(|v| v["name"] == name).unwrap();
    assert_eq!(vol("profile")["configMap"]["name"], cm["metadata"]["name"]);
    assert_eq!(
        vol("results")["persistentVolumeClaim"]["claimName"],
        pvc["metadata"]["name"]
    );
    let mounts = c["volumeMounts"].as_array().unwrap();
    assert!(mounts.iter().any(|m| m["mountPath"] == "/etc/vana-load"));
    assert!(mounts.iter().any(|m| m["mountPath"] == "/results"));
    assert_eq!(pvc["spec"]["accessModes"][0], "ReadWriteMany");

    // The profile in the ConfigMap reads back as the same config.
    let text = cm["data"]["profile.toml"].as_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("profile.toml");
    std::fs::write(&file, text).unwrap();
    let none = engine::ConfigPatch::default();
    let back = engine::LoadTestConfig::from_profile(file.to_str().unwrap(), &none, &none).unwrap();
    assert_eq!(back, engine::Preset::Smoke.config());

    // The merge: every shard's directory, on the same claim, waiting for them.
    assert_eq!(merge["metadata"]["name"], "vana-load-rehearsal-1-merge");
    let m = &merge["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(m["image"], "registry.example/vana-load:0.1.0");
    let margs = strs(&m["args"]);
    assert_eq!(
        margs[..6],
        [
            "merge",
            "/results/rehearsal-1/index-0",
            "/results/rehearsal-1/index-1",
            "/results/rehearsal-1/index-2",
            "--out",
            "/results/rehearsal-1/merged"
        ]
    );
    assert_eq!(margs[6], "--wait");
    assert_eq!(
        merge["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
        pvc["metadata"]["name"]
    );
}

/// A profile file keeps its name and its every field, however it is quoted;
/// a target file goes into the ConfigMap beside it.
#[test]
fn profile_and_target_files_travel_in_the_configmap() {
    let tmp = tempfile::tempdir().unwrap();
    let profile = tmp.path().join("rehearsal.toml");
    std::fs::write(
        &profile,
        "# a comment: with \"quotes\" and --- dashes\npreset = \"smoke\"\ntotalUsers = 90\n\
         thresholds = [\"p95(e2e) < 45s\"]\n",
    )
    .unwrap();
    let target = tmp.path().join("staging.toml");
    std::fs::write(&target, "name = \"staging\"\nchain_id = 14800\n").unwrap();
    let d = render(&[
        "--profile",
        profile.to_str().unwrap(),
        "--shards",
        "4",
        "--image",
        "img",
        "--target",
        target.to_str().unwrap(),
    ]);
    let cm = &d[0];
    let text = cm["data"]["profile.toml"].as_str().unwrap();
    let copy = tmp.path().join("copy").join("profile.toml");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    std::fs::write(&copy, text).unwrap();
    let none = engine::ConfigPatch::default();
    let a = engine::LoadTestConfig::from_profile(profile.to_str().unwrap(), &none, &none).unwrap();
    let b = engine::LoadTestConfig::from_profile(copy.to_str().unwrap(), &none, &none).unwrap();
    assert_eq!(a, b);
    assert_eq!(b.profile, "rehearsal");
    assert_eq!(
        cm["data"]["target.toml"].as_str().unwrap(),
        std::fs::read_to_string(&target).unwrap()
    );
    let c = &d[2]["spec"]["template"]["spec"]["containers"][0];
    let args = c["args"].as_array().unwrap();
    let t = args.iter().position(|a| a == "--target").unwrap();
    assert_eq!(args[t + 1], "/etc/vana-load/target.toml");
    assert_eq!(d[2]["spec"]["completions"], 4);
    // The generated run id is a valid Kubernetes name.
    let id = c["env"][0]["value"].as_str().unwrap();
    assert!(
        id.starts_with("load-")
            && id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
        "{id}"
    );
}

#[test]
fn bad_render_input_is_refused_by_name() {
    let cases: [(&[&str], &str); 5] = [
        (&["--shards", "0"], "--shards must be at least 1"),
        (&["--shards", "61"], "61 shards for users 60"),
        (
            &["--shards", "2", "--run-id", "Bad_Id"],
            "--run-id \"Bad_Id\"",
        ),
        (&["--shards", "2", "--target", "local"], "anvil"),
        (&["--shards", "2", "--profile", "nonesuch"], "nonesuch"),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["k8s", "render", "--image", "img"];
        if !extra.contains(&"--profile") {
            args.extend(["--profile", "smoke"]);
        }
        args.extend_from_slice(extra);
        let o = vana_load(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(needle), "{extra:?}: {err}");
        assert!(o.stdout.is_empty(), "nothing printed for {extra:?}");
    }
}

/// `run` in an Indexed Job's pod: the 0-based index names the shard; a bad
/// index, or a shard without a run id, stops it before anything starts.
#[test]
fn run_reads_an_indexed_jobs_environment() {
    let run = |env: &[(&str, &str)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vana-load"));
        for (k, _) in std::env::vars() {
            if k.starts_with("VANA_LOAD_") || k.starts_with("JOB_") {
                cmd.env_remove(k);
            }
        }
        cmd.args(["run", "--profile", "smoke", "--live", "off"])
            .envs(env.iter().copied())
            .env("VANA_LOAD_NO_INSTALL", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let o = run(&[("JOB_COMPLETION_INDEX", "0"), ("JOB_COMPLETIONS", "3")]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--shard 1/3 needs --run-id"),
        "pod 0 is shard 1/3: {err}"
    );
    let o = run(&[("JOB_COMPLETION_INDEX", "3"), ("JOB_COMPLETIONS", "3")]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("JOB_COMPLETION_INDEX `3`"), "{err}");
    let o = run(&[("JOB_COMPLETION_INDEX", "1")]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("JOB_COMPLETIONS is not"), "{err}");
    assert!(!err.contains("starting the local twin"), "{err}");
}

/// The image fits the manifests: it runs as the user their pods ask for, from
/// the directory where `--target moksha` finds its file, and its build
/// context keeps the committed contract artifacts the binary embeds.
#[test]
fn the_dockerfile_fits_the_manifests() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    let dockerfile = read("Dockerfile");
    for file in ["deploy/k8s/shards-job.yaml", "deploy/k8s/merge-job.yaml"] {
        let job: Value = serde_yaml_ng::from_str(&read(file)).unwrap();
        let uid = job["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
            .as_u64()
            .unwrap();
        assert!(dockerfile.contains(&format!("USER {uid}:{uid}")), "{file}");
    }
    assert!(dockerfile.contains("WORKDIR /app"));
    assert!(dockerfile.contains("COPY targets/ /app/targets/"));
    assert!(root.join("targets/moksha.toml").is_file());
    let ignored = read(".dockerignore");
    assert!(
        !ignored.lines().any(|l| l.trim().starts_with("contracts")),
        "{ignored}"
    );
}
