//! A caller written in Python from README's wire contract only
//! (`clients/python/caller.py`: pika, PyJWT, a server-named reply queue),
//! against `tollgate serve` on RabbitMQ.

use tollgate_tests::support::{check_foreign_caller, clients::Language};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_caller_gets_replies_and_every_refusal_code() {
    check_foreign_caller(Language::Python, "caller.py").await;
}
