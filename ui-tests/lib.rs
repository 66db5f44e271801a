//! Compile-pass (`pass/`) and compile-fail (`fail/`) cases of `#[gotalk::service]` and
//! `#[gotalk::notification]`, run by `tests/ui.rs` with trybuild. Each failing case is
//! one mistake, named for it, with the exact message beside it in its `.stderr`.
//! After an intended change of a message: `TRYBUILD=overwrite cargo test -p gotalk-ui-tests`.
