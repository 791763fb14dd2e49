//! Clients nobody here wrote, from PyPI: a Python virtual environment with pinned packages,
//! made on first use under `~/.cache/vk-serverless/venvs/<name>` (or `$VK_CACHE`) and kept.

use std::path::PathBuf;
use std::process::Command;

/// The official Kubernetes Python client, as users install it.
pub const KUBERNETES_CLIENT: &str = "kubernetes==37.0.2";

pub(crate) fn cache_dir() -> PathBuf {
    std::env::var_os("VK_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/vk-serverless")))
        .unwrap_or_else(|| std::env::temp_dir().join("vk-serverless-cache"))
}

/// The `python` of a virtual environment `name` holding `requirements` (pip's syntax). Made
/// aside and renamed into place, so test binaries running at once never see half of one.
pub fn venv(name: &str, requirements: &[&str]) -> PathBuf {
    let dir = cache_dir().join("venvs").join(name);
    let python = dir.join("bin/python");
    let marker = dir.join("requirements.txt");
    let wanted = requirements.join("\n");
    if std::fs::read_to_string(&marker).is_ok_and(|have| have == wanted) {
        return python;
    }
    let parent = dir.parent().expect("venvs dir");
    std::fs::create_dir_all(parent).expect("creating the venvs dir");
    let staging = parent.join(format!(".{name}.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let run = |cmd: &mut Command, what: &str| {
        let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            out.status.success(),
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(
        Command::new("python3").args(["-m", "venv"]).arg(&staging),
        "python3 -m venv (Debian: apt-get install python3-venv)",
    );
    run(
        Command::new(staging.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(requirements),
        "pip install from PyPI",
    );
    std::fs::write(staging.join("requirements.txt"), &wanted).expect("writing the marker");
    // Another binary may have made it meanwhile: then its copy stays.
    let _ = std::fs::remove_dir_all(&dir);
    if std::fs::rename(&staging, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    // venvs remember their path: the scripts in bin/ name the staging dir, but `python` does not.
    python
}
