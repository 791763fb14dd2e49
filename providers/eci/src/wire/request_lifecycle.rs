//! Lifecycle hooks and the termination message of a CreateContainerGroup container, named as
//! Alibaba's API reference has them: `LifecyclePostStartHandlerExec.N`,
//! `LifecyclePostStartHandlerHttpGetHost|Port|Path|Scheme`,
//! `LifecyclePostStartHandlerHttpGetHttpHeader.N.Name|Value`,
//! `LifecyclePostStartHandlerTcpSocketHost|Port`, the same with `LifecyclePreStopHandler`;
//! `TerminationMessagePath` and `TerminationMessagePolicy`.

use crate::wire::params::{ParamError, Params};

pub const POST_START: &str = "LifecyclePostStartHandler";
pub const PRE_STOP: &str = "LifecyclePreStopHandler";

/// What a hook does, as ECI takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HookDef {
    Exec(Vec<String>),
    HttpGet {
        host: Option<String>,
        port: u16,
        path: Option<String>,
        /// `HTTP` or `HTTPS`.
        scheme: Option<String>,
        headers: Vec<(String, String)>,
    },
    TcpSocket {
        host: Option<String>,
        port: u16,
    },
}

impl HookDef {
    /// Under `{pre}.{kind}…` (`kind`: [`POST_START`] or [`PRE_STOP`]).
    pub fn encode(&self, p: &mut Params, pre: &str, kind: &str) {
        let name = format!("{pre}.{kind}");
        match self {
            Self::Exec(command) => {
                for (i, a) in command.iter().enumerate() {
                    p.push(format!("{name}Exec.{}", i + 1), a);
                }
            }
            Self::HttpGet {
                host,
                port,
                path,
                scheme,
                headers,
            } => {
                p.push_opt(&format!("{name}HttpGetHost"), host.as_ref());
                p.push(format!("{name}HttpGetPort"), port.to_string());
                p.push_opt(&format!("{name}HttpGetPath"), path.as_ref());
                p.push_opt(&format!("{name}HttpGetScheme"), scheme.as_ref());
                for (i, (k, v)) in headers.iter().enumerate() {
                    p.push(format!("{name}HttpGetHttpHeader.{}.Name", i + 1), k);
                    p.push(format!("{name}HttpGetHttpHeader.{}.Value", i + 1), v);
                }
            }
            Self::TcpSocket { host, port } => {
                p.push_opt(&format!("{name}TcpSocketHost"), host.as_ref());
                p.push(format!("{name}TcpSocketPort"), port.to_string());
            }
        }
    }

    /// The hook `kind` of a container's parameters `m`; exactly one way, as the service
    /// requires. Errors name the parameter relative to `m`.
    pub fn decode(m: &Params, kind: &str) -> Result<Option<Self>, ParamError> {
        if !m.iter().any(|(k, _)| k.starts_with(kind)) {
            return Ok(None);
        }
        let name = |field: &str| format!("{kind}{field}");
        let port = |field: &str| -> Result<Option<u16>, ParamError> {
            let full = name(field);
            match m.parse::<u16>(&full)? {
                Some(0) => Err(ParamError::invalid(full, "a port from 1 to 65535")),
                v => Ok(v),
            }
        };
        let mut hooks = Vec::new();
        let command = m.values(&name("Exec"))?;
        if !command.is_empty() {
            hooks.push(Self::Exec(command));
        }
        let http_port = port("HttpGetPort")?;
        let http_set = m.iter().any(|(k, _)| k.starts_with(&name("HttpGet")));
        if http_set {
            let Some(port) = http_port else {
                return Err(ParamError::Missing(name("HttpGetPort")));
            };
            let scheme = m.string(&name("HttpGetScheme"));
            if let Some(s) = &scheme
                && s != "HTTP"
                && s != "HTTPS"
            {
                return Err(ParamError::invalid(
                    name("HttpGetScheme"),
                    "expected HTTP or HTTPS",
                ));
            }
            let headers = m
                .members(&name("HttpGetHttpHeader"))?
                .into_iter()
                .map(|(i, h)| {
                    let header_name = h.required("Name").map_err(|_| {
                        ParamError::Missing(format!("{}.{i}.Name", name("HttpGetHttpHeader")))
                    })?;
                    Ok((
                        header_name.to_string(),
                        h.get("Value").unwrap_or_default().to_string(),
                    ))
                })
                .collect::<Result<_, ParamError>>()?;
            hooks.push(Self::HttpGet {
                host: m.string(&name("HttpGetHost")),
                port,
                path: m.string(&name("HttpGetPath")),
                scheme,
                headers,
            });
        }
        let tcp_set = m.iter().any(|(k, _)| k.starts_with(&name("TcpSocket")));
        if tcp_set {
            let Some(port) = port("TcpSocketPort")? else {
                return Err(ParamError::Missing(name("TcpSocketPort")));
            };
            hooks.push(Self::TcpSocket {
                host: m.string(&name("TcpSocketHost")),
                port,
            });
        }
        if hooks.len() != 1 {
            return Err(ParamError::invalid(
                kind,
                "set exactly one of Exec, HttpGet and TcpSocket",
            ));
        }
        Ok(hooks.pop())
    }
}

/// A container's hooks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LifecycleDef {
    pub post_start: Option<HookDef>,
    pub pre_stop: Option<HookDef>,
}

impl LifecycleDef {
    pub fn encode(&self, p: &mut Params, pre: &str) {
        if let Some(h) = &self.post_start {
            h.encode(p, pre, POST_START);
        }
        if let Some(h) = &self.pre_stop {
            h.encode(p, pre, PRE_STOP);
        }
    }

    pub fn decode(m: &Params) -> Result<Self, ParamError> {
        Ok(Self {
            post_start: HookDef::decode(m, POST_START)?,
            pre_stop: HookDef::decode(m, PRE_STOP)?,
        })
    }
}

/// `TerminationMessagePath` and `TerminationMessagePolicy`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TerminationMessageDef {
    pub path: Option<String>,
    /// `File` or `FallbackToLogsOnError`.
    pub policy: Option<String>,
}

/// The kubelet's defaults, which the service applies too.
pub const DEFAULT_TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";

impl TerminationMessageDef {
    pub fn encode(&self, p: &mut Params, pre: &str) {
        p.push_opt(&format!("{pre}.TerminationMessagePath"), self.path.as_ref());
        p.push_opt(
            &format!("{pre}.TerminationMessagePolicy"),
            self.policy.as_ref(),
        );
    }

    pub fn decode(m: &Params) -> Result<Self, ParamError> {
        let path = m.string("TerminationMessagePath");
        if let Some(path) = &path
            && (!path.starts_with('/') || path.split('/').any(|s| s == ".."))
        {
            return Err(ParamError::invalid(
                "TerminationMessagePath",
                "an absolute path without \"..\"",
            ));
        }
        let policy = m.string("TerminationMessagePolicy");
        if let Some(policy) = &policy
            && policy != "File"
            && policy != "FallbackToLogsOnError"
        {
            return Err(ParamError::invalid(
                "TerminationMessagePolicy",
                "expected File or FallbackToLogsOnError",
            ));
        }
        Ok(Self { path, policy })
    }

    /// Where the container writes its message.
    pub fn effective_path(&self) -> &str {
        self.path
            .as_deref()
            .unwrap_or(DEFAULT_TERMINATION_MESSAGE_PATH)
    }

    pub fn falls_back_to_logs(&self) -> bool {
        self.policy.as_deref() == Some("FallbackToLogsOnError")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(l: &LifecycleDef) -> LifecycleDef {
        let mut p = Params::new();
        l.encode(&mut p, "Container.1");
        LifecycleDef::decode(&p.members("Container").unwrap()[0].1).unwrap()
    }

    #[test]
    fn every_hook_survives_the_wire() {
        let l = LifecycleDef {
            post_start: Some(HookDef::HttpGet {
                host: Some("10.0.0.1".into()),
                port: 8080,
                path: Some("/start".into()),
                scheme: Some("HTTPS".into()),
                headers: vec![("X-A".into(), "b".into())],
            }),
            pre_stop: Some(HookDef::Exec(vec!["sh".into(), "-c".into(), "x".into()])),
        };
        assert_eq!(roundtrip(&l), l);
        let mut p = Params::new();
        l.encode(&mut p, "Container.1");
        assert_eq!(
            p.get("Container.1.LifecyclePreStopHandlerExec.3"),
            Some("x")
        );
        assert_eq!(
            p.get("Container.1.LifecyclePostStartHandlerHttpGetHttpHeader.1.Name"),
            Some("X-A")
        );
        let tcp = LifecycleDef {
            post_start: None,
            pre_stop: Some(HookDef::TcpSocket {
                host: None,
                port: 22,
            }),
        };
        assert_eq!(roundtrip(&tcp), tcp);
    }

    #[test]
    fn bad_hooks_are_refused_by_name() {
        let refused = |pairs: &[(&str, &str)]| {
            let mut p = Params::new();
            for (k, v) in pairs {
                p.push(*k, *v);
            }
            LifecycleDef::decode(&p).unwrap_err()
        };
        assert_eq!(
            refused(&[("LifecyclePreStopHandlerHttpGetPath", "/x")]),
            ParamError::Missing("LifecyclePreStopHandlerHttpGetPort".into())
        );
        assert!(matches!(
            refused(&[("LifecyclePostStartHandlerHttpGetPort", "80"),
                      ("LifecyclePostStartHandlerHttpGetScheme", "ftp")]),
            ParamError::Invalid { name, .. } if name == "LifecyclePostStartHandlerHttpGetScheme"
        ));
        assert!(matches!(
            refused(&[("LifecyclePostStartHandlerExec.1", "true"),
                      ("LifecyclePostStartHandlerTcpSocketPort", "80")]),
            ParamError::Invalid { name, .. } if name == "LifecyclePostStartHandler"
        ));
    }

    #[test]
    fn termination_message_parameters() {
        let mut p = Params::new();
        p.push("TerminationMessagePath", "/tmp/msg")
            .push("TerminationMessagePolicy", "FallbackToLogsOnError");
        let t = TerminationMessageDef::decode(&p).unwrap();
        assert_eq!(t.effective_path(), "/tmp/msg");
        assert!(t.falls_back_to_logs());
        assert_eq!(
            TerminationMessageDef::default().effective_path(),
            "/dev/termination-log"
        );
        p.set("TerminationMessagePolicy", "Never");
        assert!(TerminationMessageDef::decode(&p).is_err());
        let mut rel = Params::new();
        rel.push("TerminationMessagePath", "tmp/msg");
        assert!(TerminationMessageDef::decode(&rel).is_err());
    }
}
