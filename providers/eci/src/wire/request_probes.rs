//! `Container.N.LivenessProbe.*` and `Container.N.ReadinessProbe.*` of CreateContainerGroup:
//! one check (`Exec.Command.N`, `HttpGet.Path|Port|Scheme` or `TcpSocket.Port`) plus
//! `InitialDelaySeconds`, `PeriodSeconds`, `TimeoutSeconds`, `SuccessThreshold`,
//! `FailureThreshold`. Names from Alibaba Cloud's "Use probes to perform health checks on
//! containers" (help.aliyun.com/document_detail/99053.html), which documents no startup probe,
//! no gRPC check and no HTTP host or headers: the eci provider cannot send those.

use vk_core::provider::{Probe, ProbeHandler};

use crate::wire::params::{ParamError, Params};

/// What a probe checks, as ECI takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeCheck {
    Exec(Vec<String>),
    HttpGet {
        path: Option<String>,
        port: u16,
        /// `HTTP` or `HTTPS`.
        scheme: Option<String>,
    },
    TcpSocket {
        port: u16,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeDef {
    pub check: ProbeCheck,
    pub initial_delay_seconds: Option<u32>,
    pub period_seconds: Option<u32>,
    pub timeout_seconds: Option<u32>,
    pub success_threshold: Option<u32>,
    pub failure_threshold: Option<u32>,
}

impl ProbeDef {
    /// The probe in ECI's terms; `None` for what ECI cannot check (gRPC).
    pub fn from_probe(p: &Probe) -> Option<Self> {
        let check = match &p.handler {
            ProbeHandler::Exec { command } => ProbeCheck::Exec(command.clone()),
            ProbeHandler::HttpGet {
                port, path, https, ..
            } => ProbeCheck::HttpGet {
                path: Some(path.clone()),
                port: *port,
                scheme: Some(if *https { "HTTPS" } else { "HTTP" }.into()),
            },
            ProbeHandler::TcpSocket { port, .. } => ProbeCheck::TcpSocket { port: *port },
            ProbeHandler::Grpc { .. } => return None,
        };
        Some(Self {
            check,
            initial_delay_seconds: Some(p.initial_delay_seconds),
            period_seconds: Some(p.period_seconds),
            timeout_seconds: Some(p.timeout_seconds),
            success_threshold: Some(p.success_threshold),
            failure_threshold: Some(p.failure_threshold),
        })
    }

    /// The probe to run, with the kubelet's defaults (which ECI documents too) for what is
    /// unset.
    pub fn to_probe(&self) -> Probe {
        let handler = match &self.check {
            ProbeCheck::Exec(command) => ProbeHandler::Exec {
                command: command.clone(),
            },
            ProbeCheck::HttpGet { path, port, scheme } => ProbeHandler::HttpGet {
                host: None,
                port: *port,
                path: path.clone().unwrap_or_else(|| "/".into()),
                https: scheme
                    .as_deref()
                    .is_some_and(|s| s.eq_ignore_ascii_case("HTTPS")),
                headers: Vec::new(),
            },
            ProbeCheck::TcpSocket { port } => ProbeHandler::TcpSocket {
                host: None,
                port: *port,
            },
        };
        let defaults = Probe::new(handler);
        Probe {
            initial_delay_seconds: self
                .initial_delay_seconds
                .unwrap_or(defaults.initial_delay_seconds),
            period_seconds: self.period_seconds.unwrap_or(defaults.period_seconds),
            timeout_seconds: self.timeout_seconds.unwrap_or(defaults.timeout_seconds),
            success_threshold: self.success_threshold.unwrap_or(defaults.success_threshold),
            failure_threshold: self.failure_threshold.unwrap_or(defaults.failure_threshold),
            ..defaults
        }
    }

    pub fn encode(&self, p: &mut Params, pre: &str) {
        match &self.check {
            ProbeCheck::Exec(command) => {
                for (i, a) in command.iter().enumerate() {
                    p.push(format!("{pre}.Exec.Command.{}", i + 1), a);
                }
            }
            ProbeCheck::HttpGet { path, port, scheme } => {
                p.push_opt(&format!("{pre}.HttpGet.Path"), path.as_ref());
                p.push(format!("{pre}.HttpGet.Port"), port.to_string());
                p.push_opt(&format!("{pre}.HttpGet.Scheme"), scheme.as_ref());
            }
            ProbeCheck::TcpSocket { port } => {
                p.push(format!("{pre}.TcpSocket.Port"), port.to_string());
            }
        }
        p.push_opt(
            &format!("{pre}.InitialDelaySeconds"),
            self.initial_delay_seconds,
        );
        p.push_opt(&format!("{pre}.PeriodSeconds"), self.period_seconds);
        p.push_opt(&format!("{pre}.TimeoutSeconds"), self.timeout_seconds);
        p.push_opt(&format!("{pre}.SuccessThreshold"), self.success_threshold);
        p.push_opt(&format!("{pre}.FailureThreshold"), self.failure_threshold);
    }

    /// The probe under `name` (`LivenessProbe`) of a container's parameters `m`, if any;
    /// exactly one check, as the service requires. Errors name the parameter relative to `m`.
    pub fn decode(m: &Params, name: &str) -> Result<Option<Self>, ParamError> {
        let lead = format!("{name}.");
        if !m.iter().any(|(k, _)| k.starts_with(&lead)) {
            return Ok(None);
        }
        let command = m.values(&format!("{name}.Exec.Command"))?;
        let http_port = m.parse::<u16>(&format!("{name}.HttpGet.Port"))?;
        let tcp_port = m.parse::<u16>(&format!("{name}.TcpSocket.Port"))?;
        let mut checks = Vec::new();
        if !command.is_empty() {
            checks.push(ProbeCheck::Exec(command));
        }
        if let Some(port) = http_port {
            let scheme = m.string(&format!("{name}.HttpGet.Scheme"));
            if let Some(s) = &scheme
                && !s.eq_ignore_ascii_case("HTTP")
                && !s.eq_ignore_ascii_case("HTTPS")
            {
                return Err(ParamError::invalid(
                    format!("{name}.HttpGet.Scheme"),
                    "expected HTTP or HTTPS",
                ));
            }
            checks.push(ProbeCheck::HttpGet {
                path: m.string(&format!("{name}.HttpGet.Path")),
                port,
                scheme,
            });
        }
        if let Some(port) = tcp_port {
            checks.push(ProbeCheck::TcpSocket { port });
        }
        if checks.len() != 1 {
            return Err(ParamError::invalid(
                name,
                "set exactly one of HttpGet, Exec and TcpSocket",
            ));
        }
        let positive = |field: &str| -> Result<Option<u32>, ParamError> {
            let full = format!("{name}.{field}");
            match m.parse::<u32>(&full)? {
                Some(0) => Err(ParamError::invalid(full, "must be at least 1")),
                v => Ok(v),
            }
        };
        let Some(check) = checks.pop() else {
            return Ok(None);
        };
        Ok(Some(Self {
            check,
            initial_delay_seconds: m.parse(&format!("{name}.InitialDelaySeconds"))?,
            period_seconds: positive("PeriodSeconds")?,
            timeout_seconds: positive("TimeoutSeconds")?,
            success_threshold: positive("SuccessThreshold")?,
            failure_threshold: positive("FailureThreshold")?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(def: &ProbeDef) -> ProbeDef {
        let mut p = Params::new();
        def.encode(&mut p, "LivenessProbe");
        ProbeDef::decode(&p, "LivenessProbe").unwrap().unwrap()
    }

    #[test]
    fn every_check_survives_the_wire() {
        let probe = Probe {
            initial_delay_seconds: 5,
            period_seconds: 2,
            failure_threshold: 4,
            ..Probe::new(ProbeHandler::Exec {
                command: vec!["test".into(), "-f".into(), "/tmp/ready".into()],
            })
        };
        let def = ProbeDef::from_probe(&probe).unwrap();
        assert_eq!(roundtrip(&def), def);
        assert_eq!(def.to_probe(), probe);
        let http = ProbeDef::from_probe(&Probe::new(ProbeHandler::HttpGet {
            host: None,
            port: 8080,
            path: "/healthz".into(),
            https: true,
            headers: vec![],
        }))
        .unwrap();
        assert_eq!(roundtrip(&http), http);
        let mut p = Params::new();
        http.encode(&mut p, "ReadinessProbe");
        assert_eq!(p.get("ReadinessProbe.HttpGet.Path"), Some("/healthz"));
        assert_eq!(p.get("ReadinessProbe.HttpGet.Port"), Some("8080"));
        assert_eq!(p.get("ReadinessProbe.HttpGet.Scheme"), Some("HTTPS"));
        assert_eq!(p.get("ReadinessProbe.PeriodSeconds"), Some("10"));
        let tcp = ProbeDef::from_probe(&Probe::new(ProbeHandler::TcpSocket {
            host: None,
            port: 22,
        }))
        .unwrap();
        assert_eq!(roundtrip(&tcp), tcp);
        assert_eq!(
            ProbeDef::from_probe(&Probe::new(ProbeHandler::Grpc {
                port: 1,
                service: None
            })),
            None
        );
    }

    #[test]
    fn decoding_applies_defaults_and_refuses_two_checks() {
        let mut p = Params::new();
        p.push("LivenessProbe.TcpSocket.Port", "80");
        let def = ProbeDef::decode(&p, "LivenessProbe").unwrap().unwrap();
        let probe = def.to_probe();
        assert_eq!(
            (
                probe.period_seconds,
                probe.timeout_seconds,
                probe.failure_threshold
            ),
            (10, 1, 3)
        );
        assert_eq!(ProbeDef::decode(&p, "ReadinessProbe").unwrap(), None);
        p.push("LivenessProbe.Exec.Command.1", "true");
        assert!(ProbeDef::decode(&p, "LivenessProbe").is_err());
    }
}
