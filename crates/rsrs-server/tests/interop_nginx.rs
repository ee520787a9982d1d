//! Interop with nginx's RTMP module (Debian `nginx` + `libnginx-mod-rtmp`) as a real peer:
//! nginx pulls a stream from rsrs (nginx as an RTMP player) and pushes one to rsrs (nginx as an
//! RTMP publisher). nginx runs in the foreground on its own loopback address.

mod common;

use common::*;
use std::time::Duration;

#[test]
fn nginx_rtmp_pulls_from_rsrs() {
    let s = Rsrs::start("nginx-pull", "127.0.3.1", ORIGIN_CONF);
    let _pub = publish(&s.rtmp("live/pulled"), true);
    assert!(s.wait_log("publish started", Duration::from_secs(10)));
    let _nginx = start_nginx(
        "pull",
        &format!(
            "rtmp {{ server {{ listen 127.0.3.2:1935; application live {{ live on; pull rtmp://{}:1935/live; }} }} }}",
            s.ip
        ),
        "127.0.3.2:1935",
    );
    let (streams, packets) = probe("rtmp://127.0.3.2:1935/live/pulled", 3);
    assert_sample_stream(&streams, &packets);
    // What ffprobe got came through nginx's pull, which rsrs served as an RTMP play (nginx
    // stops pulling once its last player leaves, so check the log rather than the live API).
    assert!(s.wait_log("play started stream=/live/pulled", Duration::from_secs(1)), "{}", s.log_text());
}

#[test]
fn nginx_rtmp_pushes_to_rsrs() {
    let s = Rsrs::start("nginx-push", "127.0.3.3", ORIGIN_CONF);
    let _nginx = start_nginx(
        "push",
        &format!(
            "rtmp {{ server {{ listen 127.0.3.4:1935; application live {{ live on; push rtmp://{}:1935/live; }} }} }}",
            s.ip
        ),
        "127.0.3.4:1935",
    );
    let _pub = publish("rtmp://127.0.3.4:1935/live/pushed", true);
    assert!(s.wait_log("publish started", Duration::from_secs(15)), "{}", s.log_text());
    for url in [s.rtmp("live/pushed"), s.http("live/pushed.flv")] {
        let (streams, packets) = probe(&url, 3);
        assert_sample_stream(&streams, &packets);
    }
}
