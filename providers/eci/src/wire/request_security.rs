//! Security parameters of CreateContainerGroup, named as Alibaba's API reference has them:
//! per container `SecurityContext.RunAsUser`, `SecurityContext.ReadOnlyRootFilesystem` (only
//! `true` is accepted), `SecurityContext.Capability.Add.N` (only `NET_ADMIN` and `NET_RAW`),
//! and, without the dot, `SecurityContextRunAsGroup`, `SecurityContextRunAsNonRoot`,
//! `SecurityContextPrivileged`; per group `SecurityContext.Sysctl.N.Name|Value` (the safe
//! sysctls), `ShareProcessNamespace` and `EphemeralStorage` (GiB, 0 to 5000).

use crate::wire::params::{ParamError, Params};

/// The capabilities `SecurityContext.Capability.Add` takes.
pub const ADDABLE_CAPABILITIES: [&str; 2] = ["NET_ADMIN", "NET_RAW"];

/// The sysctls `SecurityContext.Sysctl` takes: the namespaced ones Kubernetes counts as safe.
pub const SAFE_SYSCTLS: [&str; 5] = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
];

/// The most `EphemeralStorage` adds, in GiB.
pub const MAX_EPHEMERAL_STORAGE_GIB: u32 = 5000;

/// A container's security context as ECI takes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecurityContextDef {
    pub run_as_user: Option<i64>,
    pub run_as_group: Option<i64>,
    pub run_as_non_root: Option<bool>,
    pub privileged: Option<bool>,
    /// Only `Some(true)` is sent: the service takes no other value.
    pub read_only_root_filesystem: Option<bool>,
    pub capability_add: Vec<String>,
}

impl SecurityContextDef {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    pub fn encode(&self, p: &mut Params, pre: &str) {
        p.push_opt(
            &format!("{pre}.SecurityContext.RunAsUser"),
            self.run_as_user,
        );
        p.push_opt(
            &format!("{pre}.SecurityContext.ReadOnlyRootFilesystem"),
            self.read_only_root_filesystem,
        );
        for (i, cap) in self.capability_add.iter().enumerate() {
            p.push(
                format!("{pre}.SecurityContext.Capability.Add.{}", i + 1),
                cap,
            );
        }
        p.push_opt(
            &format!("{pre}.SecurityContextRunAsGroup"),
            self.run_as_group,
        );
        p.push_opt(
            &format!("{pre}.SecurityContextRunAsNonRoot"),
            self.run_as_non_root,
        );
        p.push_opt(&format!("{pre}.SecurityContextPrivileged"), self.privileged);
    }

    /// From a container's parameters `m`; errors name the parameter relative to `m`.
    pub fn decode(m: &Params) -> Result<Option<Self>, ParamError> {
        let id = |name: &str| -> Result<Option<i64>, ParamError> {
            match m.parse::<i64>(name)? {
                Some(v) if v < 0 => Err(ParamError::invalid(name, "must not be negative")),
                v => Ok(v),
            }
        };
        let flag = |name: &str| -> Result<Option<bool>, ParamError> {
            match m.get(name) {
                None | Some("") => Ok(None),
                Some(_) => m.flag(name, false).map(Some),
            }
        };
        let read_only = flag("SecurityContext.ReadOnlyRootFilesystem")?;
        if read_only == Some(false) {
            return Err(ParamError::invalid(
                "SecurityContext.ReadOnlyRootFilesystem",
                "only true is supported",
            ));
        }
        let capability_add = m.values("SecurityContext.Capability.Add")?;
        if let Some(bad) = capability_add
            .iter()
            .find(|c| !ADDABLE_CAPABILITIES.contains(&c.as_str()))
        {
            return Err(ParamError::invalid(
                "SecurityContext.Capability.Add",
                format!("{bad:?} cannot be added; only NET_ADMIN and NET_RAW"),
            ));
        }
        let def = Self {
            run_as_user: id("SecurityContext.RunAsUser")?,
            run_as_group: id("SecurityContextRunAsGroup")?,
            run_as_non_root: flag("SecurityContextRunAsNonRoot")?,
            privileged: flag("SecurityContextPrivileged")?,
            read_only_root_filesystem: read_only,
            capability_add,
        };
        if def.run_as_non_root == Some(true) && def.run_as_user == Some(0) {
            return Err(ParamError::invalid(
                "SecurityContextRunAsNonRoot",
                "the container runs as user 0 (SecurityContext.RunAsUser) but must run as non-root",
            ));
        }
        Ok((!def.is_empty()).then_some(def))
    }
}

/// One `SecurityContext.Sysctl.N`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sysctl {
    pub name: String,
    pub value: String,
}

pub fn encode_sysctls(p: &mut Params, sysctls: &[Sysctl]) {
    for (i, s) in sysctls.iter().enumerate() {
        p.push(format!("SecurityContext.Sysctl.{}.Name", i + 1), &s.name);
        p.push(format!("SecurityContext.Sysctl.{}.Value", i + 1), &s.value);
    }
}

pub fn decode_sysctls(p: &Params) -> Result<Vec<Sysctl>, ParamError> {
    p.members("SecurityContext.Sysctl")?
        .into_iter()
        .map(|(i, m)| {
            let pre = format!("SecurityContext.Sysctl.{i}");
            let name = m
                .required("Name")
                .map_err(|_| ParamError::Missing(format!("{pre}.Name")))?;
            if !SAFE_SYSCTLS.contains(&name) {
                return Err(ParamError::invalid(
                    format!("{pre}.Name"),
                    format!("the sysctl {name:?} is not supported; supported: {SAFE_SYSCTLS:?}"),
                ));
            }
            let value = m
                .required("Value")
                .map_err(|_| ParamError::Missing(format!("{pre}.Value")))?;
            Ok(Sysctl {
                name: name.to_string(),
                value: value.to_string(),
            })
        })
        .collect()
}

/// `EphemeralStorage`: whole GiB, 0 to 5000.
pub fn decode_ephemeral_storage(p: &Params) -> Result<Option<u32>, ParamError> {
    match p.parse::<u32>("EphemeralStorage")? {
        Some(v) if v > MAX_EPHEMERAL_STORAGE_GIB => Err(ParamError::invalid(
            "EphemeralStorage",
            format!("from 0 to {MAX_EPHEMERAL_STORAGE_GIB} GiB"),
        )),
        v => Ok(v),
    }
}

/// `ShareProcessNamespace`: absent is false.
pub fn decode_share_process_namespace(p: &Params) -> Result<bool, ParamError> {
    p.flag("ShareProcessNamespace", false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_security_context_survives_the_wire() {
        let def = SecurityContextDef {
            run_as_user: Some(1000),
            run_as_group: Some(3000),
            run_as_non_root: Some(true),
            privileged: None,
            read_only_root_filesystem: Some(true),
            capability_add: vec!["NET_ADMIN".into()],
        };
        let mut p = Params::new();
        def.encode(&mut p, "Container.1");
        assert_eq!(p.get("Container.1.SecurityContext.RunAsUser"), Some("1000"));
        assert_eq!(p.get("Container.1.SecurityContextRunAsGroup"), Some("3000"));
        assert_eq!(
            p.get("Container.1.SecurityContext.Capability.Add.1"),
            Some("NET_ADMIN")
        );
        let m = &p.members("Container").unwrap()[0].1;
        assert_eq!(SecurityContextDef::decode(m).unwrap(), Some(def));
        assert_eq!(SecurityContextDef::decode(&Params::new()).unwrap(), None);
    }

    #[test]
    fn what_the_service_refuses_is_refused_by_name() {
        let refused = |pairs: &[(&str, &str)]| {
            let mut p = Params::new();
            for (k, v) in pairs {
                p.push(*k, *v);
            }
            match SecurityContextDef::decode(&p) {
                Err(ParamError::Invalid { name, .. }) => name,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(
            refused(&[("SecurityContext.ReadOnlyRootFilesystem", "false")]),
            "SecurityContext.ReadOnlyRootFilesystem"
        );
        assert_eq!(
            refused(&[("SecurityContext.Capability.Add.1", "SYS_ADMIN")]),
            "SecurityContext.Capability.Add"
        );
        assert_eq!(
            refused(&[("SecurityContext.RunAsUser", "-1")]),
            "SecurityContext.RunAsUser"
        );
        assert_eq!(
            refused(&[("SecurityContext.RunAsUser", "x")]),
            "SecurityContext.RunAsUser"
        );
        assert_eq!(
            refused(&[
                ("SecurityContext.RunAsUser", "0"),
                ("SecurityContextRunAsNonRoot", "true")
            ]),
            "SecurityContextRunAsNonRoot"
        );
    }

    #[test]
    fn group_parameters() {
        let mut p = Params::new();
        encode_sysctls(
            &mut p,
            &[Sysctl {
                name: "net.ipv4.tcp_syncookies".into(),
                value: "1".into(),
            }],
        );
        p.push("EphemeralStorage", "20");
        assert_eq!(decode_sysctls(&p).unwrap()[0].value, "1");
        assert_eq!(decode_ephemeral_storage(&p).unwrap(), Some(20));
        assert!(!decode_share_process_namespace(&p).unwrap());
        p.set("EphemeralStorage", "5001");
        assert!(decode_ephemeral_storage(&p).is_err());
        p.push("SecurityContext.Sysctl.2.Name", "kernel.msgmax");
        p.push("SecurityContext.Sysctl.2.Value", "1");
        assert!(matches!(
            decode_sysctls(&p),
            Err(ParamError::Invalid { name, .. }) if name == "SecurityContext.Sysctl.2.Name"
        ));
    }
}
