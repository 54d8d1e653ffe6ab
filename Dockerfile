# syntax=docker/dockerfile:1
# Tollgate in one image: the `tollgate` binary (router and CLI) and the example
# services `orders`, `inventory` and `billing_legacy`.
#
#   docker build -t tollgate:local .
#   docker run --rm tollgate:local --help                     # ENTRYPOINT is `tollgate`
#   docker run --rm --entrypoint orders tollgate:local --help  # an example service
#
# docker-compose.yml builds and runs it; see README.md, "Run it with Docker Compose".

FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
# The registry and target caches survive between builds (BuildKit); the
# binaries are copied out of the cached target folder in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin tollgate \
 && cargo build --release --locked -p tollgate-services \
        --example orders --example inventory --example billing_legacy \
 && mkdir -p /out \
 && cp target/release/tollgate \
       target/release/examples/orders \
       target/release/examples/inventory \
       target/release/examples/billing_legacy \
       /out/

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 tollgate \
 && useradd --system --uid 10001 --gid tollgate --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin tollgate
COPY --from=builder /out/tollgate /usr/local/bin/tollgate
COPY --from=builder /out/orders /usr/local/bin/orders
COPY --from=builder /out/inventory /usr/local/bin/inventory
COPY --from=builder /out/billing_legacy /usr/local/bin/billing_legacy
USER tollgate
# Prometheus /metrics of `tollgate serve` (metrics_addr in the config).
EXPOSE 9464
ENTRYPOINT ["tollgate"]
CMD ["--help"]
