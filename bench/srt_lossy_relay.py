#!/usr/bin/env python3
"""A lossy, slow UDP link for SRT measurements (bench/srt-loss): datagrams from the caller to
LISTEN go on to TO, and the answers come back, each way losing LOSS of them and delaying the rest
by DELAY_MS. A seeded generator makes runs repeatable. Runs for SECONDS, then exits.
(The e2e test has the same link in Rust; this machine's kernel has no sch_netem for tc.)"""
import argparse, random, signal, socket, sys, threading, time, queue

ap = argparse.ArgumentParser()
ap.add_argument("--listen", required=True)
ap.add_argument("--to", required=True)
ap.add_argument("--via", help="address to send to TO from (default: LISTEN's)")
ap.add_argument("--loss", type=float, default=0.05)
ap.add_argument("--delay-ms", type=float, default=50)
ap.add_argument("--seconds", type=float, default=60)
ap.add_argument("--seed", type=int, default=1)
a = ap.parse_args()

def addr(s):
    h, p = s.rsplit(":", 1)
    return (h, int(p))

front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
front.bind(addr(a.listen))
back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
back.bind((a.via or addr(a.listen)[0], 0))
back.connect(addr(a.to))
for s in (front, back):
    s.settimeout(0.2)
end = time.monotonic() + a.seconds
client = [None]
stats = {"up": 0, "up_lost": 0, "down": 0, "down_lost": 0}

def sender(q, send):
    while time.monotonic() < end:
        try:
            due, data = q.get(timeout=0.2)
        except queue.Empty:
            continue
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)  # the link's delay
        try:
            send(data)
        except OSError:
            pass  # nothing listening yet (ICMP port unreachable): the datagram is lost

upq, downq = queue.Queue(), queue.Queue()
threading.Thread(target=sender, args=(upq, back.send), daemon=True).start()
threading.Thread(target=sender, args=(downq, lambda d: client[0] and front.sendto(d, client[0])), daemon=True).start()

def pump(recv, q, key, rng):
    while time.monotonic() < end:
        try:
            data = recv()
        except socket.timeout:
            continue
        except OSError:
            continue  # an ICMP error from the far side
        stats[key] += 1
        if rng.random() < a.loss:
            stats[key + "_lost"] += 1
            continue
        q.put((time.monotonic() + a.delay_ms / 1000, data))

def recv_front():
    data, src = front.recvfrom(2048)
    client[0] = src
    return data

def report(*_):
    print(f"relay: up {stats['up']} datagrams, {stats['up_lost']} lost; down {stats['down']}, {stats['down_lost']} lost", flush=True)
    sys.exit(0)

signal.signal(signal.SIGTERM, report)
t1 = threading.Thread(target=pump, args=(recv_front, upq, "up", random.Random(a.seed)), daemon=True)
t2 = threading.Thread(target=pump, args=(lambda: back.recv(2048), downq, "down", random.Random(a.seed + 1)), daemon=True)
t1.start(); t2.start()
while t1.is_alive() or t2.is_alive():
    time.sleep(0.2)  # the main thread waits here so SIGTERM reaches report()
report()
