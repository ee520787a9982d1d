//! Live statistics: the connected clients (for `/api/v1/clients`, kicking, and counts) and
//! byte-rate sampling for the `kbps` fields.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// SRS's client type strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientType {
    RtmpPlay,
    FlvPlay,
    FmlePublish,
    FlashPublish,
    HaivisionPublish,
    /// MPEG-TS over SRT, in and out (SRS's names).
    SrtPublish,
    SrtPlay,
    /// A WebRTC viewer (WHEP) and publisher (WHIP).
    RtcPlay,
    RtcPublish,
    /// An HLS viewer session (`hls_ctx`): no connection of its own.
    HlsPlay,
}

impl ClientType {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientType::RtmpPlay => "rtmp-play",
            ClientType::FlvPlay => "flv-play",
            ClientType::FmlePublish => "fmle-publish",
            ClientType::FlashPublish => "flash-publish",
            ClientType::HaivisionPublish => "haivision-publish",
            ClientType::SrtPublish => "srt-publish",
            ClientType::SrtPlay => "srt-play",
            ClientType::RtcPlay => "rtc-play",
            ClientType::RtcPublish => "rtc-publish",
            ClientType::HlsPlay => "hls-play",
        }
    }

    pub fn is_publish(self) -> bool {
        matches!(
            self,
            ClientType::FmlePublish
                | ClientType::FlashPublish
                | ClientType::HaivisionPublish
                | ClientType::SrtPublish
                | ClientType::RtcPublish
        )
    }
}

/// Byte counters for one connection, shared with its I/O code.
#[derive(Debug, Default)]
pub struct Counters {
    pub send_bytes: AtomicU64,
    pub recv_bytes: AtomicU64,
}

impl Counters {
    pub fn sent(&self, n: usize) {
        self.send_bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
    pub fn received(&self, n: usize) {
        self.recv_bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// What a connection has identified itself as.
#[derive(Debug, Clone)]
pub struct ClientDetails {
    pub vhost: String,
    pub app: String,
    pub stream: String,
    pub stream_url: String,
    pub stream_id: String,
    pub tc_url: String,
    pub page_url: String,
    pub swf_url: String,
    pub kind: ClientType,
}

/// One connection known to the API.
#[derive(Debug)]
pub struct Client {
    pub id: String,
    pub ip: IpAddr,
    pub started: Instant,
    pub counters: Arc<Counters>,
    pub kill: CancellationToken,
    pub details: Mutex<Option<ClientDetails>>,
    rate: Mutex<RateSampler>,
    /// The registry's count of identified clients.
    identified: Arc<AtomicU64>,
}

impl Client {
    pub fn details(&self) -> Option<ClientDetails> {
        self.details.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Records what the client is. The first time also counts it in `identified` (SRS counts a
    /// client when it publishes or plays, not API calls or half-open connections).
    pub fn set_details(&self, d: ClientDetails) {
        let first = self.details.lock().unwrap_or_else(|e| e.into_inner()).replace(d).is_none();
        if first {
            self.identified.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// (recv, send) kbps over about the last 30 s.
    pub fn kbps(&self) -> (u64, u64) {
        self.rate.lock().unwrap_or_else(|e| e.into_inner()).kbps()
    }
}

/// Keeps (time, recv, send) samples to derive a 30 s average rate.
#[derive(Debug, Default)]
pub struct RateSampler {
    samples: VecDeque<(Instant, u64, u64)>,
}

impl RateSampler {
    pub fn sample(&mut self, now: Instant, recv: u64, send: u64) {
        self.samples.push_back((now, recv, send));
        while self.samples.len() > 2 && now.duration_since(self.samples[1].0) >= Duration::from_secs(30) {
            self.samples.pop_front();
        }
    }

    pub fn kbps(&self) -> (u64, u64) {
        match (self.samples.front(), self.samples.back()) {
            (Some(a), Some(b)) if b.0 > a.0 => {
                let secs = b.0.duration_since(a.0).as_secs_f64();
                (((b.1 - a.1) as f64 * 8.0 / 1000.0 / secs) as u64, ((b.2 - a.2) as f64 * 8.0 / 1000.0 / secs) as u64)
            }
            _ => (0, 0),
        }
    }
}

/// Every connection that counts against `max_connections` and appears in the API.
#[derive(Debug, Default)]
pub struct Clients {
    map: Mutex<HashMap<String, Arc<Client>>>,
    /// Connections accepted since start (API calls and scrapes too).
    pub connections: AtomicU64,
    /// Clients that published or played since start (SRS's `srs_clients_total`).
    pub total: Arc<AtomicU64>,
    /// Connections that ended on an error of theirs or ours (not a normal close, a kick, or the
    /// peer going away): SRS's `srs_clients_errs_total`.
    pub errors: AtomicU64,
    /// Bytes of clients that have left, per vhost and in all (`""`): with the live clients'
    /// counters, the cumulative totals the API reports (SRS's never go down).
    retired: Mutex<HashMap<String, (u64, u64)>>,
}

/// Bytes sent and received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByteTotals {
    pub send: u64,
    pub recv: u64,
}

impl Clients {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Client>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a connection; it is removed when the returned guard drops.
    pub fn register(self: &Arc<Self>, ip: IpAddr) -> ClientGuard {
        let client = Arc::new(Client {
            id: crate::ids::client_id(),
            ip,
            started: Instant::now(),
            counters: Arc::new(Counters::default()),
            kill: CancellationToken::new(),
            details: Mutex::new(None),
            rate: Mutex::new(RateSampler::default()),
            identified: self.total.clone(),
        });
        self.map().insert(client.id.clone(), client.clone());
        self.connections.fetch_add(1, Ordering::Relaxed);
        ClientGuard { client, clients: self.clone(), slot: None }
    }

    pub fn get(&self, id: &str) -> Option<Arc<Client>> {
        self.map().get(id).cloned()
    }

    /// Connections now (API calls and scrapes too).
    pub fn count(&self) -> usize {
        self.map().len()
    }

    /// Clients that publish or play now (SRS's `srs_clients`).
    pub fn identified(&self) -> usize {
        self.map().values().filter(|c| c.details.lock().unwrap_or_else(|e| e.into_inner()).is_some()).count()
    }

    /// Identified clients, oldest first.
    pub fn all(&self) -> Vec<Arc<Client>> {
        let mut v: Vec<_> = self.map().values().cloned().collect();
        v.sort_by_key(|c| c.started);
        v
    }

    /// Bytes since the process started, of every client that has been on `vhost` (`None`: on
    /// any vhost, or none yet), those connected now and those gone.
    pub fn byte_totals(&self, vhost: Option<&str>) -> ByteTotals {
        // Both read under the map's lock (then the totals', the order a leaving client takes),
        // so a client leaving meanwhile is counted once: the totals never go down.
        let map = self.map();
        let mut t = ByteTotals::default();
        for c in map.values().filter(|c| vhost.is_none_or(|v| c.details().is_some_and(|d| d.vhost == v))) {
            t.send += c.counters.send_bytes.load(Ordering::Relaxed);
            t.recv += c.counters.recv_bytes.load(Ordering::Relaxed);
        }
        let retired = self.retired.lock().unwrap_or_else(|e| e.into_inner());
        let (send, recv) = retired.get(vhost.unwrap_or("")).copied().unwrap_or_default();
        t.send += send;
        t.recv += recv;
        t
    }

    /// Takes a rate sample of every client (called periodically).
    pub fn sample(&self, now: Instant) {
        for c in self.map().values() {
            let (r, s) = (c.counters.recv_bytes.load(Ordering::Relaxed), c.counters.send_bytes.load(Ordering::Relaxed));
            c.rate.lock().unwrap_or_else(|e| e.into_inner()).sample(now, r, s);
        }
    }
}

/// Deregisters a client when its connection ends.
#[derive(Debug)]
pub struct ClientGuard {
    pub client: Arc<Client>,
    clients: Arc<Clients>,
    /// The connection slot it holds (freed with the guard).
    pub slot: Option<crate::slots::Slot>,
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        // Counted into the totals under the same lock it leaves the map by, so a reader never
        // sees its bytes twice or not at all.
        let mut map = self.clients.map();
        map.remove(&self.client.id);
        let (send, recv) = (
            self.client.counters.send_bytes.load(Ordering::Relaxed),
            self.client.counters.recv_bytes.load(Ordering::Relaxed),
        );
        let mut retired = self.clients.retired.lock().unwrap_or_else(|e| e.into_inner());
        let mut add = |key: String| {
            let e = retired.entry(key).or_default();
            e.0 += send;
            e.1 += recv;
        };
        add(String::new());
        if let Some(d) = self.client.details() {
            add(d.vhost);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn details(vhost: &str) -> ClientDetails {
        ClientDetails {
            vhost: vhost.into(),
            app: "live".into(),
            stream: "s".into(),
            stream_url: "/live/s".into(),
            stream_id: "vid-1".into(),
            tc_url: String::new(),
            page_url: String::new(),
            swf_url: String::new(),
            kind: ClientType::RtmpPlay,
        }
    }

    #[test]
    fn byte_totals_never_go_down_when_clients_leave() {
        let c = Arc::new(Clients::default());
        let a = c.register("127.0.0.1".parse().unwrap());
        a.client.set_details(details("v1"));
        a.client.counters.sent(1000);
        let b = c.register("127.0.0.1".parse().unwrap());
        b.client.set_details(details("v2"));
        b.client.counters.received(500);
        assert_eq!(c.byte_totals(None), ByteTotals { send: 1000, recv: 500 });
        drop(a);
        assert_eq!(c.byte_totals(None), ByteTotals { send: 1000, recv: 500 }, "a leaving client keeps its bytes");
        assert_eq!(c.byte_totals(Some("v1")), ByteTotals { send: 1000, recv: 0 });
        b.client.counters.received(1);
        drop(b);
        assert_eq!(c.byte_totals(Some("v2")), ByteTotals { send: 0, recv: 501 });
        assert_eq!(c.byte_totals(None), ByteTotals { send: 1000, recv: 501 });
    }

    #[test]
    fn register_and_drop() {
        let c = Arc::new(Clients::default());
        let g = c.register("127.0.0.1".parse().unwrap());
        assert_eq!(c.count(), 1);
        assert_eq!((c.identified(), c.total.load(Ordering::Relaxed)), (0, 0), "not a client until it plays");
        let d = details("v");
        g.client.set_details(d.clone());
        g.client.set_details(d);
        assert_eq!((c.identified(), c.total.load(Ordering::Relaxed)), (1, 1), "counted once");
        assert!(c.get(&g.client.id).is_some());
        drop(g);
        assert_eq!(c.count(), 0);
    }

    #[test]
    fn rate_over_window() {
        let mut r = RateSampler::default();
        let t0 = Instant::now();
        r.sample(t0, 0, 0);
        r.sample(t0 + Duration::from_secs(10), 125_000, 250_000);
        assert_eq!(r.kbps(), (100, 200));
    }
}
