//! The SRT connections now open, by client id: what the API and the exporter read libsrt's
//! statistics through. A leaf: the server's shared state holds it.

use rsrs_srt::{SrtSocket, SrtStats};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The SRT connections by client id, so the API and the exporter can read libsrt's statistics.
#[derive(Default)]
pub struct SrtConnections {
    map: Mutex<HashMap<String, Arc<SrtSocket>>>,
}

impl SrtConnections {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<SrtSocket>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// libsrt's statistics of one client's connection, if it is an SRT one.
    pub fn stats(&self, client_id: &str) -> Option<SrtStats> {
        let sock = self.lock().get(client_id).cloned()?;
        sock.stats()
    }

    /// Every SRT connection's client id and statistics.
    pub fn all(&self) -> Vec<(String, SrtStats)> {
        let socks: Vec<_> = self.lock().iter().map(|(id, s)| (id.clone(), s.clone())).collect();
        socks.into_iter().filter_map(|(id, s)| Some((id, s.stats()?))).collect()
    }
}
