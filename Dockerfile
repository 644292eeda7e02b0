# syntax=docker/dockerfile:1
# dnslb as a non-root user (65532) that can bind :53 with --network host.
# Build with BuildKit (the default builder since Docker 23): the image's
# root filesystem is contrib/docker/rootfs.sh's tree, and the binary's
# file capability (the security.capability xattr, cap_net_bind_service=ep)
# reaches the image only because BuildKit's COPY --from keeps xattrs. The
# legacy builder (DOCKER_BUILDKIT=0) and some other builders drop it; so
# does any later chown of the binary (COPY --chown, RUN chown). The README's
# Docker section says what was verified without a Docker engine.
FROM golang:1.26-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libcap2-bin \
	&& rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN VERSION=${VERSION} bash contrib/docker/rootfs.sh /rootfs

FROM scratch
COPY --from=build /rootfs/ /
# The config (mount it read-only: -v $PWD/conf:/etc/dnslb:ro) cannot hold
# the state file (drains, last health, managed serials): it goes to the
# volume, as the systemd unit puts it in its StateDirectory.
ENV DNSLB_STATE_FILE=/var/lib/dnslb/dnslb.state.json
VOLUME ["/var/lib/dnslb"]
EXPOSE 53/udp 53/tcp 8053/tcp
# Numeric, so that the runtime needs no /etc/passwd lookup and Kubernetes'
# runAsNonRoot can check it.
USER 65532:65532
# Port 53: in bridge mode Docker (20.10+) sets
# net.ipv4.ip_unprivileged_port_start=0 in the container's network
# namespace, so any user may bind it and --cap-add NET_BIND_SERVICE changes
# nothing. With --network host the host's limit (1024) applies, and the
# binary's file capability is what lets 65532 bind :53. It is lost under
# --security-opt no-new-privileges (Kubernetes: allowPrivilegeEscalation:
# false), and --cap-drop ALL needs --cap-add NET_BIND_SERVICE beside it
# (the bounding set must keep it).
ENTRYPOINT ["/usr/local/bin/dnslb"]
CMD ["serve", "--config", "/etc/dnslb/dnslb.yaml"]
