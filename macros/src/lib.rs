//! Derive macros for msa.
//!
//! `#[derive(RemoteMessage)]` implements `msa_runtime::RemoteMessage` for a
//! message type and declares the type to the runtime of the binary it is
//! linked into, so that any node of that binary can send it to a service on
//! another node without registering anything first. Use it through
//! `msa_runtime::RemoteMessage` (or `msa::RemoteMessage`): the trait and the
//! derive share that name, as serde's `Serialize` does.
//!
//! ```text
//! #[derive(actix::Message, Serialize, Deserialize, RemoteMessage)]
//! #[rtype(result = "u64")]
//! #[msa(name = "calc.Add")]            // the stable wire name (required)
//! struct Add(u64);
//!
//! #[derive(actix::Message, Serialize, Deserialize, schemars::JsonSchema, RemoteMessage)]
//! #[rtype(result = "Option<Order>")]
//! #[msa(name = "shop.GetOrder", schema, keyed)]  // publish a JSON schema; route by key
//! struct GetOrder { id: u64 }
//! ```
//!
//! Every message publishes its wire schema and the JSON schemas of its
//! request and reply, traced from their serde shape. `schema` makes
//! `json_schema()` return the type's schemars JSON Schema instead (the type
//! must derive `schemars::JsonSchema`); `keyed` records the type's
//! `KeyedMessage::routing_key` for callers of keyed services (the type must
//! implement `KeyedMessage`); `version = N` sets the contract version
//! (default 1: bump it, or pick a new wire name, when the wire shape
//! changes on purpose); `enums(A, B)` names enums the wire-shape tracer
//! must visit on their own (those reached only through an `Option`, a
//! `Vec`, a map or another enum's later variant: the error of
//! `msa contracts check` says which).

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::quote;
use syn::{parse_macro_input, DeriveInput, LitStr};

/// Implements `RemoteMessage` and declares the type for remote calls. See
/// the crate docs for the `#[msa(...)]` attribute.
#[proc_macro_derive(RemoteMessage, attributes(msa))]
pub fn derive_remote_message(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// What `#[msa(...)]` says.
struct Options {
    name: LitStr,
    schema: bool,
    keyed: bool,
    /// `version = N`: the contract version (default: the trait's, 1).
    version: Option<syn::LitInt>,
    /// `enums(A, B)`: enums the wire-shape tracer must visit on their own.
    enums: Vec<syn::Path>,
}

fn options(input: &DeriveInput) -> syn::Result<Options> {
    let mut name = None;
    let mut schema = false;
    let mut keyed = false;
    let mut version = None;
    let mut enums = Vec::new();
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("msa")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                let lit: LitStr = meta.value()?.parse()?;
                if lit.value().is_empty() {
                    return Err(meta.error("the wire name must not be empty"));
                }
                name = Some(lit);
                Ok(())
            } else if meta.path.is_ident("schema") {
                schema = true;
                Ok(())
            } else if meta.path.is_ident("keyed") {
                keyed = true;
                Ok(())
            } else if meta.path.is_ident("version") {
                let lit: syn::LitInt = meta.value()?.parse()?;
                if lit.base10_parse::<u32>()? == 0 {
                    return Err(meta.error("the version starts at 1"));
                }
                version = Some(lit);
                Ok(())
            } else if meta.path.is_ident("enums") {
                meta.parse_nested_meta(|inner| {
                    enums.push(inner.path);
                    Ok(())
                })
            } else {
                Err(meta.error(
                    "expected `name = \"...\"`, `schema`, `keyed`, `version = N` or `enums(...)`",
                ))
            }
        })?;
    }
    let name = name.ok_or_else(|| {
        syn::Error::new(
            Span::call_site(),
            "#[derive(RemoteMessage)] needs a wire name: #[msa(name = \"pkg.Message\")]",
        )
    })?;
    Ok(Options {
        name,
        schema,
        keyed,
        version,
        enums,
    })
}

/// The path of the runtime crate as the user's crate sees it: `msa_runtime`
/// when it depends on it, else the `msa` facade (which re-exports it).
fn runtime_path() -> TokenStream2 {
    use proc_macro_crate::{crate_name, FoundCrate};
    let found = crate_name("msa-runtime").or_else(|_| crate_name("msa"));
    match found {
        // Inside msa-runtime itself: its root declares `extern crate self as msa_runtime`.
        Ok(FoundCrate::Itself) => quote!(::msa_runtime),
        Ok(FoundCrate::Name(name)) => {
            let ident = syn::Ident::new(&name, Span::call_site());
            quote!(::#ident)
        }
        Err(_) => quote!(::msa_runtime),
    }
}

fn expand(input: &DeriveInput) -> syn::Result<TokenStream2> {
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &input.generics,
            "#[derive(RemoteMessage)] does not support generic types: a wire name names one concrete type",
        ));
    }
    let opts = options(input)?;
    let ty = &input.ident;
    let name = &opts.name;
    let rt = runtime_path();
    let schema = opts.schema.then(|| {
        quote! {
            fn json_schema() -> ::core::option::Option<#rt::__private::serde_json::Value> {
                ::core::option::Option::Some(#rt::json_schema_of::<Self>())
            }
        }
    });
    let version = opts
        .version
        .as_ref()
        .map(|v| quote!(const VERSION: u32 = #v;));
    let enums = (!opts.enums.is_empty()).then(|| {
        let list = &opts.enums;
        quote! {
            fn __trace_enums(
                t: &mut #rt::contract::Tracing<'_>,
            ) -> ::core::result::Result<(), ::std::string::String> {
                #( t.add::<#list>()?; )*
                ::core::result::Result::Ok(())
            }
        }
    });
    let declare = if opts.keyed {
        quote!(#rt::__private::Declared::keyed::<#ty>)
    } else {
        quote!(#rt::__private::Declared::plain::<#ty>)
    };
    Ok(quote! {
        impl #rt::RemoteMessage for #ty {
            const NAME: &'static str = #name;
            #version
            #schema
            #enums
        }
        const _: () = {
            #rt::__private::inventory::submit! {
                #rt::__private::Declared { codec: #declare }
            }
        };
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_str(input: DeriveInput) -> Result<String, String> {
        expand(&input)
            .map(|t| t.to_string())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_wire_name_is_required_and_not_empty() {
        let e = expand_str(syn::parse_quote! { struct Add(u64); }).unwrap_err();
        assert!(e.contains("needs a wire name"), "{e}");
        let e = expand_str(syn::parse_quote! { #[msa(name = "")] struct Add(u64); }).unwrap_err();
        assert!(e.contains("must not be empty"), "{e}");
    }

    #[test]
    fn unknown_options_and_generic_types_are_refused() {
        let e = expand_str(syn::parse_quote! { #[msa(name = "a.B", nope)] struct B; }).unwrap_err();
        assert!(e.contains("expected `name"), "{e}");
        let e = expand_str(syn::parse_quote! { #[msa(name = "a.B")] struct B<T>(T); }).unwrap_err();
        assert!(e.contains("generic"), "{e}");
    }

    #[test]
    fn the_expansion_implements_the_trait_and_declares_the_type() {
        let out =
            expand_str(syn::parse_quote! { #[msa(name = "calc.Add")] struct Add(u64); }).unwrap();
        assert!(out.contains("RemoteMessage for Add"), "{out}");
        assert!(out.contains("\"calc.Add\""), "{out}");
        assert!(out.contains("Declared :: plain :: < Add >"), "{out}");
        assert!(!out.contains("json_schema"), "{out}");
        let out = expand_str(
            syn::parse_quote! { #[msa(name = "kv.Get", schema, keyed)] struct Get { key: String } },
        )
        .unwrap();
        assert!(out.contains("Declared :: keyed :: < Get >"), "{out}");
        assert!(out.contains("fn json_schema"), "{out}");
    }

    #[test]
    fn version_and_enums_are_passed_on() {
        let out = expand_str(syn::parse_quote! {
            #[msa(name = "a.B", version = 3, enums(Kind, x::State))] struct B { k: Vec<Kind> }
        })
        .unwrap();
        assert!(out.contains("const VERSION : u32 = 3"), "{out}");
        assert!(out.contains("t . add :: < Kind >"), "{out}");
        assert!(out.contains("t . add :: < x :: State >"), "{out}");
        let e = expand_str(syn::parse_quote! { #[msa(name = "a.B", version = 0)] struct B; })
            .unwrap_err();
        assert!(e.contains("starts at 1"), "{e}");
    }
}
