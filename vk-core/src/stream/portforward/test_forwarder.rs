//! A forwarder for the protocol tests: port 80 echoes, 81 refuses, 82 greets and closes,
//! 83 holds the connection open until the client goes away.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{ForwardError, PortForwardStream, PortForwarder};

pub const ECHO: u16 = 80;
pub const REFUSED: u16 = 81;
pub const GREETER: u16 = 82;
pub const SILENT: u16 = 83;

pub const REFUSED_MESSAGE: &str = "connect: connection refused";
pub const GREETING: &[u8] = b"hello from 82";

#[derive(Clone, Default)]
pub struct TestForwarder {
    /// The ports of every call, in order.
    pub calls: Arc<Mutex<Vec<u16>>>,
}

impl TestForwarder {
    pub fn calls(&self) -> Vec<u16> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl PortForwarder for TestForwarder {
    async fn forward(&self, port: u16, mut stream: PortForwardStream) -> Result<(), ForwardError> {
        self.calls.lock().unwrap().push(port);
        match port {
            ECHO => {
                let mut buf = [0u8; 4096];
                loop {
                    let n = stream.read(&mut buf).await?;
                    if n == 0 {
                        let _ = stream.shutdown().await;
                        return Ok(());
                    }
                    stream.write_all(&buf[..n]).await?;
                }
            }
            GREETER => {
                stream.write_all(GREETING).await?;
                let _ = stream.shutdown().await;
                Ok(())
            }
            SILENT => {
                let mut sink = Vec::new();
                let _ = stream.read_to_end(&mut sink).await;
                std::future::pending().await
            }
            _ => Err(ForwardError::Io(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                REFUSED_MESSAGE,
            ))),
        }
    }
}
