//! Loading safetensors files that use the authors' state-dict names.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::{Dtype, SafeTensors};
use tch::nn::VarStore;
use tch::{Kind, Tensor};

use crate::{Architecture, Conditioning, CoreError, ModelConfig};

fn kind_of(d: Dtype) -> Option<Kind> {
    Some(match d {
        Dtype::F32 => Kind::Float,
        Dtype::F64 => Kind::Double,
        Dtype::F16 => Kind::Half,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::I64 => Kind::Int64,
        Dtype::I32 => Kind::Int,
        Dtype::I16 => Kind::Int16,
        Dtype::I8 => Kind::Int8,
        Dtype::U8 => Kind::Uint8,
        Dtype::BOOL => Kind::Bool,
        _ => return None,
    })
}

/// The content of a safetensors file: tensors (on the CPU) by name and the metadata map.
#[derive(Debug)]
pub struct SafetensorsFile {
    pub tensors: BTreeMap<String, Tensor>,
    pub metadata: HashMap<String, String>,
}

impl SafetensorsFile {
    /// A tensor by name.
    ///
    /// # Errors
    ///
    /// [`CoreError::MissingTensors`] naming `name` when the file has no such tensor.
    pub fn get(&self, name: &str) -> Result<&Tensor, CoreError> {
        self.tensors
            .get(name)
            .ok_or_else(|| CoreError::MissingTensors(name.to_string()))
    }

    /// The tensors whose names start with `prefix`, with the prefix removed.
    pub fn with_prefix(&self, prefix: &str) -> BTreeMap<String, &Tensor> {
        self.tensors
            .iter()
            .filter_map(|(n, t)| n.strip_prefix(prefix).map(|s| (s.to_string(), t)))
            .collect()
    }
}

/// Reads every tensor of a safetensors file onto the CPU, with the file's metadata.
///
/// # Errors
///
/// [`CoreError::Io`] when the file cannot be read; [`CoreError::SafeTensors`] when it is not
/// a valid safetensors file or holds a tensor of a dtype libtorch has no kind for (anything
/// but F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL).
pub fn read_safetensors(path: &Path) -> Result<SafetensorsFile, CoreError> {
    let bytes = std::fs::read(path).map_err(|e| CoreError::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| CoreError::SafeTensors(format!("{}: {e}", path.display())))?;
    let (_, meta) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| CoreError::SafeTensors(format!("{}: {e}", path.display())))?;
    let metadata = meta.metadata().clone().unwrap_or_default();
    let mut tensors = BTreeMap::new();
    for (name, view) in st.tensors() {
        let kind = kind_of(view.dtype()).ok_or_else(|| {
            CoreError::SafeTensors(format!(
                "{}: tensor {name} has unsupported dtype {:?}",
                path.display(),
                view.dtype()
            ))
        })?;
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        tensors.insert(name, Tensor::from_data_size(view.data(), &shape, kind));
    }
    Ok(SafetensorsFile { tensors, metadata })
}

/// Copies `named` tensors (names without prefix) into `vs`: every variable of `vs` (parameters
/// and BatchNorm running statistics) must be given with its shape; PyTorch's
/// `*.num_batches_tracked` counters are accepted and ignored; any other name is an error. Values
/// are converted to each variable's kind and device (F64, F32, F16 and BF16 convert; an integer
/// or boolean tensor for a floating-point variable is refused). Nothing is written unless all
/// checks pass.
/// `source` names the tensors' origin in the error (a path).
///
/// # Errors
///
/// [`CoreError::Load`] listing (the first eight of each kind, then how many more) every
/// variable of `vs` missing from `named`, every name of `named` that is no variable (other than `*.num_batches_tracked`), and every shape that
/// differs from the variable's.
pub fn load_named_into(
    vs: &mut VarStore,
    named: &BTreeMap<String, &Tensor>,
    source: &str,
) -> Result<(), CoreError> {
    let vars = vs.variables();
    let mut missing: Vec<&str> = Vec::new();
    let mut shape = Vec::new();
    let mut dtype = Vec::new();
    for (name, var) in &vars {
        match named.get(name) {
            None => missing.push(name),
            Some(t) if t.size() != var.size() => shape.push(format!(
                "{name}: model {:?}, file {:?}",
                var.size(),
                t.size()
            )),
            // An integer or boolean tensor where the model holds floats is not a weight file
            // of this model (casting would load it silently); float widths convert.
            Some(t) if var.is_floating_point() && !t.is_floating_point() => {
                dtype.push(format!("{name}: file {:?}", t.kind()))
            }
            Some(_) => {}
        }
    }
    let extra: Vec<&str> = named
        .keys()
        .map(|s| s.as_str())
        .filter(|n| !vars.contains_key(*n) && !n.ends_with("num_batches_tracked"))
        .collect();
    missing.sort();
    shape.sort();
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!("missing {}", listed(&missing, ", ")));
    }
    if !extra.is_empty() {
        problems.push(format!("unexpected {}", listed(&extra, ", ")));
    }
    if !shape.is_empty() {
        problems.push(format!("shape mismatch {}", listed(&shape, "; ")));
    }
    if !dtype.is_empty() {
        dtype.sort();
        problems.push(format!(
            "not floating point where the model's weights are {}",
            listed(&dtype, "; ")
        ));
    }
    if !problems.is_empty() {
        return Err(CoreError::Load {
            path: source.to_string(),
            problems: problems.join("; "),
        });
    }
    tch::no_grad(|| {
        for (name, mut var) in vars {
            let src = named[&name];
            var.copy_(&src.to_kind(var.kind()).to_device(var.device()));
        }
    });
    Ok(())
}

/// How many names of each kind a load error lists before "and N more" (a file of another
/// model would otherwise give a line of kilobytes).
const LISTED: usize = 8;

/// The first [`LISTED`] of `items` joined by `sep`, and how many more there are.
fn listed<T: AsRef<str>>(items: &[T], sep: &str) -> String {
    let shown: Vec<&str> = items.iter().take(LISTED).map(|i| i.as_ref()).collect();
    let more = items.len().saturating_sub(LISTED);
    if more == 0 {
        shown.join(sep)
    } else {
        format!("{}{sep}and {more} more", shown.join(sep))
    }
}

/// Loads the tensors named `prefix + <variable name>` (e.g. prefix `"state."`) from a
/// safetensors file into `vs` (parameters and BatchNorm running statistics). The error names
/// the missing, unexpected (other names with the prefix) and shape-mismatched tensors (up to
/// eight of each kind, then how many more, as [`load_named_into`]).
///
/// # Errors
///
/// As [`read_safetensors`] for the file, then as [`load_named_into`] for its tensors.
pub fn load_safetensors_into(
    vs: &mut VarStore,
    path: &Path,
    prefix: &str,
) -> Result<(), CoreError> {
    let file = read_safetensors(path)?;
    load_named_into(vs, &file.with_prefix(prefix), &path.display().to_string())
}

/// The model config a fixture's (or an export's) metadata names: keys `kind` (`channel`,
/// `filter`, `none` for the CIGN network without labels, or `ign` for the IGN network),
/// `latent_dim`, `intermediate_dim` and `embedding_dim` (the last two optional for `ign`:
/// `8 * latent_dim` and unused), and optionally `dropout`, `num_classes`, `image_channels`.
/// Absent optional keys take their defaults (`dropout` 0.1 for `ign`).
///
/// # Errors
///
/// [`CoreError::Metadata`] for a missing required key, an unparsable value or an unknown
/// kind; [`CoreError::Config`] when the result fails [`ModelConfig::validate`] (sizes out of
/// range included, however large: nothing here overflows).
pub fn model_config_from_metadata(
    meta: &HashMap<String, String>,
) -> Result<ModelConfig, CoreError> {
    let int = |k: &str| -> Result<Option<i64>, CoreError> {
        meta.get(k)
            .map(|v| {
                v.trim()
                    .parse::<i64>()
                    .map_err(|e| CoreError::Metadata(format!("{k}={v}: {e}")))
            })
            .transpose()
    };
    let req = |k: &str| -> Result<i64, CoreError> {
        int(k)?.ok_or_else(|| CoreError::Metadata(format!("no {k}")))
    };
    let kind = meta
        .get("kind")
        .or_else(|| meta.get("conditioning"))
        .map(|s| s.trim().to_lowercase());
    let base = match kind.as_deref() {
        Some("channel") => ModelConfig::with_dims(Conditioning::Channel, 1, 1, 1),
        Some("filter") => ModelConfig::with_dims(Conditioning::Filter, 1, 1, 1),
        Some("none") | Some("unconditional") => ModelConfig::with_dims(Conditioning::None, 1, 1, 1),
        Some("ign") => ModelConfig::ign(1),
        other => {
            return Err(CoreError::Metadata(format!(
                "kind {other:?} is not channel, filter, none or ign"
            )))
        }
    };
    let ign = base.architecture == Architecture::Ign;
    let latent_dim = req("latent_dim")?;
    let cfg = ModelConfig {
        latent_dim,
        intermediate_dim: if ign {
            // saturating: a huge latent_dim is then refused by validate, naming it
            int("intermediate_dim")?.unwrap_or_else(|| latent_dim.saturating_mul(8))
        } else {
            req("intermediate_dim")?
        },
        embedding_dim: if ign {
            int("embedding_dim")?.unwrap_or(base.embedding_dim)
        } else {
            req("embedding_dim")?
        },
        dropout: match meta.get("dropout") {
            Some(v) => v
                .trim()
                .parse()
                .map_err(|e| CoreError::Metadata(format!("dropout={v}: {e}")))?,
            None => base.dropout,
        },
        num_classes: int("num_classes")?.unwrap_or(base.num_classes),
        image_channels: int("image_channels")?.unwrap_or(base.image_channels),
        ..base
    };
    cfg.validate()?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lists_are_cut_with_a_count() {
        let few = ["a", "b"];
        assert_eq!(listed(&few, ", "), "a, b");
        let many: Vec<String> = (0..20).map(|i| format!("t{i}")).collect();
        assert_eq!(
            listed(&many, "; "),
            "t0; t1; t2; t3; t4; t5; t6; t7; and 12 more"
        );
        let exactly: Vec<String> = (0..LISTED).map(|i| format!("t{i}")).collect();
        assert!(!listed(&exactly, ", ").contains("more"));
    }
}
