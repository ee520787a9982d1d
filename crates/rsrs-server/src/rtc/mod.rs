//! WebRTC (`rtc_server`): WHEP play at `/rtc/v1/whep/?app=&stream=` and WHIP publish at
//! `/rtc/v1/whip/?app=&stream=`, as SRS answers them (201, the answer SDP, a `Location` with a
//! token to DELETE). Each session is a task owning a sans-io [`str0m::Rtc`] (ICE-lite, DTLS,
//! SRTP, RTP with NACK and RTCP) on the one shared UDP port ([`state::RtcPort`]): a viewer reads
//! a core consumer ([`play`]), a publisher feeds the stream's source ([`publish`]). With
//! `tcp { enabled on; }` sessions can also come over one TCP port (ICE-TCP, [`tcp`]). Admission
//! is the stream manager's, as for every protocol. Video: H.264 both ways, and H.265, VP9 and
//! AV1 to players; audio: Opus, with AAC transcoded to and from it
//! ([`crate::transcode`]).

mod peer;
mod play;
mod publish;
pub mod state;
pub mod tcp;

use crate::hub::StreamKey;
use crate::server::Server;
use crate::stats::ClientGuard;
use peer::Peer;
use state::RtcPort;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use str0m::{Candidate, Rtc, RtcConfig};
use tracing::{debug, Instrument};

/// Reads the shared port until the listener is closed, handing each datagram to its session.
pub async fn receive_loop(port: Arc<RtcPort>) {
    let mut buf = vec![0u8; 2048];
    loop {
        match port.socket.recv_from(&mut buf).await {
            Ok((n, from)) => {
                port.route(from, &buf[..n], None);
            }
            // ICMP errors from a peer that went away surface here; the port goes on.
            Err(e) => debug!("WebRTC port: {e}"),
        }
    }
}

/// The candidate address for `rtc_server`: `candidate` (an IP, with the listen port); else the
/// listen address when it names one; else, as SRS's `candidate *`, this host's first IPv4
/// address that is not loopback (in a Kubernetes pod: the pod IP).
pub fn candidate_addr(cfg: &rsrs_config::RtcServer) -> Result<SocketAddr, String> {
    let listen = cfg.listen.0;
    match cfg.candidate.as_deref() {
        Some(c) if c != "*" => c
            .parse::<std::net::IpAddr>()
            .map(|ip| SocketAddr::new(ip, listen.port()))
            .map_err(|_| format!("rtc_server candidate `{c}` is not an IP address")),
        None if !listen.ip().is_unspecified() => Ok(listen),
        _ => first_host_ipv4().map(|ip| SocketAddr::new(ip.into(), listen.port())).ok_or_else(|| {
            "rtc_server listens on every address and this host has no IPv4 address but loopback: set \
             `candidate` (or SRS_RTC_SERVER_CANDIDATE) to the address browsers reach"
                .to_string()
        }),
    }
}

/// This host's first IPv4 interface address that is up and not loopback.
fn first_host_ipv4() -> Option<std::net::Ipv4Addr> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list freed below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return None;
    }
    let mut found = None;
    let mut cur = list;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, alive until freeifaddrs.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        let up = ifa.ifa_flags & libc::IFF_UP as u32 != 0;
        let loopback = ifa.ifa_flags & libc::IFF_LOOPBACK as u32 != 0;
        // SAFETY: ifa_addr, when set, points at a sockaddr whose family says its type.
        if up && !loopback && !ifa.ifa_addr.is_null() && unsafe { (*ifa.ifa_addr).sa_family } as i32 == libc::AF_INET {
            // SAFETY: an AF_INET address is a sockaddr_in.
            let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
            found = Some(std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)));
            break;
        }
    }
    // SAFETY: the list from getifaddrs, freed once.
    unsafe { libc::freeifaddrs(list) };
    found
}

/// Which way a WebRTC session's media goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// WHEP: the server sends.
    Play = 0,
    /// WHIP: the browser or encoder sends.
    Publish = 1,
}

impl Way {
    pub fn name(self) -> &'static str {
        match self {
            Way::Play => "WHEP",
            Way::Publish => "WHIP",
        }
    }
}

/// Starts a WHEP viewer's session task: the peer, fed by the stream's consumer.
#[allow(clippy::too_many_arguments)]
pub fn start_play(
    server: &Arc<Server>,
    port: &Arc<RtcPort>,
    rtc: Rtc,
    ufrag: &str,
    key: StreamKey,
    consumer: crate::hub::Consumer,
    initial: Vec<Arc<crate::media::MediaPacket>>,
    admitted: crate::streams::Admitted,
    guard: ClientGuard,
) {
    let rx = port.add(ufrag);
    let peer = Peer::new(rtc, port.clone(), ufrag.to_string(), Way::Play, server.rtc_totals.clone());
    let span = tracing::info_span!("rtc", cid = %guard.client.id, stream = %key.url(), way = "WHEP");
    let session = play::PlaySession { server: server.clone(), peer, key, pending: initial };
    tokio::spawn(
        async move {
            let _admitted = admitted;
            session.run(rx, consumer, guard).await;
        }
        .instrument(span),
    );
}

/// Starts a WHIP publisher's session task: the peer, feeding the stream's source.
pub fn start_publish(
    server: &Arc<Server>,
    port: &Arc<RtcPort>,
    rtc: Rtc,
    ufrag: &str,
    key: StreamKey,
    published: crate::streams::Published,
    guard: ClientGuard,
) {
    let rx = port.add(ufrag);
    let peer = Peer::new(rtc, port.clone(), ufrag.to_string(), Way::Publish, server.rtc_totals.clone());
    let span = tracing::info_span!("rtc", cid = %guard.client.id, stream = %key.url(), way = "WHIP");
    let session = publish::PublishSession { server: server.clone(), peer, source: published.source, stream: key.url() };
    let admitted = published.admitted;
    tokio::spawn(
        async move {
            let _admitted = admitted;
            session.run(rx, guard).await;
        }
        .instrument(span),
    );
}

/// An ICE-lite peer on the shared port, answering `offer`: the peer, the answer SDP, and the
/// ICE ufrag datagrams are routed by. A publisher may send H.264 and Opus (what rsrs ingests);
/// a player may take H.264, H.265, VP9 and AV1 video (what its browser offers of them) and Opus.
pub fn answer(port: &RtcPort, offer: str0m::change::SdpOffer, way: Way) -> Result<(Rtc, String, String), String> {
    let play = way == Way::Play;
    let mut rtc = RtcConfig::new()
        .set_ice_lite(true)
        .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
        .clear_codecs()
        .enable_h264(true)
        .enable_h265(play)
        .enable_vp9(play)
        .enable_av1(play)
        .enable_opus(true)
        // NACK and keyframe-request counts for the exporter.
        .set_stats_interval(Some(std::time::Duration::from_secs(1)))
        .build(Instant::now());
    let (udp, tcp) = port.candidates();
    if let Some(addr) = udp {
        let candidate = Candidate::host(addr, "udp").map_err(|e| format!("bad candidate address: {e}"))?;
        rtc.add_local_candidate(candidate);
    }
    if let Some(addr) = tcp {
        // Passive: browsers connect to it (RFC 6544).
        let candidate = Candidate::builder()
            .tcp()
            .host(addr)
            .tcptype(str0m::net::TcpType::Passive)
            .build()
            .map_err(|e| format!("bad TCP candidate address: {e}"))?;
        rtc.add_local_candidate(candidate);
    }
    let answer =
        rtc.sdp_api().accept_offer(offer).map_err(|e| format!("cannot answer the offer: {e}"))?.to_sdp_string();
    let ufrag = answer
        .lines()
        .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
        .map(|u| u.trim().to_string())
        .ok_or("the answer has no ICE ufrag")?;
    Ok((rtc, answer, ufrag))
}
