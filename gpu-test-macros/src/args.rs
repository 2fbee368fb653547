//! The attribute's arguments, `#[gpu_test(key = value, ...)]`, parsed into [`Args`].
//!
//! Every error carries the span of the offending token and says what would be accepted.

use proc_macro2::TokenStream;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{Expr, ExprLit, Ident, Lit, LitStr, Token};

use crate::errors::Errors;
use crate::values::{self, Version};

/// The keys the attribute accepts, in the order the documentation lists them.
pub(crate) const KEYS: &[&str] = &[
    "devices",
    "each_device",
    "min_cuda",
    "min_compute",
    "min_memory",
    "memory",
    "min_free_memory",
    "min_toolkit",
    "timeout",
    "leak_check",
    "feature",
    "crate",
];

/// The most devices a test can ask for: the most the runtime reads of a machine, its
/// `MAX_DEVICES` (gpu-test-runtime/src/probe/driver.rs); a unit test below checks that they agree.
pub(crate) const MAX_DEVICES: u32 = 64;

/// What a `#[gpu_test(...)]` attribute asked for.
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) devices: Option<u32>,
    /// `each_device`, where it was written.
    pub(crate) each_device: Option<proc_macro2::Span>,
    pub(crate) min_cuda: Option<Version>,
    pub(crate) min_compute: Option<Version>,
    pub(crate) min_memory: Option<u64>,
    pub(crate) memory: Option<u64>,
    pub(crate) min_free_memory: Option<u64>,
    pub(crate) min_toolkit: Option<Version>,
    pub(crate) timeout_ms: Option<u64>,
    pub(crate) leak_check: Option<bool>,
    pub(crate) feature: Option<LitStr>,
    pub(crate) crate_path: Option<syn::Path>,
    /// `each_device` in any form, `each_device = false` included, where it was written.
    each_device_given: Option<proc_macro2::Span>,
}

impl Args {
    /// Parses the attribute's tokens, adding every problem found to `errors`.
    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> Args {
        let mut args = Args::default();
        let parser = |input: ParseStream| -> syn::Result<()> {
            while !input.is_empty() {
                let key = Ident::parse_any(input)?;
                if key == "each_device" && !input.peek(Token![=]) {
                    if let Err(error) = args.set_each_device(&key, true) {
                        errors.add(error);
                    }
                    if input.is_empty() {
                        break;
                    }
                    input.parse::<Token![,]>()?;
                    continue;
                }
                if !input.peek(Token![=]) {
                    // A misspelt key is reported as unknown, whether or not it has a value.
                    let name = key.to_string();
                    errors.add(if KEYS.contains(&name.as_str()) {
                        syn::Error::new(key.span(), format!("`{name}` needs a value: {}", example(&name)))
                    } else {
                        unknown_key(&key)
                    });
                    if input.is_empty() {
                        break;
                    }
                    input.parse::<Token![,]>()?;
                    continue;
                }
                input.parse::<Token![=]>()?;
                let value: Expr = input.parse()?;
                if let Err(error) = args.set(&key, &value) {
                    errors.add(error);
                }
                if input.is_empty() {
                    break;
                }
                input.parse::<Token![,]>()?;
            }
            Ok(())
        };
        let parsed = parser.parse2(tokens);
        errors.keep(parsed);
        if let (Some(span), Some(devices)) = (args.each_device, args.devices)
            && devices > 1
        {
            errors.add(syn::Error::new(
                span,
                format!(
                    "`each_device` runs the test once per device, with that one device; it cannot be combined \
                     with `devices = {devices}`: remove one of them"
                ),
            ));
        }
        args
    }

    /// Records `each_device`, on or off: given twice is an error even when one of them is
    /// `each_device = false`.
    fn set_each_device(&mut self, key: &Ident, on: bool) -> syn::Result<()> {
        replace(&mut self.each_device_given, key.span()).map_err(|_| {
            syn::Error::new(
                key.span(),
                "`each_device` is given more than once; give each key once",
            )
        })?;
        if on {
            self.each_device = Some(key.span());
        }
        Ok(())
    }

    fn set(&mut self, key: &Ident, value: &Expr) -> syn::Result<()> {
        let name = key.to_string();
        let duplicate = || {
            syn::Error::new(
                key.span(),
                format!("`{name}` is given more than once; give each key once"),
            )
        };
        match name.as_str() {
            "devices" => {
                let devices = parse_devices(value)?;
                replace(&mut self.devices, devices).map_err(|_| duplicate())
            }
            "min_cuda" => {
                let version = version_value(&name, value, "11.8")?;
                replace(&mut self.min_cuda, version).map_err(|_| duplicate())
            }
            "min_compute" => {
                let version = version_value(&name, value, "8.0")?;
                replace(&mut self.min_compute, version).map_err(|_| duplicate())
            }
            "min_toolkit" => {
                let version = version_value(&name, value, "12.0")?;
                replace(&mut self.min_toolkit, version).map_err(|_| duplicate())
            }
            "min_memory" => {
                let text = string_value(&name, value)?;
                let bytes = values::parse_size(&text.value())
                    .map_err(|message| syn::Error::new(text.span(), format!("min_memory: {message}")))?;
                replace(&mut self.min_memory, bytes).map_err(|_| duplicate())
            }
            "memory" | "min_free_memory" => {
                let text = string_value(&name, value)?;
                let bytes = values::parse_size(&text.value())
                    .map_err(|message| syn::Error::new(text.span(), format!("{name}: {message}")))?;
                let slot = if name == "memory" {
                    &mut self.memory
                } else {
                    &mut self.min_free_memory
                };
                replace(slot, bytes).map_err(|_| duplicate())
            }
            "timeout" => {
                let text = string_value(&name, value)?;
                let ms = values::parse_duration_ms(&text.value())
                    .map_err(|message| syn::Error::new(text.span(), format!("timeout: {message}")))?;
                replace(&mut self.timeout_ms, ms).map_err(|_| duplicate())
            }
            "each_device" => match literal(value) {
                Some(Lit::Bool(flag)) => self.set_each_device(key, flag.value),
                _ => Err(syn::Error::new_spanned(
                    value,
                    format!(
                        "each_device: write `each_device` alone (or `each_device = true`), got {}",
                        describe(value)
                    ),
                )),
            },
            "leak_check" => {
                let Some(Lit::Bool(flag)) = literal(value) else {
                    return Err(syn::Error::new_spanned(
                        value,
                        format!(
                            "leak_check: expected `true` or `false`, such as {}, got {}",
                            example(&name),
                            describe(value)
                        ),
                    ));
                };
                replace(&mut self.leak_check, flag.value).map_err(|_| duplicate())
            }
            "feature" => {
                let text = string_value(&name, value)?;
                values::check_feature_name(&text.value())
                    .map_err(|message| syn::Error::new(text.span(), format!("feature: {message}")))?;
                replace(&mut self.feature, text).map_err(|_| duplicate())
            }
            "crate" => {
                let text = string_value(&name, value)?;
                let path: syn::Path = text.parse().map_err(|_| {
                    syn::Error::new(
                        text.span(),
                        format!(
                            "crate: expected a path such as \"::gpu_test_runtime\" or \"my_crate::gpu\", got \"{}\"",
                            text.value()
                        ),
                    )
                })?;
                if path.segments.iter().any(|segment| !segment.arguments.is_empty()) {
                    return Err(syn::Error::new(
                        text.span(),
                        format!(
                            "crate: expected a path to a crate or module, such as \"::gpu_test_runtime\", without \
                             generic arguments, got \"{}\"",
                            text.value()
                        ),
                    ));
                }
                replace(&mut self.crate_path, path).map_err(|_| duplicate())
            }
            _ => Err(unknown_key(key)),
        }
    }
}

/// Stores `value` unless the key was already set.
fn replace<T>(slot: &mut Option<T>, value: T) -> Result<(), ()> {
    if slot.is_some() {
        return Err(());
    }
    *slot = Some(value);
    Ok(())
}

fn example(key: &str) -> &'static str {
    match key {
        "devices" => "`devices = 2`",
        "each_device" => "`each_device`",
        "min_cuda" => "`min_cuda = \"11.8\"`",
        "min_compute" => "`min_compute = \"8.0\"`",
        "min_memory" => "`min_memory = \"16 GiB\"`",
        "memory" => "`memory = \"8 GiB\"`",
        "min_free_memory" => "`min_free_memory = \"8 GiB\"`",
        "min_toolkit" => "`min_toolkit = \"12.0\"`",
        "timeout" => "`timeout = \"30s\"`",
        "feature" => "`feature = \"cuda\"`",
        "leak_check" => "`leak_check = true`",
        "crate" => "`crate = \"::gpu_test_runtime\"`",
        _ => "`key = value`",
    }
}

fn literal(value: &Expr) -> Option<&Lit> {
    match value {
        Expr::Lit(ExprLit { lit, attrs }) if attrs.is_empty() => Some(lit),
        _ => None,
    }
}

fn describe(value: &Expr) -> &'static str {
    match literal(value) {
        Some(Lit::Str(_)) => "a string",
        Some(Lit::Int(_)) => "an integer",
        Some(Lit::Float(_)) => "a float",
        Some(Lit::Bool(_)) => "a bool",
        Some(_) => "a literal of another type",
        None if matches!(value, Expr::Unary(unary)
            if matches!(unary.op, syn::UnOp::Neg(_)) && literal(&unary.expr).is_some()) =>
        {
            "a negative number"
        }
        None => "an expression (only literals are accepted)",
    }
}

fn parse_devices(value: &Expr) -> syn::Result<u32> {
    let Some(Lit::Int(int)) = literal(value) else {
        return Err(syn::Error::new_spanned(
            value,
            format!(
                "devices: expected an integer literal such as `devices = 2`, got {}",
                describe(value)
            ),
        ));
    };
    if !int.suffix().is_empty() {
        return Err(syn::Error::new(
            int.span(),
            "devices: write the number without a suffix, such as `devices = 2`",
        ));
    }
    let too_many = || {
        syn::Error::new(
            int.span(),
            format!(
                "devices: gpu-test reads at most {MAX_DEVICES} devices of a machine, so a test that needs {} \
                 could never run; use a number from 1 to {MAX_DEVICES}",
                int.base10_digits()
            ),
        )
    };
    let devices: u32 = int.base10_parse().map_err(|_| too_many())?;
    if devices == 0 {
        return Err(syn::Error::new(
            int.span(),
            "devices: a GPU test needs at least 1 device; use `devices = 1` or leave the key out",
        ));
    }
    if devices > MAX_DEVICES {
        return Err(too_many());
    }
    Ok(devices)
}

fn string_value(key: &str, value: &Expr) -> syn::Result<LitStr> {
    match literal(value) {
        Some(Lit::Str(text)) if !text.suffix().is_empty() => Err(syn::Error::new(
            text.span(),
            format!(
                "{key}: write the string without a suffix, such as {}",
                example(key)
            ),
        )),
        Some(Lit::Str(text)) => Ok(text.clone()),
        _ => Err(syn::Error::new_spanned(
            value,
            format!(
                "{key}: expected a string such as {}, got {}",
                example(key),
                describe(value)
            ),
        )),
    }
}

fn version_value(key: &str, value: &Expr, example: &str) -> syn::Result<Version> {
    let text = string_value(key, value)?;
    values::parse_version(&text.value(), example)
        .map_err(|message| syn::Error::new(text.span(), format!("{key}: {message}")))
}

fn unknown_key(key: &Ident) -> syn::Error {
    let name = key.to_string();
    let nearest = KEYS
        .iter()
        .map(|candidate| (strsim::levenshtein(&name, candidate), *candidate))
        .min()
        .filter(|(distance, candidate)| *distance <= candidate.len().max(name.len()) / 3 + 1);
    let suggestion = match nearest {
        Some((_, candidate)) => format!("; did you mean `{candidate}`?"),
        None => ";".to_string(),
    };
    syn::Error::new(
        key.span(),
        format!(
            "unknown key `{name}`{suggestion} valid keys are: {}",
            KEYS.join(", ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse(tokens: TokenStream) -> syn::Result<Args> {
        let mut errors = Errors::default();
        let args = Args::parse(tokens, &mut errors);
        errors.finish().map(|()| args)
    }

    fn error(tokens: TokenStream) -> String {
        parse(tokens).err().expect("an error").to_string()
    }

    #[test]
    fn empty_attribute_gives_defaults() {
        let config = parse(quote!()).unwrap();
        assert_eq!(config.devices, None);
        assert!(config.min_cuda.is_none() && config.crate_path.is_none());
    }

    #[test]
    fn every_key_parses() {
        let config = parse(quote!(
            devices = 2,
            min_cuda = "11.8",
            min_compute = "8.0",
            min_memory = "16 GiB",
            min_toolkit = "12.1",
            timeout = "30s",
            crate = "::my::rt",
        ))
        .unwrap();
        assert_eq!(config.devices, Some(2));
        assert_eq!(config.min_cuda, Some(Version { major: 11, minor: 8 }));
        assert_eq!(config.min_compute, Some(Version { major: 8, minor: 0 }));
        assert_eq!(config.min_memory, Some(16 << 30));
        assert_eq!(config.min_toolkit, Some(Version { major: 12, minor: 1 }));
        assert_eq!(config.timeout_ms, Some(30_000));
        let path = config.crate_path.unwrap();
        assert_eq!(quote!(#path).to_string(), ":: my :: rt");
    }

    #[test]
    fn each_device_is_a_flag_that_excludes_more_devices() {
        let mut errors = Errors::default();
        let args = Args::parse(quote!(each_device, min_compute = "8.0"), &mut errors);
        assert!(errors.finish().is_ok());
        assert!(args.each_device.is_some());
        let mut errors = Errors::default();
        let args = Args::parse(quote!(each_device = true, devices = 1), &mut errors);
        assert!(errors.finish().is_ok() && args.each_device.is_some());
        let message = error(quote!(each_device, devices = 2));
        assert!(
            message.contains("cannot be combined with `devices = 2`"),
            "{message}"
        );
        let message = error(quote!(each_device, each_device));
        assert!(message.contains("given more than once"), "{message}");
        let message = error(quote!(each_device = 3));
        assert!(message.contains("write `each_device` alone"), "{message}");
    }

    #[test]
    fn each_device_off_still_counts_as_given() {
        let args = parse(quote!(each_device = false, devices = 2)).unwrap();
        assert!(args.each_device.is_none());
        for tokens in [
            quote!(each_device = false, each_device),
            quote!(each_device = false, each_device = true),
            quote!(each_device, each_device = false),
            quote!(each_device = false, each_device = false),
        ] {
            let message = error(tokens.clone());
            assert_eq!(
                message, "`each_device` is given more than once; give each key once",
                "{tokens}"
            );
        }
    }

    #[test]
    fn unknown_key_suggests_the_nearest_and_lists_all() {
        let message = error(quote!(device = 2));
        assert!(
            message.contains("unknown key `device`; did you mean `devices`?"),
            "{message}"
        );
        assert!(message.contains(
            "devices, each_device, min_cuda, min_compute, min_memory, memory, min_free_memory, min_toolkit, timeout, leak_check, feature, crate"
        ));
        let message = error(quote!(mincuda = "11.8"));
        assert!(message.contains("did you mean `min_cuda`?"), "{message}");
        let message = error(quote!(colour = "red"));
        assert!(
            message.starts_with("unknown key `colour`; valid keys are: devices, each_device, "),
            "{message}"
        );
    }

    #[test]
    fn a_misspelt_key_without_a_value_is_unknown() {
        let message = error(quote!(each_devce));
        assert!(
            message.starts_with("unknown key `each_devce`; did you mean `each_device`? valid keys are: "),
            "{message}"
        );
        let message = error(quote!(colour));
        assert!(
            message.starts_with("unknown key `colour`; valid keys are: "),
            "{message}"
        );
        // Parsing goes on after it: a later problem is reported too.
        let mut errors = Errors::default();
        Args::parse(quote!(devics, devices = 0), &mut errors);
        let messages: Vec<String> = errors
            .finish()
            .unwrap_err()
            .into_iter()
            .map(|error| error.to_string())
            .collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(messages[0].contains("did you mean `devices`?"), "{messages:?}");
        assert!(messages[1].contains("at least 1 device"), "{messages:?}");
    }

    #[test]
    fn devices_are_capped_at_what_the_runtime_reads() {
        assert_eq!(parse(quote!(devices = 64)).unwrap().devices, Some(64));
        for tokens in [quote!(devices = 65), quote!(devices = 99999999999999999999999)] {
            let message = error(tokens.clone());
            assert!(
                message.contains("gpu-test reads at most 64 devices of a machine")
                    && message.contains("use a number from 1 to 64"),
                "{tokens}: {message}"
            );
        }
        assert!(error(quote!(devices = 65)).contains("a test that needs 65 could never run"));
    }

    /// The cap agrees with the runtime's, read from its source where the workspace has it (a
    /// packaged copy of this crate does not).
    #[test]
    fn the_device_cap_is_the_runtimes() {
        let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        if !manifest.join("../gpu-test-runtime/Cargo.toml").exists() {
            // A packaged copy of this crate, without the workspace.
            return;
        }
        let path = manifest.join("../gpu-test-runtime/src/probe/driver.rs");
        let source = std::fs::read_to_string(&path).unwrap_or_else(|error| {
            panic!(
                "the runtime's device cap is read from {}: {error}",
                path.display()
            )
        });
        let declared = source
            .lines()
            .find_map(|line| line.trim().strip_prefix("pub(crate) const MAX_DEVICES: usize = "))
            .unwrap_or_else(|| panic!("no MAX_DEVICES in {}", path.display()));
        assert_eq!(declared, format!("{MAX_DEVICES};"), "{}", path.display());
    }

    #[test]
    fn duplicates_and_bad_values_are_errors() {
        assert!(error(quote!(devices = 1, devices = 2)).contains("`devices` is given more than once"));
        assert!(error(quote!(devices = 0)).contains("at least 1 device"));
        assert!(error(quote!(devices = "2")).contains("expected an integer literal"));
        assert!(error(quote!(devices = -1)).ends_with("got a negative number"));
        assert!(error(quote!(devices = -N)).ends_with("got an expression (only literals are accepted)"));
        assert!(error(quote!(devices = N)).contains("only literals are accepted"));
        assert!(error(quote!(min_cuda = 11.8)).contains("got a float"));
        assert!(error(quote!(min_cuda = "11")).contains("\"X.Y\""));
        assert!(error(quote!(min_memory = "16 gigs")).contains("unknown unit"));
        assert!(error(quote!(crate = "not a path!")).contains("expected a path"));
        assert!(error(quote!(devices)).contains("`devices` needs a value: `devices = 2`"));
    }
}
