use vk_core::provider::{ContainerSecurity, Lifecycle, PodRef};

use super::*;

fn pod_with(security: PodSecurity, c: ContainerSpec) -> ResolvedPod {
    ResolvedPod {
        pod: PodRef {
            namespace: "ci".into(),
            name: "p".into(),
            uid: "u".into(),
        },
        security,
        containers: vec![c],
        ..Default::default()
    }
}

fn app(security: ContainerSecurity) -> ContainerSpec {
    ContainerSpec {
        name: "app".into(),
        security,
        ..Default::default()
    }
}

#[test]
fn the_container_overrides_the_pod() {
    let pod = pod_with(
        PodSecurity {
            run_as_user: Some(1000),
            run_as_group: Some(1000),
            run_as_non_root: Some(true),
            ..Default::default()
        },
        app(ContainerSecurity {
            run_as_user: Some(2000),
            read_only_root_filesystem: Some(true),
            capabilities_add: vec!["CAP_NET_ADMIN".into(), "CHOWN".into()],
            ..Default::default()
        }),
    );
    let mut warnings = Vec::new();
    let def = security_context(&pod, &pod.containers[0], &mut warnings)
        .unwrap()
        .unwrap();
    assert_eq!(def.run_as_user, Some(2000));
    assert_eq!(def.run_as_group, Some(1000));
    assert_eq!(def.run_as_non_root, Some(true));
    assert_eq!(def.read_only_root_filesystem, Some(true));
    // CHOWN is granted anyway: nothing to add.
    assert_eq!(def.capability_add, vec!["NET_ADMIN"]);
    assert!(warnings.is_empty());
    // Nothing set: nothing sent.
    let plain = pod_with(PodSecurity::default(), app(ContainerSecurity::default()));
    assert_eq!(
        security_context(&plain, &plain.containers[0], &mut warnings).unwrap(),
        None
    );
    // readOnlyRootFilesystem: false is the default, not a value ECI takes.
    let rw = pod_with(
        PodSecurity::default(),
        app(ContainerSecurity {
            read_only_root_filesystem: Some(false),
            ..Default::default()
        }),
    );
    assert_eq!(
        security_context(&rw, &rw.containers[0], &mut warnings).unwrap(),
        None
    );
}

#[test]
fn non_root_with_user_zero_is_refused_like_the_kubelet() {
    let pod = pod_with(
        PodSecurity {
            run_as_non_root: Some(true),
            ..Default::default()
        },
        app(ContainerSecurity {
            run_as_user: Some(0),
            ..Default::default()
        }),
    );
    let err = security_context(&pod, &pod.containers[0], &mut Vec::new()).unwrap_err();
    assert!(
        matches!(&err, ProviderError::InvalidSpec { reason, message }
            if reason == "CreateContainerConfigError" && message.contains("breaks non-root policy")),
        "{err:?}"
    );
}

#[test]
fn more_privilege_than_eci_gives_is_refused_less_is_warned() {
    let pod = pod_with(
        PodSecurity::default(),
        app(ContainerSecurity {
            capabilities_add: vec!["SYS_TIME".into()],
            ..Default::default()
        }),
    );
    assert!(matches!(
        security_context(&pod, &pod.containers[0], &mut Vec::new()),
        Err(ProviderError::InvalidSpec { reason, .. }) if reason == "UnsupportedSpec"
    ));
    let pod = pod_with(
        PodSecurity::default(),
        app(ContainerSecurity {
            capabilities_drop: vec!["ALL".into()],
            allow_privilege_escalation: Some(false),
            other: vec!["securityContext.seccompProfile".into()],
            ..Default::default()
        }),
    );
    let mut warnings = Vec::new();
    security_context(&pod, &pod.containers[0], &mut warnings).unwrap();
    let messages: Vec<&str> = warnings.iter().map(|w| w.message.as_str()).collect();
    assert_eq!(warnings.len(), 3, "{messages:?}");
    assert!(messages[0].contains("capabilities.drop (ALL)"));
    assert!(messages[1].contains("allowPrivilegeEscalation"));
    assert!(messages[2].contains("seccompProfile"));
    assert!(
        warnings
            .iter()
            .all(|w| w.reason == UNSUPPORTED_FIELD && w.container.as_deref() == Some("app"))
    );
}

#[test]
fn sysctls_eci_takes_are_sent_others_refused() {
    let mut warnings = Vec::new();
    let safe = PodSecurity {
        sysctls: vec![("net/ipv4/tcp_syncookies".into(), "1".into())],
        fs_group: Some(3000),
        ..Default::default()
    };
    let sent = sysctls(&safe, &mut warnings).unwrap();
    assert_eq!(sent[0].name, "net.ipv4.tcp_syncookies");
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].message.contains("fsGroup"));
    let unsafe_one = PodSecurity {
        sysctls: vec![("kernel.msgmax".into(), "1".into())],
        ..Default::default()
    };
    assert!(matches!(
        sysctls(&unsafe_one, &mut warnings),
        Err(ProviderError::InvalidSpec { reason, .. }) if reason == "SysctlForbidden"
    ));
}

#[test]
fn hooks_and_termination_message_are_mapped() {
    let c = ContainerSpec {
        name: "app".into(),
        termination_message_path: Some("/tmp/msg".into()),
        termination_message_policy: TerminationMessagePolicy::FallbackToLogsOnError,
        lifecycle: Lifecycle {
            post_start: Some(LifecycleHandler::HttpGet {
                host: None,
                port: 80,
                path: "/up".into(),
                https: false,
                headers: vec![],
            }),
            pre_stop: Some(LifecycleHandler::Sleep { seconds: 5 }),
            invalid: vec![("lifecycle.stopSignal".into(), "not supported".into())],
        },
        ..Default::default()
    };
    let mut warnings = Vec::new();
    let l = lifecycle(&c, &mut warnings);
    assert_eq!(
        l.pre_stop,
        Some(HookDef::Exec(vec!["sleep".into(), "5".into()]))
    );
    assert!(
        matches!(l.post_start, Some(HookDef::HttpGet { port: 80, ref scheme, .. }) if scheme.as_deref() == Some("HTTP"))
    );
    assert_eq!(warnings.len(), 2);
    let t = termination_message(&c);
    assert_eq!(t.path.as_deref(), Some("/tmp/msg"));
    assert_eq!(t.policy.as_deref(), Some("FallbackToLogsOnError"));
    assert_eq!(termination_message(&ContainerSpec::default()).policy, None);
}

#[test]
fn ephemeral_storage_beyond_the_free_30_gib_is_asked_for() {
    let gib = 1u64 << 30;
    let mut pod = pod_with(PodSecurity::default(), ContainerSpec::default());
    assert_eq!(ephemeral_storage_gib(&pod), None);
    pod.containers[0].ephemeral_storage_request_bytes = Some(20 * gib);
    pod.containers.push(ContainerSpec {
        ephemeral_storage_request_bytes: Some(15 * gib + 1),
        ..Default::default()
    });
    // 35 GiB and a byte: 36 GiB, 6 beyond the free 30.
    assert_eq!(ephemeral_storage_gib(&pod), Some(6));
    pod.init_containers.push(ContainerSpec {
        ephemeral_storage_request_bytes: Some(50 * gib),
        ..Default::default()
    });
    assert_eq!(ephemeral_storage_gib(&pod), Some(20));
}
