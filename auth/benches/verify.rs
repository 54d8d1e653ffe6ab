//! Benchmarks (filled in a later commit).
fn main() {}
