//! The ACI face under bad input: odd paths and methods, and valid bodies mutated at random
//! (values of the wrong type, missing or doubled fields, numbers out of range). Every answer
//! must be a success or ARM's error body with a 4xx (409 included), never a panic or a 5xx.

use serde_json::{Value, json};

use super::tests::{SUB, config, container_path, group_body, group_path, start};

/// A small deterministic generator (the same run every time).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

fn odd_values() -> Vec<Value> {
    vec![
        json!(null),
        json!(-1),
        json!(1e300),
        json!(""),
        json!("x".repeat(300)),
        json!([]),
        json!({}),
        json!(true),
        json!(0.001),
        json!([1, "a"]),
    ]
}

/// Replace one value somewhere in `v` (chosen by `rng`) with an odd one, or drop a field.
fn mutate(v: &mut Value, rng: &mut Lcg, odd: &[Value]) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let key = rng.pick(&keys).clone();
            match rng.next() % 4 {
                0 => {
                    map.remove(&key);
                }
                1 => {
                    map.insert(key, rng.pick(odd).clone());
                }
                _ => mutate(map.get_mut(&key).expect("a key of the map"), rng, odd),
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let i = (rng.next() % items.len() as u64) as usize;
            mutate(&mut items[i], rng, odd);
        }
        other => *other = rng.pick(odd).clone(),
    }
}

fn acceptable(status: u16, body: &Value) -> bool {
    match status {
        200..=299 => true,
        400..=499 => body["error"]["code"]
            .as_str()
            .is_some_and(|c| !c.is_empty()),
        _ => false,
    }
}

#[tokio::test]
async fn bad_input_gets_arms_errors_never_a_5xx() {
    let mut config = config();
    config.quotas.creates_per_5_min = 10_000;
    config.quotas.creates_per_hour = 10_000;
    config.arm_budget.writes = 100_000;
    let face = start(config).await;
    let odd_paths = [
        "/subscriptions".to_string(),
        "/subscriptions/".to_string(),
        format!("/subscriptions/{SUB}?api-version=2023-05-01"),
        format!("/subscriptions/{SUB}/resourceGroups?api-version=2023-05-01"),
        format!(
            "/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups/g/containers?api-version=2023-05-01"
        ),
        format!(
            "/subscriptions/{SUB}/providers/Microsoft.ContainerInstance/locations/westeurope/operations/nope?api-version=2023-05-01"
        ),
        format!(
            "{}&%24skipToken=999999999999",
            group_path("g").replace("/g?", "?")
        ),
        container_path("g", "app", "logs") + "&tail=-3",
        "/".to_string(),
        "/%ff/oauth2/v2.0/token".to_string(),
    ];
    for path in &odd_paths {
        for method in ["GET", "PUT", "POST", "DELETE", "PATCH"] {
            let reply = face.call(method, path, Some(json!({"x": 1}))).await;
            assert!(
                reply.status < 500
                    && (reply.status < 400
                        || reply.body["error"].is_object()
                        || reply.body["error"].is_string()),
                "{method} {path}: {} {}",
                reply.status,
                reply.body
            );
        }
    }
    let odd = odd_values();
    let mut rng = Lcg(17);
    let valid = group_body(1.0, 1.0);
    let mut created = 0;
    for i in 0..300 {
        let mut body = valid.clone();
        for _ in 0..=(rng.next() % 3) {
            mutate(&mut body, &mut rng, &odd);
        }
        let name = format!("f{i}");
        let reply = face
            .call("PUT", &group_path(&name), Some(body.clone()))
            .await;
        assert!(
            acceptable(reply.status, &reply.body),
            "PUT {body}: {} {}",
            reply.status,
            reply.body
        );
        created += usize::from(reply.status == 201);
        let exec = face.call("POST", &container_path(&name, "app", "exec"), Some(json!({"command": rng.pick(&odd).clone(), "terminalSize": rng.pick(&odd).clone()}))).await;
        assert!(
            acceptable(exec.status, &exec.body),
            "exec: {} {}",
            exec.status,
            exec.body
        );
        let patch = face
            .call(
                "PATCH",
                &group_path(&name),
                Some(json!({"tags": rng.pick(&odd).clone()})),
            )
            .await;
        assert!(
            acceptable(patch.status, &patch.body),
            "patch: {} {}",
            patch.status,
            patch.body
        );
        face.call("DELETE", &group_path(&name), None).await;
    }
    assert!(
        (10..290).contains(&created),
        "mutations both pass and fail: {created} created"
    );
}
