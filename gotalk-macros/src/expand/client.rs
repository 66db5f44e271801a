//! The client (or notifier) of a trait: a function per method that calls it on a connection.

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::{parse_quote, spanned::Spanned, Type};

use super::{typed_error, Names};
use crate::model::{Input, Kind, Method, Trait};

pub(super) fn client(model: &Trait, names: &Names) -> TokenStream {
    let vis = &model.item.vis;
    let generics = &model.item.generics;
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let Names {
        trait_ident,
        client,
        ..
    } = names;
    let phantom = names.phantom();
    let wire_names = model.methods.iter().map(|m| &m.wire_name);
    let fns = model.methods.iter().map(|m| match model.kind {
        Kind::Service => client_fn(m),
        Kind::Notification => notifier_fn(m),
    });
    let (struct_doc, const_doc, const_name) = match model.kind {
        Kind::Service => (
            format!(
                "Calls the operations of [`{trait_ident}`] on the peer of a connection: \
                 `{client}::method(&sock, input).await`, where `sock` is any [`gotalk::Connection`](::gotalk::Connection) \
                 (a `Sock`, a `Reconnecting` client). Not constructed; its functions take the connection."
            ),
            format!("The wire names of the operations of [`{trait_ident}`]."),
            format_ident!("OPERATIONS"),
        ),
        Kind::Notification => (
            format!(
                "Sends the notifications of [`{trait_ident}`] to the peer of a [`gotalk::Sock`](::gotalk::Sock) \
                 or of a `Reconnecting` client, or to a topic's subscribers (any [`gotalk::Notify`](::gotalk::Notify)): \
                 `{client}::method(&sock, payload).await`. Not constructed; its functions take the target."
            ),
            format!("The wire names of the notifications of [`{trait_ident}`]."),
            format_ident!("NOTIFICATIONS"),
        ),
    };
    let with = (model.kind == Kind::Service).then(|| client_with(model, names));
    quote! {
        #[doc = #struct_doc]
        #vis struct #client #generics (#phantom) #where_clause;

        impl #impl_generics #client #ty_generics #where_clause {
            #[doc = #const_doc]
            pub const #const_name: &'static [&'static str] = &[#(#wire_names),*];

            #(#fns)*
        }

        #with
    }
}

/// `GreetClient::with(&sock, options)`: the single-result operations with per-call
/// options (a timeout, retries), on a `GreetClientWith` that borrows the connection.
fn client_with(model: &Trait, names: &Names) -> TokenStream {
    let vis = &model.item.vis;
    let client = &names.client;
    let with = format_ident!("{}With", client);
    let phantom = names.phantom();
    let (impl_generics, ty_generics, where_clause) = model.item.generics.split_for_impl();
    let mut with_generics = model.item.generics.clone();
    with_generics.params.insert(0, parse_quote!('gotalk));
    with_generics.params.insert(
        1,
        parse_quote!(GotalkTarget: ::gotalk::__private::Connection + ?::core::marker::Sized),
    );
    let (with_impl, with_ty, _) = with_generics.split_for_impl();
    let fns = model
        .methods
        .iter()
        .filter(|m| !matches!(m.input, Input::Stream { .. }) && m.output.stream_item().is_none())
        .map(client_with_fn);
    let struct_doc = format!(
        "The single-result operations of [`{}`] with per-call options: made by \
         [`{client}::with`].",
        names.trait_ident
    );
    quote! {
        impl #impl_generics #client #ty_generics #where_clause {
            /// Calls with per-call options (a timeout, retries on a RetryResult, sending
            /// again after a reconnect):
            /// `Client::with(&sock, CallOptions::new().timeout(t).retries(3)).method(input)`.
            /// An option not given falls back to the method's `#[gotalk(timeout)]`, then
            /// to the connection's call timeout. Stream operations are called as usual.
            pub fn with<'gotalk, GotalkTarget: ::gotalk::__private::Connection + ?::core::marker::Sized>(sock: &'gotalk GotalkTarget, options: ::gotalk::__private::CallOptions) -> #with #with_ty {
                #with(sock, options, ::core::marker::PhantomData)
            }
        }

        #[doc = #struct_doc]
        #vis struct #with #with_generics (&'gotalk GotalkTarget, ::gotalk::__private::CallOptions, #phantom) #where_clause;

        impl #with_impl #with #with_ty #where_clause {
            #(#fns)*
        }
    }
}

/// The method's `#[gotalk(timeout)]` in milliseconds, as an `Option<u64>` expression.
fn default_timeout(m: &Method) -> TokenStream {
    match m.timeout_ms {
        Some(ms) => quote!(::core::option::Option::Some(#ms)),
        None => quote!(::core::option::Option::None),
    }
}

fn client_with_fn(m: &Method) -> TokenStream {
    let ident = &m.ident;
    let wire = &m.wire_name;
    let docs = docs(m);
    let timeout = default_timeout(m);
    let unit: Type = parse_quote!(());
    let single_out = m.output.value_type().unwrap_or(&unit);
    let (param, encode) = input_param(m);
    let decode = quote_spanned!(single_out.span()=> ::gotalk::__private::decode_result::<#single_out>(#wire, &__gotalk_result));
    let doc = format!("Sends the request `{wire}` with these options and waits for the answer.");
    let idempotent = m.idempotent;
    let request = quote!(::gotalk::__private::request_with(self.0, #wire, __gotalk_payload, self.1, #timeout, #idempotent).await);
    let (error, answer, decode) = caller_error(m, request, decode);
    quote! {
        #docs
        #[doc = #doc]
        pub async fn #ident(&self #param) -> ::core::result::Result<#single_out, #error> {
            #encode
            let __gotalk_result = #answer;
            #decode
        }
    }
}

/// The input parameter of a client function (after the connection) and the statement that
/// encodes it into `__gotalk_payload` (`()` when the method takes no input).
fn input_param(m: &Method) -> (TokenStream, TokenStream) {
    let wire = &m.wire_name;
    match &m.input {
        Input::Value { ident, ty } => (
            quote!(, #ident: #ty),
            quote_spanned!(ty.span()=> let __gotalk_payload = ::gotalk::__private::encode::<#ty>(#wire, &#ident)?;),
        ),
        _ => (
            quote!(),
            quote!(let __gotalk_payload = ::gotalk::__private::encode::<()>(#wire, &())?;),
        ),
    }
}

/// The connection parameter's name: `sock`, unless the input is called that.
fn sock_ident(method: &Method) -> Ident {
    match &method.input {
        Input::Value { ident, .. } | Input::Stream { ident, .. } if ident == "sock" => {
            format_ident!("gotalk_sock")
        }
        _ => format_ident!("sock"),
    }
}

fn client_fn(m: &Method) -> TokenStream {
    let ident = &m.ident;
    let wire = &m.wire_name;
    let docs = docs(m);
    let sock = sock_ident(m);
    let result = |ty: TokenStream| quote!(::core::result::Result<#ty, ::gotalk::Error>);
    let timeout = default_timeout(m);
    let unit: Type = parse_quote!(());
    let single_out = m.output.value_type().unwrap_or(&unit);
    let (param, encode) = input_param(m);
    // Each generic step is a statement spanned on its type (see `__private`).
    let (ret, body, how) = match (&m.input, m.output.stream_item()) {
        (Input::Stream { item, .. }, out_item) => {
            let out = out_item.unwrap_or(single_out);
            let sender = quote_spanned!(item.span()=> ::gotalk::__private::JsonSender::<#item>::new(__gotalk_writer));
            let (results_ty, results) = json_results(m, out);
            (
                result(quote!((::gotalk::__private::JsonSender<#item>, #results_ty))),
                quote! {
                    let __gotalk_conn = ::gotalk::__private::Connection::connection(#sock).await?;
                    let (__gotalk_writer, __gotalk_results) = ::gotalk::__private::open_stream(&__gotalk_conn, #wire).await?;
                    ::core::result::Result::Ok((#sender, #results))
                },
                "Opens the stream request",
            )
        }
        (_, Some(item)) => {
            let (results_ty, results) = json_results(m, item);
            (
                result(results_ty),
                quote! {
                    #encode
                    let __gotalk_conn = ::gotalk::__private::Connection::connection(#sock).await?;
                    let __gotalk_results = ::gotalk::__private::request_results(&__gotalk_conn, #wire, __gotalk_payload).await?;
                    ::core::result::Result::Ok(#results)
                },
                "Sends the request",
            )
        }
        (_, None) => {
            let decode = quote_spanned!(single_out.span()=> ::gotalk::__private::decode_result::<#single_out>(#wire, &__gotalk_result));
            // A call that is not sent again goes straight to the connection: no future
            // around the connection's own.
            let (conn, request) = if m.idempotent {
                (
                    quote!(),
                    quote!(::gotalk::__private::request_with(#sock, #wire, __gotalk_payload, ::gotalk::__private::CallOptions::new(), #timeout, true).await),
                )
            } else {
                (
                    quote!(let __gotalk_conn = ::gotalk::__private::Connection::connection(#sock).await?;),
                    quote!(::gotalk::__private::request(&__gotalk_conn, #wire, __gotalk_payload, #timeout).await),
                )
            };
            let (error, answer, decode) = caller_error(m, request, decode);
            (
                quote!(::core::result::Result<#single_out, #error>),
                quote! {
                    #encode
                    #conn
                    let __gotalk_result = #answer;
                    #decode
                },
                "Sends the request",
            )
        }
    };
    let doc = format!("{how} `{wire}` and waits for the answer.");
    quote! {
        #docs
        #[doc = #doc]
        pub async fn #ident(#sock: &impl ::gotalk::__private::Connection #param) -> #ret {
            #body
        }
    }
}

/// The type of a call's typed results with items of type `item`, and the expression that
/// makes them from `__gotalk_results`: failures are a `CallError` of the method's own
/// error type when it declares one (decoded as a single result's are), else
/// `gotalk::Error`.
fn json_results(m: &Method, item: &Type) -> (TokenStream, TokenStream) {
    let wire = &m.wire_name;
    match typed_error(m) {
        None => (
            quote!(::gotalk::__private::JsonResults<#item>),
            quote_spanned!(item.span()=> ::gotalk::__private::JsonResults::<#item>::new(__gotalk_results, #wire)),
        ),
        Some(ty) => (
            quote!(::gotalk::__private::JsonResults<#item, ::gotalk::CallError<#ty>>),
            quote_spanned! {ty.span()=>
                ::gotalk::__private::JsonResults::<#item, ::gotalk::CallError<#ty>>::with_errors(
                    __gotalk_results,
                    #wire,
                    |__gotalk_error| {
                        #[allow(unused_imports)]
                        use ::gotalk::__private::{DecodeTextError as _, DecodeTypedError as _};
                        (&::gotalk::__private::ErrorOf::<#ty>::new()).call_error(__gotalk_error)
                    },
                )
            },
        ),
    }
}

fn notifier_fn(m: &Method) -> TokenStream {
    let ident = &m.ident;
    let wire = &m.wire_name;
    let docs = docs(m);
    let sock = sock_ident(m);
    let (param, encode) = input_param(m);
    let doc = format!("Sends the notification `{wire}`.");
    quote! {
        #docs
        #[doc = #doc]
        pub async fn #ident(#sock: &impl ::gotalk::Notify #param) -> ::core::result::Result<(), ::gotalk::Error> {
            #encode
            ::gotalk::__private::notify(#sock, #wire, __gotalk_payload).await
        }
    }
}

/// The error type of a single-result client function, the expression that awaits
/// `request` and gives its payload or returns the call's error (a typed error is decoded
/// from the ErrorResult's text, see `__private::ErrorOf`), and the function's last
/// expression, from `decode` (which gives a `gotalk::Error`).
fn caller_error(
    m: &Method,
    request: TokenStream,
    decode: TokenStream,
) -> (TokenStream, TokenStream, TokenStream) {
    match typed_error(m) {
        None => (quote!(::gotalk::Error), quote!(#request?), decode),
        Some(ty) => (
            quote!(::gotalk::CallError<#ty>),
            quote_spanned! {ty.span()=>
                match #request {
                    ::core::result::Result::Ok(__gotalk_payload) => __gotalk_payload,
                    ::core::result::Result::Err(__gotalk_error) => {
                        #[allow(unused_imports)]
                        use ::gotalk::__private::{DecodeTextError as _, DecodeTypedError as _};
                        return ::core::result::Result::Err(
                            (&::gotalk::__private::ErrorOf::<#ty>::new()).call_error(__gotalk_error),
                        );
                    }
                }
            },
            quote!(::core::result::Result::Ok(#decode?)),
        ),
    }
}

/// The method's doc comments, then an empty line to separate what we add.
fn docs(method: &Method) -> TokenStream {
    let docs: Vec<_> = method
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .collect();
    if docs.is_empty() {
        return quote!();
    }
    quote!(#(#docs)* #[doc = ""])
}
