//! `--doctor`: what this build of cign sees: libtorch (version, library directory, threads),
//! CUDA, and where data and weights live.

use std::path::PathBuf;

/// The directory of the libtorch actually loaded by this process (from /proc/self/maps).
pub fn loaded_libtorch_dir() -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.ends_with("/libtorch_cpu.so"))
        .and_then(|p| PathBuf::from(p).parent().map(PathBuf::from))
}

/// The torch version from `version.py` beside the library directory (pip layout).
pub fn torch_version(lib_dir: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(lib_dir.parent()?.join("version.py")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("__version__ = "))
        .map(|v| v.trim().trim_matches('\'').trim_matches('"').to_string())
}

/// The report, one `key: value` per line.
pub fn report() -> String {
    // Touch libtorch so that it is mapped.
    let _ = tch::Tensor::zeros([1], (tch::Kind::Float, tch::Device::Cpu));
    let lib = loaded_libtorch_dir();
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<27} {v}\n"));
    line(
        "torch version:",
        lib.as_deref()
            .and_then(torch_version)
            .unwrap_or_else(|| "unknown".into()),
    );
    line(
        "libtorch lib dir:",
        lib.map(|p| p.display().to_string())
            .unwrap_or_else(|| "not found".into()),
    );
    line("intra-op threads:", tch::get_num_threads().to_string());
    line("CUDA available:", tch::Cuda::is_available().to_string());
    line("CUDA devices:", tch::Cuda::device_count().to_string());
    line(
        "cuDNN available:",
        tch::Cuda::cudnn_is_available().to_string(),
    );
    for kind in [
        cign_data::DatasetKind::Mnist,
        cign_data::DatasetKind::FashionMnist,
    ] {
        let dir = cign_data::default_data_dir(kind);
        let present = cign_data::Dataset::load(kind, cign_data::Split::Test, &dir).is_ok();
        line(
            &format!("{kind} data:"),
            format!(
                "{} ({})",
                dir.display(),
                if present {
                    "present"
                } else {
                    "not fetched yet"
                }
            ),
        );
        let var = cign_data::fetch::source_env_var(kind);
        line(
            &format!("{var}:"),
            std::env::var(var).unwrap_or_else(|_| "(not set)".into()),
        );
    }
    let fid = std::env::var_os("CIGN_FID_WEIGHTS")
        .map(PathBuf::from)
        .unwrap_or_else(cign_metrics::weights::default_fid_weights_path);
    line(
        "FID weights:",
        format!(
            "{} ({})",
            fid.display(),
            if fid.is_file() {
                "present"
            } else {
                "fetched on first use"
            }
        ),
    );
    for kind in [
        cign_data::DatasetKind::Mnist,
        cign_data::DatasetKind::FashionMnist,
    ] {
        let path = cign_metrics::default_classifier_path(kind);
        line(
            &format!("{kind} classifier:"),
            format!(
                "{} ({})",
                path.display(),
                if path.is_file() {
                    "present"
                } else {
                    "not trained yet"
                }
            ),
        );
    }
    out
}
