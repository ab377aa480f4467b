//! Finding and loading the ONNX Runtime shared library.
//!
//! The `ort` crate is built with `load-dynamic`, so nothing is linked at build time.
//! The library is looked up, in order, at:
//!
//! 1. `ORT_DYLIB_PATH`, when set (and then nowhere else, so that a wrong value is
//!    reported rather than silently replaced);
//! 2. `.ort/lib/libonnxruntime.so` in the folder of the running executable or any of
//!    its parents, which is where `scripts/setup-onnxruntime.sh` installs it inside a
//!    checkout (`target/release/bge-m3` finds the checkout's `.ort/`);
//! 3. the same folder inside the checkout this crate was built from.
//!
//! One ONNX Runtime environment serves the whole process; sessions share it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;

use crate::error::{Error, Result};

/// Environment variable that overrides where the shared library is loaded from.
pub const DYLIB_PATH_VARIABLE: &str = "ORT_DYLIB_PATH";

/// Folder, relative to a checkout, where the setup script installs the library.
const LOCAL_LIB_DIR: &str = ".ort/lib";

static ENVIRONMENT: OnceLock<Environment> = OnceLock::new();

/// Returns the process-wide ONNX Runtime environment, loading the library on first use.
pub(crate) fn environment() -> Result<&'static Environment> {
    if let Some(environment) = ENVIRONMENT.get() {
        return Ok(environment);
    }
    let path = locate_library()?;
    let builder = ort::init_from(&path).map_err(|source| Error::RuntimeLoad {
        path: path.clone(),
        source,
    })?;
    let environment = builder
        .with_name("bge-m3")
        .build()
        .map_err(|source| Error::Onnx {
            action: "create its environment".to_owned(),
            source,
        })?;
    tracing::debug!(path = %path.display(), "loaded ONNX Runtime");
    Ok(ENVIRONMENT.get_or_init(|| environment))
}

/// Returns the shared library's path, or the list of places that were tried.
pub fn locate_library() -> Result<PathBuf> {
    if let Some(value) = std::env::var_os(DYLIB_PATH_VARIABLE).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(value);
        if path.is_file() {
            return Ok(path);
        }
        return Err(Error::RuntimeNotFound {
            searched: vec![path],
        });
    }
    let candidates = candidate_paths();
    match candidates.iter().find(|path| path.is_file()) {
        Some(path) => Ok(path.clone()),
        None => Err(Error::RuntimeNotFound {
            searched: candidates,
        }),
    }
}

fn candidate_paths() -> Vec<PathBuf> {
    let file_name = library_file_name();
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).map(Path::to_path_buf));
    }
    // The workspace root, two levels above this crate's manifest.
    let build_checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    roots.push(build_checkout);

    let mut paths: Vec<PathBuf> = Vec::new();
    for root in roots {
        let path = root.join(LOCAL_LIB_DIR).join(&file_name);
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    paths
}

fn library_file_name() -> String {
    format!(
        "{}onnxruntime{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )
}
