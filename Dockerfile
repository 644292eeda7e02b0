# Multi-stage build: a static dnslb binary on a minimal, non-root image.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/dnslb ./cmd/dnslb

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/dnslb /usr/local/bin/dnslb
# Mount your config and zones here: -v $PWD/conf:/etc/dnslb:ro
VOLUME ["/etc/dnslb"]
EXPOSE 53/udp 53/tcp 8053/tcp
USER nonroot:nonroot
# Binding port 53 as non-root needs: docker run --cap-add NET_BIND_SERVICE
# (or --sysctl net.ipv4.ip_unprivileged_port_start=53).
ENTRYPOINT ["/usr/local/bin/dnslb"]
CMD ["serve", "--config", "/etc/dnslb/dnslb.yaml"]
