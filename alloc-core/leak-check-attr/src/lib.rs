//! `#[leak_check]`: runs a function's body under `alloc_core::assert_no_leaks`, so that a
//! test fails with the leak report when anything it allocated leaked, whatever the other
//! tests running in parallel leak.
//!
//! ```ignore
//! #[alloc_core::leak_check]
//! #[test]
//! fn parses_without_leaking() {
//!     my_crate::parse("input").unwrap();
//! }
//! ```
//!
//! The body becomes a closure's: `?` and `return` keep working for tests that return a
//! `Result`. `async fn`s are refused (their body runs after the function returns).

use proc_macro::TokenStream;
use quote::quote;
use syn::{parse_macro_input, ItemFn};

/// Runs the function's body under `alloc_core::assert_no_leaks`. See the crate docs.
#[proc_macro_attribute]
pub fn leak_check(args: TokenStream, item: TokenStream) -> TokenStream {
    if !args.is_empty() {
        let args = proc_macro2::TokenStream::from(args);
        return syn::Error::new_spanned(args, "#[leak_check] takes no arguments").to_compile_error().into();
    }
    let mut f = parse_macro_input!(item as ItemFn);
    if let Some(a) = f.sig.asyncness {
        return syn::Error::new_spanned(a, "#[leak_check] cannot check an async fn: its body runs later")
            .to_compile_error()
            .into();
    }
    let body = &f.block;
    let output = &f.sig.output;
    let ret = match output {
        syn::ReturnType::Default => quote!(()),
        syn::ReturnType::Type(_, t) => quote!(#t),
    };
    let new_body = quote!({ ::alloc_core::assert_no_leaks(move || -> #ret #body) });
    match syn::parse2(new_body) {
        Ok(block) => *f.block = block,
        Err(e) => return e.to_compile_error().into(),
    }
    quote!(#f).into()
}
