//! hearth-node (being built).
