//! WebRTC's shared UDP port and the routes of its sessions: what the listener opens and the WHEP
//! handler registers sessions with. A leaf: the server's shared state holds it.
//!
//! Every session is on the one port (what a Kubernetes Service can expose). A datagram is
//! routed by the STUN USERNAME's server part (the session's ICE ufrag) until the peer's address
//! is known, then by that address.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// One datagram for a session.
#[derive(Debug)]
pub struct Datagram {
    pub at: std::time::Instant,
    pub from: SocketAddr,
    pub data: Vec<u8>,
    /// For a packet that came over ICE-TCP: where the replies to `from` go.
    pub tcp: Option<mpsc::Sender<Vec<u8>>>,
}

/// Datagrams a session may have waiting; beyond it (a session that stalls) they are dropped,
/// as the network would.
pub const SESSION_QUEUE: usize = 512;

#[derive(Default)]
struct Routes {
    by_ufrag: HashMap<String, mpsc::Sender<Datagram>>,
    by_addr: HashMap<SocketAddr, String>,
}

/// The open `rtc_server` port.
pub struct RtcPort {
    pub socket: UdpSocket,
    /// What browsers are told to send to (the candidate), and what datagrams arrive at.
    pub candidate: SocketAddr,
    routes: Mutex<Routes>,
    /// The ICE-TCP candidate when the TCP port is open and `protocol` is tcp or all; and
    /// whether answers carry the UDP candidate (`protocol` udp or all).
    tcp_candidate: Mutex<(Option<SocketAddr>, bool)>,
}

impl RtcPort {
    pub fn new(socket: UdpSocket, candidate: SocketAddr) -> RtcPort {
        RtcPort { socket, candidate, routes: Mutex::default(), tcp_candidate: Mutex::new((None, true)) }
    }

    pub fn set_tcp_candidate(&self, tcp: Option<SocketAddr>, udp: bool) {
        *self.tcp_candidate.lock().unwrap_or_else(|e| e.into_inner()) = (tcp, udp);
    }

    /// The candidates answers carry: UDP (if offered) and TCP (if open).
    pub fn candidates(&self) -> (Option<SocketAddr>, Option<SocketAddr>) {
        let (tcp, udp) = *self.tcp_candidate.lock().unwrap_or_else(|e| e.into_inner());
        (udp.then_some(self.candidate), tcp)
    }

    fn routes(&self) -> std::sync::MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Routes datagrams for `ufrag` to a new session; its receiver.
    pub fn add(&self, ufrag: &str) -> mpsc::Receiver<Datagram> {
        let (tx, rx) = mpsc::channel(SESSION_QUEUE);
        self.routes().by_ufrag.insert(ufrag.to_string(), tx);
        rx
    }

    pub fn remove(&self, ufrag: &str) {
        let mut r = self.routes();
        r.by_ufrag.remove(ufrag);
        r.by_addr.retain(|_, u| u != ufrag);
    }

    /// Hands a datagram to its session, if any; learns the peer's address from a STUN request
    /// naming a session. `tcp`: the connection it came on, for ICE-TCP. Whether it had one.
    pub fn route(&self, from: SocketAddr, data: &[u8], tcp: Option<&mpsc::Sender<Vec<u8>>>) -> bool {
        let tx = {
            let mut r = self.routes();
            match rsrs_codec::stun::local_ufrag(data) {
                Some(ufrag) => {
                    let tx = r.by_ufrag.get(ufrag).cloned();
                    if tx.is_some() {
                        r.by_addr.insert(from, ufrag.to_string());
                    }
                    tx
                }
                None => r.by_addr.get(&from).and_then(|u| r.by_ufrag.get(u)).cloned(),
            }
        };
        let Some(tx) = tx else { return false };
        let _ = tx.try_send(Datagram { at: std::time::Instant::now(), from, data: data.to_vec(), tcp: tcp.cloned() });
        true
    }
}

/// The port while `rtc_server` is on.
#[derive(Default)]
pub struct RtcSlot(Mutex<Option<Arc<RtcPort>>>);

impl RtcSlot {
    pub fn get(&self) -> Option<Arc<RtcPort>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set(&self, port: Option<Arc<RtcPort>>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = port;
    }
}

/// Live WHEP sessions by ufrag: their DELETE token and the switch that ends them.
#[derive(Default)]
pub struct RtcSessions(
    std::sync::Mutex<std::collections::HashMap<String, (String, tokio_util::sync::CancellationToken)>>,
);

impl RtcSessions {
    pub fn add(&self, ufrag: &str, token: &str, kill: tokio_util::sync::CancellationToken) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(ufrag.to_string(), (token.to_string(), kill));
    }

    pub fn remove(&self, ufrag: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(ufrag);
    }

    /// Ends the session if the token is its own.
    pub fn end(&self, ufrag: &str, token: &str) -> bool {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(ufrag) {
            Some((t, kill)) if t == token => {
                kill.cancel();
                true
            }
            _ => false,
        }
    }
}

/// What the exporter shows of WebRTC: sessions by way (0 play, 1 publish) and the feedback that
/// says how lossy the links are.
#[derive(Debug, Default)]
pub struct RtcTotals {
    /// Sessions now, connected or connecting.
    pub sessions: [std::sync::atomic::AtomicI64; 2],
    /// Sessions that connected, and sessions that ended without connecting.
    pub connected: [std::sync::atomic::AtomicU64; 2],
    pub never_connected: [std::sync::atomic::AtomicU64; 2],
    /// NACKs players sent rsrs (packets it retransmitted for them), and NACKs rsrs sent
    /// publishers.
    pub nacks_received: std::sync::atomic::AtomicU64,
    pub nacks_sent: std::sync::atomic::AtomicU64,
    /// PLIs and FIRs: players asking rsrs for a keyframe, rsrs asking publishers.
    pub keyframe_requests_received: std::sync::atomic::AtomicU64,
    pub keyframe_requests_sent: std::sync::atomic::AtomicU64,
}
