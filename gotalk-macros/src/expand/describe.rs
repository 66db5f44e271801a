//! `Service::describe`: what the service tells a peer that asks (`gotalk::describe`).

use proc_macro2::TokenStream;
use quote::quote;
use syn::Type;

use super::{doc_text, typed_error};
use crate::model::{Input, Kind, Method, Output, Trait};

/// The body of `fn describe()`: one `Operation` per method.
pub(super) fn describe(model: &Trait) -> TokenStream {
    let p = quote!(::gotalk::__private);
    let service = model.item.ident.to_string();
    let operations = model.methods.iter().map(|m| {
        let kind = match (model.kind, &m.input) {
            (Kind::Notification, _) => quote!(Notification),
            (_, Input::Stream { .. }) => quote!(StreamRequest),
            _ => quote!(Request),
        };
        let streams = m.output.stream_item().is_some();
        let input = match &m.input {
            Input::None => None,
            Input::Value { ty, .. } | Input::Stream { item: ty, .. } => Some(ty),
        };
        let unit: Type = syn::parse_quote!(());
        let output = match (model.kind, &m.output) {
            (Kind::Notification, _) => None,
            (_, Output::Unit) => Some(&unit),
            (_, output) => output.value_type().or(output.stream_item()),
        };
        let input = described(input, true);
        let output = described(output, true);
        let error = error_type(m);
        let (wire, docs) = (&m.wire_name, doc_text(&m.attrs));
        let timeout = match m.timeout_ms {
            Some(ms) => quote!(::core::option::Option::Some(#ms)),
            None => quote!(::core::option::Option::None),
        };
        quote! {
            #p::described_operation(#wire, #p::OperationKind::#kind, #streams, #service, #docs,
                #timeout, #input, #output, #error)
        }
    });
    quote! {
        fn describe() -> ::std::vec::Vec<#p::Operation> {
            #[allow(unused_imports)]
            use #p::{NoSchema as _, SchemaByDerive as _};
            ::std::vec![#(#operations),*]
        }
    }
}

/// `Some(Type)` for a type the method carries, with its schema if `schema`.
fn described(ty: Option<&Type>, schema: bool) -> TokenStream {
    let p = quote!(::gotalk::__private);
    match ty {
        None => quote!(::core::option::Option::None),
        Some(ty) => {
            let name = type_text(ty);
            let schema = if schema {
                quote!((&#p::TypeOf::<#ty>::new()).schema())
            } else {
                quote!(::core::option::Option::None)
            };
            quote!(::core::option::Option::Some(#p::described_type(#name, #schema)))
        }
    }
}

/// The error a method may answer with: a typed one with its schema (it travels as
/// JSON), one that travels as text by name only.
fn error_type(m: &Method) -> TokenStream {
    if let Some(typed) = typed_error(m) {
        return described(Some(typed), true);
    }
    let text = match &m.output {
        Output::Result { err, .. } | Output::Stream { err, .. } => err.clone(),
        Output::ResultStream {
            err, stream_err, ..
        } => err.clone().or(stream_err.as_deref().cloned()),
        Output::Unit | Output::Value(_) => return described(None, false),
    };
    match text {
        Some(ty) => described(Some(&ty), false),
        // `Result<T>` of an alias: an error whose type the trait does not spell.
        None if matches!(
            m.output,
            Output::Result { .. } | Output::ResultStream { .. }
        ) =>
        {
            let p = quote!(::gotalk::__private);
            quote!(::core::option::Option::Some(#p::described_type("error", ::core::option::Option::None)))
        }
        None => described(None, false),
    }
}

/// A type as the trait spells it, without the spaces token printing puts between
/// punctuation: `Vec<String>`, `(u32, String)`, `gotalk::Error`.
fn type_text(ty: &Type) -> String {
    let mut text = quote!(#ty).to_string();
    for (from, to) in [
        (" :: ", "::"),
        (":: ", "::"),
        (" < ", "<"),
        ("< ", "<"),
        (" <", "<"),
        (" >", ">"),
        (" ,", ","),
        ("& ", "&"),
        ("( ", "("),
        (" )", ")"),
        ("[ ", "["),
        (" ]", "]"),
        (" ;", ";"),
    ] {
        text = text.replace(from, to);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::type_text;

    #[test]
    fn types_read_as_written() {
        for (ty, text) in [
            (quote::quote!(Vec<String>), "Vec<String>"),
            (
                quote::quote!(std::collections::HashMap<String, Vec<u8> >),
                "std::collections::HashMap<String, Vec<u8>>",
            ),
            (quote::quote!((u32, String)), "(u32, String)"),
            (quote::quote!(::gotalk::Error), "::gotalk::Error"),
            (quote::quote!([u8; 4]), "[u8; 4]"),
            (quote::quote!(()), "()"),
        ] {
            assert_eq!(type_text(&syn::parse2(ty).unwrap()), text);
        }
    }
}
