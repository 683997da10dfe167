# hubtriage container image.
#
#   docker build -t hubtriage:0.1.0 .
#
# Reproducible: the toolchain and runtime images are pinned by tag (pin them by
# digest too, `image:tag@sha256:...`, if your registry policy asks for it), and
# `--locked` builds exactly the dependency versions in Cargo.lock.
# Needs BuildKit (the default builder since Docker 23) for the cache mounts.

# ---- build ----------------------------------------------------------------------------
FROM rust:1.95.0-slim-bookworm AS builder

WORKDIR /build

# Only what the build needs: the manifest, the lock file and the sources. The
# `include_str!` of tests/fixtures/ and config/ sit in #[cfg(test)] code only.
COPY Cargo.toml Cargo.lock ./
COPY src ./src

# The registry and target caches speed up rebuilds; they are not part of the image,
# so the binary is copied out of target/ within the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/build/target,sharing=locked \
    cargo build --release --locked --bin hubtriage \
    && install -D -m 0755 target/release/hubtriage /out/hubtriage

# ---- runtime --------------------------------------------------------------------------
# Distroless: glibc, libgcc, CA certificates, no shell, no package manager.
# The :nonroot variant runs as uid/gid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot

COPY --from=builder /out/hubtriage /usr/local/bin/hubtriage
# The example config; the default CMD uses it. Mount or bake your own over it, or
# pass the whole TOML in HUBTRIAGE_CONFIG_TOML and run `hubtriage run` without --config.
COPY config/hubtriage.toml /etc/hubtriage/hubtriage.toml

# Numeric, so runtimes can verify it is not root (the image's "nonroot" user).
USER 65532:65532

# The heartbeat for `hubtriage healthcheck` is written to /tmp/hubtriage.heartbeat.
# Declaring /tmp a volume keeps it writable with a read-only root filesystem: on ECS
# a bind-mount volume at the same containerPath gets this directory's contents and
# permissions (distroless ships /tmp as 1777).
VOLUME ["/tmp"]

# The daemon stops receiving on SIGTERM and finishes in-flight work within
# [daemon] shutdown_grace_seconds (default 25 s); give it a longer stop timeout.
STOPSIGNAL SIGTERM

# Exits 0 only while the receive loop made progress recently.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/usr/local/bin/hubtriage", "healthcheck"]

ENTRYPOINT ["/usr/local/bin/hubtriage"]
CMD ["run", "--config", "/etc/hubtriage/hubtriage.toml"]
