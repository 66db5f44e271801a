//! `impl gotalk::typescript::Describe`: what the TypeScript module is written from.

use proc_macro2::TokenStream;
use quote::quote;
use syn::Type;

use super::{doc_text, typed_error, Names};
use crate::model::{Input, Kind, Trait};

/// `impl gotalk::typescript::Describe` for the client (or notifier): the trait's methods,
/// their wire names and types, for the TypeScript module.
pub(super) fn typescript(model: &Trait, names: &Names) -> TokenStream {
    let (impl_generics, ty_generics, where_clause) = model.item.generics.split_for_impl();
    let client = &names.client;
    let trait_name = names.trait_ident.to_string();
    let notification = model.kind == Kind::Notification;
    let trait_docs = doc_text(&model.item.attrs);
    let ts = quote!(::gotalk::typescript);
    let methods = model.methods.iter().map(|m| {
        let unit: Type = syn::parse_quote!(());
        let (shape, input) = match (&m.input, model.kind) {
            (Input::Value { ty, .. }, Kind::Notification) => (quote!(Notification), ty),
            (_, Kind::Notification) => (quote!(Notification), &unit),
            (Input::Stream { item, .. }, _) => (quote!(StreamIn), item),
            (Input::Value { ty, .. }, _) if m.output.stream_item().is_some() => {
                (quote!(StreamOut), ty)
            }
            (Input::None, _) if m.output.stream_item().is_some() => (quote!(StreamOut), &unit),
            (Input::Value { ty, .. }, _) => (quote!(Single), ty),
            (Input::None, _) => (quote!(Single), &unit),
        };
        let output = m
            .output
            .value_type()
            .or(m.output.stream_item())
            .unwrap_or(&unit);
        let error = typed_error(m).unwrap_or(&unit);
        let (wire, name, docs) = (&m.wire_name, m.ident.to_string(), doc_text(&m.attrs));
        quote! {
            __gotalk_module.method::<#input, #output, #error>(#ts::Shape::#shape, #wire, #name, #docs);
        }
    });
    quote! {
        impl #impl_generics #ts::Describe for #client #ty_generics #where_clause {
            fn describe(__gotalk_module: &mut #ts::Module) {
                __gotalk_module.begin_trait(#trait_name, #notification, #trait_docs);
                #(#methods)*
            }
        }
    }
}
