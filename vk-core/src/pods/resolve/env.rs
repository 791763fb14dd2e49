//! A container's environment, built like the kubelet's `makeEnvironmentVariables`:
//!
//! 1. `envFrom` sources in order; every key of the configMap/secret becomes a variable (with
//!    the prefix); a later source overrides an earlier one;
//! 2. `env` entries in order, overriding anything before them. A non-empty `value` has its
//!    `$(VAR)` references expanded against the variables defined so far (`envFrom` ones and
//!    earlier `env` ones); `valueFrom` is resolved (fieldRef, resourceFieldRef, configMapKeyRef,
//!    secretKeyRef) and never expanded.
//!
//! A missing configMap/secret/key is an error unless the reference is `optional`, in which case
//! the variable (or the whole `envFrom` source) is skipped. Secret values are bytes, turned into
//! text with invalid UTF-8 replaced.
//!
//! Before both come the `KUBERNETES_*` variables and the service links (`service_env.rs`),
//! which the container's own variables override.
//!
//! The result keeps first-definition order: a variable overridden later stays where it was
//! first defined, with its final value.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Container;

use super::{Ctx, ResolveError, ResolveWarning, expand, fieldpath, resources};
use crate::provider::EnvVar;

#[derive(Default)]
struct OrderedEnv {
    vars: Vec<EnvVar>,
    index: HashMap<String, usize>,
}

impl OrderedEnv {
    fn set(&mut self, name: String, value: String) {
        match self.index.get(&name) {
            Some(&i) => {
                if let Some(var) = self.vars.get_mut(i) {
                    var.value = value;
                }
            }
            None => {
                self.index.insert(name.clone(), self.vars.len());
                self.vars.push(EnvVar { name, value });
            }
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.index
            .get(name)
            .and_then(|&i| self.vars.get(i))
            .map(|v| v.value.as_str())
    }
}

/// Whether an `envFrom` key (with its prefix) may become a variable: the API server's rule for
/// variable names since KEP-4369 (RelaxedEnvironmentVariableValidation, on by default from
/// 1.32): non-empty, printable ASCII, no `=`. The strict C-identifier-like rule the kubelet once
/// applied here (and that skipped keys such as `1key`) is gone from the kubelet; a key that even
/// the relaxed rule rejects could not be passed to a process anyway, so it is skipped with a
/// warning.
pub(super) fn is_env_var_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'=')
}

fn skipped(ctx: &mut Ctx<'_>, mut invalid: Vec<String>, kind: &str, name: &str) {
    if invalid.is_empty() {
        return;
    }
    invalid.sort();
    ctx.warnings.push(ResolveWarning {
        reason: "InvalidEnvironmentVariableNames".to_string(),
        message: format!(
            "Keys [{}] from the EnvFrom {kind} {}/{name} were skipped since they are considered invalid environment variable names.",
            invalid.join(", "),
            ctx.namespace
        ),
    });
}

/// The variables the kubelet gives every container for the `kubernetes` Service (port name
/// `https`), so in-cluster clients (kubectl, client-go, kube-rs) find the API server.
pub fn kubernetes_service_env(host: &str, port: u16) -> Vec<(String, String)> {
    let address = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    vec![
        ("KUBERNETES_SERVICE_HOST".into(), host.to_string()),
        ("KUBERNETES_SERVICE_PORT".into(), port.to_string()),
        ("KUBERNETES_SERVICE_PORT_HTTPS".into(), port.to_string()),
        ("KUBERNETES_PORT".into(), format!("tcp://{address}")),
        (
            format!("KUBERNETES_PORT_{port}_TCP"),
            format!("tcp://{address}"),
        ),
        (format!("KUBERNETES_PORT_{port}_TCP_PROTO"), "tcp".into()),
        (format!("KUBERNETES_PORT_{port}_TCP_PORT"), port.to_string()),
        (format!("KUBERNETES_PORT_{port}_TCP_ADDR"), host.to_string()),
    ]
}

pub(super) async fn resolve_env(
    ctx: &mut Ctx<'_>,
    c: &Container,
) -> Result<Vec<EnvVar>, ResolveError> {
    let mut env = OrderedEnv::default();
    if let Some((host, port)) = ctx.kubernetes_service() {
        for (name, value) in kubernetes_service_env(&host, port) {
            env.set(name, value);
        }
    }
    // Before the container's own, which win and may refer to them in `$(VAR)`.
    for (name, value) in &ctx.service_links {
        env.set(name.clone(), value.clone());
    }

    for from in c.env_from.as_deref().unwrap_or_default() {
        let prefix = from.prefix.as_deref().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            let Some(cm) = ctx.config_map(&r.name).await? else {
                if r.optional.unwrap_or(false) {
                    continue;
                }
                return Err(ctx.not_found("configmap", &r.name));
            };
            let mut invalid = Vec::new();
            for (key, value) in cm.data.iter().flatten() {
                let name = format!("{prefix}{key}");
                if is_env_var_name(&name) {
                    env.set(name, value.clone());
                } else {
                    invalid.push(name);
                }
            }
            skipped(ctx, invalid, "configMap", &r.name);
        } else if let Some(r) = &from.secret_ref {
            let Some(secret) = ctx.secret(&r.name).await? else {
                if r.optional.unwrap_or(false) {
                    continue;
                }
                return Err(ctx.not_found("secret", &r.name));
            };
            let mut invalid = Vec::new();
            for (key, value) in secret.data.iter().flatten() {
                let name = format!("{prefix}{key}");
                if is_env_var_name(&name) {
                    env.set(name, String::from_utf8_lossy(&value.0).into_owned());
                } else {
                    invalid.push(name);
                }
            }
            skipped(ctx, invalid, "secret", &r.name);
        }
    }

    for var in c.env.as_deref().unwrap_or_default() {
        let literal = var.value.as_deref().unwrap_or_default();
        let value = if !literal.is_empty() {
            expand::expand(literal, |name| env.get(name).map(str::to_string))
        } else if let Some(from) = &var.value_from {
            if let Some(fs) = &from.field_ref {
                fieldpath::env_value(ctx, fs)?
            } else if let Some(rs) = &from.resource_field_ref {
                resources::resource_field_value(ctx.pod, Some(c), rs)?
            } else if let Some(r) = &from.config_map_key_ref {
                let optional = r.optional.unwrap_or(false);
                let Some(cm) = ctx.config_map(&r.name).await? else {
                    if optional {
                        continue;
                    }
                    return Err(ctx.not_found("configmap", &r.name));
                };
                match cm.data.as_ref().and_then(|d| d.get(&r.key)) {
                    Some(v) => v.clone(),
                    None if optional => continue,
                    None => return Err(ctx.key_not_found("configmap", &r.name, &r.key)),
                }
            } else if let Some(r) = &from.secret_key_ref {
                let optional = r.optional.unwrap_or(false);
                let Some(secret) = ctx.secret(&r.name).await? else {
                    if optional {
                        continue;
                    }
                    return Err(ctx.not_found("secret", &r.name));
                };
                match secret.data.as_ref().and_then(|d| d.get(&r.key)) {
                    Some(v) => String::from_utf8_lossy(&v.0).into_owned(),
                    None if optional => continue,
                    None => return Err(ctx.key_not_found("secret", &r.name, &r.key)),
                }
            } else {
                String::new()
            }
        } else {
            String::new()
        };
        env.set(var.name.clone(), value);
    }

    Ok(env.vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_var_names() {
        for ok in [
            "A",
            "a_b",
            "1key",
            "my.var",
            "with-dash",
            "Logging:LogLevel:Default",
            "a b",
            "~!@#",
        ] {
            assert!(is_env_var_name(ok), "{ok}");
        }
        for bad in ["", "a=b", "=", "é", "a\nb", "a\0", "tab\t"] {
            assert!(!is_env_var_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn ordered_env_overrides_in_place() {
        let mut env = OrderedEnv::default();
        env.set("A".into(), "1".into());
        env.set("B".into(), "2".into());
        env.set("A".into(), "3".into());
        assert_eq!(env.get("A"), Some("3"));
        assert_eq!(env.get("C"), None);
        let names: Vec<_> = env
            .vars
            .iter()
            .map(|v| (v.name.as_str(), v.value.as_str()))
            .collect();
        assert_eq!(names, [("A", "3"), ("B", "2")]);
    }
}
