//! The C shim's functions (src/shim.c). Only integers, byte buffers and the two plain structs
//! below cross; shim.c declares the same structs (`rsrs_srt_opts_t`, `rsrs_srt_stats_t`), field
//! for field. Built without libsrt, the same functions exist and fail (`no_libsrt`).

use std::os::raw::{c_char, c_int};

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Opts {
    pub latency_ms: i64,
    pub rcv_latency_ms: i64,
    pub peer_latency_ms: i64,
    pub maxbw: i64,
    pub mss: i64,
    pub conn_timeout_ms: i64,
    pub peer_idle_timeout_ms: i64,
    pub sndbuf: i64,
    pub rcvbuf: i64,
    pub payload_size: i64,
    pub tsbpd: c_int,
    pub tlpktdrop: c_int,
    pub passphrase: *const c_char,
    pub pbkeylen: c_int,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    pub rtt_ms: f64,
    pub bandwidth_mbps: f64,
    pub recv_rate_mbps: f64,
    pub send_rate_mbps: f64,
    pub pkt_recv: i64,
    pub pkt_sent: i64,
    pub pkt_rcv_loss: i64,
    pub pkt_snd_loss: i64,
    pub pkt_retrans: i64,
    pub pkt_rcv_retrans: i64,
    pub pkt_rcv_drop: i64,
    pub pkt_snd_drop: i64,
    pub pkt_rcv_undecrypt: i64,
    pub byte_recv: i64,
    pub byte_sent: i64,
    pub rcv_buf_bytes: i64,
    pub rcv_buf_ms: i64,
    pub snd_buf_bytes: i64,
    pub snd_buf_ms: i64,
    pub rcv_tsbpd_delay_ms: i64,
}

pub const EV_IN: c_int = 1;
pub const EV_OUT: c_int = 2;
pub const EV_ERR: c_int = 4;
/// Returned by accept, recv and send when they would block.
pub const AGAIN: c_int = -2;

#[cfg(not(rsrs_no_libsrt))]
extern "C" {
    pub fn rsrs_srt_init() -> c_int;
    pub fn rsrs_srt_last_error() -> *const c_char;
    pub fn rsrs_srt_listen(
        ip: *const c_char,
        port: c_int,
        o: *const Opts,
        backlog: c_int,
        err: *mut c_char,
        errlen: c_int,
    ) -> c_int;
    pub fn rsrs_srt_accept(lsn: c_int, ip: *mut c_char, iplen: c_int, port: *mut c_int) -> c_int;
    pub fn rsrs_srt_streamid(s: c_int, buf: *mut c_char, len: c_int) -> c_int;
    pub fn rsrs_srt_recv(s: c_int, buf: *mut c_char, len: c_int) -> c_int;
    pub fn rsrs_srt_send(s: c_int, buf: *const c_char, len: c_int) -> c_int;
    pub fn rsrs_srt_close(s: c_int) -> c_int;
    pub fn rsrs_srt_alive(s: c_int) -> c_int;
    pub fn rsrs_srt_stats(s: c_int, out: *mut Stats) -> c_int;
    pub fn rsrs_srt_epoll_create() -> c_int;
    pub fn rsrs_srt_epoll_add(eid: c_int, s: c_int, ev: c_int) -> c_int;
    pub fn rsrs_srt_epoll_update(eid: c_int, s: c_int, ev: c_int) -> c_int;
    pub fn rsrs_srt_epoll_remove(eid: c_int, s: c_int) -> c_int;
    pub fn rsrs_srt_epoll_wait(eid: c_int, socks: *mut c_int, events: *mut c_int, max: c_int, ms: i64) -> c_int;
}

#[cfg(rsrs_no_libsrt)]
pub use no_libsrt::*;

/// Built without libsrt: every call fails; the error says how to get libsrt.
#[cfg(rsrs_no_libsrt)]
#[allow(clippy::missing_safety_doc)]
mod no_libsrt {
    use super::{Opts, Stats};
    use std::os::raw::{c_char, c_int};

    pub unsafe fn rsrs_srt_init() -> c_int {
        -1
    }

    pub unsafe fn rsrs_srt_listen(
        _ip: *const c_char,
        _port: c_int,
        _o: *const Opts,
        _backlog: c_int,
        _err: *mut c_char,
        _errlen: c_int,
    ) -> c_int {
        -1
    }

    pub unsafe fn rsrs_srt_accept(_lsn: c_int, _ip: *mut c_char, _iplen: c_int, _port: *mut c_int) -> c_int {
        -1
    }

    pub unsafe fn rsrs_srt_streamid(_s: c_int, _buf: *mut c_char, _len: c_int) -> c_int {
        -1
    }

    pub unsafe fn rsrs_srt_recv(_s: c_int, _buf: *mut c_char, _len: c_int) -> c_int {
        -1
    }

    pub unsafe fn rsrs_srt_send(_s: c_int, _buf: *const c_char, _len: c_int) -> c_int {
        -1
    }

    pub unsafe fn rsrs_srt_close(_s: c_int) -> c_int {
        -1
    }

    pub unsafe fn rsrs_srt_alive(_s: c_int) -> c_int {
        -1
    }

    pub unsafe fn rsrs_srt_stats(_s: c_int, _out: *mut Stats) -> c_int {
        -1
    }

    pub unsafe fn rsrs_srt_epoll_create() -> c_int {
        -1
    }

    pub unsafe fn rsrs_srt_epoll_add(_eid: c_int, _s: c_int, _ev: c_int) -> c_int {
        -1
    }

    pub unsafe fn rsrs_srt_epoll_update(_eid: c_int, _s: c_int, _ev: c_int) -> c_int {
        -1
    }

    pub unsafe fn rsrs_srt_epoll_remove(_eid: c_int, _s: c_int) -> c_int {
        -1
    }

    pub unsafe fn rsrs_srt_epoll_wait(
        _eid: c_int,
        _socks: *mut c_int,
        _events: *mut c_int,
        _max: c_int,
        _ms: i64,
    ) -> c_int {
        -1
    }

    pub unsafe fn rsrs_srt_last_error() -> *const c_char {
        c"rsrs was built without libsrt: apt-get install libsrt-openssl-dev pkg-config, then rebuild".as_ptr()
    }
}

/// libsrt's last error on this thread, as text.
pub fn last_error() -> String {
    // SAFETY: libsrt returns a NUL-terminated string owned by its thread-local error state.
    unsafe {
        let p = rsrs_srt_last_error();
        if p.is_null() {
            return "unknown SRT error".into();
        }
        std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

/// libsrt's log lines, into tracing (its errors as warnings: they concern one peer).
#[no_mangle]
extern "C" fn rsrs_srt_log(level: c_int, area: *const c_char, message: *const c_char) {
    // SAFETY: the shim passes NUL-terminated strings (never NULL) valid for this call.
    let (area, message) = unsafe {
        (std::ffi::CStr::from_ptr(area).to_string_lossy(), std::ffi::CStr::from_ptr(message).to_string_lossy())
    };
    let message = message.trim_end();
    if level <= 3 {
        tracing::warn!(target: "libsrt", area = %area, "{message}");
    } else {
        tracing::debug!(target: "libsrt", area = %area, "{message}");
    }
}
