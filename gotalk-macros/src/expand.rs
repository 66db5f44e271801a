//! A valid model → code: the trait (rewritten) and type checks here; the client
//! (`client.rs`), the service (`service.rs`, with what it says about its methods from
//! `describe.rs`) and the TypeScript description (`typescript.rs`) in its children.
//!
//! Generated code names the runtime only as `::gotalk::__private::…` and std items by
//! absolute path, and its locals are `__gotalk_`-prefixed, so it compiles whatever the
//! user has in scope (even under `#![no_implicit_prelude]`, with their own `Result`
//! alias, or a `const out` that a plain `let out` would match against).

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};
use syn::{parse_quote, ItemTrait, TraitItem, Type};

use crate::{
    attr,
    model::{Kind, Method, Output, Trait},
};

mod client;
mod describe;
mod service;
mod typescript;

use client::client;
use service::service;
use typescript::typescript;

/// Removes our attributes from a method and its parameters.
fn strip_ours(f: &mut syn::TraitItemFn) {
    attr::strip_ours(&mut f.attrs);
    for input in &mut f.sig.inputs {
        if let syn::FnArg::Typed(pt) = input {
            attr::strip_ours(&mut pt.attrs);
        }
    }
}

/// The user's trait as written, minus our helper attributes: emitted beside errors.
pub fn unchanged(item: &ItemTrait) -> TokenStream {
    let mut item = item.clone();
    for trait_item in &mut item.items {
        if let TraitItem::Fn(f) = trait_item {
            strip_ours(f);
        }
    }
    quote! {
        #[allow(async_fn_in_trait)]
        #item
    }
}

pub fn expand(model: &Trait) -> TokenStream {
    let names = Names::new(model);
    let rewritten = rewrite_trait(model);
    let client = client(model, &names);
    let service = service(model, &names);
    let typescript = model.typescript.then(|| typescript(model, &names));
    quote! {
        #rewritten
        #client
        #service
        #typescript
    }
}

struct Names {
    trait_ident: Ident,
    client: Ident,
    service: Ident,
    /// The service's parameter for the implementation type.
    implementation: Ident,
    /// The trait's type parameters.
    params: Vec<Ident>,
}

impl Names {
    fn new(model: &Trait) -> Self {
        let trait_ident = model.item.ident.clone();
        let params: Vec<Ident> = model
            .item
            .generics
            .type_params()
            .map(|p| p.ident.clone())
            .collect();
        let implementation = if params.iter().any(|p| p == "S") {
            format_ident!("__GotalkImpl")
        } else {
            format_ident!("S")
        };
        let client = match model.kind {
            Kind::Service => format_ident!("{}Client", trait_ident),
            Kind::Notification => format_ident!("{}Notifier", trait_ident),
        };
        Self {
            service: format_ident!("{}Service", trait_ident),
            client,
            trait_ident,
            implementation,
            params,
        }
    }

    /// `PhantomData` over the trait's type parameters.
    fn phantom(&self) -> TokenStream {
        let params = &self.params;
        quote!(::core::marker::PhantomData<fn() -> (#(#params,)*)>)
    }
}

/// `async fn m(..) -> T` becomes `fn m(..) -> impl Future<Output = T> + Send`, and the
/// trait requires `Send + Sync + 'static`.
///
/// Why not `async-trait`: this keeps the trait a plain trait with no boxing per call,
/// implementations still write `async fn`, and an implementation whose future is not
/// `Send` is rejected at that implementation with rustc's own explanation. Native
/// `async fn` in the trait alone would not let handlers be spawned (its futures are not
/// known to be `Send`).
fn rewrite_trait(model: &Trait) -> TokenStream {
    let mut item = model.item.clone();
    if item.colon_token.is_none() {
        item.colon_token = Some(Default::default());
    }
    item.supertraits.push(parse_quote!(::core::marker::Send));
    item.supertraits.push(parse_quote!(::core::marker::Sync));
    item.supertraits.push(parse_quote!('static));
    for trait_item in &mut item.items {
        if let TraitItem::Fn(f) = trait_item {
            strip_ours(f);
            f.sig.asyncness = None;
            let ret = match &f.sig.output {
                syn::ReturnType::Default => quote!(()),
                syn::ReturnType::Type(_, ty) => quote!(#ty),
            };
            f.sig.output = parse_quote! {
                -> impl ::core::future::Future<Output = #ret> + ::core::marker::Send
            };
        }
    }
    quote!(#item)
}

/// The error type a caller gets back typed, in a `CallError`: the `E` of a method's
/// `Result<T, E>` or `StreamOut<T, E>`, unless `E` is spelled as one of the errors that
/// are only text (`gotalk::Error`, `Error`, `String`, `Box<..>`, `anyhow::Error`), which
/// the caller gets as `gotalk::Error` as before.
fn typed_error(m: &Method) -> Option<&Type> {
    let ty = match &m.output {
        Output::Result { err, .. } | Output::Stream { err, .. } => err.as_ref(),
        Output::ResultStream {
            err, stream_err, ..
        } => err.as_ref().or(stream_err.as_deref()),
        Output::Unit | Output::Value(_) => None,
    }?;
    let Type::Path(path) = ty else {
        return Some(ty);
    };
    if path.qself.is_some() {
        return Some(ty);
    }
    let names: Vec<String> = path
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let text_only = matches!(
        names.as_slice(),
        ["Error"]
            | ["gotalk", "Error"]
            | ["String"]
            | ["std" | "alloc", "string", "String"]
            | ["Box"]
            | ["std" | "alloc", "boxed", "Box"]
            | ["anyhow", "Error"]
    );
    (!text_only).then_some(ty)
}

/// The text of doc comments.
pub(crate) fn doc_text(attrs: &[syn::Attribute]) -> String {
    let lines: Vec<String> = attrs
        .iter()
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) if nv.path.is_ident("doc") => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(
                    s.value()
                        .strip_prefix(' ')
                        .map(str::to_owned)
                        .unwrap_or_else(|| s.value()),
                ),
                _ => None,
            },
            _ => None,
        })
        .collect();
    lines.join("\n")
}
