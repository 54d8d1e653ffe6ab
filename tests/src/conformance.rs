//! Suites every implementation of a contract must pass, instantiated per
//! implementation by a macro (vector's compliance harness, tower-test).

pub mod transport;
