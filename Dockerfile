# syntax=docker/dockerfile:1
#
# kvresp container image: a static binary (no cgo) on distroless, running as non-root.
#
#   docker build -t kvresp .
#   docker run -p 6379:6379 -p 9379:9379 -v kvresp-data:/data kvresp --requirepass "$PASSWORD" --maxmemory 8gb
#
# Arguments after the image name are appended to the ENTRYPOINT as `--directive value` pairs
# (redis-server's conventions). A config file can be mounted and passed with --entrypoint:
#   docker run --entrypoint /usr/local/bin/kvresp ... kvresp /etc/kvresp.conf --bind 0.0.0.0 --dir /data
#
# The NVMe tier uses io_uring, which Docker's default seccomp profile blocks, and pins buffers
# against RLIMIT_MEMLOCK: for it, run with a seccomp profile that allows io_uring_setup/enter/register,
# `--ulimit memlock=-1`, and the device passed with --device.

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Never download another toolchain: go.mod's go line must be met by this image's Go.
ENV GOTOOLCHAIN=local CGO_ENABLED=0
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags "-s -w" -o /out/kvresp ./cmd/kvresp
# An empty data directory; copied below owned by distroless's nonroot user (65532) to seed /data.
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/kvresp /usr/local/bin/kvresp
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
WORKDIR /data
VOLUME ["/data"]
# 6379: RESP (redis://, resp://). 9379: Prometheus metrics (/metrics).
EXPOSE 6379 9379
# --bind 0.0.0.0: inside a container the loopback interface is the container's own, so a server
# bound to 127.0.0.1 (the default) would be unreachable through published ports; the container
# network and `-p` decide who can reach it instead. That makes the server reachable by anything on
# that network: set a password with --requirepass (and prefer --tls-port with a certificate when
# the network is shared), and publish the ports only where clients need them.
ENTRYPOINT ["/usr/local/bin/kvresp", "--bind", "0.0.0.0", "--dir", "/data", "--metrics-addr", "0.0.0.0:9379"]
