#!/bin/sh
# Final touches inside the image: an unprivileged user for `--user 1000` / runAsUser, and
# writable objs/ (logs, pid, HLS, DVR) for it. The image keeps a shell and cp for the guide's
# helper containers, with bash as /bin/sh as in SRS's image.
set -e
chmod 0755 /usr/local/srs/objs/srs /usr/local/srs/etc/init.d/srs
groupadd -g 1000 srs 2>/dev/null || true
useradd -u 1000 -g 1000 -d /usr/local/srs -s /bin/sh srs 2>/dev/null || true
mkdir -p /usr/local/srs/objs/nginx/html
# SRS's image is CentOS, where /bin/sh is bash, and the guide's helper containers rely on it
# (`/bin/sh -c 'if [[ ! -f ... ]]'`); dash would skip the copy silently.
ln -sf bash /bin/sh
chown -R 1000:1000 /usr/local/srs/objs
/usr/local/srs/objs/srs -v
/usr/local/srs/objs/srs -t -c /usr/local/srs/conf/srs.conf
/usr/local/srs/objs/srs -t -c /usr/local/srs/conf/docker.conf
