//! hearth-store (being built).
