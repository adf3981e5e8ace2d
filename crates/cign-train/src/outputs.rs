//! The output paths of the cign-train binaries (`cign-sample --out/--idx/--idx-labels`,
//! `cign-export --out`, `cign-eval --json`, `cign-curve --json/--png`), checked together by
//! [`check_outputs`] before any model is loaded or image generated, so that every tool behaves
//! the same way: an output that is one of the command's inputs, another output, or a file
//! inside a run directory's `checkpoints/` folder is refused; an existing directory or a
//! directory that cannot be created or written is refused (cign-data's
//! [`prepare_output`](cign_data::atomic::prepare_output)); missing parent directories are
//! created, and removed again if the command fails.

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

/// The run directory whose `checkpoints/` folder holds `path`, if any (a `checkpoints`
/// directory next to a `config.toml`).
fn checkpoints_run_dir(path: &Path) -> Option<PathBuf> {
    let resolved = resolve_path(path);
    resolved
        .ancestors()
        .skip(1)
        .find(|a| {
            a.file_name().is_some_and(|n| n == "checkpoints")
                && a.parent()
                    .is_some_and(|run| run.join("config.toml").is_file())
        })
        .and_then(|a| a.parent().map(Path::to_path_buf))
}

/// Checks every output of a command before any work: `outputs` are `(flag, path)` pairs
/// (e.g. `("--json", path)`), `inputs` the files the command reads, each with a name for the
/// message (e.g. `("--weights", path)`). Missing parent directories of the outputs are
/// created (see [`Outputs`]).
///
/// # Errors
///
/// One line naming the flag and the path: an output that is the same file as an input or as
/// another output; an output inside a run directory's `checkpoints/` folder (only
/// `cign-train` writes there: a checkpoint overwritten by a model-only file loses the
/// optimizer state), checked first; then what [`cign_data::atomic::check_outputs`] refuses
/// (the same-file cases, an existing directory, a parent directory that cannot be created or
/// written). Nothing is created when an error is returned.
pub fn check_outputs<S: AsRef<str>, P: AsRef<Path>>(
    outputs: &[(&str, &Path)],
    inputs: &[(S, P)],
) -> Result<Outputs> {
    for (flag, path) in outputs {
        if let Some(run) = checkpoints_run_dir(path) {
            bail!(
                "{flag} {}: lies inside the checkpoints/ folder of the run directory {}, which \
                 only cign-train writes (a checkpoint replaced there loses its optimizer and \
                 loop state): write the output elsewhere",
                path.display(),
                run.display()
            );
        }
    }
    let created = cign_data::atomic::check_outputs(outputs, inputs)?;
    Ok(Outputs { created })
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
}
