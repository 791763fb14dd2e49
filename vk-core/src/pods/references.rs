//! Which secrets and configMaps a pod reads, and how. A change to any of them may let a pod
//! that waits for a missing reference start; only a change to one the pod *mounts* reaches a
//! running instance (environment variables are fixed when a container starts, as with the
//! kubelet). Image pull secrets are left out: a missing one never holds a pod back.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Container, Pod};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    Secret,
    ConfigMap,
}

impl std::fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Secret => "secret",
            Self::ConfigMap => "configmap",
        })
    }
}

/// The secrets and configMaps of one pod (all in the pod's namespace), by how they are used.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct References {
    /// Read by `env`/`envFrom` of some container.
    env: BTreeSet<(ObjectKind, String)>,
    /// Materialised as files by a `configMap`, `secret` or `projected` volume.
    mounted: BTreeSet<(ObjectKind, String)>,
}

impl References {
    pub fn of(pod: &Pod) -> Self {
        let mut refs = Self::default();
        let Some(spec) = &pod.spec else {
            return refs;
        };
        for c in spec
            .init_containers
            .iter()
            .flatten()
            .chain(spec.containers.iter())
        {
            refs.add_env(c);
        }
        for v in spec.volumes.iter().flatten() {
            if let Some(cm) = &v.config_map {
                refs.mount(ObjectKind::ConfigMap, &cm.name);
            }
            if let Some(name) = v.secret.as_ref().and_then(|s| s.secret_name.as_deref()) {
                refs.mount(ObjectKind::Secret, name);
            }
            for source in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
                if let Some(cm) = &source.config_map {
                    refs.mount(ObjectKind::ConfigMap, &cm.name);
                }
                if let Some(s) = &source.secret {
                    refs.mount(ObjectKind::Secret, &s.name);
                }
            }
        }
        refs
    }

    fn add_env(&mut self, c: &Container) {
        for from in c.env_from.iter().flatten() {
            if let Some(r) = &from.config_map_ref {
                insert(&mut self.env, ObjectKind::ConfigMap, &r.name);
            }
            if let Some(r) = &from.secret_ref {
                insert(&mut self.env, ObjectKind::Secret, &r.name);
            }
        }
        for source in c.env.iter().flatten().filter_map(|e| e.value_from.as_ref()) {
            if let Some(r) = &source.config_map_key_ref {
                insert(&mut self.env, ObjectKind::ConfigMap, &r.name);
            }
            if let Some(r) = &source.secret_key_ref {
                insert(&mut self.env, ObjectKind::Secret, &r.name);
            }
        }
    }

    fn mount(&mut self, kind: ObjectKind, name: &str) {
        insert(&mut self.mounted, kind, name);
    }

    /// The pod reads this object in any way.
    pub fn mentions(&self, kind: ObjectKind, name: &str) -> bool {
        let key = (kind, name.to_string());
        self.env.contains(&key) || self.mounted.contains(&key)
    }

    /// The pod has this object's content in one of its volumes.
    pub fn mounts(&self, kind: ObjectKind, name: &str) -> bool {
        self.mounted.contains(&(kind, name.to_string()))
    }
}

fn insert(set: &mut BTreeSet<(ObjectKind, String)>, kind: ObjectKind, name: &str) {
    // An empty name is refused by resolution; it names nothing to watch.
    if !name.is_empty() {
        set.insert((kind, name.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "ci"}, "spec": spec}))
            .unwrap()
    }

    #[test]
    fn env_and_volumes_are_told_apart() {
        let p = pod(json!({
            "initContainers": [{"name": "init", "envFrom": [{"secretRef": {"name": "init-env"}}]}],
            "containers": [{
                "name": "build",
                "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "S_"}],
                "env": [
                    {"name": "A", "valueFrom": {"secretKeyRef": {"name": "registry", "key": "token"}}},
                    {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "flags", "key": "b"}}},
                    {"name": "C", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                ],
            }],
            "volumes": [
                {"name": "cm", "configMap": {"name": "maven-settings"}},
                {"name": "sec", "secret": {"secretName": "docker-config"}},
                {"name": "kube-api-access", "projected": {"sources": [
                    {"serviceAccountToken": {"path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt"}},
                    {"secret": {"name": "extra"}},
                ]}},
                {"name": "work", "emptyDir": {}},
            ],
            "imagePullSecrets": [{"name": "pull"}],
        }));
        let refs = References::of(&p);
        for (kind, name) in [
            (ObjectKind::Secret, "init-env"),
            (ObjectKind::ConfigMap, "settings"),
            (ObjectKind::Secret, "registry"),
            (ObjectKind::ConfigMap, "flags"),
        ] {
            assert!(refs.mentions(kind, name), "{kind} {name}");
            assert!(!refs.mounts(kind, name), "{kind} {name} is env only");
        }
        for (kind, name) in [
            (ObjectKind::ConfigMap, "maven-settings"),
            (ObjectKind::Secret, "docker-config"),
            (ObjectKind::ConfigMap, "kube-root-ca.crt"),
            (ObjectKind::Secret, "extra"),
        ] {
            assert!(refs.mentions(kind, name), "{kind} {name}");
            assert!(refs.mounts(kind, name), "{kind} {name} is mounted");
        }
        // Same name, other kind; pull secrets; unknown names.
        assert!(!refs.mentions(ObjectKind::Secret, "settings"));
        assert!(!refs.mentions(ObjectKind::Secret, "pull"));
        assert!(!refs.mentions(ObjectKind::ConfigMap, "other"));
    }

    #[test]
    fn a_pod_without_spec_or_names_references_nothing() {
        let p: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}})).unwrap();
        assert_eq!(References::of(&p), References::default());
        let p =
            pod(json!({"containers": [{"name": "a"}], "volumes": [{"name": "s", "secret": {}}]}));
        assert_eq!(References::of(&p), References::default());
    }
}
