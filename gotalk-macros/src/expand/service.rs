//! The service of a trait: its handlers, registered with a `Handlers`.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::{parse_quote, spanned::Spanned, Generics, Type};

use super::{describe::describe, Names};
use crate::model::{Context, Input, Kind, Method, Output, Trait};

/// The trait's generics plus the implementation type, bounded by the trait.
fn service_generics(model: &Trait, names: &Names, for_spawn: bool) -> Generics {
    let mut generics = model.item.generics.clone();
    let implementation = &names.implementation;
    let trait_ident = &names.trait_ident;
    let (_, trait_args, _) = model.item.generics.split_for_impl();
    generics.params.insert(0, parse_quote!(#implementation));
    let clause = generics.make_where_clause();
    clause
        .predicates
        .push(parse_quote!(#implementation: #trait_ident #trait_args));
    if for_spawn {
        for param in &names.params {
            clause
                .predicates
                .push(parse_quote!(#param: ::core::marker::Send + ::core::marker::Sync + 'static));
        }
    }
    generics
}

pub(super) fn service(model: &Trait, names: &Names) -> TokenStream {
    let vis = &model.item.vis;
    let Names {
        trait_ident,
        service,
        implementation,
        params,
        ..
    } = names;
    let phantom = names.phantom();
    let (_, trait_args, _) = model.item.generics.split_for_impl();
    let plain = service_generics(model, names, false);
    let (impl_generics, ty_generics, where_clause) = plain.split_for_impl();
    let spawnable = service_generics(model, names, true);
    let (spawn_impl_generics, _, spawn_where_clause) = spawnable.split_for_impl();
    let registrations = model
        .methods
        .iter()
        .map(|m| registration(model.kind, m, names, &trait_args));
    let trait_name = trait_ident.to_string();
    let describe = describe(model);
    let what = match model.kind {
        Kind::Service => "operations",
        Kind::Notification => "notification handlers",
    };
    let struct_doc = format!(
        "Serves an implementation of [`{trait_ident}`]: register it with \
         `gotalk::Handlers::new().with({service}::new(implementation))` to answer its {what}."
    );
    quote! {
        #[doc = #struct_doc]
        #vis struct #service<#implementation, #(#params),*> {
            implementation: ::std::sync::Arc<#implementation>,
            _params: #phantom,
        }

        impl #impl_generics #service #ty_generics #where_clause {
            /// Serves `implementation`.
            pub fn new(implementation: #implementation) -> Self {
                Self::from_arc(::std::sync::Arc::new(implementation))
            }

            /// Serves an implementation that is shared with other code.
            pub fn from_arc(implementation: ::std::sync::Arc<#implementation>) -> Self {
                Self { implementation, _params: ::core::marker::PhantomData }
            }
        }

        impl #spawn_impl_generics ::gotalk::__private::Service for #service #ty_generics #spawn_where_clause {
            const NAME: &'static str = #trait_name;

            fn register(self, __gotalk_handlers: ::gotalk::__private::Handlers) -> ::gotalk::__private::Handlers {
                #(let __gotalk_handlers = #registrations;)*
                __gotalk_handlers
            }

            #describe
        }
    }
}

fn registration(
    kind: Kind,
    m: &Method,
    names: &Names,
    trait_args: &syn::TypeGenerics<'_>,
) -> TokenStream {
    let Names {
        trait_ident,
        implementation,
        ..
    } = names;
    let ident = &m.ident;
    let wire = &m.wire_name;
    let call = |sock: TokenStream, input: TokenStream| {
        let context = match &m.context {
            Some(Context::Custom(_)) => quote!(__gotalk_context,),
            Some(Context::SockRef) => quote!(&#sock,),
            Some(Context::Sock) => quote!(::core::clone::Clone::clone(&#sock),),
            None => quote!(),
        };
        quote!(<#implementation as #trait_ident #trait_args>::#ident(&*__gotalk_svc, #context #input).await)
    };
    // A context of the user's type is made from the connection before the call; if it
    // cannot be, a request gets the error as its result and a notification is dropped.
    let make_context = |sock: TokenStream, deadline: TokenStream, on_error: TokenStream| match &m
        .context
    {
        Some(Context::Custom(ty)) => quote_spanned! {ty.span()=>
            let __gotalk_call = ::gotalk::__private::CallInfo::new(#deadline);
            let __gotalk_context = match <#ty as ::gotalk::__private::FromSock>::from_call(&#sock, &__gotalk_call) {
                ::core::result::Result::Ok(__gotalk_context) => __gotalk_context,
                ::core::result::Result::Err(__gotalk_error) => #on_error,
            };
        },
        _ => quote!(),
    };
    // Explicit type arguments carry the user's spans: an unmet bound is reported at the
    // type in the trait, not at the macro.
    let err = |err: &Option<Type>| match err {
        Some(ty) => quote!(#ty),
        None => quote!(_),
    };
    let reply = match &m.output {
        Output::Unit => quote!(::gotalk::__private::reply_value::<()>(#wire, &__gotalk_out)),
        Output::Value(ty) => quote!(::gotalk::__private::reply_value::<#ty>(#wire, &__gotalk_out)),
        Output::Result { ok, err: e } => {
            let answer = answer_error(wire, e);
            let e = err(e);
            quote!(::gotalk::__private::reply_result::<#ok, #e>(#wire, __gotalk_out, #answer))
        }
        Output::Stream { item, err: e } => {
            let answer = answer_error(wire, e);
            let e = err(e);
            quote!(::gotalk::__private::reply_stream::<#item, #e>(#wire, __gotalk_out, #answer))
        }
        Output::ResultStream {
            item,
            err: e,
            stream_err,
        } => {
            let answer = answer_error(wire, e);
            let stream_err = stream_err.as_deref().cloned();
            let answer_in_stream = answer_error(wire, &stream_err);
            let (e, stream_err) = (err(e), err(&stream_err));
            quote!(::gotalk::__private::reply_result_stream::<#item, #e, #stream_err>(
                #wire, __gotalk_out, #answer, #answer_in_stream
            ))
        }
    };
    let body = match (kind, &m.input) {
        (Kind::Notification, input) => {
            let (decode, arg) = match input {
                Input::Value { ty, .. } => (
                    quote_spanned! {ty.span()=>
                        let __gotalk_input = match ::gotalk::__private::decode_notification::<#ty>(&__gotalk_n) {
                            ::core::option::Option::Some(__gotalk_value) => __gotalk_value,
                            ::core::option::Option::None => return,
                        };
                    },
                    quote!(__gotalk_input),
                ),
                _ => (quote!(), quote!()),
            };
            let call = call(quote!(__gotalk_n.sock), arg);
            let context = make_context(
                quote!(__gotalk_n.sock),
                quote!(::core::option::Option::None),
                quote!({
                    let _ = __gotalk_error;
                    return;
                }),
            );
            quote! {
                __gotalk_handlers.handle_notification_raw(#wire, move |__gotalk_n: ::gotalk::__private::Notification| {
                    let __gotalk_svc = ::core::clone::Clone::clone(&__gotalk_svc);
                    async move {
                        #decode
                        #context
                        #call;
                    }
                })
            }
        }
        (Kind::Service, Input::Stream { item, .. }) => {
            let call = call(quote!(__gotalk_sock), quote!(__gotalk_input));
            let context = make_context(
                quote!(__gotalk_sock),
                quote!(__gotalk_deadline),
                quote!(return ::gotalk::__private::Reply::from_error(__gotalk_error)),
            );
            quote! {
                __gotalk_handlers.handle_stream(#wire, move |__gotalk_req: ::gotalk::__private::StreamRequest| {
                    let __gotalk_svc = ::core::clone::Clone::clone(&__gotalk_svc);
                    async move {
                        let __gotalk_deadline = __gotalk_req.deadline;
                        let (__gotalk_sock, __gotalk_input) = ::gotalk::__private::stream_in::<#item>(__gotalk_req);
                        #context
                        let __gotalk_out = #call;
                        #reply
                    }
                })
            }
        }
        (Kind::Service, input) => {
            let (decode, arg) = match input {
                Input::Value { ty, .. } => (
                    quote_spanned! {ty.span()=>
                        let __gotalk_input = match ::gotalk::__private::decode::<#ty>(#wire, &__gotalk_req.payload) {
                            ::core::result::Result::Ok(__gotalk_value) => __gotalk_value,
                            ::core::result::Result::Err(__gotalk_reply) => return __gotalk_reply,
                        };
                    },
                    quote!(__gotalk_input),
                ),
                _ => (quote!(), quote!()),
            };
            let call = call(quote!(__gotalk_req.sock), arg);
            let context = make_context(
                quote!(__gotalk_req.sock),
                quote!(__gotalk_req.deadline),
                quote!(return ::gotalk::__private::Reply::from_error(__gotalk_error)),
            );
            quote! {
                __gotalk_handlers.handle_reply(#wire, move |__gotalk_req: ::gotalk::__private::Request| {
                    let __gotalk_svc = ::core::clone::Clone::clone(&__gotalk_svc);
                    async move {
                        #decode
                        #context
                        let __gotalk_out = #call;
                        #reply
                    }
                })
            }
        }
    };
    quote! {
        {
            let __gotalk_svc = ::core::clone::Clone::clone(&self.implementation);
            #body
        }
    }
}

/// The closure that gives the ErrorResult text of a handler's `Err`: JSON for an error
/// type that is `Serialize`, `None` for its `Display` text (see `__private::ErrorReply`).
fn answer_error(wire: &str, err: &Option<Type>) -> TokenStream {
    let span = err.as_ref().map_or_else(Span::call_site, |ty| ty.span());
    quote_spanned! {span=>
        |__gotalk_error| {
            #[allow(unused_imports)]
            use ::gotalk::__private::{ErrorAsJson as _, ErrorAsText as _};
            (&::gotalk::__private::ErrorReply(#wire, __gotalk_error)).error_text()
        }
    }
}
