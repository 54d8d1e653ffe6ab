//! A caller written in Node from README's wire contract only
//! (`clients/node/caller.mjs`: amqplib, jose, a `<ns>.caller.<id>` reply
//! queue), against `tollgate serve` on RabbitMQ.

use tollgate_tests::support::{check_foreign_caller, clients::Language};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_caller_gets_replies_and_every_refusal_code() {
    check_foreign_caller(Language::Node, "caller.mjs").await;
}
