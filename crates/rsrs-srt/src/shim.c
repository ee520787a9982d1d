/* The small C surface rsrs uses of libsrt: every struct and constant of srt.h is read here,
 * against the installed headers, and only plain integers and our own structs cross to Rust. */
#include <srt/srt.h>
#include <string.h>
#include <stdint.h>
#include <stdio.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <syslog.h>

typedef struct {
    int64_t latency_ms, rcv_latency_ms, peer_latency_ms; /* -1: libsrt's default */
    int64_t maxbw, mss, conn_timeout_ms, peer_idle_timeout_ms, sndbuf, rcvbuf, payload_size;
    int tsbpd, tlpktdrop; /* -1: default */
    const char *passphrase; /* NULL or empty: no encryption */
    int pbkeylen;
} rsrs_srt_opts_t;

typedef struct {
    double rtt_ms, bandwidth_mbps, recv_rate_mbps, send_rate_mbps;
    int64_t pkt_recv, pkt_sent, pkt_rcv_loss, pkt_snd_loss, pkt_retrans, pkt_rcv_retrans;
    int64_t pkt_rcv_drop, pkt_snd_drop, pkt_rcv_undecrypt, byte_recv, byte_sent;
    int64_t rcv_buf_bytes, rcv_buf_ms, snd_buf_bytes, snd_buf_ms, rcv_tsbpd_delay_ms;
} rsrs_srt_stats_t;

/* Defined in Rust: libsrt's log lines go to tracing. */
extern void rsrs_srt_log(int level, const char *area, const char *message);

static void log_handler(void *opaque, int level, const char *file, int line, const char *area,
                        const char *message) {
    (void)opaque; (void)file; (void)line;
    rsrs_srt_log(level, area ? area : "", message ? message : "");
}

int rsrs_srt_init(void) {
    if (srt_startup() < 0) return -1;
    srt_setloghandler(NULL, log_handler);
    srt_setloglevel(LOG_WARNING);
    return 0;
}

const char *rsrs_srt_last_error(void) { return srt_getlasterror_str(); }

static int set_i(SRTSOCKET s, SRT_SOCKOPT o, int64_t v) {
    if (v < 0) return 0;
    int i = (int)v;
    return srt_setsockflag(s, o, &i, sizeof i);
}

static int set_i64(SRTSOCKET s, SRT_SOCKOPT o, int64_t v) {
    if (v < 0) return 0;
    return srt_setsockflag(s, o, &v, sizeof v);
}

static int set_b(SRTSOCKET s, SRT_SOCKOPT o, int v) {
    if (v < 0) return 0;
    int b = v ? 1 : 0; /* libsrt reads bool options as int-sized on Linux */
    return srt_setsockflag(s, o, &b, sizeof b);
}

/* A listening socket on ip:port with SRS's options, non-blocking; -1 with libsrt's error. */
int rsrs_srt_listen(const char *ip, int port, const rsrs_srt_opts_t *o, int backlog, char *err, int errlen) {
    SRTSOCKET s = srt_create_socket();
    if (s == SRT_INVALID_SOCK) { snprintf(err, errlen, "create: %s", srt_getlasterror_str()); return -1; }
    int no = 0;
    int live = SRTT_LIVE;
    const char *step = "options";
    if (srt_setsockflag(s, SRTO_TRANSTYPE, &live, sizeof live) < 0
        || srt_setsockflag(s, SRTO_SNDSYN, &no, sizeof no) < 0
        || srt_setsockflag(s, SRTO_RCVSYN, &no, sizeof no) < 0
        || set_i64(s, SRTO_MAXBW, o->maxbw) < 0
        || set_i(s, SRTO_MSS, o->mss) < 0
        || set_i(s, SRTO_PAYLOADSIZE, o->payload_size) < 0
        || set_i(s, SRTO_CONNTIMEO, o->conn_timeout_ms) < 0
        || set_i(s, SRTO_PEERIDLETIMEO, o->peer_idle_timeout_ms) < 0
        || set_b(s, SRTO_TSBPDMODE, o->tsbpd) < 0
        || set_i(s, SRTO_SNDBUF, o->sndbuf) < 0
        || set_i(s, SRTO_RCVBUF, o->rcvbuf) < 0
        || set_b(s, SRTO_TLPKTDROP, o->tlpktdrop) < 0
        || set_i(s, SRTO_LATENCY, o->latency_ms) < 0
        || set_i(s, SRTO_RCVLATENCY, o->rcv_latency_ms) < 0
        || set_i(s, SRTO_PEERLATENCY, o->peer_latency_ms) < 0) {
        goto fail;
    }
    step = "passphrase";
    if (o->passphrase && o->passphrase[0]) {
        if (srt_setsockflag(s, SRTO_PASSPHRASE, o->passphrase, (int)strlen(o->passphrase)) < 0) goto fail;
        if (o->pbkeylen > 0 && set_i(s, SRTO_PBKEYLEN, o->pbkeylen) < 0) goto fail;
    }
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    step = "address";
    if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1) { snprintf(err, errlen, "bad IPv4 address %s", ip); srt_close(s); return -1; }
    step = "bind";
    if (srt_bind(s, (struct sockaddr *)&sa, sizeof sa) < 0) goto fail;
    step = "listen";
    if (srt_listen(s, backlog) < 0) goto fail;
    return (int)s;
fail:
    snprintf(err, errlen, "%s: %s", step, srt_getlasterror_str());
    srt_close(s);
    return -1;
}

/* An accepted socket (non-blocking), -2 if none is pending, -1 on error. */
int rsrs_srt_accept(int lsn, char *ip, int iplen, int *port) {
    struct sockaddr_storage ss;
    int len = sizeof ss;
    SRTSOCKET s = srt_accept((SRTSOCKET)lsn, (struct sockaddr *)&ss, &len);
    if (s == SRT_INVALID_SOCK) {
        return srt_getlasterror(NULL) == SRT_EASYNCRCV ? -2 : -1;
    }
    int no = 0;
    srt_setsockflag(s, SRTO_SNDSYN, &no, sizeof no);
    srt_setsockflag(s, SRTO_RCVSYN, &no, sizeof no);
    ip[0] = 0;
    *port = 0;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, iplen);
        *port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, iplen);
        *port = ntohs(a->sin6_port);
    }
    return (int)s;
}

int rsrs_srt_streamid(int s, char *buf, int len) {
    int n = len;
    if (srt_getsockflag((SRTSOCKET)s, SRTO_STREAMID, buf, &n) < 0) return -1;
    return n;
}

/* Bytes of one message, -2 if none is ready, -1 if the connection is broken or closed. */
int rsrs_srt_recv(int s, char *buf, int len) {
    int n = srt_recvmsg((SRTSOCKET)s, buf, len);
    if (n >= 0) return n;
    return srt_getlasterror(NULL) == SRT_EASYNCRCV ? -2 : -1;
}

/* Bytes sent as one message, -2 if the send buffer is full, -1 if broken. */
int rsrs_srt_send(int s, const char *buf, int len) {
    int n = srt_sendmsg((SRTSOCKET)s, buf, len, -1, 1);
    if (n >= 0) return n;
    return srt_getlasterror(NULL) == SRT_EASYNCSND ? -2 : -1;
}

int rsrs_srt_close(int s) { return srt_close((SRTSOCKET)s); }

/* Whether the socket is still connected (or connecting). */
int rsrs_srt_alive(int s) {
    SRT_SOCKSTATUS st = srt_getsockstate((SRTSOCKET)s);
    return st == SRTS_CONNECTED || st == SRTS_CONNECTING || st == SRTS_LISTENING;
}

int rsrs_srt_stats(int s, rsrs_srt_stats_t *out) {
    SRT_TRACEBSTATS t;
    memset(&t, 0, sizeof t);
    if (srt_bistats((SRTSOCKET)s, &t, 0, 1) < 0) return -1;
    out->rtt_ms = t.msRTT;
    out->bandwidth_mbps = t.mbpsBandwidth;
    out->recv_rate_mbps = t.mbpsRecvRate;
    out->send_rate_mbps = t.mbpsSendRate;
    out->pkt_recv = t.pktRecvTotal;
    out->pkt_sent = t.pktSentTotal;
    out->pkt_rcv_loss = t.pktRcvLossTotal;
    out->pkt_snd_loss = t.pktSndLossTotal;
    out->pkt_retrans = t.pktRetransTotal;
    out->pkt_rcv_retrans = t.pktRcvRetrans; /* never cleared: since the connection began */
    out->pkt_rcv_drop = t.pktRcvDropTotal;
    out->pkt_snd_drop = t.pktSndDropTotal;
    out->pkt_rcv_undecrypt = t.pktRcvUndecryptTotal;
    out->byte_recv = (int64_t)t.byteRecvTotal;
    out->byte_sent = (int64_t)t.byteSentTotal;
    out->rcv_buf_bytes = t.byteRcvBuf;
    out->rcv_buf_ms = t.msRcvBuf;
    out->snd_buf_bytes = t.byteSndBuf;
    out->snd_buf_ms = t.msSndBuf;
    out->rcv_tsbpd_delay_ms = t.msRcvTsbPdDelay;
    return 0;
}

enum { RSRS_IN = 1, RSRS_OUT = 2, RSRS_ERR = 4 };

static int to_srt(int ev) {
    return ((ev & RSRS_IN) ? SRT_EPOLL_IN : 0) | ((ev & RSRS_OUT) ? SRT_EPOLL_OUT : 0) | ((ev & RSRS_ERR) ? SRT_EPOLL_ERR : 0);
}

int rsrs_srt_epoll_create(void) {
    int eid = srt_epoll_create();
    if (eid >= 0) srt_epoll_set(eid, SRT_EPOLL_ENABLE_EMPTY);
    return eid;
}

int rsrs_srt_epoll_add(int eid, int s, int ev) {
    int e = to_srt(ev);
    return srt_epoll_add_usock(eid, (SRTSOCKET)s, &e);
}

int rsrs_srt_epoll_update(int eid, int s, int ev) {
    int e = to_srt(ev);
    return srt_epoll_update_usock(eid, (SRTSOCKET)s, &e);
}

int rsrs_srt_epoll_remove(int eid, int s) { return srt_epoll_remove_usock(eid, (SRTSOCKET)s); }

/* Up to max ready sockets and their events (RSRS_*), 0 after ms without any, -1 on error. */
int rsrs_srt_epoll_wait(int eid, int *socks, int *events, int max, int64_t ms) {
    SRT_EPOLL_EVENT ev[64];
    if (max > 64) max = 64;
    int n = srt_epoll_uwait(eid, ev, max, ms);
    if (n < 0) return srt_getlasterror(NULL) == SRT_ETIMEOUT ? 0 : -1;
    if (n > max) n = max;
    for (int i = 0; i < n; i++) {
        socks[i] = (int)ev[i].fd;
        int e = ev[i].events;
        events[i] = ((e & SRT_EPOLL_IN) ? RSRS_IN : 0) | ((e & SRT_EPOLL_OUT) ? RSRS_OUT : 0) | ((e & SRT_EPOLL_ERR) ? RSRS_ERR : 0);
    }
    return n;
}
