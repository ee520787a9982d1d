#!/usr/bin/env python3
"""One WebRTC server (rsrs or SRS 7) through the same scenarios with the same pages (those of
crates/rsrs-server/tests/rtc.rs) and peers (ffmpeg 9, headless Chromium): RTMP with AAC played over
WHEP, a WHEP viewer across an RTMP republish, a WHIP canvas played back over WHEP on one clock
(latency), and a WHIP camera played over RTMP. Run by bench/rtc-compare inside a network namespace
(SRS binds every address); prints one JSON object.
Usage: rtc_compare.py NAME SERVER_BINARY   (env CANDIDATE: the namespace's own address; ONLY_LOOP=1)"""
import http.server, os, re, shutil, socketserver, subprocess, sys, threading, time, json
name, cmd = sys.argv[1], sys.argv[2:]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.environ.get("OUT", os.path.join(ROOT, "target/bench/rtc-compare"))
FF9 = subprocess.check_output([sys.executable, "-c", "import imageio_ffmpeg;print(imageio_ffmpeg.get_ffmpeg_exe())"], text=True).strip()
src = open(os.path.join(ROOT, "crates/rsrs-server/tests/rtc.rs")).read()
def page(const):
    m = re.search(r"const %s: &str = r#\"(.*?)\"#;" % const, src, re.S)
    return m.group(1)
work = os.path.join(OUT, name)
shutil.rmtree(work, ignore_errors=True); os.makedirs(work + "/html")
open(work + "/html/whep.html", "w").write(page("WHEP_PAGE"))
open(work + "/html/loop.html", "w").write(page("LOOP_PAGE"))
open(work + "/html/whip.html", "w").write(page("WHIP_PAGE"))
conf = f"""listen 1935;
daemon off;
srs_log_tank console;
pid {work}/srs.pid;
http_api {{ enabled on; listen 8080; }}
http_server {{ enabled on; listen 8080; dir {work}/html; }}
rtc_server {{ enabled on; listen 8000; candidate {os.environ["CANDIDATE"]}; }}
vhost __defaultVhost__ {{
    rtc {{ enabled on; rtmp_to_rtc on; rtc_to_rtmp on; }}
    play {{ gop_cache on; }}
}}
"""
open(work + "/srs.conf", "w").write(conf)
log = open(work + "/server.log", "w")
server = subprocess.Popen(cmd + ["-c", work + "/srs.conf"], stdout=log, stderr=subprocess.STDOUT, cwd=os.path.dirname(cmd[0]) + "/..")
time.sleep(2)
reports = []
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        reports.append(self.path); self.send_response(204); self.end_headers()
    def log_message(self, *a): pass
srv = socketserver.TCPServer(("127.0.0.1", 0), H); port = srv.server_address[1]
threading.Thread(target=srv.serve_forever, daemon=True).start()
def chromium(url, fake=False, timeout=60):
    n = len(reports)
    prof = f"{work}/prof-{time.time()}"
    args = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required", f"--user-data-dir={prof}"]
    if fake: args += ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
    p = subprocess.Popen(args + [url + f"&report=http://127.0.0.1:{port}/r"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while len(reports) == n and time.time() - t0 < timeout: time.sleep(0.1)
    p.kill(); p.wait()
    return reports[n] if len(reports) > n else "no report"
def publish(stream, extra=[]):
    return subprocess.Popen([FF9, "-nostdin", "-v", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", "60",
        "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-bf", "0", "-g", "30", "-pix_fmt", "yuv420p", "-c:a", "aac"] + extra + ["-f", "flv", f"rtmp://127.0.0.1/live/{stream}"])
out = {}
if os.environ.get("ONLY_LOOP"):
    # Repeated: each run is 5 flips of a 30 fps canvas, so single runs are coarse.
    out["loops"] = [chromium("http://127.0.0.1:8080/loop.html?stream=loop%d" % i, fake=True) for i in range(4)]
    server.kill(); print(json.dumps({name: out})); sys.exit(0)
# 1. RTMP (H.264 + AAC) -> WHEP: video frames and audio samples
p = publish("a"); time.sleep(3)
out["rtmp_aac_to_whep"] = chromium("http://127.0.0.1:8080/whep.html?stream=a&audio=9600&frames=60")
# 2. publisher reconnect with the viewer open
def reconnect():
    time.sleep(4); p.kill(); p.wait(); time.sleep(1); globals()["p2"] = publish("a")
threading.Thread(target=reconnect).start()
out["whep_across_republish"] = chromium("http://127.0.0.1:8080/whep.html?stream=a&frames=400&audio=9600", timeout=45)
try: p2.kill()
except Exception: pass
# 3. WHIP (canvas + mic) -> WHEP latency and audio
out["whip_to_whep_loop"] = chromium("http://127.0.0.1:8080/loop.html?stream=loop", fake=True)
# 4. WHIP (fake camera + mic) -> RTMP: what a classic player gets
res = {}
def probe():
    time.sleep(8)
    r = subprocess.run(["ffprobe", "-v", "error", "-rw_timeout", "8000000", "-show_entries", "stream=codec_name,sample_rate", "-of", "compact", "rtmp://127.0.0.1/live/web"], capture_output=True, text=True, timeout=30)
    res["probe"] = (r.stdout + r.stderr).strip().replace("\n", " ; ")
t = threading.Thread(target=probe); t.start()
chromium("http://127.0.0.1:8080/whip.html?stream=web&frames=450", fake=True)
t.join()
out["whip_to_rtmp_probe"] = res.get("probe")
server.kill(); server.wait()
print(json.dumps({name: out}, indent=1))
