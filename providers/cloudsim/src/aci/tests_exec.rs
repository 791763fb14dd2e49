//! The exec and attach sockets: ACI's password handshake, one terminal both ways, a wrong
//! password or a reused URI refused; and the states (and the short log) of a group whose
//! container fails.

use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::tests::{Face, config, container_path, create, group_body, group_path, start};

async fn connect(uri: &str) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    let addr = uri
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio_tungstenite::client_async(uri, tcp).await.unwrap().0
}

async fn exec(face: &Face, command: &str) -> aci::wire::ContainerExecResponse {
    let answer = face
        .call(
            "POST",
            &container_path("g", "app", "exec"),
            Some(json!({"command": command, "terminalSize": {"rows": 24, "cols": 80}})),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    serde_json::from_value(answer.body).unwrap()
}

/// Text from the socket until it holds `wanted` (or it closes).
async fn read_until(
    ws: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    wanted: &str,
) -> String {
    let mut seen = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while !seen.contains(wanted) {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => seen.push_str(t.as_str()),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                _ => {}
            }
        }
    })
    .await;
    seen
}

#[tokio::test]
async fn exec_takes_the_password_first_then_is_a_terminal() {
    let face = start(config()).await;
    create(&face, "g").await;
    let session = exec(&face, "cat").await;
    assert!(session.web_socket_uri.starts_with("ws://"));
    let mut ws = connect(&session.web_socket_uri).await;
    ws.send(Message::Text(session.password.clone().into()))
        .await
        .unwrap();
    ws.send(Message::Text("hello\n".into())).await.unwrap();
    assert!(read_until(&mut ws, "hello").await.contains("hello"));
    ws.close(None).await.unwrap();

    // The URI is good once.
    let reused = face
        .raw(
            "GET",
            &session.web_socket_uri.replace("ws://", "http://"),
            None,
            None,
            &[
                ("connection", "Upgrade"),
                ("upgrade", "websocket"),
                ("sec-websocket-version", "13"),
                ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ],
        )
        .await;
    assert_eq!(reused.status, 403);

    // A wrong password closes the socket.
    let session = exec(&face, "cat").await;
    let mut ws = connect(&session.web_socket_uri).await;
    ws.send(Message::Text("guess".into())).await.unwrap();
    match ws.next().await {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(frame.code, CloseCode::Policy),
        other => panic!("expected a close, got {other:?}"),
    }

    // One program, no arguments: the output ends and the socket closes.
    let session = exec(&face, "echo").await;
    let mut ws = connect(&session.web_socket_uri).await;
    ws.send(Message::Text(session.password.clone().into()))
        .await
        .unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                _ => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the socket closes when the program ends");
    assert_eq!(face.cloud.face().pending_exec_sessions(), 0);
}

#[tokio::test]
async fn exec_and_attach_are_refused_without_a_running_container() {
    let face = start(config()).await;
    let missing = face
        .call(
            "POST",
            &container_path("g", "app", "exec"),
            Some(json!({"command": "sh"})),
        )
        .await;
    assert_eq!(missing.status, 404);
    create(&face, "g").await;
    let empty = face
        .call(
            "POST",
            &container_path("g", "app", "exec"),
            Some(json!({"command": ""})),
        )
        .await;
    assert_eq!(empty.body["error"]["code"], "InvalidExecCommand");
    let other = face
        .call(
            "POST",
            &container_path("g", "nope", "exec"),
            Some(json!({"command": "sh"})),
        )
        .await;
    assert_eq!(other.body["error"]["code"], "ContainerNotFound");

    let attach = face
        .call("POST", &container_path("g", "app", "attach"), None)
        .await;
    let session: aci::wire::ContainerAttachResponse = serde_json::from_value(attach.body).unwrap();
    let mut ws = connect(&session.web_socket_uri).await;
    ws.send(Message::Text(session.password.into()))
        .await
        .unwrap();
    assert!(
        read_until(&mut ws, "app: started")
            .await
            .contains("app: started")
    );
}

#[tokio::test]
async fn a_failed_container_reports_its_exit_code_and_the_group_fails() {
    let mut config = config();
    config.terminated_log.lines = 1;
    let face = start(config).await;
    let mut body = group_body(1.0, 1.0);
    body["properties"]["restartPolicy"] = json!("Never");
    body["properties"]["containers"][0]["properties"]["environmentVariables"] = json!([
        {"name": "MOCKCLOUD_RUN_MS", "value": "20"}, {"name": "MOCKCLOUD_EXIT_CODE", "value": "3"}
    ]);
    let put = face.call("PUT", &group_path("g"), Some(body)).await;
    assert_eq!(put.status, 201);
    let mut group = json!(null);
    for _ in 0..300 {
        group = face.call("GET", &group_path("g"), None).await.body;
        if group["properties"]["instanceView"]["state"] == "Failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        group["properties"]["instanceView"]["state"], "Failed",
        "{group}"
    );
    assert_eq!(group["properties"]["provisioningState"], "Succeeded");
    let state = &group["properties"]["containers"][0]["properties"]["instanceView"]["currentState"];
    assert_eq!(
        (state["state"].as_str(), state["exitCode"].as_i64()),
        (Some("Terminated"), Some(3))
    );
    let events: Vec<&str> =
        group["properties"]["containers"][0]["properties"]["instanceView"]["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
    assert_eq!(events[..4], ["Pulling", "Pulled", "Created", "Started"]);

    // A terminated container keeps only the end of its log.
    let logs = face
        .call("GET", &container_path("g", "app", "logs"), None)
        .await;
    assert_eq!(logs.body["content"], "app: exiting with code 3\n");
}
