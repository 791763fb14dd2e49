//! The client the Jenkins kubernetes-plugin execs with: fabric8 kubernetes-client 7.3.1 over
//! OkHttp, from Maven Central. `e2e/fabric8` (one Java class) is built with Maven on first use
//! into `~/.cache/vk-serverless/fabric8` (or `$VK_CACHE`) and kept until its sources change.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::python::cache_dir;
use crate::repo_root;

/// The sources the build depends on; the cached build remembers their text.
const SOURCES: &[&str] = &["pom.xml", "src/main/java/StepExec.java"];

/// `java -cp … StepExec`, ready for its arguments `<kubeconfig> <namespace> <pod> <container>
/// [timeout-s]`: one plugin step, the script on its stdin, the exec's exit code as its own.
pub fn step_exec() -> Command {
    let dir = build();
    let classpath = format!(
        "{}:{}",
        dir.join("fabric8-exec.jar").display(),
        dir.join("dependency/*").display()
    );
    let mut cmd = Command::new("java");
    cmd.arg("-cp").arg(classpath).arg("StepExec");
    cmd
}

/// The build directory, made if missing or stale. Built aside and renamed into place under a
/// lock file, so test binaries starting at once build it once and never see half of one.
fn build() -> PathBuf {
    let project = repo_root().join("e2e/fabric8");
    let wanted: String = SOURCES
        .iter()
        .map(|f| {
            let path = project.join(f);
            std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        })
        .collect::<Vec<_>>()
        .join("\n");
    let dir = cache_dir().join("fabric8");
    let marker = dir.join("sources.txt");
    let fresh = |marker: &Path| std::fs::read_to_string(marker).is_ok_and(|have| have == wanted);
    if fresh(&marker) {
        return dir;
    }
    let parent = dir.parent().expect("cache dir");
    std::fs::create_dir_all(parent).expect("creating the cache dir");
    let lock = File::create(parent.join(".fabric8.lock")).expect("creating the lock file");
    lock.lock().expect("locking the fabric8 build");
    // Another binary may have built it while this one waited.
    if fresh(&marker) {
        return dir;
    }
    let staging = parent.join(format!(".fabric8.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let out = Command::new("mvn")
        .args(["-q", "-B", "-f"])
        .arg(project.join("pom.xml"))
        .arg(format!("-Dvk.build.dir={}", staging.display()))
        .args(["package", "dependency:copy-dependencies"])
        .output()
        .unwrap_or_else(|e| panic!("running mvn (Debian: apt-get install maven): {e}"));
    assert!(
        out.status.success(),
        "building e2e/fabric8 with Maven failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(staging.join("sources.txt"), &wanted).expect("writing the marker");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&staging, &dir).expect("moving the fabric8 build into place");
    dir
}
