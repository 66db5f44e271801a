//! syn's trait → our model, reporting every unsupported shape at the token to change.

use quote::quote;
use syn::{
    FnArg, GenericArgument, GenericParam, ItemTrait, Pat, PathArguments, PathSegment, ReturnType,
    TraitItem, TraitItemFn, Type,
};

use crate::{
    attr,
    errors::Errors,
    model::{Args, Context, Input, Kind, Method, Output, Trait},
};

pub fn parse(kind: Kind, item: &ItemTrait, args: Args, errors: &mut Errors) -> Trait {
    let what = format!("#[gotalk::{}] trait", kind.macro_name());
    if let Some(token) = &item.unsafety {
        errors.spanned(token, format!("a {what} cannot be `unsafe`"));
    }
    if let Some(token) = &item.auto_token {
        errors.spanned(token, format!("a {what} cannot be `auto`"));
    }
    for param in &item.generics.params {
        match param {
            GenericParam::Type(_) => {}
            GenericParam::Lifetime(l) => errors.spanned(
                l,
                "lifetime parameters are not supported: inputs and outputs are owned values decoded from the wire",
            ),
            GenericParam::Const(c) => errors.spanned(c, "const generic parameters are not supported"),
        }
    }
    let mut methods = Vec::new();
    for trait_item in &item.items {
        match trait_item {
            TraitItem::Fn(f) => {
                if let Some(method) = parse_method(kind, f, &args, errors) {
                    methods.push(method);
                }
            }
            TraitItem::Type(t) => {
                let (kw, ident) = (&t.type_token, &t.ident);
                errors.spanned(
                    quote!(#kw #ident),
                    format!("associated types are not supported in a {what}: every input and output is a concrete type"),
                );
            }
            TraitItem::Const(c) => {
                let (kw, ident) = (&c.const_token, &c.ident);
                errors.spanned(
                    quote!(#kw #ident),
                    format!("associated consts are not supported in a {what}"),
                );
            }
            other => errors.spanned(
                other,
                format!("only `async fn` methods are allowed in a {what}"),
            ),
        }
    }
    Trait {
        kind,
        item: item.clone(),
        methods,
        typescript: args.typescript,
    }
}

fn parse_method(kind: Kind, f: &TraitItemFn, args: &Args, errors: &mut Errors) -> Option<Method> {
    let sig = &f.sig;
    let ident = &sig.ident;
    let (ours, attrs) = attr::method_attrs(kind, &f.attrs, errors);
    let before = errors_len(errors);
    let what = format!("#[gotalk::{}] method", kind.macro_name());

    if sig.asyncness.is_none() {
        let fn_token = &sig.fn_token;
        errors.spanned(
            quote!(#fn_token #ident),
            format!("a {what} must be `async fn`"),
        );
    }
    if let Some(token) = &sig.constness {
        errors.spanned(token, format!("a {what} cannot be `const`"));
    }
    if let Some(token) = &sig.unsafety {
        errors.spanned(token, format!("a {what} cannot be `unsafe`"));
    }
    if let Some(abi) = &sig.abi {
        errors.spanned(abi, format!("a {what} cannot have an ABI"));
    }
    if !sig.generics.params.is_empty() {
        errors.spanned(
            &sig.generics,
            "generic methods are not supported: each operation has one concrete input and output type (put type parameters on the trait)",
        );
    } else if let Some(clause) = &sig.generics.where_clause {
        errors.spanned(
            clause,
            "`where` clauses on methods are not supported (put bounds on the trait)",
        );
    }
    if let Some(variadic) = &sig.variadic {
        errors.spanned(variadic, format!("a {what} cannot be variadic"));
    }
    if f.default.is_some() {
        errors.spanned(
            ident,
            format!("a {what} cannot have a default body: implement it in the `impl` of the trait"),
        );
    }

    let mut params = sig.inputs.iter();
    match params.next() {
        Some(FnArg::Receiver(r)) if r.colon_token.is_some() => {
            errors.spanned(r, "use `&self`: other receiver types are not supported");
        }
        Some(FnArg::Receiver(r)) if r.reference.is_none() => {
            errors.spanned(r, "`self` by value is not allowed: use `&self` (one implementation serves every request)");
        }
        Some(FnArg::Receiver(r)) if r.mutability.is_some() => {
            errors.spanned(r, "`&mut self` is not allowed: handlers run concurrently; use `&self` and interior mutability");
        }
        Some(FnArg::Receiver(_)) => {}
        _ => errors.spanned(
            quote!(#ident),
            format!("a {what} takes `&self` as its first parameter"),
        ),
    }

    let mut context = None;
    let mut input = Input::None;
    for param in params {
        let FnArg::Typed(pt) = param else {
            continue; // a second receiver is rejected by rustc itself
        };
        let name = match &*pt.pat {
            Pat::Ident(p) if p.subpat.is_none() && p.by_ref.is_none() => p.ident.clone(),
            other => {
                errors.spanned(other, "use a plain name for this parameter, not a pattern");
                continue;
            }
        };
        let marked = pt.attrs.iter().any(attr::is_context_marker);
        let found = if marked {
            if matches!(&*pt.ty, Type::Reference(_)) {
                errors.spanned(&pt.ty, "a `#[gotalk(context)]` parameter is taken by value");
            }
            Some(Context::Custom(pt.ty.clone()))
        } else {
            sock_context(&pt.ty)
        };
        if let Some(found) = found {
            if context.is_some() {
                errors.spanned(param, "only one connection parameter is allowed");
            } else if !matches!(input, Input::None) {
                errors.spanned(
                    param,
                    "the connection parameter must come right after `&self`, before the input",
                );
            } else {
                context = Some(found);
            }
            continue;
        }
        if !matches!(input, Input::None) {
            errors.spanned(
                param,
                format!("a {what} takes at most one input parameter: put several values in a struct or a tuple"),
            );
            continue;
        }
        match &*pt.ty {
            Type::Reference(r) => errors.spanned(
                r,
                "the input must be an owned type (it is decoded from the request): e.g. `String` rather than `&str`",
            ),
            Type::ImplTrait(t) => errors.spanned(t, "`impl Trait` inputs are not supported: use a concrete type"),
            ty => match single_arg(ty, "StreamIn") {
                Some(_) if kind == Kind::Notification => {
                    errors.spanned(ty, "a notification cannot stream its payload");
                }
                Some(item) => {
                    input = Input::Stream {
                        ident: name,
                        item: item.clone(),
                    }
                }
                None => {
                    input = Input::Value {
                        ident: name,
                        ty: ty.clone(),
                    }
                }
            },
        }
    }

    let output = match &sig.output {
        ReturnType::Default => Output::Unit,
        ReturnType::Type(_, ty) => parse_output(ty, &what, errors),
    };
    if kind == Kind::Notification && !matches!(output, Output::Unit) {
        if let ReturnType::Type(arrow, ty) = &sig.output {
            errors.spanned(
                quote!(#arrow #ty),
                "a notification is never answered: remove the return type",
            );
        }
    }

    if let Some(span) = ours.idempotent {
        if matches!(input, Input::Stream { .. }) || output.stream_item().is_some() {
            errors.push(syn::Error::new(
                span,
                "only a single-result call can be sent again: a stream's parts already \
                 delivered cannot be taken back, so remove `idempotent`",
            ));
        }
    }
    let (wire_name, name_span) = match &ours.name {
        Some(lit) => (format!("{}{}", args.prefix, lit.value()), lit.span()),
        None => (format!("{}{}", args.prefix, ident), ident.span()),
    };
    (errors_len(errors) == before).then(|| Method {
        ident: ident.clone(),
        wire_name,
        name_span,
        attrs,
        context,
        input,
        output,
        timeout_ms: ours.timeout_ms,
        idempotent: ours.idempotent.is_some(),
    })
}

fn parse_output(ty: &Type, what: &str, errors: &mut Errors) -> Output {
    match ty {
        Type::Tuple(t) if t.elems.is_empty() => return Output::Unit,
        Type::Reference(r) => {
            errors.spanned(
                r,
                "return an owned type: the result is encoded and sent, so it cannot borrow",
            );
            return Output::Unit;
        }
        Type::Path(_) => {}
        other => {
            errors.spanned(
                other,
                format!("unsupported return type for a {what}: return `T`, `Result<T, E>` or `gotalk::StreamOut<T>`"),
            );
            return Output::Unit;
        }
    }
    if let Some(seg) = last_segment(ty).filter(|s| s.ident == "Result") {
        let args = type_args(seg);
        if let Some(ok) = args.first() {
            let err = args.get(1).map(|t| (*t).clone());
            return match stream_out(ok) {
                Some((item, stream_err)) => {
                    if let (Some(e), Some(s)) = (&err, stream_err) {
                        if quote::quote!(#e).to_string() != quote::quote!(#s).to_string() {
                            errors.spanned(
                                s,
                                "the stream's error type must be the method's: the caller \
                                 decodes both as one type, so write the same `E` in \
                                 `Result<StreamOut<T, E>, E>` (or leave one out)",
                            );
                        }
                    }
                    Output::ResultStream {
                        item: item.clone(),
                        err,
                        stream_err: stream_err.cloned().map(Box::new),
                    }
                }
                None => Output::Result {
                    ok: (*ok).clone(),
                    err,
                },
            };
        }
    }
    match stream_out(ty) {
        Some((item, err)) => Output::Stream {
            item: item.clone(),
            err: err.cloned(),
        },
        None => Output::Value(ty.clone()),
    }
}

/// `StreamOut<item>` or `StreamOut<item, err>`: the item and the error type if named.
fn stream_out(ty: &Type) -> Option<(&Type, Option<&Type>)> {
    let seg = last_segment(ty).filter(|s| s.ident == "StreamOut")?;
    match type_args(seg).as_slice() {
        [item] => Some((item, None)),
        [item, err] => Some((item, Some(err))),
        _ => None,
    }
}

/// `Some(by_ref)` if `ty` is the connection: `&Sock`, `&gotalk::Sock` or `Sock`.
/// The context a parameter of type `Sock` or `&Sock` is.
fn sock_context(ty: &Type) -> Option<Context> {
    let (inner, context) = match ty {
        Type::Reference(r) if r.mutability.is_none() => (&*r.elem, Context::SockRef),
        other => (other, Context::Sock),
    };
    let seg = last_segment(inner)?;
    (seg.ident == "Sock" && seg.arguments.is_empty()).then_some(context)
}

fn last_segment(ty: &Type) -> Option<&PathSegment> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last(),
        _ => None,
    }
}

fn type_args(seg: &PathSegment) -> Vec<&Type> {
    match &seg.arguments {
        PathArguments::AngleBracketed(a) => a
            .args
            .iter()
            .filter_map(|arg| match arg {
                GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// `T` if `ty` is `name<T>` (by its last path segment).
fn single_arg<'a>(ty: &'a Type, name: &str) -> Option<&'a Type> {
    let seg = last_segment(ty).filter(|s| s.ident == name)?;
    match type_args(seg).as_slice() {
        [item] => Some(item),
        _ => None,
    }
}

fn errors_len(errors: &Errors) -> usize {
    errors.len()
}
