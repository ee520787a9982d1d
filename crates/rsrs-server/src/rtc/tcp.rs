//! ICE-TCP (RFC 6544) on `rtc_server`'s TCP port, for browsers that cannot use UDP. A browser
//! connects to the passive TCP candidate and sends RFC 4571 frames (a 16-bit length, then one
//! STUN, DTLS, RTP or RTCP packet); each is routed to its session exactly as a UDP datagram is
//! (by the STUN ufrag, then by address), and the session's packets for that address come back on
//! the connection, framed the same way.

use super::state::SESSION_QUEUE;
use crate::server::Server;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::debug;

/// A connection must name a live session (its first frame, a STUN request) this soon.
const FIRST_FRAME_WITHIN: Duration = Duration::from_secs(10);
/// A connection with nothing for this long is closed (ICE consent checks come every few s).
const IDLE: Duration = Duration::from_secs(30);

/// ICE-TCP connections open now; at most `max_connections` (each belongs to a session, which
/// takes a slot of its own).
static OPEN: AtomicUsize = AtomicUsize::new(0);

/// Takes a new connection on the TCP port, unless `max_connections` are open already.
pub fn accept(server: &Arc<Server>, sock: TcpStream, peer: SocketAddr) {
    let max = server.config().max_connections as usize;
    if OPEN.fetch_add(1, Ordering::AcqRel) >= max {
        OPEN.fetch_sub(1, Ordering::AcqRel);
        debug!(%peer, "WebRTC TCP connection refused: {max} are open");
        return;
    }
    let server = server.clone();
    tokio::spawn(async move {
        serve(server, sock, peer).await;
        OPEN.fetch_sub(1, Ordering::AcqRel);
    });
}

/// Serves one ICE-TCP connection until it closes, idles out, or names no session.
async fn serve(server: Arc<Server>, sock: TcpStream, peer: SocketAddr) {
    let _ = sock.set_nodelay(true);
    let (mut rd, mut wr) = sock.into_split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(SESSION_QUEUE);
    let writer = tokio::spawn(async move {
        let mut frame = Vec::with_capacity(2048);
        while let Some(packet) = rx.recv().await {
            let Ok(len) = u16::try_from(packet.len()) else { continue };
            frame.clear();
            frame.extend_from_slice(&len.to_be_bytes());
            frame.extend_from_slice(&packet);
            if wr.write_all(&frame).await.is_err() {
                break;
            }
        }
    });
    let mut buf = Vec::with_capacity(1500);
    let mut routed = false;
    let why = loop {
        let wait = if routed { IDLE } else { FIRST_FRAME_WITHIN };
        let mut len = [0u8; 2];
        match tokio::time::timeout(wait, rd.read_exact(&mut len)).await {
            Err(_) => break "idle",
            Ok(Err(_)) => break "closed",
            Ok(Ok(_)) => {}
        }
        buf.resize(u16::from_be_bytes(len) as usize, 0);
        match tokio::time::timeout(wait, rd.read_exact(&mut buf)).await {
            Err(_) => break "idle mid-frame",
            Ok(Err(_)) => break "closed mid-frame",
            Ok(Ok(_)) => {}
        }
        let Some(port) = server.rtc.get() else { break "rtc_server closed" };
        if port.route(peer, &buf, Some(&tx)) {
            routed = true;
        } else if !routed {
            break "its first packet names no session";
        }
    };
    debug!(%peer, "WebRTC TCP connection ended: {why}");
    writer.abort();
}
