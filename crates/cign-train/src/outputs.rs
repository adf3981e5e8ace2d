//! The output paths of the cign-train binaries (`cign-sample --out/--idx/--idx-labels`,
//! `cign-export --out`, `cign-eval --json`, `cign-curve --json/--png`), checked together by
//! [`check_outputs`] before any model is loaded or image generated, so that every tool behaves
//! the same way: an output that is one of the command's inputs, another output, a file inside a
//! run directory's `checkpoints/` folder, or one of the files cign-train keeps in a run
//! directory ([`RUN_FILES`]) is refused; an existing directory or a directory that cannot be
//! created or written is refused (cign-data's
//! [`prepare_output`](cign_data::atomic::prepare_output)); missing parent directories are
//! created, and removed again if the command fails. cign-data's
//! [`Staged`](cign_data::atomic::Staged) writes several outputs so that a command leaves all
//! of them or none.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use cign_data::atomic::{resolve_path, CreatedDirs};

/// The outputs of a command, checked; holds the parent directories created for them. Call
/// [`Outputs::keep`] once the command has succeeded: dropped without it (the command failed),
/// the directories it created are removed again when empty.
#[derive(Debug)]
#[must_use = "dropping it removes the directories created for the outputs"]
pub struct Outputs {
    created: CreatedDirs,
}

impl Outputs {
    /// Keeps the directories created for the outputs.
    pub fn keep(self) {
        self.created.keep();
    }
}

/// The files cign-train keeps in a run directory besides `checkpoints/`, which no other tool
/// may replace, each with what replacing it does.
pub const RUN_FILES: [(&str, &str); 4] = [
    (
        "lock",
        "a replaced lock file lets a second trainer into the run",
    ),
    ("metrics.jsonl", "the run's records would be lost"),
    ("run.log", "the run's log would be lost"),
    ("config.toml", "the run resumes with this config"),
];

/// Why `path` belongs to cign-train, if it does: `(run directory, what, why)` for a file
/// inside a run directory's `checkpoints/` folder or one of its [`RUN_FILES`] (a run directory
/// is a directory with a `config.toml`).
fn run_owned(path: &Path) -> Option<(PathBuf, String, &'static str)> {
    let is_run = |dir: &Path| dir.join("config.toml").is_file();
    let resolved = resolve_path(path);
    if let Some(run) = resolved.parent().filter(|run| is_run(run)) {
        let name = resolved.file_name().and_then(|n| n.to_str());
        if let Some((name, why)) = RUN_FILES.iter().find(|(f, _)| Some(*f) == name) {
            return Some((
                run.to_path_buf(),
                format!("is the {name} of the run directory"),
                why,
            ));
        }
    }
    resolved
        .ancestors()
        .skip(1)
        .find(|a| {
            a.file_name().is_some_and(|n| n == "checkpoints") && a.parent().is_some_and(is_run)
        })
        .and_then(|a| a.parent().map(Path::to_path_buf))
        .map(|run| {
            (
                run,
                "lies inside the checkpoints/ folder of the run directory".to_string(),
                "a checkpoint replaced there loses its optimizer and loop state",
            )
        })
}

/// Checks every output of a command before any work: `outputs` are `(flag, path)` pairs
/// (e.g. `("--json", path)`), `inputs` the files the command reads, each with a name for the
/// message (e.g. `("--weights", path)`). Missing parent directories of the outputs are
/// created (see [`Outputs`]).
///
/// # Errors
///
/// One line naming the flag and the path: an output inside a run directory's `checkpoints/`
/// folder or one of its [`RUN_FILES`] (only `cign-train` writes those; the line says what
/// replacing it would do), checked first; then what [`cign_data::atomic::check_outputs`] refuses (an
/// output that is the same file as an input or as another output, an existing directory, a
/// parent directory that cannot be created or written). Nothing is created when an error is
/// returned.
pub fn check_outputs<S: AsRef<str>, P: AsRef<Path>>(
    outputs: &[(&str, &Path)],
    inputs: &[(S, P)],
) -> Result<Outputs> {
    for (flag, path) in outputs {
        if let Some((run, what, why)) = run_owned(path) {
            bail!(
                "{flag} {}: {what} {}, which only cign-train writes ({why}): write the output \
                 elsewhere",
                path.display(),
                run.display()
            );
        }
    }
    let created = cign_data::atomic::check_outputs(outputs, inputs)?;
    Ok(Outputs { created })
}

/// Checks `output.dir` of a new run: its run directories must not be made inside another run's
/// `checkpoints/` folder (only `cign-train` writes there, and that run's checkpoint
/// bookkeeping would meet a foreign directory).
///
/// # Errors
///
/// One line naming `output.dir` and the run directory whose `checkpoints/` holds it.
pub fn check_output_dir(dir: &Path) -> Result<()> {
    // A run directory made there would be `dir/<name>`: judged like any file below `dir`.
    if let Some((run, _, why)) = run_owned(&dir.join("new-run")) {
        bail!(
            "output.dir {}: lies inside the checkpoints/ folder of the run directory {}, which \
             only cign-train writes ({why}): put new runs elsewhere",
            dir.display(),
            run.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_checkpoints_and_duplicates_are_refused_and_nothing_is_created() {
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path().join("run");
        std::fs::create_dir_all(run.join("checkpoints")).unwrap();
        std::fs::write(run.join("config.toml"), "").unwrap();
        let ckpt = run.join("checkpoints").join("best.safetensors");
        std::fs::write(&ckpt, b"x").unwrap();
        let image = tmp.path().join("in.png");
        std::fs::write(&image, b"x").unwrap();
        let inputs = [
            ("the checkpoint", ckpt.as_path()),
            ("--project", image.as_path()),
        ];
        // The checkpoint under another spelling: inside checkpoints/, refused before anything.
        let other = run
            .join("checkpoints")
            .join("..")
            .join("checkpoints/best.safetensors");
        let e = check_outputs(&[("--out", other.as_path())], &inputs)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--out ") && e.contains("inside the checkpoints/ folder"),
            "{e}"
        );
        // An input under another spelling.
        let again = tmp.path().join("run").join("..").join("in.png");
        let e = check_outputs(&[("--out", again.as_path())], &inputs)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--out ") && e.contains("same file as --project"),
            "{e}"
        );
        // Anything else in checkpoints/, existing or not.
        let new = run.join("checkpoints").join("sub").join("w.safetensors");
        let e = check_outputs(&[("--out", new.as_path())], &inputs)
            .unwrap_err()
            .to_string();
        assert!(e.contains("inside the checkpoints/ folder"), "{e}");
        assert!(!run.join("checkpoints").join("sub").exists());
        // Two outputs on one file; the first output's directory is not created.
        let a = tmp.path().join("new").join("a.png");
        let e = check_outputs(&[("--out", a.as_path()), ("--idx", a.as_path())], &inputs)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--out") && e.contains("--idx"), "{e}");
        assert!(!tmp.path().join("new").exists());
        // A bad second output removes the directory made for the first.
        let file = tmp.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let b = file.join("b.json");
        let e = check_outputs(&[("--out", a.as_path()), ("--json", b.as_path())], &inputs)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--json "), "{e}");
        assert!(!tmp.path().join("new").exists());
        // Good outputs: directories made, and kept.
        check_outputs(&[("--out", a.as_path())], &inputs)
            .unwrap()
            .keep();
        assert!(tmp.path().join("new").is_dir());
    }

    #[test]
    fn a_new_run_inside_a_runs_checkpoints_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path().join("run");
        std::fs::create_dir_all(run.join("checkpoints")).unwrap();
        std::fs::write(run.join("config.toml"), "").unwrap();
        let e = check_output_dir(&run.join("checkpoints"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("output.dir") && e.contains("checkpoints/ folder"),
            "{e}"
        );
        assert!(check_output_dir(&run.join("checkpoints/deeper")).is_err());
        // Beside a run, or in a folder named checkpoints of no run: fine.
        check_output_dir(tmp.path()).unwrap();
        check_output_dir(&tmp.path().join("checkpoints")).unwrap();
    }

    #[test]
    fn the_files_cign_train_keeps_in_a_run_directory_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path().join("run");
        std::fs::create_dir_all(&run).unwrap();
        let no_inputs: [(&str, &Path); 0] = [];
        // Not a run directory yet (no config.toml): these are plain names.
        for (name, _) in RUN_FILES {
            if name != "config.toml" {
                let p = run.join(name);
                check_outputs(&[("--out", p.as_path())], &no_inputs)
                    .unwrap()
                    .keep();
            }
        }
        std::fs::write(run.join("config.toml"), "").unwrap();
        for (name, _) in RUN_FILES {
            let p = run.join("samples").join("..").join(name);
            let e = check_outputs(&[("--json", p.as_path())], &no_inputs)
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("--json ")
                    && e.contains(&format!("is the {name} of the run directory"))
                    && e.contains("only cign-train writes"),
                "{e}"
            );
        }
        // Other files of a run directory are outputs like any other.
        let p = run.join("curve.json");
        check_outputs(&[("--json", p.as_path())], &no_inputs)
            .unwrap()
            .keep();
    }
}
