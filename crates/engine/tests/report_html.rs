//! `report.html` from a recorded run: every section and chart is present with
//! data, nothing references an external URL, secrets are redacted, and
//! headless Chromium actually draws the charts (pixels checked in a screenshot).
//! Also the Markdown summary, the fields added to `summary.json`, the
//! System section (the load generator's machine) with and without samples,
//! the alerts that fired with the RPC success rate, and markup in error text
//! and names (error class, step, sample, target, criterion) shown escaped.
//!
//! The run is synthetic (two "inference workers" saturate, 1 in 25 journeys
//! fails at `proof`, every journey sends three transactions) with the twin's
//! four gauges served on 127.0.0.1.
//! Set `REPORT_SCREENSHOT_OUT=docs/report.png` to keep the screenshot.
//! The browser is the headless Chromium inside the pinned npm package
//! `@sparticuz/chromium` (`npm ci --prefix tools`), driven by
//! `tools/chromium-screenshot.mjs`; no system browser is needed.

mod report_support;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use report_support::{Scenario, run_blocking};
use scraper::{Html, Selector};
use vana_load_engine::report::{ReportOptions, markdown_report, svg::PALETTE, write_report};

fn fixture() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut sc = Scenario::saturating("infer_wait", 2, 40);
        sc.fail_every = 25;
        run_blocking(sc, dir.path());
        dir
    })
    .path()
}

fn html() -> String {
    std::fs::read_to_string(fixture().join("report.html")).expect("engine::run wrote report.html")
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

#[test]
fn every_section_and_chart_is_present_with_data() {
    let doc = Html::parse_document(&html());
    for id in [
        "header",
        "verdict",
        "criteria",
        "over-time",
        "bottleneck",
        "step-growth",
        "components",
        "capacity",
        "capacity-table",
        "steps",
        "step-table",
        "chain",
        "tx-table",
        "errors",
        "error-table",
    ] {
        assert!(
            doc.select(&sel(&format!("#{id}"))).next().is_some(),
            "missing #{id}"
        );
    }
    // The verdict, target and profile in the header.
    let verdict: String = doc
        .select(&sel("#verdict"))
        .next()
        .unwrap()
        .text()
        .collect();
    assert!(verdict == "PASS" || verdict == "FAIL");
    let target: String = doc.select(&sel("#target")).next().unwrap().text().collect();
    assert!(target.contains("127.0.0.1:8545"), "{target}");
    // Criteria: the five default rows (completed, users, error rate, p95, critical).
    let rows = doc.select(&sel("#criteria tr")).count();
    assert_eq!(rows, 1 + 5);
    let mut charts = vec![
        "chart-arrivals".to_string(),
        "chart-inflight".into(),
        "chart-completions".into(),
        "chart-e2e".into(),
        "chart-errors".into(),
        "chart-step-load".into(),
        "chart-gauge-relayer-pending".into(),
        "chart-gauge-inference-queue".into(),
        "chart-gauge-indexer-lag".into(),
        "chart-gauge-storage-bytes".into(),
        "chart-breakdown".into(),
        "chart-tx-per-block".into(),
        "chart-gas".into(),
        "chart-confirm".into(),
        "chart-fees".into(),
    ];
    for step in report_support::steps::NAMES {
        charts.push(format!("chart-hist-{step}"));
    }
    for id in &charts {
        let svg = doc
            .select(&sel(&format!("svg#{id}")))
            .next()
            .unwrap_or_else(|| panic!("missing chart {id}"));
        let n: u64 = svg.value().attr("data-points").unwrap().parse().unwrap();
        assert!(n > 0, "chart {id} has no data");
        let marks = svg
            .select(&sel("polyline.series, circle, rect.bar, rect.seg"))
            .count();
        assert!(marks > 0, "chart {id} drew nothing");
    }
    // The breakdown has a median and a p95 journey, each with the eleven steps.
    let segs = doc.select(&sel("svg#chart-breakdown rect.seg")).count();
    assert!(segs >= 22, "{segs} segments");
    // Errors: the injected class with first/last seen and a redacted sample.
    let errs: String = doc
        .select(&sel("#error-table"))
        .next()
        .unwrap()
        .text()
        .collect();
    assert!(errs.contains("tee_timeout"), "{errs}");
    assert!(!html().contains("s3cr3t-token-value"));
    // The chain table has the three kinds.
    let txt: String = doc
        .select(&sel("#tx-table"))
        .next()
        .unwrap()
        .text()
        .collect();
    for k in ["register", "proof", "claim"] {
        assert!(txt.contains(k));
    }
}

#[test]
fn no_external_url_is_referenced() {
    let page = html();
    let doc = Html::parse_document(&page);
    for el in doc.select(&sel("*")) {
        for (name, value) in el.value().attrs() {
            let v = value.trim().to_ascii_lowercase();
            if matches!(
                name,
                "src" | "href" | "xlink:href" | "action" | "srcset" | "poster" | "data"
            ) {
                assert!(
                    !(v.starts_with("http:") || v.starts_with("https:") || v.starts_with("//")),
                    "{name}=\"{value}\" on <{}>",
                    el.value().name()
                );
            }
        }
    }
    for needle in [
        "http://",
        "https://",
        "<script src",
        "<link",
        "@import",
        "url(",
    ] {
        assert!(!page.contains(needle), "report contains {needle}");
    }
}

#[test]
fn summary_json_gains_bottleneck_and_details_json_capacity() {
    let raw: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture().join("summary.json")).unwrap()).unwrap();
    let details: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture().join("details.json")).unwrap()).unwrap();
    // The engine's fields are still there.
    for k in [
        "users",
        "e2e_ms",
        "steps",
        "errors",
        "throughput",
        "criteria",
        "verdict",
    ] {
        assert!(raw.get(k).is_some(), "{k}");
    }
    let b = &raw["bottleneck"];
    assert_eq!(b["component"], "inference");
    assert!(!b["sentences"].as_array().unwrap().is_empty());
    assert!(raw.get("capacity").is_none());
    assert!(
        details.get("metrics").is_some(),
        "the engine's details stay"
    );
    let c = &details["capacity"];
    assert!(c["users_per_day"].as_f64().unwrap() > 0.0);
    // 600k + 220k + 90k gas per successful journey, at 1 gwei.
    let gas = c["cost"]["gas_per_journey"].as_f64().unwrap();
    assert!((gas - 910_000.0).abs() < 1.0, "{gas}");
    assert!((c["cost"]["fee_vana_per_journey"].as_f64().unwrap() - 0.00091).abs() < 1e-9);
    // Real-network ceiling with the defaults: 30M gas / 6 s / 910k gas per journey.
    let real = c["chain"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["label"] == "real network")
        .unwrap();
    let jps = real["journeys_per_s"].as_f64().unwrap();
    assert!((jps - 30e6 / 6.0 / 910_000.0).abs() < 1e-6, "{jps}");
    // The summary still parses as the engine's Summary.
    let _: vana_load_engine::Summary = serde_json::from_value(raw).unwrap();
}

#[test]
fn markdown_summary_for_ci() {
    let md = markdown_report(fixture(), &ReportOptions::default()).unwrap();
    assert!(md.starts_with("## "));
    assert!(md.contains("| criterion | target | actual | result |"));
    assert!(md.contains("| infer_wait | inference |"));
    assert!(md.contains("### Bottleneck"));
    assert!(md.contains("inference backend"));
    assert!(md.contains("### Capacity"));
    assert!(md.contains("`tee_timeout`"));
}

/// A copy of the fixture's results files in a fresh directory.
fn fixture_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(fixture()).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
        }
    }
    dir
}

/// A copy of the fixture with each time-series row rewritten by `edit`
/// (row index, row), re-rendered.
fn variant(edit: impl Fn(usize, &mut serde_json::Value)) -> tempfile::TempDir {
    let dir = fixture_copy();
    let ts = dir.path().join("timeseries.jsonl");
    let rows: Vec<String> = std::fs::read_to_string(&ts)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            let mut row: serde_json::Value = serde_json::from_str(l).unwrap();
            edit(i, &mut row);
            row.to_string()
        })
        .collect();
    std::fs::write(&ts, rows.join("\n")).unwrap();
    write_report(dir.path(), &ReportOptions::default()).unwrap();
    dir
}

#[test]
fn the_system_section_charts_the_machine_or_says_it_recorded_none() {
    // Samples as the engine takes them: no CPU share on the first.
    let with = variant(|i, row| {
        let first = i == 0;
        let cpu = |v: f64| (!first).then_some(v);
        row["system"] = serde_json::json!({
            "host_cpu_pct": cpu(40.0 + (i % 5) as f64),
            "host_cores": 2,
            "processes": {
                "vana-load": {"cpu_pct": cpu(50.0 + (i % 3) as f64), "rss_mb": 60.0 + i as f64},
                "anvil": {"cpu_pct": cpu(20.0), "rss_mb": 300.0}
            }
        });
    });
    let page = std::fs::read_to_string(with.path().join("report.html")).unwrap();
    let doc = Html::parse_document(&page);
    assert!(doc.select(&sel("#system-none")).next().is_none());
    for (id, lines) in [("chart-system-cpu", 3), ("chart-system-rss", 2)] {
        let svg = doc
            .select(&sel(&format!("svg#{id}")))
            .next()
            .unwrap_or_else(|| panic!("missing chart {id}"));
        let n: u64 = svg.value().attr("data-points").unwrap().parse().unwrap();
        assert!(n > 0, "chart {id} has no data");
        let drawn = svg.select(&sel("polyline.series")).count();
        assert_eq!(drawn, lines, "chart {id}");
        let legend: String = svg
            .select(&sel("g.legend"))
            .flat_map(|g| g.text())
            .collect();
        assert!(
            legend.contains("vana-load") && legend.contains("anvil"),
            "{legend}"
        );
    }
    let table: String = doc
        .select(&sel("#system-table"))
        .next()
        .expect("system table")
        .text()
        .collect();
    for want in ["host", "44 %", "vana-load", "52 %", "anvil", "300 MiB"] {
        assert!(table.contains(want), "{want} not in {table}");
    }
    let md = markdown_report(with.path(), &ReportOptions::default()).unwrap();
    assert!(
        md.contains("**Machine**: peak host CPU 44 % of 2 cores"),
        "{md}"
    );

    let without = variant(|_, row| {
        if let Some(m) = row.as_object_mut() {
            m.remove("system");
        }
    });
    let page = std::fs::read_to_string(without.path().join("report.html")).unwrap();
    let doc = Html::parse_document(&page);
    let note: String = doc
        .select(&sel("#system-none"))
        .next()
        .expect("the section says there is nothing to show")
        .text()
        .collect();
    assert!(note.contains("recorded no system metrics"), "{note}");
    assert!(doc.select(&sel("svg#chart-system-cpu")).next().is_none());
}

/// Alerts that fired and the RPC counts are shown in the page and in the
/// Markdown summary; a run without alerts says so, naming the limits watched.
#[test]
fn alerts_and_the_rpc_success_rate_reach_the_report() {
    let dir = fixture_copy();
    let path = dir.path().join("summary.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    v["alerts"] = serde_json::json!({
        "error_rate": {"count": 2, "first_s": 12.0, "last_s": 95.5, "limit": 0.01, "worst": 0.042},
        "rpc_success_rate": {"count": 1, "first_s": 30.0, "last_s": 30.0, "limit": 0.99, "worst": 0.9}
    });
    v["rpc"] = serde_json::json!({"ok": 900, "error": 95, "timeout": 5, "success_rate": 0.9});
    std::fs::write(&path, v.to_string()).unwrap();
    write_report(dir.path(), &ReportOptions::default()).unwrap();
    let page = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    let doc = Html::parse_document(&page);
    let rows: Vec<String> = doc
        .select(&sel("#alert-table tr"))
        .skip(1)
        .map(|r| r.text().collect::<Vec<_>>().join("|"))
        .collect();
    assert_eq!(
        rows,
        [
            "error_rate|error rate > 1 %|2|12.0 s|95.5 s|4.2 %",
            "rpc_success_rate|RPC success rate < 99 %|1|30.0 s|30.0 s|90 %"
        ]
    );
    let rpc: String = doc.select(&sel("#rpc")).next().unwrap().text().collect();
    assert!(
        rpc.contains("1,000") && rpc.contains("timeout 5") && rpc.contains("90 %"),
        "{rpc}"
    );
    let md = markdown_report(dir.path(), &ReportOptions::default()).unwrap();
    assert!(
        md.contains("| ⚠️ error_rate | error rate > 1 % | 2 | 12.0 s | 95.5 s | 4.2 % |"),
        "{md}"
    );
    assert!(md.contains("success rate 90 %"), "{md}");

    // None fired: the page names what was watched.
    v["alerts"] = serde_json::json!({});
    std::fs::write(&path, v.to_string()).unwrap();
    write_report(dir.path(), &ReportOptions::default()).unwrap();
    let page = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    let doc = Html::parse_document(&page);
    let none: String = doc
        .select(&sel("#alerts-none"))
        .next()
        .expect("no alert fired")
        .text()
        .collect();
    assert!(
        none.contains("error rate ≤ 1 %") && none.contains("RPC success rate ≥ 99 %"),
        "{none}"
    );
    assert!(doc.select(&sel("#alert-table")).next().is_none());
    let md = markdown_report(dir.path(), &ReportOptions::default()).unwrap();
    assert!(md.contains("No alert fired."), "{md}");
}

/// Text from remote services and from the plan reaches the page escaped:
/// an error class, its step, its sample message, the target's name and a
/// criterion's name holding markup show as text, never as elements.
#[test]
fn markup_in_error_text_and_names_is_escaped() {
    const SCRIPT: &str = "<script>alert(1)</script>";
    const IMG: &str = "\"><img src=x onerror=alert(1)>";
    let class = format!("rpc{SCRIPT}");
    let step = format!("step{IMG}");
    let sample = format!("upstream said {SCRIPT} {IMG} &amp;");
    let target = format!("target{IMG}&amp;");
    let criterion = format!("crit{SCRIPT}&amp;");

    let dir = fixture_copy();
    let edit = |name: &str, f: &dyn Fn(&mut serde_json::Value)| {
        let path = dir.path().join(name);
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        f(&mut v);
        std::fs::write(&path, v.to_string()).unwrap();
    };
    edit("summary.json", &|v| {
        v["errors"][&class] = serde_json::json!(3);
        let first = v["steps"]
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap()
            .clone();
        v["steps"][&step] = first;
        v["criteria"][0]["name"] = serde_json::json!(criterion);
    });
    edit("details.json", &|v| {
        v["errors"][&class] = serde_json::json!(
            {"count": 3, "first_s": 1.0, "last_s": 2.0, "step": step, "sample": sample}
        );
    });
    edit("run.json", &|v| {
        v["target"]["name"] = serde_json::json!(target);
        let steps = v["steps"].as_array_mut().unwrap();
        let mut s = steps[0].clone();
        s["name"] = serde_json::json!(step);
        steps.push(s);
    });
    write_report(dir.path(), &ReportOptions::default()).unwrap();
    let page = std::fs::read_to_string(dir.path().join("report.html")).unwrap();

    assert!(!page.contains("<script>alert(1)"), "unescaped <script>");
    assert!(!page.contains("<img src=x"), "unescaped <img>");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(
        page.contains("&amp;amp;"),
        "a literal `&amp;` is escaped once more"
    );

    let doc = Html::parse_document(&page);
    assert!(doc.select(&sel("script")).next().is_none());
    assert!(doc.select(&sel("img")).next().is_none());
    for id in [
        "header",
        "verdict",
        "criteria",
        "alerts",
        "over-time",
        "bottleneck",
        "capacity",
        "steps",
        "chain",
        "errors",
        "error-table",
    ] {
        assert!(
            doc.select(&sel(&format!("#{id}"))).next().is_some(),
            "missing #{id}"
        );
    }
    // The markup survives as text, exactly.
    let text = |s: &str| -> String {
        doc.select(&sel(s))
            .map(|e| e.text().collect::<Vec<_>>().join("|"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let errors = text("#error-table tr");
    assert!(
        errors.contains(&format!("{class}|3|{step}|1.0 s|2.0 s|{sample}")),
        "{errors}"
    );
    assert!(text("#criteria tr").contains(&criterion));
    assert!(text("#target").contains(&target), "{}", text("#target"));
    assert!(text("#step-table tr").contains(&step));
    // The chart legends (svg.rs) carry the class as text too.
    assert!(text("svg#chart-errors").contains(&class));
}

/// The screenshot script of the pinned npm tools: it runs the headless Chromium
/// that `@sparticuz/chromium` ships inside its npm tarball, so
/// `npm ci --prefix tools` is the whole setup.
fn screenshot_script() -> PathBuf {
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools");
    let package = tools.join("node_modules/@sparticuz/chromium/package.json");
    assert!(
        package.exists(),
        "{} is missing: install the pinned npm tools with `npm ci --prefix tools`",
        package.display()
    );
    tools.join("chromium-screenshot.mjs")
}

/// Screenshots the report at 1280 x 2400 in headless Chromium and decodes the PNG.
fn screenshot(page: &Path, out: &Path) -> (u32, u32, Vec<u8>) {
    let log_path = out.with_extension("log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = std::process::Command::new("node")
        .arg(screenshot_script())
        .args([page, out])
        .args(["1280", "2400"])
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start node (needed for the pinned npm tools)");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish the screenshot in 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        status.success(),
        "tools/chromium-screenshot.mjs failed ({status}): {}",
        std::fs::read_to_string(&log_path).unwrap_or_default()
    );
    let f = std::fs::File::open(out).expect("chromium wrote the screenshot");
    let mut dec = png::Decoder::new(std::io::BufReader::new(f));
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let ch = info.color_type.samples();
    // Normalise to RGB.
    let rgb: Vec<u8> = buf[..info.buffer_size()]
        .chunks(ch)
        .flat_map(|p| {
            if ch >= 3 {
                [p[0], p[1], p[2]]
            } else {
                [p[0], p[0], p[0]]
            }
        })
        .collect();
    (info.width, info.height, rgb)
}

fn hex(c: &str) -> [u8; 3] {
    let v = u32::from_str_radix(c.trim_start_matches('#'), 16).unwrap();
    [(v >> 16) as u8, (v >> 8) as u8, v as u8]
}

#[test]
fn chromium_draws_the_charts() {
    let tmp = tempfile::tempdir().unwrap();
    let png_path = tmp.path().join("report.png");
    let (w, h, rgb) = screenshot(&fixture().join("report.html"), &png_path);
    assert_eq!((w, h), (1280, 2400));
    // Pixels in the charts' series colours, per 300-px band of the page.
    let colours: Vec<[u8; 3]> = PALETTE[..5].iter().map(|c| hex(c)).collect();
    let mut per_band = vec![0u32; (h as usize).div_ceil(300)];
    let mut per_colour = vec![0u32; colours.len()];
    for (i, px) in rgb.chunks(3).enumerate() {
        let y = i / w as usize;
        for (k, c) in colours.iter().enumerate() {
            let d: i32 = (0..3).map(|j| (px[j] as i32 - c[j] as i32).abs()).sum();
            if d < 30 {
                per_band[y / 300] += 1;
                per_colour[k] += 1;
            }
        }
    }
    // The page's first 2400 px hold the over-time charts and the gauges: every
    // series colour drew, and the chart bands are far from blank.
    if let Ok(keep) = std::env::var("REPORT_SCREENSHOT_OUT") {
        std::fs::copy(&png_path, &keep).unwrap();
        std::fs::copy(fixture().join("report.html"), format!("{keep}.html")).unwrap();
    }
    for (k, n) in per_colour.iter().enumerate() {
        assert!(*n > 100, "colour {} drew only {n} pixels", PALETTE[k]);
    }
    let drawn_bands = per_band.iter().filter(|n| **n > 500).count();
    assert!(drawn_bands >= 4, "chart pixels per band: {per_band:?}");
}
