use super::*;

fn sample() -> CreateContainerGroup {
    CreateContainerGroup {
        region_id: "cn-hangzhou".into(),
        container_group_name: "ns-build-1".into(),
        restart_policy: Some("Never".into()),
        cpu: Some(2.0),
        memory: Some(4.0),
        client_token: Some("uid-1".into()),
        tags: vec![Tag {
            key: "k".into(),
            value: "v".into(),
        }],
        containers: vec![ContainerDef {
            name: "golang".into(),
            image: "golang:1.22".into(),
            cpu: Some(0.5),
            memory: Some(1.0),
            working_dir: Some("/home/jenkins/agent".into()),
            commands: vec!["sh".into(), "-c".into()],
            args: vec!["go build ./...".into()],
            env: vec![EnvironmentVar {
                key: "A".into(),
                value: "x y".into(),
            }],
            volume_mounts: vec![VolumeMount {
                name: "ws".into(),
                mount_path: "/home/jenkins/agent".into(),
                read_only: false,
                sub_path: String::new(),
            }],
            ports: vec![Port {
                port: 8080,
                protocol: "TCP".into(),
            }],
            tty: true,
            ..Default::default()
        }],
        init_containers: vec![ContainerDef {
            name: "init".into(),
            image: "busybox".into(),
            stdin: true,
            stdin_once: true,
            ..Default::default()
        }],
        volumes: vec![
            VolumeDef::EmptyDir {
                name: "ws".into(),
                medium: None,
                size_limit: None,
            },
            VolumeDef::ConfigFile {
                name: "cfg".into(),
                default_mode: Some(0o644),
                files: vec![ConfigFile {
                    path: "dir/a.conf".into(),
                    content: "aGVsbG8=".into(),
                    mode: Some(0o600),
                }],
            },
        ],
        image_registry_credentials: vec![ImageRegistryCredential {
            server: "registry.example.com".into(),
            user_name: "demo".into(),
            password: "s3cr3t".into(),
        }],
        ..Default::default()
    }
}

#[test]
fn create_uses_the_documented_parameter_names_and_round_trips() {
    let mut p = Params::new();
    sample().encode(&mut p);
    for (name, value) in [
        ("ContainerGroupName", "ns-build-1"),
        ("RestartPolicy", "Never"),
        ("ClientToken", "uid-1"),
        ("Tag.1.Key", "k"),
        ("Tag.1.Value", "v"),
        ("Container.1.Name", "golang"),
        ("Container.1.Cpu", "0.5"),
        ("Container.1.Memory", "1"),
        ("Container.1.WorkingDir", "/home/jenkins/agent"),
        ("Container.1.Command.1", "sh"),
        ("Container.1.Command.2", "-c"),
        ("Container.1.Arg.1", "go build ./..."),
        ("Container.1.EnvironmentVar.1.Key", "A"),
        ("Container.1.EnvironmentVar.1.Value", "x y"),
        ("Container.1.VolumeMount.1.Name", "ws"),
        ("Container.1.VolumeMount.1.MountPath", "/home/jenkins/agent"),
        ("Container.1.VolumeMount.1.ReadOnly", "false"),
        ("Container.1.Port.1.Port", "8080"),
        ("Container.1.Tty", "true"),
        ("InitContainer.1.Name", "init"),
        ("InitContainer.1.Stdin", "true"),
        ("InitContainer.1.StdinOnce", "true"),
        ("Volume.1.Type", "EmptyDirVolume"),
        ("Volume.2.Type", "ConfigFileVolume"),
        ("Volume.2.ConfigFileVolume.DefaultMode", "420"),
        (
            "Volume.2.ConfigFileVolume.ConfigFileToPath.1.Path",
            "dir/a.conf",
        ),
        (
            "Volume.2.ConfigFileVolume.ConfigFileToPath.1.Content",
            "aGVsbG8=",
        ),
        ("Volume.2.ConfigFileVolume.ConfigFileToPath.1.Mode", "384"),
        ("ImageRegistryCredential.1.Server", "registry.example.com"),
        ("ImageRegistryCredential.1.UserName", "demo"),
        ("ImageRegistryCredential.1.Password", "s3cr3t"),
    ] {
        assert_eq!(p.get(name), Some(value), "{name}");
    }
    let decoded = CreateContainerGroup::decode(&p).unwrap();
    assert_eq!(decoded, sample());
    assert!(!format!("{decoded:?}").contains("s3cr3t"));
}

#[test]
fn create_validation_names_the_parameter() {
    let check = |f: &dyn Fn(&mut CreateContainerGroup), needle: &str| {
        let mut req = sample();
        f(&mut req);
        let mut p = Params::new();
        req.encode(&mut p);
        let err = CreateContainerGroup::decode(&p).unwrap_err().to_string();
        assert!(err.contains(needle), "{err} should mention {needle}");
    };
    check(
        &|r| r.container_group_name = "Bad_Name".into(),
        "ContainerGroupName",
    );
    check(
        &|r| r.restart_policy = Some("Sometimes".into()),
        "RestartPolicy",
    );
    check(&|r| r.containers.clear(), "Container.1.Name");
    check(&|r| r.containers[0].image.clear(), "Container.1.Image");
    check(
        &|r| r.init_containers[0].name = "golang".into(),
        "used twice",
    );
    check(
        &|r| r.containers[0].volume_mounts[0].name = "nope".into(),
        "unknown volume",
    );
    check(&|r| r.cpu = Some(-1.0), "Cpu");
    check(
        &|r| r.image_registry_credentials[0].server.clear(),
        "ImageRegistryCredential.1.Server",
    );
    check(
        &|r| r.image_registry_credentials[0].user_name.clear(),
        "ImageRegistryCredential.1.UserName",
    );
    check(
        &|r| {
            if let VolumeDef::ConfigFile { files, .. } = &mut r.volumes[1] {
                files[0].path = "../etc/passwd".into();
            }
        },
        "ConfigFileToPath.1.Path",
    );
    let mut p = Params::new();
    sample().encode(&mut p);
    p.set("Volume.1.Type", "NFSVolume");
    assert!(
        CreateContainerGroup::decode(&p)
            .unwrap_err()
            .to_string()
            .contains("NFSVolume")
    );
    p.set("Volume.1.Type", "EmptyDirVolume");
    p.set("Volume.2.ConfigFileVolume.DefaultMode", "0644");
    let decoded = CreateContainerGroup::decode(&p).unwrap();
    assert!(matches!(
        decoded.volumes[1],
        VolumeDef::ConfigFile {
            default_mode: Some(0o644),
            ..
        }
    ));
}

#[test]
fn describe_log_and_exec_round_trip() {
    let q = DescribeContainerGroups {
        region_id: "r".into(),
        container_group_ids: vec!["eci-1".into(), "eci-2".into()],
        tags: vec![Tag {
            key: "node".into(),
            value: "n1".into(),
        }],
        next_token: Some("t".into()),
        limit: Some(20),
        ..Default::default()
    };
    let mut p = Params::new();
    q.encode(&mut p);
    assert_eq!(p.get("ContainerGroupIds"), Some(r#"["eci-1","eci-2"]"#));
    assert_eq!(p.get("Tag.1.Key"), Some("node"));
    assert_eq!(DescribeContainerGroups::decode(&p).unwrap(), q);
    p.set("ContainerGroupIds", "eci-1");
    assert!(DescribeContainerGroups::decode(&p).is_err());

    let log = DescribeContainerLog {
        region_id: "r".into(),
        container_group_id: "eci-1".into(),
        container_name: "c".into(),
        tail: Some(10),
        start_time: Some("2024-01-01T00:00:00Z".into()),
        since_seconds: Some(5),
        limit_bytes: Some(100),
        timestamps: true,
        last_time: true,
    };
    let mut p = Params::new();
    log.encode(&mut p);
    assert_eq!(p.get("LastTime"), Some("true"));
    assert_eq!(DescribeContainerLog::decode(&p).unwrap(), log);

    let exec = ExecContainerCommand {
        region_id: "r".into(),
        container_group_id: "eci-1".into(),
        container_name: "c".into(),
        command: vec!["sh".into(), "-c".into(), "echo hi".into()],
        tty: false,
        stdin: false,
        sync: true,
    };
    let mut p = Params::new();
    exec.encode(&mut p);
    assert_eq!(p.get("Command"), Some(r#"["sh","-c","echo hi"]"#));
    assert_eq!(ExecContainerCommand::decode(&p).unwrap(), exec);
    p.set("TTY", "true");
    assert!(ExecContainerCommand::decode(&p).is_err());
}

#[test]
fn runtime_parameters_round_trip_and_errors_name_the_full_parameter() {
    let mut req = sample();
    req.share_process_namespace = true;
    req.ephemeral_storage = Some(20);
    req.sysctls = vec![Sysctl {
        name: "net.ipv4.tcp_syncookies".into(),
        value: "1".into(),
    }];
    req.containers[0].security_context = Some(SecurityContextDef {
        run_as_user: Some(1000),
        read_only_root_filesystem: Some(true),
        ..Default::default()
    });
    req.containers[0].lifecycle.pre_stop = Some(HookDef::Exec(vec!["true".into()]));
    req.containers[0].termination_message.path = Some("/tmp/msg".into());
    let mut p = Params::new();
    req.encode(&mut p);
    assert_eq!(p.get("ShareProcessNamespace"), Some("true"));
    assert_eq!(p.get("EphemeralStorage"), Some("20"));
    assert_eq!(CreateContainerGroup::decode(&p).unwrap(), req);

    let refused = |name: &str, value: &str| {
        let mut bad = p.clone();
        bad.set(name, value);
        match CreateContainerGroup::decode(&bad) {
            Err(ParamError::Invalid { name, .. }) => name,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        refused("Container.1.SecurityContext.RunAsUser", "root"),
        "Container.1.SecurityContext.RunAsUser"
    );
    assert_eq!(
        refused("Container.1.LifecyclePreStopHandlerTcpSocketPort", "0"),
        "Container.1.LifecyclePreStopHandlerTcpSocketPort"
    );
    assert_eq!(
        refused("Container.1.TerminationMessagePolicy", "Always"),
        "Container.1.TerminationMessagePolicy"
    );
    assert_eq!(refused("EphemeralStorage", "-1"), "EphemeralStorage");
    assert_eq!(
        refused("ShareProcessNamespace", "yes"),
        "ShareProcessNamespace"
    );
}
