# product-api container image.
#
#   docker build -t product-api .
#   docker run --rm -p 3001:3001 product-api            # SQLite under /app/data
#   docker run --rm -e DATABASE_URL=postgres://... product-api migrate
#
# Stages: chef (toolchain + cargo-chef) -> planner (dependency recipe) -> builder
# (dependencies cooked in their own cached layer, then the crate) -> runtime (Debian slim,
# non-root, the binary and the OpenAPI spec only). The full stack is in compose.yaml.

ARG RUST_VERSION=1.94
ARG DEBIAN_RELEASE=bookworm

# --- chef: Rust toolchain with cargo-chef -------------------------------------------------
FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS chef
ARG CARGO_CHEF_VERSION=0.1.78
RUN cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}"
WORKDIR /app

# --- planner: reduce the workspace to a dependency recipe --------------------------------
# The recipe only changes when a manifest or Cargo.lock does, so the cook layer below stays
# cached across source edits.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# --- builder: dependencies first, then the crate -----------------------------------------
FROM chef AS builder
COPY --from=planner /app/recipe.json recipe.json
# cargo-chef builds a skeleton workspace: every local target, build.rs included, is replaced by
# an empty `fn main() {}` / lib, so api/openapi.yaml is not needed here. Build-dependencies
# (the codegen crate's openapiv3, syn, ...) and all regular dependencies are compiled and cached in this layer;
# chef then deletes the skeleton's own artifacts so the real crates rebuild below.
RUN cargo chef cook --release --locked --recipe-path recipe.json
# The real sources (only what .dockerignore lets through): src/, codegen/, migration/, api/,
# build.rs, Cargo.toml, Cargo.lock, clippy.toml. build.rs reads api/openapi.yaml now.
COPY . .
RUN cargo build --release --locked -p product-api \
    && install -D -m 0755 target/release/product-api /out/product-api

# --- runtime -------------------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# The repository's URL, when the build knows it: --build-arg SOURCE_URL=https://...
ARG SOURCE_URL=""

LABEL org.opencontainers.image.title="product-api" \
      org.opencontainers.image.description="Multi-tenant product inventory service for marketplace sellers" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="MIT"

RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# Unprivileged user; /app/data holds the SQLite file when DATABASE_URL is unset.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin app \
    && mkdir -p /app/data /app/api \
    && chown app:app /app/data

WORKDIR /app

COPY --from=builder /out/product-api /usr/local/bin/product-api
# The spec is compiled into the binary; this copy is for people and tools.
COPY --from=builder /app/api/openapi.yaml /app/api/openapi.yaml

ENV PORT=3001 \
    HOST=0.0.0.0 \
    DATA_DIR=/app/data

# Declared after the chown so a fresh volume is initialised writable by `app`.
VOLUME ["/app/data"]

USER app:app
EXPOSE 3001

# SIGTERM starts a graceful shutdown bounded by SHUTDOWN_TIMEOUT_SECS (default 25 s), which
# fits the default 30 s grace of `docker stop` / compose's stop_grace_period.
STOPSIGNAL SIGTERM

HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/product-api", "healthcheck"]

ENTRYPOINT ["/usr/local/bin/product-api"]
CMD ["serve"]
