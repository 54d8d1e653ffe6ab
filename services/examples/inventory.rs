//! `inventory`: runs one instance of the example service `inventory`
//! (MessagePack, schema version 2: `inventory.reserve`, `inventory.get`) on
//! RabbitMQ in gateway mode, until Ctrl-C or SIGTERM, then shuts down gracefully.
//!
//! ```text
//! inventory --token-file /run/secrets/inventory-svc.jwt --bus-key keys/bus-assertion.pub.pem
//! ```
//!
//! | Flag                 | Environment                    | Default / meaning                              |
//! |----------------------|--------------------------------|------------------------------------------------|
//! | `--amqp URL`         | `TOLLGATE_AMQP_URL`            | `amqp://guest:guest@127.0.0.1:5672/%2f`        |
//! | `--namespace NS`     | `TOLLGATE_NAMESPACE`           | `tollgate`                                     |
//! | `--token JWT`        | `TOLLGATE_SERVICE_TOKEN`       | the service account's token                    |
//! | `--token-file FILE`  | `TOLLGATE_SERVICE_TOKEN_FILE`  | or a file holding it, re-read on each heartbeat |
//! | `--bus-key FILE`     | `TOLLGATE_BUS_PUBLIC_KEY_FILE` | required: the router's `bus-assertion.pub.pem` |
//! | `--bus-secret-file FILE` | `TOLLGATE_SERVICE_SECRET_FILE` | optional: this service's secret (`tollgate keys service-secret`), for HS256 assertions |
//! | `--prefetch N`       | `TOLLGATE_SERVICE_PREFETCH`    | `16`: most requests handled at once            |
//! | `--shutdown-timeout-secs S` | `TOLLGATE_SHUTDOWN_TIMEOUT_SECS` | `20`: longest graceful stop; then (or on a second signal) exit 1 |
//! | `--assertion-leeway S` | `TOLLGATE_ASSERTION_LEEWAY_SECS` | `5`: clock difference allowed with the routers (0–300 s) |
//! | `--log-format F`     | `TOLLGATE_LOG_FORMAT`          | `text` or `json` (one object per line)         |
//!
//! Exactly one of `--token` and `--token-file` is required.
//! `--amqp` takes one URL, or one per cluster node separated by commas.
//!
//! The token is the service account's registration token (`tollgate token sign
//! --purpose registration --config tollgate.toml --consumer inventory-svc`); the router lets it
//! register `inventory` only if its
//! `[registry] grants` say so. Logs go to stderr, filtered by `RUST_LOG`.

mod common;

use std::process::ExitCode;

use tollgate_services::examples::inventory;

fn main() -> ExitCode {
    common::main(
        "inventory",
        "The example inventory service (MessagePack, schema v2) on RabbitMQ.",
        inventory::service,
    )
}
