//! The serving certificate as rustls sees it: swapped in place, so a renewal reaches every new
//! handshake while established connections keep the certificate they started with.

use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::material::leaf_pem;

/// Hands out the current certificate to each TLS handshake.
#[derive(Debug)]
pub struct ServingCertResolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ServingCertResolver {
    pub fn new(initial: Arc<CertifiedKey>) -> Self {
        Self {
            current: RwLock::new(initial),
        }
    }

    /// Serve `next` from the next handshake on.
    pub fn replace(&self, next: Arc<CertifiedKey>) {
        // The lock guards a single Arc swap, which cannot leave it half-written; a poisoned
        // lock still holds a whole value.
        let mut slot = self.current.write().unwrap_or_else(|e| e.into_inner());
        *slot = next;
    }

    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The leaf certificate now served, in PEM.
    pub fn current_pem(&self) -> String {
        leaf_pem(&self.current())
    }
}

impl ResolvesServerCert for ServingCertResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}
