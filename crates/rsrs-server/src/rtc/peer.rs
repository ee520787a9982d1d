//! One WebRTC peer on the shared port: a sans-io [`Rtc`] and the glue that feeds it datagrams
//! and timers and sends what it produces. WHEP and WHIP sessions own one each.

use super::state::{Datagram, RtcPort, RtcTotals};
use super::Way;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::media::Mid;
use str0m::net::{Protocol, Receive};
use str0m::{Event, IceConnectionState, Input, Output, Rtc};

/// How long a session may take to connect (ICE and DTLS) before it is dropped.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Peer {
    pub rtc: Rtc,
    pub port: Arc<RtcPort>,
    pub ufrag: String,
    pub connected: bool,
    started: Instant,
    way: Way,
    totals: Arc<RtcTotals>,
    /// Per track and direction (egress true): the NACK and keyframe-request counts last seen,
    /// so the totals take only what is new.
    feedback: HashMap<(Mid, bool), (u64, u64)>,
    /// ICE-TCP: the connections that reach each remote address (replies go back on them).
    tcp_out: HashMap<SocketAddr, tokio::sync::mpsc::Sender<Vec<u8>>>,
}

impl Peer {
    pub fn new(rtc: Rtc, port: Arc<RtcPort>, ufrag: String, way: Way, totals: Arc<RtcTotals>) -> Peer {
        totals.sessions[way as usize].fetch_add(1, Ordering::Relaxed);
        Peer {
            rtc,
            port,
            ufrag,
            connected: false,
            started: Instant::now(),
            way,
            totals,
            feedback: HashMap::new(),
            tcp_out: HashMap::new(),
        }
    }

    /// Adds what is new in a track's feedback counts to the totals.
    fn count_feedback(&mut self, mid: Mid, egress: bool, nacks: u64, keyframe_requests: u64) {
        let last = self.feedback.entry((mid, egress)).or_default();
        let (new_nacks, new_kf) = (nacks.saturating_sub(last.0), keyframe_requests.saturating_sub(last.1));
        *last = (nacks.max(last.0), keyframe_requests.max(last.1));
        let t = &self.totals;
        let (n, k) = if egress {
            (&t.nacks_received, &t.keyframe_requests_received)
        } else {
            (&t.nacks_sent, &t.keyframe_requests_sent)
        };
        n.fetch_add(new_nacks, Ordering::Relaxed);
        k.fetch_add(new_kf, Ordering::Relaxed);
    }

    /// Sends what the Rtc has to send and hands its events to `on_event`; when it next wants a
    /// timer (at most a second away). An error ends the session, with the reason.
    pub async fn drain(&mut self, mut on_event: impl FnMut(&mut Rtc, Event)) -> Result<Instant, String> {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    if !self.connected && self.started.elapsed() > CONNECT_TIMEOUT {
                        return Err(format!("not connected within {} s", CONNECT_TIMEOUT.as_secs()));
                    }
                    return Ok(t.min(Instant::now() + Duration::from_secs(1)));
                }
                Ok(Output::Transmit(t)) if t.proto == Protocol::Udp => {
                    let _ = self.port.socket.send_to(&t.contents, t.destination).await;
                }
                Ok(Output::Transmit(t)) => {
                    // A full connection drops the packet, as a congested link would.
                    if let Some(conn) = self.tcp_out.get(&t.destination) {
                        let _ = conn.try_send(t.contents.to_vec());
                    }
                }
                Ok(Output::Event(Event::IceConnectionStateChange(IceConnectionState::Disconnected))) => {
                    return Err("the peer went away (ICE disconnected)".into())
                }
                Ok(Output::Event(Event::Connected)) => {
                    self.connected = true;
                    self.totals.connected[self.way as usize].fetch_add(1, Ordering::Relaxed);
                    on_event(&mut self.rtc, Event::Connected);
                }
                Ok(Output::Event(Event::MediaEgressStats(s))) => {
                    self.count_feedback(s.mid, true, s.nacks, s.plis + s.firs)
                }
                Ok(Output::Event(Event::MediaIngressStats(s))) => {
                    self.count_feedback(s.mid, false, s.nacks, s.plis + s.firs)
                }
                Ok(Output::Event(e)) => on_event(&mut self.rtc, e),
                Err(e) => return Err(format!("WebRTC: {e}")),
            }
        }
    }

    /// A datagram from the port.
    pub fn input(&mut self, d: &Datagram) -> Result<(), String> {
        let Ok(contents) = d.data.as_slice().try_into() else { return Ok(()) };
        // The port's candidates are read (under its lock) only for the rarer TCP packets.
        let (proto, destination) = match &d.tcp {
            None => (Protocol::Udp, self.port.candidate),
            Some(conn) => {
                // TCP was switched off since: the packet has no candidate to arrive at.
                let Some(local) = self.port.candidates().1 else { return Ok(()) };
                self.tcp_out.entry(d.from).or_insert_with(|| conn.clone());
                (Protocol::Tcp, local)
            }
        };
        let input = Input::Receive(d.at, Receive { proto, source: d.from, destination, contents });
        self.rtc.handle_input(input).map_err(|e| format!("bad input: {e}"))
    }

    /// The timer `drain` asked for has come.
    pub fn tick(&mut self) -> Result<(), String> {
        self.rtc.handle_input(Input::Timeout(Instant::now())).map_err(|e| format!("timer: {e}"))
    }

    /// Ends the peer (the other side is told) and leaves the port.
    pub async fn close(mut self, sessions: &super::state::RtcSessions) {
        self.totals.sessions[self.way as usize].fetch_sub(1, Ordering::Relaxed);
        if !self.connected {
            self.totals.never_connected[self.way as usize].fetch_add(1, Ordering::Relaxed);
        }
        self.rtc.disconnect();
        let _ = self.drain(|_, _| {}).await;
        self.port.remove(&self.ufrag);
        sessions.remove(&self.ufrag);
    }
}
