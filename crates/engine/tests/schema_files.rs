//! `docs/schema/` holds the JSON Schemas of the results files, generated from
//! the engine's own types (`schema::json_schemas`). This test fails when a type
//! changed and the committed schema did not; `VANA_LOAD_WRITE_SCHEMA=1 cargo
//! test -p vana-load-engine --test schema_files` rewrites them.

use std::path::PathBuf;

use vana_load_engine::schema::json_schemas;

#[test]
fn the_committed_schemas_match_the_types() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/schema");
    let write = std::env::var("VANA_LOAD_WRITE_SCHEMA").is_ok_and(|v| v == "1");
    for (name, schema) in json_schemas() {
        let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        let path = dir.join(name);
        if write {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == text,
            "{} is stale: run `VANA_LOAD_WRITE_SCHEMA=1 cargo test -p vana-load-engine --test schema_files`",
            path.display()
        );
    }
}

#[test]
fn the_summary_schema_requires_the_verdict_and_names_its_values() {
    let (_, summary) = json_schemas()
        .into_iter()
        .find(|(n, _)| *n == "summary.schema.json")
        .unwrap();
    let required: Vec<&str> = summary["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for field in ["users", "e2e_ms", "criteria", "verdict"] {
        assert!(
            required.contains(&field),
            "{field} is required: {required:?}"
        );
    }
    let text = summary.to_string();
    for verdict in ["pass", "fail", "inconclusive"] {
        assert!(text.contains(&format!("\"{verdict}\"")), "{verdict}");
    }
}
