#!/bin/sh
# The demo publisher (scenario S6): pushes a stream to $TARGET for ever, reconnecting after any
# failure (an origin restarting, a rolling update). With $SOURCE (a file or URL) it loops that
# file without re-encoding; without it, it encodes a test pattern with a tone ($SIZE, $FPS).
TARGET=${TARGET:-rtmp://srs-origin-service/live/livestream}
SIZE=${SIZE:-1280x720}
FPS=${FPS:-30}
while true; do
    if [ -n "${SOURCE:-}" ]; then
        ffmpeg -hide_banner -loglevel warning -re -stream_loop -1 -i "$SOURCE" -c copy -f flv "$TARGET"
    else
        ffmpeg -hide_banner -loglevel warning -re \
            -f lavfi -i "testsrc2=size=$SIZE:rate=$FPS" -f lavfi -i sine=frequency=440 \
            -c:v libx264 -preset veryfast -b:v 1500k -g "$((FPS * 2))" -pix_fmt yuv420p \
            -c:a aac -b:a 96k -f flv "$TARGET"
    fi
    echo "publish to $TARGET ended ($?); again in 1 s" >&2
    sleep 1
done
