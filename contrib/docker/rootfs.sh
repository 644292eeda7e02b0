#!/usr/bin/env bash
# Build the dnslb image's root filesystem into DEST. The Dockerfile's final
# stage is this tree and nothing else (FROM scratch, COPY --from), so what
# integration/docker_rootfs_test.go runs under unshare/chroot is what the
# image holds:
#
#   /usr/local/bin/dnslb   static (CGO_ENABLED=0), root-owned, 0755, with the
#                          file capability cap_net_bind_service=ep: the
#                          non-root user binds :53 with --network host
#   /etc/passwd, /etc/group  root, nobody and nonroot (65532), as distroless
#   /etc/nsswitch.conf     "hosts: files dns" for Go's resolver
#   /etc/ssl/certs/ca-certificates.crt  for https health checks (copied
#                          from this machine when it has one)
#   /etc/dnslb             the config mount point (mount it read-only)
#   /var/lib/dnslb         the state volume: 65532:65532, 0700 (a named
#                          volume starts as a copy of it)
#   /home/nonroot, /tmp
#
# Usage: contrib/docker/rootfs.sh DEST   (DEST must not exist or be empty)
# VERSION, COMMIT and DATE, when set, are stamped as contrib/build-deb.sh
# does. Needs Go, setcap/getcap (libcap2-bin) and root or CAP_SETFCAP.
set -euo pipefail
cd "$(dirname "$0")/../.."

dest=${1:?usage: contrib/docker/rootfs.sh DEST}
if [ -e "$dest" ] && [ -n "$(ls -A "$dest")" ]; then
	echo "rootfs.sh: $dest is not empty" >&2
	exit 1
fi
uid=65532
gid=65532

ldflags="-s -w"
if [ -n "${VERSION:-}" ]; then ldflags="$ldflags -X main.version=$VERSION"; fi
if [ -n "${COMMIT:-}" ]; then ldflags="$ldflags -X main.commit=$COMMIT"; fi
if [ -n "${DATE:-}" ]; then ldflags="$ldflags -X main.date=$DATE"; fi

install -d -m 0755 "$dest" "$dest/usr/local/bin" "$dest/etc/dnslb" "$dest/etc/ssl/certs" "$dest/var/lib"
install -d -m 1777 "$dest/tmp"
install -d -m 0700 -o "$uid" -g "$gid" "$dest/var/lib/dnslb" "$dest/home/nonroot"

CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$dest/usr/local/bin/dnslb" ./cmd/dnslb
chmod 0755 "$dest/usr/local/bin/dnslb"
# After the last chown/write of the binary: the kernel drops
# security.capability when a file's owner changes or it is written.
setcap cap_net_bind_service=+ep "$dest/usr/local/bin/dnslb"
caps=$(getcap "$dest/usr/local/bin/dnslb")
if [[ $caps != *cap_net_bind_service=ep* ]]; then
	echo "rootfs.sh: setcap did not stick (filesystem without xattrs?): $caps" >&2
	exit 1
fi

cat >"$dest/etc/passwd" <<PASSWD
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:$uid:$gid:nonroot:/home/nonroot:/sbin/nologin
PASSWD
cat >"$dest/etc/group" <<GROUP
root:x:0:
nobody:x:65534:
nonroot:x:$gid:
GROUP
echo 'hosts: files dns' >"$dest/etc/nsswitch.conf"
chmod 0644 "$dest/etc/passwd" "$dest/etc/group" "$dest/etc/nsswitch.conf"
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
	install -m 0644 /etc/ssl/certs/ca-certificates.crt "$dest/etc/ssl/certs/"
fi
