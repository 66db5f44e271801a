//! Our attributes: the macro's arguments and `#[gotalk(...)]` on methods.

use proc_macro2::TokenStream;
use syn::{meta::ParseNestedMeta, Attribute, LitStr};

use crate::{
    errors::Errors,
    model::{Args, Kind},
};

/// Parses `prefix = "..."` and `typescript`.
pub fn macro_args(kind: Kind, args: TokenStream, errors: &mut Errors) -> Args {
    let mut out = Args::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("prefix") {
            out.prefix = meta.value()?.parse::<LitStr>()?.value();
            Ok(())
        } else if meta.path.is_ident("typescript") {
            out.typescript = true;
            Ok(())
        } else {
            Err(meta.error(format!(
                "unknown argument `{}` of #[gotalk::{}]; the valid ones are `prefix = \"...\"` and `typescript`",
                path_text(&meta),
                kind.macro_name()
            )))
        }
    });
    if let Err(e) = syn::parse::Parser::parse2(parser, args) {
        errors.push(e);
    }
    out
}

/// What `#[gotalk(...)]` says about one method.
#[derive(Default)]
pub struct MethodAttrs {
    pub name: Option<LitStr>,
    pub timeout_ms: Option<u64>,
    /// `#[gotalk(idempotent)]`: where it was written, for errors about it.
    pub idempotent: Option<proc_macro2::Span>,
}

/// Splits a method's attributes into ours (parsed) and the rest (kept, e.g. docs).
pub fn method_attrs(
    kind: Kind,
    attrs: &[Attribute],
    errors: &mut Errors,
) -> (MethodAttrs, Vec<Attribute>) {
    let mut ours = MethodAttrs::default();
    let mut rest = Vec::new();
    let valid = match kind {
        Kind::Service => "`name`, `timeout` and `idempotent`",
        Kind::Notification => "`name`",
    };
    for attr in attrs {
        if !attr.path().is_ident("gotalk") {
            rest.push(attr.clone());
            continue;
        }
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                let lit: LitStr = meta.value()?.parse()?;
                if ours.name.is_some() {
                    return Err(syn::Error::new_spanned(&lit, "`name` is given twice"));
                }
                if lit.value().is_empty() {
                    return Err(syn::Error::new_spanned(&lit, format!("an {} name cannot be empty", kind.what())));
                }
                ours.name = Some(lit);
                Ok(())
            } else if meta.path.is_ident("timeout") && kind == Kind::Service {
                let lit: LitStr = meta.value()?.parse()?;
                if ours.timeout_ms.is_some() {
                    return Err(syn::Error::new_spanned(&lit, "`timeout` is given twice"));
                }
                let ms = parse_duration_ms(&lit.value()).ok_or_else(|| {
                    syn::Error::new_spanned(
                        &lit,
                        format!(
                            "invalid timeout {:?}: write a whole number with `ms`, `s` or `m`, e.g. \"5s\"",
                            lit.value()
                        ),
                    )
                })?;
                ours.timeout_ms = Some(ms);
                Ok(())
            } else if meta.path.is_ident("idempotent") && kind == Kind::Service {
                if ours.idempotent.is_some() {
                    return Err(meta.error("`idempotent` is given twice"));
                }
                ours.idempotent = Some(syn::spanned::Spanned::span(&meta.path));
                Ok(())
            } else {
                Err(meta.error(format!(
                    "unknown attribute key `{}`; valid keys here: {valid}",
                    path_text(&meta)
                )))
            }
        });
        if let Err(e) = result {
            errors.push(e);
        }
    }
    (ours, rest)
}

fn path_text(meta: &ParseNestedMeta<'_>) -> String {
    let path = &meta.path;
    quote::quote!(#path).to_string().replace(' ', "")
}

/// `"250ms"`, `"5s"`, `"2m"` in milliseconds.
fn parse_duration_ms(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let factor = match unit.trim() {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        _ => return None,
    };
    n.checked_mul(factor).filter(|&ms| ms > 0)
}

/// Whether a parameter attribute is `#[gotalk(context)]`.
pub fn is_context_marker(attr: &Attribute) -> bool {
    attr.path().is_ident("gotalk")
        && attr
            .parse_args::<syn::Ident>()
            .is_ok_and(|ident| ident == "context")
}

/// Removes our attributes from an item's methods (to emit the user's trait unchanged).
pub fn strip_ours(attrs: &mut Vec<Attribute>) {
    attrs.retain(|a| !a.path().is_ident("gotalk"));
}

#[cfg(test)]
mod tests {
    use super::parse_duration_ms;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("250ms"), Some(250));
        assert_eq!(parse_duration_ms("5s"), Some(5000));
        assert_eq!(parse_duration_ms("2m"), Some(120_000));
        assert_eq!(parse_duration_ms("5"), None);
        assert_eq!(parse_duration_ms("0s"), None);
        assert_eq!(parse_duration_ms("5 parsecs"), None);
        assert_eq!(parse_duration_ms("s"), None);
    }
}
