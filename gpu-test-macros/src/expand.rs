//! Turns checked [`Args`] and a [`TestFn`] into code.
//!
//! For `#[gpu_test(devices = 2)] fn two(gpu: &Gpu) { .. }` the output is, in outline:
//!
//! ```text
//! fn __gpu_test_body_two(gpu: &Gpu) { .. }                     // the body as written
//! const __GPU_TEST_FN_two: fn(&Gpu) = __gpu_test_body_two;     // checked as gpu-test's signature
//! static __GPU_TEST_DEF_two: TestDef = TestDef { .. };         // name, requirements, body
//! __register_gpu_test!(..= &__GPU_TEST_DEF_two);             // a link-section entry, for `main()`
//! #[test] fn two() { run_under_libtest(&__GPU_TEST_DEF_two) } // for the default harness
//! ```
//!
//! The description is a sibling of the `#[test]` function, not inside it, because a `#[test]`
//! function is removed entirely from binaries built with `harness = false`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use crate::args::Args;
use crate::errors::Errors;
use crate::item::{self, TestFn};

/// The whole expansion: on any error, the item as written followed by `compile_error!`s, so that
/// the errors are the only ones the user sees.
pub(crate) fn gpu_test(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = Args::parse(attr, &mut errors);
    let test = item::check(item.clone(), &mut errors);
    match (errors.finish(), test) {
        (Ok(()), Some(test)) => generate(&args, test),
        (result, _) => {
            let errors = result.err().map(|error| error.to_compile_error());
            let item = item::without_refused_attributes(item);
            quote! {
                #item
                #errors
            }
        }
    }
}

fn generate(config: &Args, test: TestFn) -> TokenStream {
    let rt = match &config.crate_path {
        Some(path) => quote!(#path),
        None => quote!(::gpu_test_runtime),
    };
    let TestFn {
        item,
        takes_gpu,
        cfgs,
        ignore,
        ignore_reason,
    } = test;
    let name = &item.sig.ident;
    let vis = &item.vis;
    // The lints the function allows or expects are allowed on the test function too, which has
    // its name (`#[allow(non_snake_case)]`); `expect` as `allow`, since they may not fire there.
    let allowed: Vec<TokenStream> = item
        .attrs
        .iter()
        .filter_map(|attr| match &attr.meta {
            syn::Meta::List(list) if list.path.is_ident("allow") || list.path.is_ident("expect") => {
                let lints = &list.tokens;
                Some(quote!(#[allow(#lints)]))
            }
            _ => None,
        })
        .collect();
    // The wrapper's parameter, by a name no item of the user's has (a `static gpu` beside the
    // test would make `gpu` a pattern that cannot bind).
    let gpu = format_ident!("__gpu_test_handle");
    let body_name = format_ident!("__gpu_test_body_{}", name);
    // Prefixes none of which begins another, so that no two tests' names can meet.
    let def_name = format_ident!("__GPU_TEST_DEF_{}", name);
    let registration = format_ident!("__GPU_TEST_REGISTRATION_{}", name);

    let mut body = item.clone();
    body.sig.ident = body_name.clone();
    body.vis = syn::Visibility::Inherited;
    // With `feature = "cuda"`, the body as written, and its wrapper, exist only in builds with
    // the feature: its signature may name types that do too.
    // Every check of the feature is spanned on its name as written: rustc's check of cfg names
    // (`unexpected_cfgs`) then speaks of the user's feature, not of this macro's crate.
    let only_with_feature = match &config.feature {
        Some(feature) => quote_spanned!(feature.span()=> #[cfg(feature = #feature)]),
        None => quote!(),
    };

    let requirements = requirements(config, &rt);
    // The body as a `fn(&Gpu)`, spanned on its parameter's type: a type that only looks like
    // gpu-test's `Gpu` (another crate's, or `&'static Gpu`) is reported there, not on the attribute.
    let fn_name = format_ident!("__GPU_TEST_FN_{}", name);
    let as_fn = |output: &syn::ReturnType, gated: &TokenStream| match item.sig.inputs.first() {
        Some(syn::FnArg::Typed(param)) if takes_gpu => {
            let span = param.ty.span();
            let rt_spanned = respan(rt.clone(), span);
            let body = syn::Ident::new(&body_name.to_string(), span);
            quote_spanned! {span=>
                #(#cfgs)*
                #gated
                #[allow(non_upper_case_globals, dead_code)]
                #[doc(hidden)]
                const #fn_name: fn(&#rt_spanned::Gpu) #output = #body;
            }
        }
        _ => quote!(),
    };
    // A body returning `()` is pointed at as it is; any other goes through a wrapper that
    // converts its result: no closure, and no conversion the body does not need.
    let call_name = format_ident!("__gpu_test_call_{}", name);
    // Each kind of body also says what stands in for it without a feature: a stub of the fixed
    // signature the registration points at, never called (the test is skipped first).
    let unreachable = quote!(::core::unreachable!(
        "a #[gpu_test] built without its feature is never run"
    ));
    let (test_body, wrapper, stub) = match (&item.sig.output, takes_gpu) {
        // The stub has the same signature as the body here: the check of it is not gated.
        (syn::ReturnType::Default, true) => (
            quote!(#rt::__private::TestBody::Gpu(#fn_name)),
            as_fn(&syn::ReturnType::Default, &quote!()),
            quote!(fn #body_name(_: &#rt::Gpu) { #unreachable }),
        ),
        (syn::ReturnType::Default, false) => (
            quote!(#rt::__private::TestBody::Plain(#body_name)),
            quote!(),
            quote!(fn #body_name() { #unreachable }),
        ),
        (output @ syn::ReturnType::Type(_, ty), _) => {
            let as_fn = as_fn(output, &only_with_feature);
            let call = if takes_gpu {
                quote!(#fn_name(#gpu))
            } else {
                quote!({
                    let _ = #gpu;
                    #body_name()
                })
            };
            // `<ReturnType as IntoOutcome>`, every token spanned on the return type, so that an
            // unsupported return type is reported there rather than on the attribute.
            let output_span = ty.span();
            let rt_spanned = respan(rt.clone(), output_span);
            let into_outcome = quote_spanned! {output_span=>
                <#ty as #rt_spanned::__private::IntoOutcome>::into_outcome(#call)
            };
            let wrapper = quote! {
                #as_fn

                #(#cfgs)*
                #only_with_feature
                #[allow(non_snake_case, dead_code)]
                #[doc(hidden)]
                fn #call_name(#gpu: &#rt::Gpu) -> #rt::__private::Outcome {
                    #into_outcome
                }
            };
            (
                quote!(#rt::__private::TestBody::Outcome(#call_name)),
                wrapper,
                quote!(fn #call_name(_: &#rt::Gpu) -> #rt::__private::Outcome { #unreachable }),
            )
        }
    };
    let stub = match &config.feature {
        Some(feature) => {
            let without_feature = quote_spanned!(feature.span()=> #[cfg(not(feature = #feature))]);
            quote! {
                #(#cfgs)*
                #without_feature
                #[allow(non_snake_case, dead_code)]
                #[doc(hidden)]
                #stub
            }
        }
        None => quote!(),
    };
    let line = quote_spanned!(name.span()=> ::core::line!());
    let ignored = ignore.is_some();
    let ignore_reason = match &ignore_reason {
        Some(reason) => quote!(::core::option::Option::Some(#reason)),
        None => quote!(::core::option::Option::None),
    };
    let each_device = config.each_device.is_some();
    let leak_check = match config.leak_check {
        Some(flag) => quote!(::core::option::Option::Some(#flag)),
        None => quote!(::core::option::Option::None),
    };
    let timeout_ms = match config.timeout_ms {
        Some(ms) => quote!(::core::option::Option::Some(#ms)),
        None => quote!(::core::option::Option::None),
    };

    quote! {
        #(#cfgs)*
        #only_with_feature
        #[allow(non_snake_case, dead_code)]
        #[doc(hidden)]
        #body

        #stub

        #wrapper

        #(#cfgs)*
        #[allow(non_upper_case_globals, dead_code)]
        #[doc(hidden)]
        static #def_name: #rt::__private::TestDef = #rt::__private::TestDef {
            // Empty where a build system other than cargo does not set it.
            package: match ::core::option_env!("CARGO_PKG_NAME") {
                ::core::option::Option::Some(__gpu_test_package) => __gpu_test_package,
                ::core::option::Option::None => "",
            },
            bin: ::core::option_env!("CARGO_BIN_NAME"),
            module_path: ::core::module_path!(),
            fn_name: ::core::stringify!(#name),
            file: ::core::file!(),
            line: #line,
            requirements: #requirements,
            ignored: #ignored,
            ignore_reason: #ignore_reason,
            timeout_ms: #timeout_ms,
            leak_check: #leak_check,
            each_device: #each_device,
            started: ::core::sync::atomic::AtomicBool::new(false),
            body: #test_body,
        };

        #(#cfgs)*
        #rt::__register_gpu_test!(#registration = &#def_name);

        #(#cfgs)*
        #[::core::prelude::v1::test]
        #ignore
        #(#allowed)*
        #vis fn #name() {
            #rt::__private::run_under_libtest(&#def_name)
        }
    }
}

/// The same tokens with every span replaced by `span`.
fn respan(tokens: TokenStream, span: proc_macro2::Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let proc_macro2::TokenTree::Group(group) = &token {
                let mut inner = proc_macro2::Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                token = proc_macro2::TokenTree::Group(inner);
            } else {
                token.set_span(span);
            }
            token
        })
        .collect()
}

fn requirements(config: &Args, rt: &TokenStream) -> TokenStream {
    let mut built = quote!(#rt::Requirements::new());
    if let Some(devices) = config.devices {
        built = quote!(#built.devices(#devices));
    }
    let version = |v: crate::values::Version| {
        let (major, minor) = (v.major, v.minor);
        quote!(#rt::Version::new(#major, #minor))
    };
    if let Some(v) = config.min_cuda {
        let v = version(v);
        built = quote!(#built.min_cuda(#v));
    }
    if let Some(v) = config.min_compute {
        let v = version(v);
        built = quote!(#built.min_compute(#v));
    }
    if let Some(bytes) = config.min_memory {
        built = quote!(#built.min_memory(#bytes));
    }
    if let Some(bytes) = config.memory {
        built = quote!(#built.memory(#bytes));
    }
    if let Some(bytes) = config.min_free_memory {
        built = quote!(#built.min_free_memory(#bytes));
    }
    if let Some(v) = config.min_toolkit {
        let v = version(v);
        built = quote!(#built.min_toolkit(#v));
    }
    if let Some(feature) = &config.feature {
        let enabled = quote_spanned!(feature.span()=> ::core::cfg!(feature = #feature));
        built = quote!(#built.feature(#feature, #enabled));
    }
    built
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_names_the_test_after_the_function() {
        let out = gpu_test(
            quote!(devices = 2, min_cuda = "11.8"),
            quote!(
                fn two(gpu: &Gpu) {}
            ),
        )
        .to_string();
        assert!(out.contains("fn two ()"), "{out}");
        assert!(out.contains("fn __gpu_test_body_two (gpu : & Gpu)"), "{out}");
        assert!(out.contains(":: gpu_test_runtime :: Requirements :: new () . devices (2u32) . min_cuda (:: gpu_test_runtime :: Version :: new (11u32 , 8u32))"), "{out}");
        assert!(out.contains(":: core :: prelude :: v1 :: test"), "{out}");
    }

    /// Where the attribute reports an error, the function it keeps has none of the attributes it
    /// refused: rustc would add errors of its own about them (a `#[test]` with a parameter).
    #[test]
    fn an_error_keeps_the_function_without_the_attributes_it_refused() {
        let out = gpu_test(
            quote!(),
            quote!(
                #[test]
                #[should_panic]
                #[gpu_test_runtime::gpu_test]
                #[doc = "kept"]
                fn t(gpu: &Gpu) {}
            ),
        )
        .to_string();
        assert!(out.contains("fn t (gpu : & Gpu) { }"), "{out}");
        assert!(out.contains("# [doc = \"kept\"]"), "{out}");
        for refused in ["# [test]", "# [should_panic]", "# [gpu_test_runtime :: gpu_test]"] {
            assert!(!out.contains(refused), "{refused}: {out}");
        }
        assert_eq!(out.matches("compile_error").count(), 3, "{out}");
    }

    #[test]
    fn crate_path_replaces_the_runtime_path() {
        let out = gpu_test(
            quote!(crate = "my_gpu::rt"),
            quote!(
                fn t() {}
            ),
        )
        .to_string();
        assert!(
            out.contains("my_gpu :: rt :: __private :: run_under_libtest"),
            "{out}"
        );
        assert!(!out.contains("gpu_test_runtime"), "{out}");
    }

    #[test]
    fn a_feature_gates_the_body_but_not_the_test() {
        let out = gpu_test(
            quote!(feature = "cuda"),
            quote!(
                fn t(gpu: &Gpu) {}
            ),
        )
        .to_string();
        assert!(
            out.contains("# [cfg (feature = \"cuda\")] # [allow (non_snake_case , dead_code)] # [doc (hidden)] fn __gpu_test_body_t"),
            "{out}"
        );
        assert!(
            out.contains(". feature (\"cuda\" , :: core :: cfg ! (feature = \"cuda\"))"),
            "{out}"
        );
        // The stub names no type of the body's signature, which may exist only with the feature.
        assert!(
            out.contains("# [cfg (not (feature = \"cuda\"))] # [allow (non_snake_case , dead_code)] # [doc (hidden)] fn __gpu_test_body_t (_ : & :: gpu_test_runtime :: Gpu) { :: core :: unreachable !"),
            "{out}"
        );
        let out = gpu_test(
            quote!(feature = "cuda"),
            quote!(
                fn t() -> Result<(), my::Error> {}
            ),
        )
        .to_string();
        assert!(
            out.contains("# [cfg (feature = \"cuda\")] # [allow (non_snake_case , dead_code)] # [doc (hidden)] fn __gpu_test_call_t"),
            "{out}"
        );
        assert!(
            out.contains("# [cfg (not (feature = \"cuda\"))] # [allow (non_snake_case , dead_code)] # [doc (hidden)] fn __gpu_test_call_t (_ : & :: gpu_test_runtime :: Gpu) -> :: gpu_test_runtime :: __private :: Outcome { :: core :: unreachable !"),
            "{out}"
        );
        assert_eq!(
            out.matches("my :: Error").count(),
            2,
            "the body and its wrapper: {out}"
        );
        // The #[test] function carries no feature gate.
        assert!(
            out.contains("# [:: core :: prelude :: v1 :: test] fn t ()"),
            "{out}"
        );
    }

    #[test]
    fn errors_keep_the_item_and_add_compile_error() {
        let out = gpu_test(
            quote!(device = 2),
            quote!(
                fn t() {}
            ),
        )
        .to_string();
        assert!(out.starts_with("fn t () { }"), "{out}");
        assert!(out.contains("compile_error"), "{out}");
    }
}
