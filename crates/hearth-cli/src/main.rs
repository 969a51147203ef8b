//! The hearth program.
fn main() {}
