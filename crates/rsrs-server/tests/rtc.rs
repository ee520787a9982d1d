//! WebRTC play (WHEP) end to end: ffmpeg publishes over RTMP, headless Chromium plays over WHEP
//! from a page served by rsrs, and reports through `getStats()` the frames it decoded and the
//! audio it received. Servers on 127.0.28.x.

mod common;

use common::*;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// Plays `?stream=` over WHEP and reports, once 30 frames are decoded (or after 40 s), frames,
/// size, audio samples received, the time from the answer, and the session's Location.
const WHEP_PAGE: &str = r#"<!doctype html><video id=v muted autoplay playsinline></video>
<script>
const p = new URLSearchParams(location.search);
let sent = false;
const report = (s) => { if (!sent) { sent = true; fetch(p.get('report') + '?' + s, {mode: 'no-cors'}); } };
(async () => {
  try {
    const pc = new RTCPeerConnection();
    pc.addTransceiver('video', {direction: 'recvonly'});
    pc.addTransceiver('audio', {direction: 'recvonly'});
    pc.ontrack = (e) => { document.getElementById('v').srcObject = e.streams[0] || new MediaStream([e.track]); };
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    let answer, where;
    if (p.get('json')) {
      // SRS's older signalling, as SRS's own players use it.
      const r = await fetch('/rtc/v1/play/', {method: 'POST', body: JSON.stringify({api: location.origin + '/rtc/v1/play/',
        streamurl: 'webrtc://' + location.hostname + '/live/' + p.get('stream'), sdp: offer.sdp})});
      const j = await r.json();
      if (j.code != 0) { report('status=' + j.code + '&body=' + encodeURIComponent(j.msg)); return; }
      answer = j.sdp; where = 'session=' + j.sessionid;
    } else {
      const r = await fetch('/rtc/v1/whep/?app=live&stream=' + p.get('stream'),
        {method: 'POST', body: offer.sdp, headers: {'Content-Type': 'application/sdp'}});
      if (r.status != 201) { report('status=' + r.status + '&body=' + encodeURIComponent(await r.text())); return; }
      where = r.headers.get('Location');
      answer = await r.text();
    }
    await pc.setRemoteDescription({type: 'answer', sdp: answer});
    const t0 = performance.now();
    const want = Number(p.get('audio') || 0);
    setInterval(async () => {
      const stats = await pc.getStats();
      let frames = 0, audio = 0, w = 0, h = 0, nacks = 0, lost = 0, pair = '', proto = '';
      stats.forEach((s) => { if (s.type == 'transport') pair = s.selectedCandidatePairId; });
      stats.forEach((s) => { if (s.type == 'candidate-pair' && s.id == pair) pair = s.remoteCandidateId; });
      stats.forEach((s) => { if (s.type == 'remote-candidate' && s.id == pair) proto = s.protocol; });
      stats.forEach((s) => {
        if (s.type == 'inbound-rtp' && s.kind == 'video') { frames = s.framesDecoded || 0; w = s.frameWidth || 0; h = s.frameHeight || 0; nacks = s.nackCount || 0; lost = s.packetsLost || 0; }
        if (s.type == 'inbound-rtp' && s.kind == 'audio') { audio = s.totalSamplesReceived || 0; }
      });
      const ms = Math.round(performance.now() - t0);
      if (frames >= Number(p.get('frames') || 30) && audio >= want) report('proto=' + proto + '&nacks=' + nacks + '&lost=' + lost + '&frames=' + frames + '&width=' + w + '&height=' + h + '&audio=' + audio + '&ms=' + ms + '&location=' + encodeURIComponent(where));
      if (ms > 40000) report('timeout&ice=' + pc.iceConnectionState + '&frames=' + frames + '&audio=' + audio);
    }, 100);
  } catch (e) { report('error=' + encodeURIComponent(e)); }
})();
</script>
"#;

/// Publishes Chromium's fake camera and microphone over WHIP as `?stream=`, and reports once
/// 150 frames are encoded (or after 40 s) with the codecs negotiated.
const WHIP_PAGE: &str = r#"<!doctype html>
<script>
const p = new URLSearchParams(location.search);
let sent = false;
const report = (s) => { if (!sent) { sent = true; fetch(p.get('report') + '?' + s, {mode: 'no-cors'}); } };
(async () => {
  try {
    const media = await navigator.mediaDevices.getUserMedia({video: {width: 640, height: 360}, audio: true});
    const pc = new RTCPeerConnection();
    media.getTracks().forEach((t) => pc.addTransceiver(t, {direction: 'sendonly'}));
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    const r = await fetch('/rtc/v1/whip/?app=live&stream=' + p.get('stream'),
      {method: 'POST', body: offer.sdp, headers: {'Content-Type': 'application/sdp'}});
    if (r.status != 201) { report('status=' + r.status + '&body=' + encodeURIComponent(await r.text())); return; }
    await pc.setRemoteDescription({type: 'answer', sdp: await r.text()});
    const t0 = performance.now();
    setInterval(async () => {
      const stats = await pc.getStats();
      let frames = 0, codecs = '';
      stats.forEach((s) => {
        if (s.type == 'outbound-rtp' && s.kind == 'video') frames = s.framesEncoded || 0;
        if (s.type == 'codec') codecs += s.mimeType + ',';
      });
      if (frames >= Number(p.get('frames') || 150)) report('encoded=' + frames + '&codecs=' + codecs);
      if (performance.now() - t0 > 40000) report('timeout&ice=' + pc.iceConnectionState + '&frames=' + frames);
    }, 200);
  } catch (e) { report('error=' + encodeURIComponent(e)); }
})();
</script>
"#;

fn conf(ip: &str) -> String {
    conf_with(ip, "")
}

fn conf_with(ip: &str, rtc_extra: &str) -> String {
    format!(
        "listen {ip}:1935;\ndaemon off;\nsrs_log_tank console;\n\
         http_api {{ enabled on; listen {ip}:1985; }}\n\
         http_server {{ enabled on; listen {ip}:8080; dir ./objs/nginx/html; }}\n\
         rtc_server {{ enabled on; listen {ip}:8000; {rtc_extra} }}\n\
         vhost __defaultVhost__ {{\n  rtc {{ enabled on; rtmp_to_rtc on; }}\n}}\n\
         vhost closed.example {{ }}\n"
    )
}

fn start(name: &str, ip: &str) -> Rsrs {
    start_with(name, ip, &conf(ip))
}

fn start_with(name: &str, ip: &str, conf: &str) -> Rsrs {
    let s = Rsrs::start(name, ip, conf);
    assert!(s.wait_log("WebRTC listening on", Duration::from_secs(10)), "{}", s.log_text());
    std::fs::create_dir_all(s.dir.join("objs/nginx/html")).unwrap();
    std::fs::write(s.dir.join("objs/nginx/html/whep.html"), WHEP_PAGE).unwrap();
    std::fs::write(s.dir.join("objs/nginx/html/whip.html"), WHIP_PAGE).unwrap();
    s
}

/// The query Chromium reported, as key/value pairs.
fn fields(report: &str) -> std::collections::HashMap<String, String> {
    let q = report.split_once('?').map_or("", |(_, q)| q);
    q.split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let v = v.replace("%2F", "/").replace("%3F", "?").replace("%3D", "=").replace("%26", "&");
            (k.to_string(), v)
        })
        .collect()
}

/// 6 s of 640x360 H.264 without B-frames and Opus, as FLV (Enhanced RTMP), made once per run.
fn opus_sample() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rtc-h264-opus.flv");
        if !path.exists() {
            let tmp = path.with_extension(format!("{}.flv", std::process::id()));
            let st = Command::new(ffmpeg9())
                .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=30"])
                .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "6"])
                .args(["-c:v", "libx264", "-preset", "veryfast", "-bf", "0", "-g", "30", "-pix_fmt", "yuv420p"])
                .args(["-c:a", "libopus", "-b:a", "64k"])
                .arg(&tmp)
                .status()
                .unwrap();
            assert!(st.success(), "encoding the Opus sample");
            std::fs::rename(&tmp, &path).unwrap();
        }
        path
    })
    .clone()
}

/// Starts `c` with its output discarded; killed when dropped.
fn quiet(c: &mut Command) -> Proc {
    Proc(c.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap_or_else(|e| panic!("{c:?}: {e}")))
}

/// ffmpeg 9 publishing the H.264 + Opus sample over Enhanced RTMP, looping, in real time.
fn publish_opus(url: &str) -> Proc {
    quiet(
        Command::new(ffmpeg9())
            .args(["-nostdin", "-v", "error", "-re", "-stream_loop", "-1", "-i"])
            .arg(opus_sample())
            .args(["-c", "copy", "-rtmp_enhanced_codecs", "Opus", "-f", "flv", url]),
    )
}

#[test]
fn whep_plays_an_rtmp_stream_in_chromium_and_delete_ends_the_session() {
    let ip = "127.0.28.1";
    let s = start("rtc-whep", ip);
    // H.264 without B-frames plus Opus, over Enhanced RTMP: both tracks reach the browser.
    let _p = publish_opus(&s.rtmp("live/cam"));
    s.wait_api("/api/v1/streams/", Duration::from_secs(15), |v| v["streams"][0]["video"]["width"] == 640);
    let got = chromium_report(&format!("{}?stream=cam&audio=4800", s.http("whep.html")), "127.0.28.2", "whep");
    let f = fields(&got);
    assert!(f.contains_key("frames"), "Chromium says {got}\n{}", s.log_text());
    assert_eq!((f["width"].as_str(), f["height"].as_str()), ("640", "360"), "{got}");
    assert_eq!(f["proto"], "udp", "{got}");
    assert!(f["audio"].parse::<u64>().unwrap() >= 4800, "Opus samples: {got}");
    // The viewer is an rtc-play client while it plays.
    let clients = s.api("/api/v1/clients/");
    assert!(clients["clients"].as_array().unwrap().iter().any(|c| c["type"] == "rtc-play"), "{clients}");
    // DELETE of the Location ends the session; a wrong token does not.
    let location = f["location"].clone();
    assert!(location.starts_with("/rtc/v1/whep/?action=delete&token="), "{location}");
    let addr = format!("{ip}:1985");
    let forged = location.replace("token=", "token=x");
    assert_eq!(http_request(&addr, "DELETE", &forged, &[]).0, 404);
    assert_eq!(http_request(&addr, "DELETE", &location, &[]).0, 200);
    assert!(s.wait_log("WHEP session ended: ended (DELETE", Duration::from_secs(10)), "{}", s.log_text());
}

#[test]
fn whep_leaves_b_frames_out_with_a_log_line_and_refuses_what_it_cannot_serve() {
    let ip = "127.0.28.3";
    let s = start("rtc-bframes", ip);
    // The common sample has B-frames and AAC: video plays without the B pictures (with a
    // warning), and the AAC is heard as Opus, transcoded once for the stream.
    let _p = publish(&s.rtmp("live/b"), true);
    s.wait_api("/api/v1/streams/", Duration::from_secs(15), |v| v["streams"][0]["video"]["width"] == 640);
    let got = chromium_report(&format!("{}?stream=b&audio=9600", s.http("whep.html")), "127.0.28.4", "whep-b");
    let f = fields(&got);
    assert!(f.contains_key("frames"), "Chromium says {got}\n{}", s.log_text());
    assert!(f["audio"].parse::<u64>().unwrap() >= 9600, "Opus samples from the AAC: {got}\n{}", s.log_text());
    assert!(s.log_text().contains("B-frames, which WebRTC cannot carry"), "{}", s.log_text());
    assert_eq!(s.log_text().matches("transcoding AAC to Opus for WebRTC players").count(), 1, "{}", s.log_text());
    // A vhost without `rtc`, a body that is no offer, a missing stream name.
    let addr = format!("{ip}:1985");
    let post = |path: &str, body: &str| {
        let mut sock = std::net::TcpStream::connect(&addr).unwrap();
        use std::io::{Read, Write};
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: {ip}\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        sock.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        let _ = sock.read_to_string(&mut out);
        out.split_whitespace().nth(1).unwrap_or("").parse::<u16>().unwrap_or(0)
    };
    assert_eq!(post("/rtc/v1/whep/?app=live&stream=b&vhost=closed.example", "v=0\r\n"), 403);
    assert_eq!(post("/rtc/v1/whep/?app=live&stream=b", "not sdp"), 400);
    assert_eq!(post("/rtc/v1/whep/?app=live", "v=0\r\n"), 400);
}

#[test]
fn a_chromium_camera_published_over_whip_plays_over_rtmp_flv_and_hls_with_aac() {
    let ip = "127.0.28.5";
    let conf = conf(ip).replace(
        "rtc { enabled on; rtmp_to_rtc on; }",
        "rtc { enabled on; rtmp_to_rtc on; rtc_to_rtmp on; }\n  http_remux { enabled on; mount [vhost]/[app]/[stream].flv; }\n  \
         hls { enabled on; hls_fragment 1; hls_window 10; }",
    );
    let s = start_with("rtc-whip", ip, &conf);
    // The browser publishes for as long as it is open (600 frames, about 20 s, before it reports).
    let publisher = std::thread::spawn({
        let page = format!("{}?stream=web&frames=600", s.http("whip.html"));
        move || {
            chromium_report_with(
                &page,
                "127.0.28.6",
                "whip",
                &["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"],
            )
        }
    });
    // The browser's Opus is AAC for the stream: RTMP, HTTP-FLV and HLS players take AAC.
    let streams = s.wait_api("/api/v1/streams/", Duration::from_secs(40), |v| {
        v["streams"][0]["video"]["width"] == 640 && v["streams"][0]["audio"]["codec"] == "AAC"
    });
    assert_eq!(streams["streams"][0]["video"]["codec"], "H264", "{streams}");
    assert_eq!(streams["streams"][0]["audio"]["sample_rate"], 48000, "{streams}");
    let clients = s.api("/api/v1/clients/");
    assert!(clients["clients"].as_array().unwrap().iter().any(|c| c["type"] == "rtc-publish"), "{clients}");
    for (what, url) in [("RTMP", s.rtmp("live/web")), ("HTTP-FLV", s.http("live/web.flv"))] {
        let (st, pk) = probe(&url, 2);
        let v = st.iter().find(|x| x["codec_type"] == "video").unwrap_or_else(|| panic!("{what}: no video: {st:?}"));
        let a = st.iter().find(|x| x["codec_type"] == "audio").unwrap_or_else(|| panic!("{what}: no audio: {st:?}"));
        assert_eq!((v["codec_name"].as_str(), v["width"].as_u64()), (Some("h264"), Some(640)), "{what}: {v}");
        assert_eq!((a["codec_name"].as_str(), a["sample_rate"].as_str()), (Some("aac"), Some("48000")), "{what}: {a}");
        assert!(pk.iter().filter(|p| p.codec_type == "audio").count() > 40, "{what}: AAC frames keep coming");
        assert!(
            pk.iter().find(|p| p.codec_type == "video").is_some_and(|p| p.keyframe),
            "{what}: starts on a keyframe"
        );
    }
    let m3u8 = s.dir.join("objs/nginx/html/live/web.m3u8");
    assert!(
        wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
            std::fs::read_to_string(&m3u8).is_ok_and(|t| t.matches("#EXTINF").count() >= 2)
        }),
        "no HLS playlist: {}",
        s.log_text()
    );
    let (st, _) = probe(&s.http("live/web.m3u8"), 5);
    assert!(st.iter().any(|x| x["codec_type"] == "audio" && x["codec_name"] == "aac"), "HLS audio: {st:?}");
    assert!(st.iter().any(|x| x["codec_type"] == "video" && x["codec_name"] == "h264"), "HLS video: {st:?}");
    let got = publisher.join().unwrap();
    assert!(got.contains("encoded=") && got.contains("H264"), "Chromium says {got}");
}

/// Publishes a canvas (and the fake microphone) over WHIP and plays it back over WHEP on the
/// same page, on one clock: the canvas turns black or white, and the time until the played
/// video turns too is the latency through rsrs (capture, encode, rsrs, jitter buffer, decode).
/// Reports the median of 5 such flips and the audio samples the player received.
const LOOP_PAGE: &str = r#"<!doctype html><canvas id=c width=320 height=240></canvas>
<video id=v muted autoplay playsinline></video><canvas id=r width=16 height=16></canvas>
<script>
const p = new URLSearchParams(location.search);
let sent = false;
const report = (s) => { if (!sent) { sent = true; fetch(p.get('report') + '?' + s, {mode: 'no-cors'}); } };
const signal = async (way, pc) => {
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  const r = await fetch('/rtc/v1/' + way + '/?app=live&stream=' + p.get('stream'),
    {method: 'POST', body: offer.sdp, headers: {'Content-Type': 'application/sdp'}});
  if (r.status != 201) throw way + ' ' + r.status + ' ' + await r.text();
  await pc.setRemoteDescription({type: 'answer', sdp: await r.text()});
};
(async () => {
  try {
    const c = document.getElementById('c'), g = c.getContext('2d');
    let white = false, t0 = 0;
    const paint = () => { g.fillStyle = white ? '#fff' : '#000'; g.fillRect(0, 0, 320, 240); };
    paint(); setInterval(paint, 20);
    const mic = await navigator.mediaDevices.getUserMedia({audio: true});
    const pub = new RTCPeerConnection();
    pub.addTransceiver(c.captureStream(30).getVideoTracks()[0], {direction: 'sendonly'});
    pub.addTransceiver(mic.getAudioTracks()[0], {direction: 'sendonly'});
    await signal('whip', pub);
    await new Promise((ok) => setTimeout(ok, 1500));
    const sub = new RTCPeerConnection();
    sub.addTransceiver('video', {direction: 'recvonly'});
    sub.addTransceiver('audio', {direction: 'recvonly'});
    const v = document.getElementById('v');
    // Both tracks into the (muted) element: Chromium decodes only what plays.
    const played = new MediaStream();
    sub.ontrack = (e) => { played.addTrack(e.track); v.srcObject = played; };
    await signal('whep', sub);
    const r = document.getElementById('r').getContext('2d', {willReadFrequently: true});
    const lat = [];
    const start = performance.now();
    const flip = () => { white = !white; paint(); t0 = performance.now(); };
    const seen = async () => {
      r.drawImage(v, 0, 0, 16, 16);
      const shown = r.getImageData(8, 8, 1, 1).data[0] > 128;
      if (t0 && shown == white) {
        lat.push(Math.round(performance.now() - t0)); t0 = 0;
        if (lat.length >= 5) {
          let audio = 0;
          (await sub.getStats()).forEach((s) => { if (s.type == 'inbound-rtp' && s.kind == 'audio') audio = s.totalSamplesReceived || 0; });
          const sorted = [...lat].sort((a, b) => a - b);
          report('latency=' + sorted[2] + '&all=' + lat.join(',') + '&audio=' + audio);
          return;
        }
        setTimeout(flip, 700);
      } else if (!t0 && lat.length == 0 && performance.now() - start > 1000) {
        flip();
      }
      if (performance.now() - start > 40000) report('timeout&done=' + lat.join(','));
      v.requestVideoFrameCallback(seen);
    };
    v.requestVideoFrameCallback(seen);
  } catch (e) { report('error=' + encodeURIComponent(e)); }
})();
</script>
"#;

#[test]
fn whip_to_whep_latency_is_measured_and_opus_passes_through_untouched() {
    let ip = "127.0.28.14";
    let s = start("rtc-loop", ip);
    std::fs::write(s.dir.join("objs/nginx/html/loop.html"), LOOP_PAGE).unwrap();
    let got = chromium_report_with(
        &format!("{}?stream=loop", s.http("loop.html")),
        "127.0.28.15",
        "rtc-loop",
        &["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"],
    );
    let f = fields(&got);
    assert!(f.contains_key("latency"), "Chromium says {got}\n{}", s.log_text());
    // A figure, not a bound: timing assertions have no place on a shared machine.
    eprintln!("WHIP -> rsrs -> WHEP, canvas to played frame: median {} ms of {}", f["latency"], f["all"]);
    // The player hears the publisher's own Opus: no AAC round trip for WebRTC to WebRTC.
    assert!(f["audio"].parse::<u64>().unwrap() > 0, "{got}\n{}", s.log_text());
    assert!(!s.log_text().contains("transcoding AAC to Opus"), "{}", s.log_text());
    // Only a WebRTC player, which takes the Opus itself: the AAC transcoder rests.
    assert!(s.log_text().contains("the Opus to AAC transcoder rests"), "{}", s.log_text());
    // The player's arrival reached the publisher as a keyframe request.
    assert!(s.log_text().contains("a WebRTC player needs a keyframe: asking the publisher"), "{}", s.log_text());
}

#[test]
fn a_whep_viewer_behind_five_percent_loss_recovers_with_nacks() {
    // The browser is told to send to a lossy relay (the candidate), which forwards to the port.
    let (ip, relay) = ("127.0.28.7", "127.0.28.8");
    let conf =
        conf_with(ip, &format!("candidate {relay};")) + &format!("exporter {{ enabled on; listen {ip}:9972; }}\n");
    let s = start_with("rtc-loss", ip, &conf);
    let _link = LossyLink::start(&format!("{relay}:8000"), &format!("{ip}:8000"), 0.05, Duration::from_millis(20));
    let _p = publish_opus(&s.rtmp("live/far"));
    s.wait_api("/api/v1/streams/", Duration::from_secs(15), |v| v["streams"][0]["video"]["width"] == 640);
    let got = chromium_report(&format!("{}?stream=far&frames=150", s.http("whep.html")), "127.0.28.9", "whep-loss");
    let f = fields(&got);
    assert!(f.contains_key("frames"), "Chromium says {got}\n{}", s.log_text());
    assert!(f["frames"].parse::<u64>().unwrap() >= 150, "{got}");
    assert!(f["nacks"].parse::<u64>().unwrap() > 0, "the loss must be repaired by NACKs: {got}");
    // The exporter shows it: a connected play session and the NACKs it sent rsrs; and no AAC to
    // Opus transcoder, as this stream's audio is Opus already.
    let exporter = format!("{ip}:9972");
    assert!(metric_value(&exporter, "rsrs_rtc_sessions_total", &["way=\"play\"", "outcome=\"connected\""]) >= 1.0);
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(200), || {
            metric_value(&exporter, "rsrs_rtc_nacks_total", &["direction=\"received\""]) > 0.0
        }),
        "{}",
        http_request(&exporter, "GET", "/metrics", &[]).2.len()
    );
    assert_eq!(metric_value(&exporter, "rsrs_transcoders", &["direction=\"aac_to_opus\""]), 0.0);
}

#[test]
fn srs_json_signalling_plays_as_srs_players_use_it() {
    // The API and the pages on one port, as SRS's players find /rtc/v1/play/ beside them.
    let ip = "127.0.28.10";
    let text = conf(ip).replace(&format!("listen {ip}:1985;"), &format!("listen {ip}:8080;"));
    let s = start_with("rtc-json", ip, &text);
    let _p = publish_opus(&s.rtmp("live/j"));
    assert!(s.wait_log("publish started", Duration::from_secs(15)), "{}", s.log_text());
    let got = chromium_report(&format!("{}?stream=j&json=1", s.http("whep.html")), "127.0.28.11", "rtc-json");
    let f = fields(&got);
    assert!(f.contains_key("frames"), "Chromium says {got}\n{}", s.log_text());
    assert!(f["location"].starts_with("session=") && f["location"].len() > 10, "{got}");
    // A stream URL that names no stream is an error in SRS's JSON shape.
    let (status, _, body) = http_request(&format!("{ip}:8080"), "POST", "/rtc/v1/play/", &[]);
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("\"code\":400"));
}

/// Frames the default page's own WHEP player decoded, read from a same-origin page around it.
const AROUND_DEFAULT_PAGE: &str = r#"<!doctype html><iframe id=f src="/?play=live/d" width=640 height=480></iframe>
<script>
const p = new URLSearchParams(location.search);
let sent = false;
const report = (s) => { if (!sent) { sent = true; fetch(p.get('report') + '?' + s, {mode: 'no-cors'}); } };
const t0 = performance.now();
setInterval(() => {
  const d = document.getElementById('f').contentDocument;
  const v = d && d.getElementById('v');
  const n = v ? v.getVideoPlaybackQuality().totalVideoFrames : 0;
  if (n >= 30) report('frames=' + n + '&status=' + d.getElementById('st').textContent);
  if (performance.now() - t0 > 40000) report('timeout&frames=' + n + '&status=' + (d ? d.getElementById('st').textContent : ''));
}, 200);
</script>
"#;

#[test]
fn the_default_page_plays_any_stream_over_webrtc() {
    let ip = "127.0.28.12";
    let s = start("rtc-default-page", ip);
    std::fs::write(s.dir.join("objs/nginx/html/around.html"), AROUND_DEFAULT_PAGE).unwrap();
    let _p = publish_opus(&s.rtmp("live/d"));
    s.wait_api("/api/v1/streams/", Duration::from_secs(15), |v| v["streams"][0]["video"]["width"] == 640);
    let got = chromium_report(&format!("{}?x=1", s.http("around.html")), "127.0.28.13", "rtc-default");
    assert!(got.starts_with("/r?frames=") && got.contains("status=playing"), "Chromium says {got}\n{}", s.log_text());
}

#[test]
fn ffmpeg_publishes_over_whip_and_plays_over_rtmp_as_aac_or_opus() {
    // ffmpeg 9's WHIP muxer: its offer names its session (`s=FFmpegPublishSession`) and says
    // `a=setup:passive`, which rsrs takes as browsers' offers.
    let ip = "127.0.28.16";
    let s = start("rtc-ffmpeg-whip", ip);
    let whip = format!("http://{ip}:1985/rtc/v1/whip/?app=live&stream=ff");
    let _p = quiet(
        Command::new(ffmpeg9())
            .args(["-nostdin", "-v", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=30"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440", "-t", "60"])
            .args(["-c:v", "libx264", "-bf", "0", "-g", "30", "-pix_fmt", "yuv420p"])
            .args(["-c:a", "libopus", "-ar", "48000", "-ac", "2", "-f", "whip", &whip]),
    );
    s.wait_api("/api/v1/streams/", Duration::from_secs(20), |v| {
        v["streams"][0]["video"]["width"] == 640 && v["streams"][0]["audio"]["codec"] == "AAC"
    });
    let (st, pk) = probe(&s.rtmp("live/ff"), 2);
    assert!(st.iter().any(|x| x["codec_name"] == "h264" && x["width"] == 640), "{st:?}");
    assert!(st.iter().any(|x| x["codec_name"] == "aac" && x["sample_rate"] == "48000"), "{st:?}");
    assert!(pk.iter().filter(|p| p.codec_type == "audio").count() > 40, "AAC frames keep coming");
    let clients = s.api("/api/v1/clients/");
    assert!(clients["clients"].as_array().unwrap().iter().any(|c| c["type"] == "rtc-publish"), "{clients}");
    // An Enhanced RTMP player that announces Opus gets the publisher's own Opus, on the video's
    // timeline, instead of the AAC.
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rtc-ffmpeg-whip-enhanced.ts");
    let st = Command::new("timeout")
        .args(["30", ffmpeg9(), "-nostdin", "-v", "error", "-y", "-rtmp_enhanced_codecs", "avc1,Opus"])
        .args(["-i", &s.rtmp("live/ff"), "-t", "4", "-c", "copy", "-f", "mpegts"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    let (st, pk) = probe_file(&out);
    assert!(st.iter().any(|x| x["codec_name"] == "opus"), "{st:?}\n{}", s.log_text());
    assert!(!st.iter().any(|x| x["codec_name"] == "aac"), "{st:?}");
    let audio: Vec<f64> = pk.iter().filter(|p| p.codec_type == "audio").map(|p| p.dts).collect();
    let video: Vec<f64> = pk.iter().filter(|p| p.codec_type == "video").map(|p| p.dts).collect();
    // 20 ms packets throughout (none lost to the player's merge window): the video starts with
    // the cached GOP, the audio at the live point, so only the audio's own span is counted.
    let span = audio.last().unwrap_or(&0.0) - audio.first().unwrap_or(&0.0);
    assert!(span >= 1.0, "Opus for {span} s of 4");
    assert!(audio.len() as f64 >= span / 0.02 * 0.75, "{} Opus packets over {span} s", audio.len());
    assert!(audio.windows(2).all(|w| w[1] - w[0] < 0.1), "gaps in the Opus: {audio:?}");
    assert!((audio[0] - video[0]).abs() < 3.0, "audio starts at {}, video at {}", audio[0], video[0]);
    assert!(s.log_text().contains("the WHIP publisher's own Opus instead of AAC"), "{}", s.log_text());
    // Its AAC rested while no one played it (after saying what it is: the API showed AAC), and
    // resumed for the RTMP probe.
    let log = s.log_text();
    let (rests, resumes) = (log.find("transcoder rests"), log.find("transcoder resumes"));
    assert!(rests.is_some() && resumes.is_some() && rests < resumes, "{log}");
}

/// Opens `?n=` WHEP sessions (half at SRS's `/rtc/v1/whip-play/`) to `?stream=` from this one
/// page and reports once every session has video and audio packets flowing (or after 60 s),
/// with the fewest each got.
const MANY_PAGE: &str = r#"<!doctype html>
<script>
const p = new URLSearchParams(location.search);
let sent = false;
const report = (s) => { if (!sent) { sent = true; fetch(p.get('report') + '?' + s, {mode: 'no-cors'}); } };
(async () => {
  try {
    const n = Number(p.get('n')), pcs = [];
    for (let i = 0; i < n; i++) {
      const pc = new RTCPeerConnection();
      pc.addTransceiver('video', {direction: 'recvonly'});
      pc.addTransceiver('audio', {direction: 'recvonly'});
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      // Half by SRS's older name for WHEP.
      const r = await fetch((i % 2 ? '/rtc/v1/whip-play/' : '/rtc/v1/whep/') + '?app=live&stream=' + p.get('stream'),
        {method: 'POST', body: offer.sdp, headers: {'Content-Type': 'application/sdp'}});
      if (r.status != 201) { report('status=' + r.status + '&at=' + i + '&body=' + encodeURIComponent(await r.text())); return; }
      await pc.setRemoteDescription({type: 'answer', sdp: await r.text()});
      pcs.push(pc);
    }
    const t0 = performance.now();
    setInterval(async () => {
      let ok = 0, minV = 1e9, minA = 1e9;
      for (const pc of pcs) {
        let v = 0, a = 0;
        (await pc.getStats()).forEach((s) => {
          if (s.type == 'inbound-rtp' && s.kind == 'video') v = s.packetsReceived || 0;
          if (s.type == 'inbound-rtp' && s.kind == 'audio') a = s.packetsReceived || 0;
        });
        if (v >= 100 && a >= 50) ok++;
        minV = Math.min(minV, v); minA = Math.min(minA, a);
      }
      if (ok == n) report('ok=' + ok + '&min_video=' + minV + '&min_audio=' + minA);
      if (performance.now() - t0 > 60000) report('timeout&ok=' + ok + '&min_video=' + minV + '&min_audio=' + minA);
    }, 500);
  } catch (e) { report('error=' + encodeURIComponent(e)); }
})();
</script>
"#;

#[test]
fn fifty_whep_players_in_one_browser_share_one_transcoder() {
    let ip = "127.0.28.17";
    let s = start_with("rtc-fifty", ip, &(conf(ip) + &format!("exporter {{ enabled on; listen {ip}:9972; }}\n")));
    std::fs::write(s.dir.join("objs/nginx/html/many.html"), MANY_PAGE).unwrap();
    // A light H.264 + AAC stream, so 50 copies stay cheap for a debug build and one browser.
    let _p = quiet(
        Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x180:rate=15"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440", "-t", "120"])
            .args(["-c:v", "libx264", "-bf", "0", "-g", "15", "-b:v", "150k", "-pix_fmt", "yuv420p"])
            .args(["-c:a", "aac", "-b:a", "64k", "-f", "flv", &s.rtmp("live/many")]),
    );
    s.wait_api("/api/v1/streams/", Duration::from_secs(15), |v| v["streams"][0]["video"]["width"] == 320);
    let got = chromium_report(&format!("{}?stream=many&n=50", s.http("many.html")), "127.0.28.18", "rtc-fifty");
    let f = fields(&got);
    assert_eq!(f.get("ok").map(String::as_str), Some("50"), "Chromium says {got}\n{}", s.log_text());
    assert_eq!(s.log_text().matches("WHEP session connected").count(), 50, "{}", s.log_text());
    // 50 players of one AAC stream: one transcoder.
    assert_eq!(s.log_text().matches("transcoding AAC to Opus for WebRTC players").count(), 1, "{}", s.log_text());
    // Counted as they connected (the browser is gone by now, so no live count is asked).
    let exporter = format!("{ip}:9972");
    let connected = metric_value(&exporter, "rsrs_rtc_sessions_total", &["way=\"play\"", "outcome=\"connected\""]);
    assert_eq!(connected, 50.0);
}

#[test]
fn a_whep_viewer_plays_on_when_the_rtmp_publisher_reconnects() {
    let ip = "127.0.28.19";
    let s = start("rtc-reconnect", ip);
    let mut first = publish_opus(&s.rtmp("live/re"));
    s.wait_api("/api/v1/streams/", Duration::from_secs(15), |v| v["streams"][0]["video"]["width"] == 640);
    // 240 frames is 8 s of video: more than the first publisher lives once the viewer is in.
    let viewer = std::thread::spawn({
        let page = format!("{}?stream=re&frames=240&audio=96000", s.http("whep.html"));
        move || chromium_report(&page, "127.0.28.20", "rtc-reconnect")
    });
    // Chromium runs one at a time per test binary: the viewer may wait for other tests' turns.
    assert!(s.wait_log("WHEP session connected", Duration::from_secs(240)), "{}", s.log_text());
    let _ = first.0.kill();
    let _ = first.0.wait();
    assert!(s.wait_log("publish stopped", Duration::from_secs(10)), "{}", s.log_text());
    let _second = publish_opus(&s.rtmp("live/re"));
    let got = viewer.join().unwrap();
    let f = fields(&got);
    assert!(f.contains_key("frames"), "the viewer stalled after the republish: {got}\n{}", s.log_text());
    assert_eq!(s.log_text().matches("WHEP session connected").count(), 1, "one session throughout");
    assert!(!s.log_text().contains("WHEP session ended"), "{}", s.log_text());
}

/// ffmpeg 9 encoding a test picture live with `codec` (and AAC) over Enhanced RTMP.
fn publish_live(url: &str, codec_args: &[&str], fourcc: &str) -> Proc {
    quiet(
        Command::new(ffmpeg9())
            .args(["-nostdin", "-v", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=30"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "120", "-pix_fmt", "yuv420p"])
            .args(codec_args)
            .args(["-g", "30", "-c:a", "aac", "-rtmp_enhanced_codecs", fourcc, "-f", "flv", url]),
    )
}

#[test]
fn vp9_and_av1_from_enhanced_rtmp_play_over_whep() {
    let ip = "127.0.28.21";
    let s = start("rtc-vp9-av1", ip);
    let _vp9 =
        publish_live(&s.rtmp("live/vp9"), &["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8"], "vp09");
    let _av1 = publish_live(&s.rtmp("live/av1"), &["-c:v", "libsvtav1", "-preset", "12"], "av01");
    for (stream, codec, report_ip) in [("vp9", "VP9", "127.0.28.22"), ("av1", "AV1", "127.0.28.23")] {
        s.wait_api("/api/v1/streams/?count=10", Duration::from_secs(30), |v| {
            v["streams"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x["name"] == stream && x["video"]["codec"] == codec))
        });
        let page = format!("{}?stream={stream}&audio=4800", s.http("whep.html"));
        let got = chromium_report(&page, report_ip, &format!("whep-{stream}"));
        let f = fields(&got);
        assert!(f.contains_key("frames"), "{codec}: Chromium says {got}\n{}", s.log_text());
        assert_eq!((f["width"].as_str(), f["height"].as_str()), ("640", "360"), "{codec}: {got}");
    }
    assert!(!s.log_text().contains("did not offer"), "{}", s.log_text());
}

#[test]
fn whep_and_whip_over_ice_tcp_on_one_tcp_port() {
    // `protocol tcp`: answers carry only the passive TCP candidate, so the browser must connect
    // over TCP (RFC 6544, RFC 4571 framing) to the one TCP port.
    let ip = "127.0.28.24";
    let s =
        start_with("rtc-tcp", ip, &conf_with(ip, &format!("protocol tcp; tcp {{ enabled on; listen {ip}:8000; }}")));
    let _p = publish_opus(&s.rtmp("live/t"));
    s.wait_api("/api/v1/streams/", Duration::from_secs(15), |v| v["streams"][0]["video"]["width"] == 640);
    let got = chromium_report(&format!("{}?stream=t&audio=4800", s.http("whep.html")), "127.0.28.25", "rtc-tcp");
    let f = fields(&got);
    assert!(f.contains_key("frames"), "Chromium says {got}\n{}", s.log_text());
    assert_eq!(f["proto"], "tcp", "the pair Chromium chose: {got}");
    assert!(s.log_text().contains("WebRTC (TCP) listening on"), "{}", s.log_text());
    // Chromium's camera over WHIP, over TCP too.
    let got = chromium_report_with(
        &format!("{}?stream=tw&frames=60", s.http("whip.html")),
        "127.0.28.26",
        "rtc-tcp-whip",
        &["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"],
    );
    assert!(got.contains("encoded="), "Chromium says {got}\n{}", s.log_text());
    assert!(s.log_text().contains("way=\"WHIP\"}: WHIP session connected"), "{}", s.log_text());
}
