//! Who a container's processes run as, and with which capabilities, the way a container
//! runtime starts them: `setpriv` (util-linux), run inside the sandbox just before the
//! container's command (main process, exec'd commands and hooks alike), sets the user and
//! group and cuts the capability bounding set to the runtime's default set plus what the
//! container adds. A non-root user then has no effective capabilities at all, as in a
//! container; a privileged container keeps every capability.

use std::path::Path;

/// The runtime's default capabilities (containerd's set without `NET_RAW`, which ECI grants
/// only when asked for), in setpriv's spelling.
pub const DEFAULT_CAPABILITIES: [&str; 13] = [
    "chown",
    "dac_override",
    "fsetid",
    "fowner",
    "mknod",
    "setgid",
    "setuid",
    "setfcap",
    "setpcap",
    "net_bind_service",
    "sys_chroot",
    "kill",
    "audit_write",
];

/// A container's user, group and capabilities.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunAs {
    pub uid: Option<u32>,
    /// Without a group, a user runs in group 0, as a runtime does for a numeric user the
    /// image does not know.
    pub gid: Option<u32>,
    /// Capabilities added (`NET_ADMIN`), any spelling.
    pub add: Vec<String>,
    pub privileged: bool,
}

impl RunAs {
    /// `argv` run as this identity: through `setpriv` at `setpriv` (a path inside the sandbox).
    pub fn wrap(&self, setpriv: &Path, argv: Vec<String>) -> Vec<String> {
        let mut out = vec![setpriv.display().to_string()];
        if let Some(uid) = self.uid {
            out.push(format!("--reuid={uid}"));
            out.push(format!("--regid={}", self.gid.unwrap_or(0)));
            out.push("--clear-groups".into());
        } else if let Some(gid) = self.gid {
            out.push(format!("--regid={gid}"));
            out.push("--clear-groups".into());
        }
        if !self.privileged {
            let mut set = String::from("--bounding-set=-all");
            for cap in DEFAULT_CAPABILITIES
                .iter()
                .map(|c| c.to_string())
                .chain(self.add.iter().map(|c| setpriv_name(c)))
            {
                set.push_str(",+");
                set.push_str(&cap);
            }
            out.push(set);
        }
        if out.len() == 1 {
            return argv;
        }
        out.push("--".into());
        out.extend(argv);
        out
    }
}

/// `NET_ADMIN`, `CAP_NET_ADMIN` → `net_admin`.
fn setpriv_name(cap: &str) -> String {
    let lower = cap.to_ascii_lowercase();
    lower.strip_prefix("cap_").unwrap_or(&lower).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv() -> Vec<String> {
        vec!["id".into(), "-u".into()]
    }

    #[test]
    fn a_user_runs_with_the_default_capabilities_only() {
        let id = RunAs {
            uid: Some(1000),
            gid: None,
            add: vec!["NET_ADMIN".into()],
            privileged: false,
        };
        let wrapped = id.wrap(Path::new("/usr/bin/setpriv"), argv());
        assert_eq!(
            wrapped[..4],
            [
                "/usr/bin/setpriv",
                "--reuid=1000",
                "--regid=0",
                "--clear-groups"
            ]
        );
        assert!(wrapped[4].starts_with("--bounding-set=-all,+chown,"));
        assert!(wrapped[4].ends_with(",+net_admin"));
        assert_eq!(wrapped[5..], ["--", "id", "-u"]);
    }

    #[test]
    fn privileged_root_is_left_alone() {
        let id = RunAs {
            privileged: true,
            ..Default::default()
        };
        assert_eq!(id.wrap(Path::new("setpriv"), argv()), argv());
        let root = RunAs::default().wrap(Path::new("setpriv"), argv());
        assert_eq!(root.len(), 5);
    }
}
