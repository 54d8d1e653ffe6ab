//! The transport conformance suite on RabbitMQ, plus AMQP-only cases.

use tollgate_tests::support::Fixture;

tollgate_tests::transport_conformance!(amqp, Fixture::amqp());
