//! One WebRTC peer on the shared port: a sans-io [`Rtc`] and the glue that feeds it datagrams
//! and timers and sends what it produces. WHEP and WHIP sessions own one each.

use super::state::{Datagram, RtcPort};
use std::sync::Arc;
use std::time::{Duration, Instant};
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
}

impl Peer {
    pub fn new(rtc: Rtc, port: Arc<RtcPort>, ufrag: String) -> Peer {
        Peer { rtc, port, ufrag, connected: false, started: Instant::now() }
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
                Ok(Output::Transmit(t)) => {
                    let _ = self.port.socket.send_to(&t.contents, t.destination).await;
                }
                Ok(Output::Event(Event::IceConnectionStateChange(IceConnectionState::Disconnected))) => {
                    return Err("the peer went away (ICE disconnected)".into())
                }
                Ok(Output::Event(Event::Connected)) => {
                    self.connected = true;
                    on_event(&mut self.rtc, Event::Connected);
                }
                Ok(Output::Event(e)) => on_event(&mut self.rtc, e),
                Err(e) => return Err(format!("WebRTC: {e}")),
            }
        }
    }

    /// A datagram from the port.
    pub fn input(&mut self, d: &Datagram) -> Result<(), String> {
        let Ok(contents) = d.data.as_slice().try_into() else { return Ok(()) };
        let input = Input::Receive(
            d.at,
            Receive { proto: Protocol::Udp, source: d.from, destination: self.port.candidate, contents },
        );
        self.rtc.handle_input(input).map_err(|e| format!("bad input: {e}"))
    }

    /// The timer `drain` asked for has come.
    pub fn tick(&mut self) -> Result<(), String> {
        self.rtc.handle_input(Input::Timeout(Instant::now())).map_err(|e| format!("timer: {e}"))
    }

    /// Ends the peer (the other side is told) and leaves the port.
    pub async fn close(mut self, sessions: &super::state::RtcSessions) {
        self.rtc.disconnect();
        let _ = self.drain(|_, _| {}).await;
        self.port.remove(&self.ufrag);
        sessions.remove(&self.ufrag);
    }
}
