//! The procedural macros of gotalk: `#[gotalk::service]` and `#[gotalk::notification]`.
//! Use them through the `gotalk` crate, which re-exports both and documents them.
//!
//! Each runs the same pipeline: `parse` turns the trait into a plain model (collecting
//! every mistake, each spanned on the token to change), `validate` checks the model as a
//! whole, and `expand` turns a valid model into code. On any error the user's trait is
//! still emitted (without our helper attributes) beside the errors, so the rest of the
//! crate and the IDE keep working.

mod attr;
mod errors;
mod expand;
mod model;
mod parse;
mod validate;

use proc_macro::TokenStream;

use model::Kind;

/// Turns a trait into a Gotalk service: see the `gotalk` crate's documentation.
#[proc_macro_attribute]
pub fn service(args: TokenStream, item: TokenStream) -> TokenStream {
    run(Kind::Service, args, item)
}

/// Turns a trait into a set of Gotalk notifications: see the `gotalk` crate's documentation.
#[proc_macro_attribute]
pub fn notification(args: TokenStream, item: TokenStream) -> TokenStream {
    run(Kind::Notification, args, item)
}

fn run(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = errors::Errors::default();
    let args = attr::macro_args(kind, args.into(), &mut errors);
    let item = match syn::parse::<syn::Item>(item.clone()) {
        Ok(syn::Item::Trait(item)) => item,
        Ok(other) => {
            errors.push(syn::Error::new_spanned(
                item_head(&other),
                format!("#[gotalk::{}] goes on a trait", kind.macro_name()),
            ));
            let mut out = proc_macro2::TokenStream::from(item);
            out.extend(errors.into_compile_errors());
            return out.into();
        }
        Err(e) => return e.to_compile_error().into(),
    };
    let model = parse::parse(kind, &item, args, &mut errors);
    validate::validate(&model, &mut errors);
    if errors.is_empty() {
        expand::expand(&model).into()
    } else {
        let mut out = expand::unchanged(&item);
        out.extend(errors.into_compile_errors());
        out.into()
    }
}

/// The tokens that name an item, for an error that points at it rather than its body.
fn item_head(item: &syn::Item) -> proc_macro2::TokenStream {
    use quote::ToTokens;
    match item {
        syn::Item::Struct(s) => {
            let (kw, ident) = (&s.struct_token, &s.ident);
            quote::quote!(#kw #ident)
        }
        syn::Item::Enum(e) => {
            let (kw, ident) = (&e.enum_token, &e.ident);
            quote::quote!(#kw #ident)
        }
        syn::Item::Fn(f) => f.sig.to_token_stream(),
        syn::Item::Impl(i) => {
            let (kw, ty) = (&i.impl_token, &i.self_ty);
            quote::quote!(#kw #ty)
        }
        other => other.to_token_stream(),
    }
}
