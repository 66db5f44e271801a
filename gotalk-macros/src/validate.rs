//! Checks of the model as a whole: wire names that are unique and fit the protocol.

use std::collections::HashMap;

use crate::{
    errors::Errors,
    model::{Kind, Trait},
};

/// The longest name the wire can carry (its length is three hex digits).
const MAX_NAME_LEN: usize = 0xfff;
/// Names for our protocol extension (`gotalk::RESERVED_PREFIX`; EXTENSIONS.md).
const RESERVED_PREFIX: &str = "gotalk:";

pub fn validate(model: &Trait, errors: &mut Errors) {
    let what = model.kind.what();
    let mut seen: HashMap<&str, &syn::Ident> = HashMap::new();
    for method in &model.methods {
        let len = method.wire_name.len();
        if len > MAX_NAME_LEN {
            errors.push(syn::Error::new(
                method.name_span,
                format!("this {what} name is {len} bytes long; the protocol allows at most 4095"),
            ));
        }
        if method.wire_name.starts_with(RESERVED_PREFIX) {
            errors.push(syn::Error::new(
                method.name_span,
                format!(
                    "{what} name {:?} starts with {RESERVED_PREFIX:?}, which is reserved for the protocol extension; choose another `#[gotalk(name = \"...\")]`",
                    method.wire_name
                ),
            ));
        }
        if model.kind == Kind::Service && method.ident == "with" {
            errors.push(syn::Error::new(
                method.ident.span(),
                "a method named `with` would clash with the client's `with` (per-call options); name the method otherwise and keep the wire name with `#[gotalk(name = \"with\")]`",
            ));
        }
        if let Some(first) = seen.insert(&method.wire_name, &method.ident) {
            errors.push(syn::Error::new(
                method.name_span,
                format!(
                    "{what} name {:?} is already used by method `{first}`; give one of them another `#[gotalk(name = \"...\")]`",
                    method.wire_name
                ),
            ));
        }
    }
}
