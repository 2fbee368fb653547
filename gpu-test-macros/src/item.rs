//! The function item `#[gpu_test]` is put on: checked, and its attributes sorted.
//!
//! Accepted: `fn name()` or `fn name(gpu: &Gpu)`, returning `()` or `Result<(), E: Debug>` (the
//! return type is checked by the compiler through a trait, with a message of our own).

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, ExprLit, FnArg, ItemFn, Lit, Meta, Pat, Type};

use crate::errors::Errors;

/// A checked test function.
pub(crate) struct TestFn {
    /// The function as written, minus the attributes sorted out below.
    pub(crate) item: ItemFn,
    /// Whether the body takes the `&Gpu` handle.
    pub(crate) takes_gpu: bool,
    /// `#[cfg]` and `#[cfg_attr]`: repeated on every generated item.
    pub(crate) cfgs: Vec<Attribute>,
    /// `#[ignore]` or `#[ignore = "why"]`, put on the generated `#[test]`.
    pub(crate) ignore: Option<Attribute>,
    /// The reason given in `#[ignore = "why"]`, if any.
    pub(crate) ignore_reason: Option<String>,
}

/// Parses `item` as a test function, adding every problem found to `errors`; `None` when it is
/// not a function at all.
pub(crate) fn check(item: TokenStream, errors: &mut Errors) -> Option<TestFn> {
    let mut item = match syn::parse2::<ItemFn>(item.clone()) {
        Ok(item) => item,
        // A function syn cannot read: its own error says where.
        Err(error) if is_a_function(&item) => {
            errors.add(error);
            return None;
        }
        Err(_) => {
            errors.push(
                item_keyword_span(&item),
                "#[gpu_test] goes on a function: `fn name()` or `fn name(gpu: &gpu_test_runtime::Gpu)`",
            );
            return None;
        }
    };
    check_qualifiers(&item, errors);
    let takes_gpu = check_inputs(&item, errors);
    check_output(&item, errors);

    let mut cfgs = Vec::new();
    let mut ignore = None;
    let mut ignore_reason = None;
    let mut kept = Vec::new();
    for attr in std::mem::take(&mut item.attrs) {
        let path = attr.path();
        if path.is_ident("cfg") || path.is_ident("cfg_attr") {
            cfgs.push(attr);
        } else if path.is_ident("ignore") {
            ignore_reason = ignore_reason_of(&attr, errors);
            ignore = Some(attr);
        } else if let Some(refusal) = refusal(&attr) {
            errors.push_spanned(&attr, refusal);
        } else {
            kept.push(attr);
        }
    }
    item.attrs = kept;
    Some(TestFn {
        item,
        takes_gpu,
        cfgs,
        ignore,
        ignore_reason,
    })
}

/// Why `#[gpu_test]` refuses `attr` next to it, if it does: another test attribute,
/// `#[should_panic]`, a second `#[gpu_test]`.
fn refusal(attr: &Attribute) -> Option<&'static str> {
    let path = attr.path();
    let last = path
        .segments
        .last()
        .map(|s| s.ident.to_string())
        .unwrap_or_default();
    if last == "test" {
        Some("#[gpu_test] already makes this function a test: remove this test attribute")
    } else if path.is_ident("should_panic") {
        Some(
            "#[should_panic] cannot be used with #[gpu_test]: a skipped test would then count as a failure; \
             return a `Result` or assert on the expected error instead",
        )
    } else if last == "gpu_test" {
        Some("#[gpu_test] is given twice; put all keys in one attribute")
    } else {
        None
    }
}

/// `item` as written, less the attributes `#[gpu_test]` refused: where it reports errors, the
/// function stays (no cascade of errors about a missing function) without drawing the compiler's
/// own errors about those attributes (a `#[test]` function with a parameter, say).
pub(crate) fn without_refused_attributes(item: TokenStream) -> TokenStream {
    match syn::parse2::<ItemFn>(item.clone()) {
        Ok(mut function) => {
            function.attrs.retain(|attr| refusal(attr).is_none());
            function.into_token_stream()
        }
        Err(_) => item,
    }
}

/// Whether the tokens are a function's: `fn` past its attributes, visibility and qualifiers
/// (`const`, `async`, `unsafe`, `extern "C"`), not merely a `fn` type in some other item.
fn is_a_function(item: &TokenStream) -> bool {
    let mut tokens = past_attributes_and_visibility(item);
    while let Some(token) = tokens.next() {
        match &token {
            TokenTree::Ident(ident) if ident == "fn" => return true,
            TokenTree::Ident(ident)
                if ["const", "async", "unsafe", "safe", "extern", "default"]
                    .contains(&ident.to_string().as_str()) =>
            {
                // `extern`'s ABI.
                tokens.next_if(|next| matches!(next, TokenTree::Literal(_)));
            }
            _ => return false,
        }
    }
    false
}

/// Where to point at an item that is not a function: its keyword (`struct`), past its attributes
/// and visibility.
fn item_keyword_span(item: &TokenStream) -> proc_macro2::Span {
    past_attributes_and_visibility(item)
        .next()
        .map_or_else(proc_macro2::Span::call_site, |token| token.span())
}

/// The item's tokens from its first keyword on: past `#[...]`s and `pub`, `pub(crate)` and the
/// like.
fn past_attributes_and_visibility(
    item: &TokenStream,
) -> std::iter::Peekable<proc_macro2::token_stream::IntoIter> {
    let mut tokens = item.clone().into_iter().peekable();
    loop {
        match tokens.peek() {
            Some(TokenTree::Punct(punct)) if punct.as_char() == '#' => {
                tokens.next();
                tokens.next_if(|next| matches!(next, TokenTree::Group(_)));
            }
            Some(TokenTree::Ident(ident)) if ident == "pub" => {
                tokens.next();
                tokens.next_if(
                    |next| matches!(next, TokenTree::Group(g) if g.delimiter() == Delimiter::Parenthesis),
                );
            }
            _ => return tokens,
        }
    }
}

fn check_qualifiers(item: &ItemFn, errors: &mut Errors) {
    let sig = &item.sig;
    if let Some(token) = &sig.asyncness {
        errors.push(
            token.span(),
            "#[gpu_test] functions cannot be `async`: GPU work is awaited by synchronising a stream; \
             write `fn`, and block on any future inside"
                .to_string(),
        );
    }
    if let Some(token) = &sig.constness {
        errors.push(
            token.span(),
            "#[gpu_test] functions cannot be `const`".to_string(),
        );
    }
    if let syn::Safety::Unsafe(token) = &sig.safety {
        errors.push(
            token.span(),
            "#[gpu_test] functions cannot be `unsafe fn`: put an `unsafe { }` block in the body".to_string(),
        );
    }
    if let Some(abi) = &sig.abi {
        errors.push(
            abi.span(),
            "#[gpu_test] functions cannot have an `extern` ABI".to_string(),
        );
    }
    if sig
        .generics
        .params
        .iter()
        .all(|param| matches!(param, syn::GenericParam::Lifetime(_)))
    {
        if !sig.generics.params.is_empty() {
            errors.push_spanned(
                &sig.generics,
                "#[gpu_test] functions cannot declare lifetimes: take `gpu: &Gpu` and let its lifetime be \
                 inferred"
                    .to_string(),
            );
        }
    } else {
        errors.push_spanned(
            &sig.generics,
            "#[gpu_test] functions cannot be generic: the harness must know the concrete function to call"
                .to_string(),
        );
    }
    if let Some(clause) = &sig.generics.where_clause {
        errors.push(
            clause.span(),
            "#[gpu_test] functions cannot have a `where` clause".to_string(),
        );
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(
            variadic.span(),
            "#[gpu_test] functions cannot be variadic".to_string(),
        );
    }
}

/// Returns whether the function takes the `&Gpu` handle.
fn check_inputs(item: &ItemFn, errors: &mut Errors) -> bool {
    let accepted = "the only parameter a #[gpu_test] function may take is `gpu: &Gpu` \
                    (gpu_test_runtime::Gpu)";
    let mut inputs = item.sig.inputs.iter();
    let Some(first) = inputs.next() else {
        return false;
    };
    for extra in inputs {
        errors.push_spanned(extra, format!("too many parameters: {accepted}"));
    }
    let typed = match first {
        FnArg::Receiver(receiver) => {
            errors.push(
                receiver.span(),
                format!("#[gpu_test] functions cannot take `self`: {accepted}"),
            );
            return true;
        }
        FnArg::Typed(typed) => typed,
    };
    if !matches!(&*typed.pat, Pat::Ident(_) | Pat::Wild(_)) {
        errors.push(
            typed.pat.span(),
            format!("expected a plain name such as `gpu`: {accepted}"),
        );
    }
    match ungrouped(&typed.ty) {
        Type::Reference(reference) => {
            if let Some(mutability) = &reference.mutability {
                errors.push(
                    mutability.span(),
                    format!("the handle is shared, so take `&Gpu`, not `&mut Gpu`: {accepted}"),
                );
            }
            // Another name may be `Gpu` imported under it (`use gpu_test_runtime::Gpu as
            // Device`): the signature check of the generated code tells, on this type.
            if !is_gpu_path(&reference.elem) && !may_name_the_gpu(&reference.elem) {
                errors.push(
                    reference.elem.span(),
                    format!("unexpected parameter type: {accepted}"),
                );
            }
        }
        other => {
            let message = if is_gpu_path(other) {
                format!("take the handle by reference: {accepted}")
            } else {
                format!("unexpected parameter type: {accepted}")
            };
            errors.push(other.span(), message);
        }
    }
    true
}

/// `ty` without the invisible group a `macro_rules!` fragment (`$t:ty`) puts around it, or
/// parentheses.
fn ungrouped(ty: &Type) -> &Type {
    match ty {
        Type::Group(inner) => ungrouped(&inner.elem),
        Type::Paren(inner) => ungrouped(&inner.elem),
        other => other,
    }
}

/// The return types the harness cannot name: `impl Trait` anywhere in them, and `!`.
fn check_output(item: &ItemFn, errors: &mut Errors) {
    let syn::ReturnType::Type(_, ty) = &item.sig.output else {
        return;
    };
    let accepted = "#[gpu_test] functions return `()` or `Result<(), E>` where `E: Debug`";
    if matches!(ungrouped(ty), Type::Never(_)) {
        errors.push_spanned(
            ty,
            format!("{accepted}; a function that never returns (`!`) cannot pass or fail"),
        );
    } else if let Some(span) = impl_keyword(ty.to_token_stream()) {
        errors.push(
            span,
            format!("{accepted}, named: write the type out instead of `impl Trait`"),
        );
    }
}

/// Where `impl` is in `tokens`, at any depth of the type: not in a macro's input
/// (`error_of!(impl)`) or a block (a const argument), which are not types.
fn impl_keyword(tokens: TokenStream) -> Option<proc_macro2::Span> {
    let mut tokens = tokens.into_iter().peekable();
    while let Some(token) = tokens.next() {
        match token {
            TokenTree::Ident(ident) if ident == "impl" => return Some(ident.span()),
            TokenTree::Punct(punct) if punct.as_char() == '!' => {
                tokens.next_if(|next| matches!(next, TokenTree::Group(_)));
            }
            TokenTree::Group(group) if group.delimiter() != Delimiter::Brace => {
                if let Some(span) = impl_keyword(group.stream()) {
                    return Some(span);
                }
            }
            _ => {}
        }
    }
    None
}

/// Whether `ty` is a path that could be `Gpu` under another name: not a primitive type, not
/// `str` or `String`, not a path with generic arguments.
fn may_name_the_gpu(ty: &Type) -> bool {
    const NOT_THE_GPU: [&str; 19] = [
        "bool", "char", "str", "String", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32",
        "i64", "i128", "isize", "f32", "f64", "Self",
    ];
    match ungrouped(ty) {
        Type::Path(path) if path.qself.is_none() => path.path.segments.last().is_some_and(|last| {
            last.arguments.is_empty() && !NOT_THE_GPU.iter().any(|name| last.ident == name)
        }),
        _ => false,
    }
}

fn is_gpu_path(ty: &Type) -> bool {
    match ty {
        Type::Path(path) if path.qself.is_none() => path
            .path
            .segments
            .last()
            .is_some_and(|last| last.ident == "Gpu" && last.arguments.is_empty()),
        Type::Paren(inner) => is_gpu_path(&inner.elem),
        Type::Group(inner) => is_gpu_path(&inner.elem),
        _ => false,
    }
}

fn ignore_reason_of(attr: &Attribute, errors: &mut Errors) -> Option<String> {
    match &attr.meta {
        Meta::Path(_) => None,
        Meta::NameValue(nv) => match &nv.value {
            Expr::Lit(ExprLit {
                lit: Lit::Str(reason),
                ..
            }) => Some(reason.value()),
            other => {
                errors.push(
                    other.span(),
                    "expected `#[ignore]` or `#[ignore = \"reason\"]`".to_string(),
                );
                None
            }
        },
        Meta::List(list) => {
            errors.push(
                list.span(),
                "expected `#[ignore]` or `#[ignore = \"reason\"]`".to_string(),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse(tokens: TokenStream) -> syn::Result<TestFn> {
        let mut errors = Errors::default();
        let test = check(tokens, &mut errors);
        errors
            .finish()
            .map(|()| test.expect("a function when there is no error"))
    }

    fn error(tokens: TokenStream) -> String {
        parse(tokens).err().expect("an error").to_string()
    }

    #[test]
    fn plain_and_gpu_functions_are_accepted() {
        assert!(
            !parse(quote!(
                fn t() {}
            ))
            .unwrap()
            .takes_gpu
        );
        assert!(
            parse(quote!(
                fn t(gpu: &Gpu) {}
            ))
            .unwrap()
            .takes_gpu
        );
        assert!(
            parse(quote!(
                fn t(_: &gpu_test_runtime::Gpu) -> Result<(), String> {
                    Ok(())
                }
            ))
            .unwrap()
            .takes_gpu
        );
    }

    #[test]
    fn attributes_are_sorted() {
        let test = parse(quote!(
            #[cfg(feature = "gpu")]
            #[ignore = "slow"]
            #[allow(unused)]
            fn t() {}
        ))
        .unwrap();
        assert_eq!(test.cfgs.len(), 1);
        assert!(test.ignore.is_some());
        assert_eq!(test.ignore_reason.as_deref(), Some("slow"));
        assert_eq!(test.item.attrs.len(), 1);
    }

    #[test]
    fn rejected_shapes_say_why() {
        assert!(
            error(quote!(
                struct S;
            ))
            .contains("goes on a function")
        );
        assert!(
            error(quote!(
                async fn t() {}
            ))
            .contains("cannot be `async`")
        );
        assert!(
            error(quote!(
                unsafe fn t() {}
            ))
            .contains("cannot be `unsafe fn`")
        );
        assert!(
            error(quote!(
                fn t<T>() {}
            ))
            .contains("cannot be generic")
        );
        assert!(
            error(quote!(
                fn t(n: u32) {}
            ))
            .contains("unexpected parameter type")
        );
        assert!(
            error(quote!(
                fn t(gpu: &mut Gpu) {}
            ))
            .contains("not `&mut Gpu`")
        );
        assert!(
            error(quote!(
                fn t(gpu: Gpu) {}
            ))
            .contains("by reference")
        );
        assert!(
            error(quote!(
                fn t(a: &Gpu, b: &Gpu) {}
            ))
            .contains("too many parameters")
        );
        assert!(
            error(quote!(
                #[test]
                fn t() {}
            ))
            .contains("remove this test attribute")
        );
        assert!(
            error(quote!(
                #[tokio::test]
                fn t() {}
            ))
            .contains("remove this test attribute")
        );
        assert!(
            error(quote!(
                #[should_panic]
                fn t() {}
            ))
            .contains("#[should_panic] cannot be used")
        );
    }
}
