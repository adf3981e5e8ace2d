//! Getting the dataset files into a data directory: copied from a local directory, or downloaded
//! from the public mirrors, and in either case checked against the SHA-256 of their
//! decompressed bytes (gzip headers differ between mirrors; the decompressed bytes do not).

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::dataset::{find_file, DatasetKind};
use crate::error::{DataError, Result};
use crate::idx::read_maybe_gzip;

/// One standard file of a dataset and the SHA-256 of its decompressed bytes.
#[derive(Debug, Clone, Copy)]
pub struct FileSpec {
    /// Standard name without `.gz`.
    pub name: &'static str,
    /// Hex SHA-256 of the decompressed file.
    pub raw_sha256: &'static str,
}

/// MNIST's four files (checksums from `shared/data/mnist/SHA256SUMS.raw`).
pub const MNIST_FILES: [FileSpec; 4] = [
    FileSpec {
        name: "train-images-idx3-ubyte",
        raw_sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    },
    FileSpec {
        name: "train-labels-idx1-ubyte",
        raw_sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    },
    FileSpec {
        name: "t10k-images-idx3-ubyte",
        raw_sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    },
    FileSpec {
        name: "t10k-labels-idx1-ubyte",
        raw_sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
];

/// Fashion-MNIST's four files (checksums of the Debian package dataset-fashion-mnist
/// 0.0~git20200523.55506a9-1, decompressed).
pub const FASHION_MNIST_FILES: [FileSpec; 4] = [
    FileSpec {
        name: "train-images-idx3-ubyte",
        raw_sha256: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    },
    FileSpec {
        name: "train-labels-idx1-ubyte",
        raw_sha256: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    },
    FileSpec {
        name: "t10k-images-idx3-ubyte",
        raw_sha256: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    },
    FileSpec {
        name: "t10k-labels-idx1-ubyte",
        raw_sha256: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
];

/// Public mirrors of MNIST's gzip files (the file name is appended).
pub const MNIST_MIRRORS: [&str; 2] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
];

/// Public mirror of Fashion-MNIST's gzip files.
pub const FASHION_MNIST_MIRRORS: [&str; 1] =
    ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"];

/// Directory of the Debian package `dataset-fashion-mnist`.
pub const DEBIAN_FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The command that installs the Debian package holding Fashion-MNIST.
pub const FASHION_MNIST_INSTALL_HINT: &str = "sudo apt-get install dataset-fashion-mnist";

/// The four files of a dataset.
pub fn file_specs(kind: DatasetKind) -> &'static [FileSpec; 4] {
    match kind {
        DatasetKind::Mnist => &MNIST_FILES,
        DatasetKind::FashionMnist => &FASHION_MNIST_FILES,
    }
}

/// Name of the variable that names a local directory to copy the dataset from.
pub fn source_env_var(kind: DatasetKind) -> &'static str {
    match kind {
        DatasetKind::Mnist => "CIGN_MNIST_SOURCE",
        DatasetKind::FashionMnist => "CIGN_FASHION_MNIST_SOURCE",
    }
}

/// Local directories searched before downloading, in order.
pub fn local_sources(kind: DatasetKind) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os(source_env_var(kind))
        .map(PathBuf::from)
        .into_iter()
        .collect();
    if kind == DatasetKind::FashionMnist {
        dirs.push(PathBuf::from(DEBIAN_FASHION_MNIST_DIR));
    }
    dirs
}

fn mirrors(kind: DatasetKind) -> &'static [&'static str] {
    match kind {
        DatasetKind::Mnist => &MNIST_MIRRORS,
        DatasetKind::FashionMnist => &FASHION_MNIST_MIRRORS,
    }
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn verify(origin: &str, raw: &[u8], spec: &FileSpec) -> Result<()> {
    let found = sha256_hex(raw);
    if found == spec.raw_sha256 {
        Ok(())
    } else {
        Err(DataError::Checksum {
            path: origin.to_string(),
            found,
            expected: spec.raw_sha256.to_string(),
        })
    }
}

/// Verifies a file on disk (gzip or raw) against its expected decompressed SHA-256.
///
/// # Errors
///
/// As [`read_maybe_gzip`]; [`DataError::Checksum`] if the SHA-256 differs.
pub fn verify_file(path: &Path, spec: &FileSpec) -> Result<()> {
    let raw = read_maybe_gzip(path)?;
    verify(&path.display().to_string(), &raw, spec)
}

/// Writes `bytes` to `dest` atomically.
fn write_atomically(dest: &Path, bytes: &[u8]) -> Result<()> {
    crate::atomic::write_atomic_bytes(dest, bytes).map_err(|source| DataError::Write {
        path: dest.to_path_buf(),
        source,
    })
}

fn download(url: &str) -> std::result::Result<Vec<u8>, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(300)))
        .build()
        .into();
    let mut response = agent.get(url).call().map_err(|e| e.to_string())?;
    response
        .body_mut()
        .with_config()
        .limit(200 * 1024 * 1024)
        .read_to_vec()
        .map_err(|e| e.to_string())
}

/// Makes sure `dir` holds the four files of `kind`, fetching the missing ones: first from the
/// local directories of [`local_sources`] (`CIGN_MNIST_SOURCE` / `CIGN_FASHION_MNIST_SOURCE`,
/// and the Debian package's directory for Fashion-MNIST), else from the public mirrors.
/// Every fetched file is checked against its SHA-256 before it is written (atomically).
/// Files already in `dir` are left alone (loading them checks their structure).
///
/// # Errors
///
/// As [`ensure_dataset_from`].
pub fn ensure_dataset(kind: DatasetKind, dir: &Path) -> Result<()> {
    ensure_dataset_from(kind, dir, &local_sources(kind), mirrors(kind))
}

/// [`ensure_dataset`] with explicit local source directories and mirror URLs (each mirror is
/// a prefix to which the `.gz` file name is appended).
///
/// # Errors
///
/// [`DataError::Write`] if `dir` or a file in it cannot be created or written,
/// [`DataError::Io`] if a checked local source cannot be read; [`DataError::Unavailable`] if a file could be fetched from
/// no source and no mirror (the message lists every attempt and how to provide the files).
/// On an error, the directories this call created for `dir` are removed again if they are
/// still empty: a failed fetch leaves no empty directory chain behind.
pub fn ensure_dataset_from(
    kind: DatasetKind,
    dir: &Path,
    sources: &[PathBuf],
    mirrors: &[&str],
) -> Result<()> {
    let mut created = None;
    for spec in file_specs(kind) {
        if find_file(dir, spec.name).is_some() {
            continue;
        }
        if created.is_none() {
            // Dropped on an error below: removes what it created, if still empty.
            created = Some(
                crate::atomic::create_dir_all_tracked(dir).map_err(|source| DataError::Write {
                    path: dir.to_path_buf(),
                    source,
                })?,
            );
        }
        fetch_file(kind, spec, dir, sources, mirrors)?;
    }
    if let Some(created) = created {
        created.keep();
    }
    Ok(())
}

fn fetch_file(
    kind: DatasetKind,
    spec: &FileSpec,
    dir: &Path,
    sources: &[PathBuf],
    mirrors: &[&str],
) -> Result<()> {
    let gz_name = format!("{}.gz", spec.name);
    let mut failures = Vec::new();
    for source in sources {
        let Some(path) = find_file(source, spec.name) else {
            failures.push(format!("{} has no {gz_name}", source.display()));
            continue;
        };
        match verify_file(&path, spec) {
            Ok(()) => {
                let bytes = std::fs::read(&path).map_err(|source| DataError::Io {
                    path: path.clone(),
                    source,
                })?;
                let dest_name = path.file_name().expect("found files have a name");
                tracing::info!("copying {} to {}", path.display(), dir.display());
                return write_atomically(&dir.join(dest_name), &bytes);
            }
            Err(e) => failures.push(e.to_string()),
        }
    }
    for mirror in mirrors {
        let url = format!("{mirror}{gz_name}");
        tracing::info!("downloading {url}");
        let outcome = download(&url).and_then(|bytes| {
            let raw = if bytes.starts_with(&[0x1f, 0x8b]) {
                let mut out = Vec::new();
                std::io::Read::read_to_end(
                    &mut flate2::read::MultiGzDecoder::new(&bytes[..]),
                    &mut out,
                )
                .map_err(|e| format!("corrupt gzip: {e}"))?;
                out
            } else {
                bytes.clone()
            };
            verify(&url, &raw, spec).map_err(|e| e.to_string())?;
            Ok(bytes)
        });
        match outcome {
            Ok(bytes) => return write_atomically(&dir.join(&gz_name), &bytes),
            Err(e) => failures.push(format!("{url}: {e}")),
        }
    }
    let mut hint = format!(
        "{kind}: {gz_name} is not in {} and could not be fetched. Set {} to a directory holding \
         the standard gzip files (for MNIST in this project: ../shared/data/mnist)",
        dir.display(),
        source_env_var(kind)
    );
    if sources.is_empty() {
        hint.push_str(" (it is not set)");
    }
    if kind == DatasetKind::FashionMnist {
        hint.push_str(&format!(
            ", or install them with `{FASHION_MNIST_INSTALL_HINT}`"
        ));
    }
    hint.push_str(&format!(". Tried: {}", failures.join("; ")));
    Err(DataError::Unavailable { what: hint })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_fetch_leaves_no_directory_it_created() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("nx").join("a").join("mnist");
        let e = ensure_dataset_from(DatasetKind::Mnist, &dir, &[], &[]).unwrap_err();
        assert!(matches!(e, DataError::Unavailable { .. }), "{e}");
        assert!(!tmp.path().join("nx").exists());
        // An existing directory stays.
        let dir = tmp.path().join("mnist");
        std::fs::create_dir(&dir).unwrap();
        ensure_dataset_from(DatasetKind::Mnist, &dir, &[], &[]).unwrap_err();
        assert!(dir.is_dir());
    }
}
