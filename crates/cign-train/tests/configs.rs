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

/// The sampler settings come from the keys the config documents (`[train]` batch size and seed,
/// `[data]` noise, `k` and `drop_last`), `k` is 0 for the unconditional model, and an
/// out-of-range sampler value is refused by name before anything trains.
#[test]
fn the_sampler_settings_are_read_from_their_keys() {
    let path = repo().join("configs/large_channel.toml");
    let set = |pairs: &[&str]| -> Vec<String> { pairs.iter().map(|s| s.to_string()).collect() };
    let cfg = TrainConfig::load(
        &path,
        &set(&[
            "train.batch_size=17",
            "train.seed=5",
            "data.train_noise_std=0.25",
            "data.mismatch_per_real=4",
            "data.drop_last=true",
        ]),
    )
    .unwrap();
    let s = cfg.sampler_config();
    assert_eq!(
        (
            s.batch_size,
            s.seed,
            s.noise_std,
            s.mismatch_per_real,
            s.drop_last,
            s.num_classes
        ),
        (17, 5, 0.25, 4, true, 10)
    );
    let uncond = TrainConfig::load(&path, &set(&["model.conditioning=\"none\""])).unwrap();
    assert_eq!(uncond.sampler_config().mismatch_per_real, 0);
    // k is checked as configured even where the unconditional model ignores it.
    for (over, key) in [
        ("data.train_noise_std=nan", "data.train_noise_std"),
        ("data.train_noise_std=-1e-9", "data.train_noise_std"),
        ("data.mismatch_per_real=10", "data.mismatch_per_real"),
    ] {
        for extra in [None, Some("model.conditioning=\"none\"")] {
            let mut o = set(&[over]);
            o.extend(extra.map(str::to_string));
            let e = TrainConfig::load(&path, &o).unwrap_err().to_string();
            assert!(e.starts_with(&format!("config: {key}")), "{over}: {e}");
            assert!(!e.contains('\n'), "{over}: {e}");
        }
    }
}
