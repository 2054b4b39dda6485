# syntax=docker/dockerfile:1
#
# One image for the whole platform: edge-gateway, router-service,
# history-service, auth-service and chatctl, built from this workspace.
# Every process of a deployment must run the same build (they agree on the
# bus schema, the partition count and the database migrations), so one image
# tag pins them together; the service is chosen by the command
# (docker-compose.yml `command:`, Kubernetes `command:`), the default being
# the gateway.
#
#   docker build -t chat-platform .
#   docker run --rm chat-platform chatctl --help
#
# Needs BuildKit (the default builder of Docker 23+ and of `docker compose`)
# for the cache mounts below.

# The toolchain the workspace is developed with; Cargo.toml's rust-version
# is the oldest that builds it (tests/test_deploy.py keeps this at least
# that). Builder and runtime are both Debian bookworm, so the binaries link
# against the glibc they run with.
ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS builder
WORKDIR /src
# rust:slim has gcc and libc6-dev, which is all `ring` needs; nothing else
# in the dependency tree builds C.
COPY . .
# Dependencies are cached across builds by BuildKit cache mounts (registry,
# git checkouts and target/) instead of a dependency-only layer: a source
# change then recompiles only the workspace crates. target/ being a cache
# mount, the binaries are copied out of it in the same step.
# The release profile's `debug = 1` (line tables for local profiling) is
# turned off here: smaller binaries and a faster build; panics still name
# the function.
ENV CARGO_PROFILE_RELEASE_DEBUG=0
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
        --bin edge-gateway \
        --bin router-service \
        --bin history-service \
        --bin auth-service \
        --bin chatctl \
    && mkdir -p /out \
    && cp target/release/edge-gateway \
          target/release/router-service \
          target/release/history-service \
          target/release/auth-service \
          target/release/chatctl \
          /out/

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# ca-certificates: for amqps/TLS endpoints of managed services; curl: the
# healthchecks of docker-compose.yml call /readyz with it (and operators use
# it for /metrics from inside the container). Nothing else.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
# A fixed numeric uid/gid, so Kubernetes' runAsNonRoot can check it and the
# TLS volume written by the init step (key mode 600) is readable by the
# gateway running as the same user.
RUN groupadd --system --gid 10001 chat \
    && useradd --system --uid 10001 --gid chat --home-dir /var/lib/chat \
        --shell /usr/sbin/nologin chat \
    && install -d -o chat -g chat -m 0750 /var/lib/chat /var/lib/chat/tls
COPY --from=builder /out/ /usr/local/bin/
USER 10001:10001
WORKDIR /var/lib/chat
# NO_COLOR: container logs are read by log collectors, not terminals.
ENV NO_COLOR=1
# The default ports (README); admin ports must be set to listen on 0.0.0.0
# (CHAT__ADMIN__LISTEN) to be probed from outside the container.
EXPOSE 6667 6697 8080 9100 9101 9102 9103
CMD ["edge-gateway"]
