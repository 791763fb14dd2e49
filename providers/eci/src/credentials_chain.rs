//! Which source the eci provider's keys come from: the first configured one of, in the order
//! of Alibaba Cloud's own credential chain (`DefaultCredentialsProvider` of
//! github.com/aliyun/credentials-go, `credentials/providers/default.go`: environment, OIDC,
//! profile file, ECS RAM role; the Python `alibabacloud-credentials` package has the same):
//!
//! 1. the `eci:` config: `access_key_id` + `access_key_secret` (or `VK_ECI_ACCESS_KEY_SECRET`),
//!    with `security_token` for STS keys;
//! 2. `ALIBABA_CLOUD_ACCESS_KEY_ID` + `ALIBABA_CLOUD_ACCESS_KEY_SECRET`
//!    (+ `ALIBABA_CLOUD_SECURITY_TOKEN`);
//! 3. RRSA: `ALIBABA_CLOUD_ROLE_ARN` + `ALIBABA_CLOUD_OIDC_PROVIDER_ARN` +
//!    `ALIBABA_CLOUD_OIDC_TOKEN_FILE` (`ALIBABA_CLOUD_ROLE_SESSION_NAME` optional);
//! 4. the credentials file: `credentials_file`, `ALIBABA_CLOUD_CREDENTIALS_FILE` or
//!    `~/.alibabacloud/credentials` (ini; profile `ALIBABA_CLOUD_PROFILE` or `default`;
//!    types `access_key` and `ecs_ram_role`);
//! 5. the ECS RAM role from the instance metadata service (`ecs_ram_role` or
//!    `ALIBABA_CLOUD_ECS_METADATA` names it, else the instance's), unless
//!    `ALIBABA_CLOUD_ECS_METADATA_DISABLED=true`.
//!
//! The source is chosen once, at start-up, from what is configured (a half-configured source
//! is an error rather than a silent fall-through to the next one).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::EciConfig;
use crate::credentials::{CredentialError, CredentialProvider, Credentials, Fetch, StaticKeys};
use crate::credentials_fetch::{DEFAULT_METADATA_ENDPOINT, EcsRamRole, Rrsa};

pub const ENV_ACCESS_KEY_ID: &str = "ALIBABA_CLOUD_ACCESS_KEY_ID";
pub const ENV_ACCESS_KEY_SECRET: &str = "ALIBABA_CLOUD_ACCESS_KEY_SECRET";
pub const ENV_SECURITY_TOKEN: &str = "ALIBABA_CLOUD_SECURITY_TOKEN";
pub const ENV_ROLE_ARN: &str = "ALIBABA_CLOUD_ROLE_ARN";
pub const ENV_OIDC_PROVIDER_ARN: &str = "ALIBABA_CLOUD_OIDC_PROVIDER_ARN";
pub const ENV_OIDC_TOKEN_FILE: &str = "ALIBABA_CLOUD_OIDC_TOKEN_FILE";
pub const ENV_ROLE_SESSION_NAME: &str = "ALIBABA_CLOUD_ROLE_SESSION_NAME";
pub const ENV_STS_REGION: &str = "ALIBABA_CLOUD_STS_REGION";
pub const ENV_VPC_ENDPOINT: &str = "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED";
pub const ENV_CREDENTIALS_FILE: &str = "ALIBABA_CLOUD_CREDENTIALS_FILE";
pub const ENV_PROFILE: &str = "ALIBABA_CLOUD_PROFILE";
pub const ENV_ECS_ROLE: &str = "ALIBABA_CLOUD_ECS_METADATA";
pub const ENV_ECS_DISABLED: &str = "ALIBABA_CLOUD_ECS_METADATA_DISABLED";

/// Reads an environment variable; tests pass a map instead of the process's environment.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process's environment (empty values count as unset).
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn config_error(from: &'static str, message: impl Into<String>) -> CredentialError {
    CredentialError::Config {
        from,
        message: message.into(),
    }
}

/// The provider of the first configured source.
pub fn resolve(
    config: &EciConfig,
    env: Env<'_>,
) -> Result<Arc<CredentialProvider>, CredentialError> {
    Ok(CredentialProvider::new(source(config, env)?))
}

fn source(config: &EciConfig, env: Env<'_>) -> Result<Box<dyn Fetch>, CredentialError> {
    let timeout = Duration::from_millis(config.request_timeout_ms.clamp(1, 10_000));
    // 1. The config file.
    if !config.access_key_id.is_empty() || !config.access_key_secret.is_empty() {
        if config.access_key_id.is_empty() || config.access_key_secret.is_empty() {
            return Err(config_error(
                "config",
                "access_key_id and access_key_secret go together (the secret may come from VK_ECI_ACCESS_KEY_SECRET)",
            ));
        }
        return Ok(Box::new(StaticKeys {
            name: "config",
            description: format!("the AccessKey {} of the config file", config.access_key_id),
            credentials: Credentials::new(
                &config.access_key_id,
                &config.access_key_secret,
                Some(&config.security_token),
            ),
        }));
    }
    // 2. The environment's AccessKey.
    match (env(ENV_ACCESS_KEY_ID), env(ENV_ACCESS_KEY_SECRET)) {
        (Some(id), Some(secret)) => {
            let token = env(ENV_SECURITY_TOKEN);
            return Ok(Box::new(StaticKeys {
                name: "environment",
                description: format!(
                    "the {} AccessKey {id} of {ENV_ACCESS_KEY_ID}",
                    if token.is_some() { "STS" } else { "long-lived" }
                ),
                credentials: Credentials::new(&id, &secret, token.as_deref()),
            }));
        }
        (None, None) => {}
        _ => {
            return Err(config_error(
                "environment",
                format!("{ENV_ACCESS_KEY_ID} and {ENV_ACCESS_KEY_SECRET} go together"),
            ));
        }
    }
    // 3. RRSA.
    let rrsa = [ENV_ROLE_ARN, ENV_OIDC_PROVIDER_ARN, ENV_OIDC_TOKEN_FILE].map(env);
    if rrsa.iter().any(Option::is_some) {
        let [Some(role_arn), Some(oidc_provider_arn), Some(token_file)] = rrsa else {
            return Err(config_error(
                "rrsa",
                format!(
                    "{ENV_ROLE_ARN}, {ENV_OIDC_PROVIDER_ARN} and {ENV_OIDC_TOKEN_FILE} go together"
                ),
            ));
        };
        let session = config
            .role_session_name
            .clone()
            .or_else(|| env(ENV_ROLE_SESSION_NAME))
            .unwrap_or_else(|| format!("vk-{}", config.node_name));
        return Ok(Box::new(Rrsa::new(
            role_arn,
            oidc_provider_arn,
            PathBuf::from(token_file),
            session,
            config.sts_duration_secs,
            sts_endpoint(config, env),
            timeout,
        )));
    }
    // 4. The credentials file.
    let explicit = config
        .credentials_file
        .clone()
        .or_else(|| env(ENV_CREDENTIALS_FILE).map(PathBuf::from));
    let file = explicit.clone().or_else(|| {
        env("HOME")
            .map(|home| Path::new(&home).join(".alibabacloud/credentials"))
            .filter(|f| f.exists())
    });
    if let Some(file) = file {
        let profile = env(ENV_PROFILE).unwrap_or_else(|| "default".into());
        let text = std::fs::read_to_string(&file)
            .map_err(|e| config_error("file", format!("reading {}: {e}", file.display())))?;
        return from_file(&text, &file, &profile, config, timeout);
    }
    // 5. The ECS RAM role.
    if env(ENV_ECS_DISABLED).is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Err(CredentialError::NotConfigured(format!(
            "set access_key_id/access_key_secret in the eci config, {ENV_ACCESS_KEY_ID}/{ENV_ACCESS_KEY_SECRET}, the RRSA variables ({ENV_ROLE_ARN}, {ENV_OIDC_PROVIDER_ARN}, {ENV_OIDC_TOKEN_FILE}) or a credentials file ({ENV_ECS_DISABLED} rules out the ECS RAM role)"
        )));
    }
    let role = config.ecs_ram_role.clone().or_else(|| env(ENV_ECS_ROLE));
    Ok(Box::new(EcsRamRole::new(
        role,
        metadata_endpoint(config),
        timeout,
    )))
}

/// `sts_endpoint`, else the regional (or VPC) endpoint of `ALIBABA_CLOUD_STS_REGION`, else
/// the global `https://sts.aliyuncs.com`.
fn sts_endpoint(config: &EciConfig, env: Env<'_>) -> String {
    if let Some(e) = &config.sts_endpoint {
        return e.clone();
    }
    let prefix = if env(ENV_VPC_ENDPOINT).is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        "sts-vpc"
    } else {
        "sts"
    };
    match env(ENV_STS_REGION) {
        Some(region) => format!("https://{prefix}.{region}.aliyuncs.com"),
        None => format!("https://{prefix}.aliyuncs.com"),
    }
}

fn metadata_endpoint(config: &EciConfig) -> String {
    config
        .metadata_endpoint
        .clone()
        .unwrap_or_else(|| DEFAULT_METADATA_ENDPOINT.into())
}

/// An ini file: `[section]`, `key = value`, `#`/`;` comments. Section -> key -> value.
pub fn parse_ini(text: &str) -> HashMap<String, HashMap<String, String>> {
    let mut sections: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.trim().to_string();
            sections.entry(current.clone()).or_default();
        } else if let Some((k, v)) = line.split_once('=') {
            sections
                .entry(current.clone())
                .or_default()
                .insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    sections
}

/// The profile's source: an AccessKey, or an ECS RAM role by name.
fn from_file(
    text: &str,
    file: &Path,
    profile: &str,
    config: &EciConfig,
    timeout: Duration,
) -> Result<Box<dyn Fetch>, CredentialError> {
    let sections = parse_ini(text);
    let at = || format!("{} [{profile}]", file.display());
    let section = sections.get(profile).ok_or_else(|| {
        config_error(
            "file",
            format!("{} has no profile [{profile}]", file.display()),
        )
    })?;
    let value = |k: &str| section.get(k).filter(|v| !v.is_empty());
    match value("type").map(String::as_str) {
        Some("access_key") => {
            let (Some(id), Some(secret)) = (value("access_key_id"), value("access_key_secret"))
            else {
                return Err(config_error(
                    "file",
                    format!(
                        "{}: type access_key needs access_key_id and access_key_secret",
                        at()
                    ),
                ));
            };
            Ok(Box::new(StaticKeys {
                name: "file",
                description: format!("the AccessKey {id} of {}", at()),
                credentials: Credentials::new(id, secret, None),
            }))
        }
        Some("ecs_ram_role") => Ok(Box::new(EcsRamRole::new(
            value("role_name").cloned(),
            metadata_endpoint(config),
            timeout,
        ))),
        other => Err(config_error(
            "file",
            format!(
                "{}: type {other:?} is not supported here (access_key or ecs_ram_role)",
                at()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn chosen(
        config: &EciConfig,
        vars: &[(&str, &str)],
    ) -> Result<(&'static str, String), CredentialError> {
        let env = env_of(vars);
        let p = resolve(config, &env)?;
        Ok((p.source_name(), p.describe()))
    }

    const RRSA: [(&str, &str); 3] = [
        (ENV_ROLE_ARN, "acs:ram::1:role/vk"),
        (ENV_OIDC_PROVIDER_ARN, "acs:ram::1:oidc-provider/ack"),
        (ENV_OIDC_TOKEN_FILE, "/var/run/secrets/token"),
    ];

    #[test]
    fn the_chain_order() {
        let keyed = EciConfig {
            access_key_id: "cfg-id".into(),
            access_key_secret: "cfg-secret".into(),
            ..Default::default()
        };
        let mut all: Vec<(&str, &str)> = vec![
            (ENV_ACCESS_KEY_ID, "env-id"),
            (ENV_ACCESS_KEY_SECRET, "env-secret"),
            (ENV_ECS_ROLE, "node-role"),
        ];
        all.extend(RRSA);
        assert_eq!(chosen(&keyed, &all).unwrap().0, "config");
        let none = EciConfig::default();
        assert_eq!(chosen(&none, &all).unwrap().0, "environment");
        let (name, describe) = chosen(&none, &all[2..]).unwrap();
        assert_eq!(name, "rrsa");
        assert!(describe.contains("https://sts.aliyuncs.com"), "{describe}");
        assert_eq!(chosen(&none, &all[2..3]).unwrap().0, "ecs_ram_role");
        assert!(chosen(&none, &[]).unwrap().1.contains("100.100.100.200"));
        assert!(matches!(
            chosen(&none, &[(ENV_ECS_DISABLED, "true")]),
            Err(CredentialError::NotConfigured(_))
        ));
    }

    #[test]
    fn half_configured_sources_are_errors() {
        let none = EciConfig::default();
        let half = EciConfig {
            access_key_id: "id".into(),
            ..Default::default()
        };
        assert!(matches!(
            chosen(&half, &[]),
            Err(CredentialError::Config { from: "config", .. })
        ));
        assert!(matches!(
            chosen(&none, &[(ENV_ACCESS_KEY_ID, "id")]),
            Err(CredentialError::Config {
                from: "environment",
                ..
            })
        ));
        assert!(matches!(
            chosen(&none, &RRSA[..2]),
            Err(CredentialError::Config { from: "rrsa", .. })
        ));
    }

    #[test]
    fn sts_endpoints() {
        let mut config = EciConfig::default();
        let env = env_of(&[(ENV_STS_REGION, "cn-shanghai"), (ENV_VPC_ENDPOINT, "true")]);
        assert_eq!(
            sts_endpoint(&config, &env),
            "https://sts-vpc.cn-shanghai.aliyuncs.com"
        );
        config.sts_endpoint = Some("http://127.0.0.1:1".into());
        assert_eq!(sts_endpoint(&config, &env), "http://127.0.0.1:1");
    }

    #[test]
    fn ini_files() {
        let text = "# comment\n[default]\ntype = access_key\naccess_key_id = file-id\naccess_key_secret = file-secret\n\n[node]\n; another\ntype=ecs_ram_role\nrole_name = vk-role\n[broken]\ntype = access_key\n[arn]\ntype = ram_role_arn\n";
        let sections = parse_ini(text);
        assert_eq!(sections["default"]["access_key_id"], "file-id");
        assert_eq!(sections["node"]["role_name"], "vk-role");
        let dir = std::env::temp_dir().join(format!("vk-creds-ini-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("credentials");
        std::fs::write(&file, text).unwrap();
        let path = file.to_str().unwrap();
        let none = EciConfig::default();
        let (name, describe) = chosen(&none, &[(ENV_CREDENTIALS_FILE, path)]).unwrap();
        assert_eq!(name, "file");
        assert!(describe.contains("file-id") && !describe.contains("file-secret"));
        let (name, describe) = chosen(
            &none,
            &[(ENV_CREDENTIALS_FILE, path), (ENV_PROFILE, "node")],
        )
        .unwrap();
        assert_eq!(name, "ecs_ram_role");
        assert!(describe.contains("vk-role"), "{describe}");
        for profile in ["broken", "arn", "missing"] {
            let e = chosen(
                &none,
                &[(ENV_CREDENTIALS_FILE, path), (ENV_PROFILE, profile)],
            );
            assert!(
                matches!(e, Err(CredentialError::Config { from: "file", .. })),
                "{profile}"
            );
        }
        // The default location under $HOME; the environment's keys come first.
        let home = dir.join("home");
        std::fs::create_dir_all(home.join(".alibabacloud")).unwrap();
        std::fs::write(home.join(".alibabacloud/credentials"), text).unwrap();
        let home = home.to_str().unwrap();
        assert_eq!(chosen(&none, &[("HOME", home)]).unwrap().0, "file");
        assert_eq!(
            chosen(&none, &[("HOME", home), RRSA[0], RRSA[1], RRSA[2]])
                .unwrap()
                .0,
            "rrsa"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
