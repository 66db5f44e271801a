//! Gotalk for Rust.
pub mod wire;
