//! Checks of the model as a whole: wire names that are unique and fit the protocol.

use std::collections::HashMap;

use crate::{errors::Errors, model::Trait};

/// The longest name the wire can carry (its length is three hex digits).
const MAX_NAME_LEN: usize = 0xfff;

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
