//! Procedural macros of gotalk.
