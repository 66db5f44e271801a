//! A valid model → code: the trait (rewritten), a client, a service, and type checks.
//!
//! Generated code names the runtime only as `::gotalk::__private::…` and std items by
//! absolute path, and its locals are `__gotalk_`-prefixed, so it compiles whatever the
//! user has in scope (even under `#![no_implicit_prelude]`, with their own `Result`
//! alias, or a `const out` that a plain `let out` would match against).

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::{parse_quote, spanned::Spanned, Generics, ItemTrait, TraitItem, Type};

use crate::{
    attr,
    model::{Context, Input, Kind, Method, Output, Trait},
};

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

/// `impl gotalk::typescript::Describe` for the client (or notifier): the trait's methods,
/// their wire names and types, for the TypeScript module.
fn typescript(model: &Trait, names: &Names) -> TokenStream {
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

/// The text of doc comments.
fn doc_text(attrs: &[syn::Attribute]) -> String {
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

fn client(model: &Trait, names: &Names) -> TokenStream {
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
                "Calls the operations of [`{trait_ident}`] on the peer of a [`gotalk::Sock`](::gotalk::Sock): \
                 `{client}::method(&sock, input).await`. Not constructed; its functions take the connection."
            ),
            format!("The wire names of the operations of [`{trait_ident}`]."),
            format_ident!("OPERATIONS"),
        ),
        Kind::Notification => (
            format!(
                "Sends the notifications of [`{trait_ident}`] to the peer of a [`gotalk::Sock`](::gotalk::Sock), \
                 or to a topic's subscribers (any [`gotalk::Notify`](::gotalk::Notify)): \
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
            /// Calls with per-call options (a timeout, retries on a RetryResult):
            /// `Client::with(&sock, CallOptions::new().timeout(t).retries(3)).method(input)`.
            /// An option not given falls back to the method's `#[gotalk(timeout)]`, then
            /// to the connection's call timeout. Stream operations are called as usual.
            pub fn with<'gotalk>(sock: &'gotalk ::gotalk::Sock, options: ::gotalk::__private::CallOptions) -> #with #with_ty {
                #with(sock, options, ::core::marker::PhantomData)
            }
        }

        #[doc = #struct_doc]
        #vis struct #with #with_generics (&'gotalk ::gotalk::Sock, ::gotalk::__private::CallOptions, #phantom) #where_clause;

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
    let request = quote!(::gotalk::__private::request_with(self.0, #wire, __gotalk_payload, self.1, #timeout).await);
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
            let results = quote_spanned!(out.span()=> ::gotalk::__private::JsonResults::<#out>::new(__gotalk_results, #wire));
            (
                result(
                    quote!((::gotalk::__private::JsonSender<#item>, ::gotalk::__private::JsonResults<#out>)),
                ),
                quote! {
                    let (__gotalk_writer, __gotalk_results) = ::gotalk::__private::open_stream(#sock, #wire).await?;
                    ::core::result::Result::Ok((#sender, #results))
                },
                "Opens the stream request",
            )
        }
        (_, Some(item)) => {
            let results = quote_spanned!(item.span()=> ::gotalk::__private::JsonResults::<#item>::new(__gotalk_results, #wire));
            (
                result(quote!(::gotalk::__private::JsonResults<#item>)),
                quote! {
                    #encode
                    let __gotalk_results = ::gotalk::__private::request_results(#sock, #wire, __gotalk_payload).await?;
                    ::core::result::Result::Ok(#results)
                },
                "Sends the request",
            )
        }
        (_, None) => {
            let decode = quote_spanned!(single_out.span()=> ::gotalk::__private::decode_result::<#single_out>(#wire, &__gotalk_result));
            let request = quote!(::gotalk::__private::request(#sock, #wire, __gotalk_payload, #timeout).await);
            let (error, answer, decode) = caller_error(m, request, decode);
            (
                quote!(::core::result::Result<#single_out, #error>),
                quote! {
                    #encode
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
        pub async fn #ident(#sock: &::gotalk::Sock #param) -> #ret {
            #body
        }
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

fn service(model: &Trait, names: &Names) -> TokenStream {
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

            fn register(self, __gotalk_handlers: &mut ::gotalk::__private::Handlers) {
                #(#registrations)*
            }
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
        Output::Stream(item) => {
            quote!(::gotalk::__private::reply_stream::<#item>(#wire, __gotalk_out))
        }
        Output::ResultStream { item, err: e } => {
            let answer = answer_error(wire, e);
            let e = err(e);
            quote!(::gotalk::__private::reply_result_stream::<#item, #e>(#wire, __gotalk_out, #answer))
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
                });
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
                });
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
                });
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

/// The closure that answers a handler's `Err`: JSON for an error type that is
/// `Serialize`, its text otherwise (see `__private::ErrorReply`).
fn answer_error(wire: &str, err: &Option<Type>) -> TokenStream {
    let span = err.as_ref().map_or_else(Span::call_site, |ty| ty.span());
    quote_spanned! {span=>
        |__gotalk_error| {
            #[allow(unused_imports)]
            use ::gotalk::__private::{ErrorAsJson as _, ErrorAsText as _};
            (&::gotalk::__private::ErrorReply(#wire, __gotalk_error)).error_reply()
        }
    }
}

/// The error type a caller gets back typed, in a `CallError`: a method's `Result<T, E>`
/// unless `E` is spelled as one of the errors that are only text (`gotalk::Error`,
/// `Error`, `String`, `Box<..>`, `anyhow::Error`), which the caller gets as
/// `gotalk::Error` as before.
fn typed_error(m: &Method) -> Option<&Type> {
    let Output::Result { err: Some(ty), .. } = &m.output else {
        return None;
    };
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
