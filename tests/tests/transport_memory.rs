//! The transport conformance suite on the in-memory transport.

use tollgate_tests::support::Fixture;

tollgate_tests::transport_conformance!(memory, Fixture::memory());
