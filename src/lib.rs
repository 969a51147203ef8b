//! Hearth: serverless, end-to-end encrypted support circles.
//!
//! This umbrella crate re-exports the layers so that examples and multi-node tests can
//! reach them under one name. The layers depend in one direction only:
//! `proto` ← `store` ← `node` ← the `hearth` binary.

pub use hearth_node as node;
pub use hearth_proto as proto;
pub use hearth_store as store;
