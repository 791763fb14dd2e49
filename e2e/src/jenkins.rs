//! The Jenkins agent pod (`manifests/examples/jenkins-agent-pod.yaml`) as the tests drive it:
//! its name, its workspace, and one `sh` step sent the way the kubernetes-plugin sends it.

use std::process::Output;

use k8s_openapi::api::core::v1::Pod;

use crate::harness::TestBed;
use crate::{kubectl_command, output_with_input};

/// The example pod's name.
pub const POD: &str = "jenkins-agent";
/// The emptyDir every container of the pod mounts.
pub const WORKSPACE: &str = "/home/jenkins/agent";

/// One step as the plugin sends it: `sh` exec'd in `container` (stdin, no terminal), then
/// `cd`, the exports, the command, `exit` written to its stdin.
pub fn step(s: &TestBed, container: &str, command: &str) -> Output {
    let input =
        format!("cd \"{WORKSPACE}\"\nexport POD_CONTAINER='{container}'\n{command}\nexit\n");
    let cmd = kubectl_command(&[
        "-n", &s.ns.name, "exec", "-i", POD, "-c", container, "--", "sh",
    ]);
    output_with_input(cmd, Some(&input))
}

/// The pod's `Ready` condition is True.
pub fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}
