//! Deterministic demo brand generator.
