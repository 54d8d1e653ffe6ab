//! Test support and conformance suites for Tollgate's integration tests.
