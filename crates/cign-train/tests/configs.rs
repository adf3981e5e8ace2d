//! Every shipped config in `configs/` loads and validates, and its model has the parameter count
//! the README's configs table states (the table is parsed, so the two cannot drift apart).

use std::collections::BTreeMap;
use std::path::PathBuf;

use cign_core::trainable_parameter_count;
use cign_train::{ModelState, TrainConfig};
use tch::Device;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `configs/<name>.toml` -> parameter count, from the README's configs table.
fn readme_counts() -> BTreeMap<String, i64> {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let mut counts = BTreeMap::new();
    for line in readme.lines().filter(|l| l.starts_with("| `configs/")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let name = cells[1].trim_matches('`').to_string();
        let count: i64 = cells[cells.len() - 2].replace(',', "").parse().unwrap();
        counts.insert(name, count);
    }
    counts
}

#[test]
fn shipped_configs_load_and_match_the_readme() {
    let counts = readme_counts();
    let mut seen = 0;
    for entry in std::fs::read_dir(repo().join("configs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let name = format!("configs/{}", path.file_name().unwrap().to_string_lossy());
        let cfg = TrainConfig::load(&path, &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
        let ms = ModelState::new(&cfg, Device::Cpu).unwrap();
        let got = trainable_parameter_count(&ms.vs);
        let want = counts
            .get(&name)
            .unwrap_or_else(|| panic!("{name} is not in the README's configs table"));
        assert_eq!(got, *want, "{name}: parameters");
        seen += 1;
    }
    assert_eq!(
        seen,
        counts.len(),
        "the README lists configs that do not exist"
    );
}
