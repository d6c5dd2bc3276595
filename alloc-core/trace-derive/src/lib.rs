//! `#[derive(Trace)]`: implements `alloc_core::Trace` by tracing every field.
//!
//! Every field's type must implement `Trace` (std types and `Handle` do), unless the field
//! is marked `#[trace(skip)]`, which promises it owns no `Handle`: skipping a field that
//! does would make the collector free values that are still reachable. Generic parameters
//! get a `Trace` bound. Structs (named, tuple, unit) and enums are supported; unions are
//! not (their active field is unknown).

use proc_macro::TokenStream;
use proc_macro2::TokenStream as Tokens;
use quote::{format_ident, quote};
use syn::{parse_macro_input, Data, DeriveInput, Fields};

/// Derives `alloc_core::Trace`. See the crate documentation.
#[proc_macro_derive(Trace, attributes(trace))]
pub fn derive_trace(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(input) {
        Ok(t) => t.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn skipped(attrs: &[syn::Attribute]) -> syn::Result<bool> {
    let mut skip = false;
    for a in attrs.iter().filter(|a| a.path().is_ident("trace")) {
        a.parse_nested_meta(|m| {
            if m.path.is_ident("skip") {
                skip = true;
                Ok(())
            } else {
                Err(m.error("expected `#[trace(skip)]`"))
            }
        })?;
    }
    Ok(skip)
}

/// Statements tracing the bound names of `fields` (named `f0`, `f1`... or by field name).
fn bind_and_trace(fields: &Fields) -> syn::Result<(Tokens, Tokens)> {
    let mut pattern = Vec::new();
    let mut body = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        let name = format_ident!("f{}", i);
        let skip = skipped(&f.attrs)?;
        match &f.ident {
            Some(id) if skip => pattern.push(quote!(#id: _)),
            Some(id) => pattern.push(quote!(#id: #name)),
            None if skip => pattern.push(quote!(_)),
            None => pattern.push(quote!(#name)),
        }
        if !skip {
            body.push(quote!(::alloc_core::Trace::trace(#name, tracer);));
        }
    }
    let pat = match fields {
        Fields::Named(_) => quote!({ #(#pattern,)* }),
        Fields::Unnamed(_) => quote!(( #(#pattern,)* )),
        Fields::Unit => quote!(),
    };
    Ok((pat, quote!(#(#body)*)))
}

fn expand(input: DeriveInput) -> syn::Result<Tokens> {
    let name = &input.ident;
    let mut generics = input.generics.clone();
    for p in generics.type_params_mut() {
        p.bounds.push(syn::parse_quote!(::alloc_core::Trace));
    }
    let (impl_g, ty_g, where_g) = generics.split_for_impl();
    let body = match &input.data {
        Data::Struct(s) => {
            let (pat, trace) = bind_and_trace(&s.fields)?;
            quote!(let #name #pat = self; #trace)
        }
        Data::Enum(e) => {
            let arms = e
                .variants
                .iter()
                .map(|v| {
                    let vn = &v.ident;
                    let (pat, trace) = bind_and_trace(&v.fields)?;
                    Ok(quote!(#name::#vn #pat => { #trace }))
                })
                .collect::<syn::Result<Vec<_>>>()?;
            quote!(match self { #(#arms)* })
        }
        Data::Union(u) => return Err(syn::Error::new(u.union_token.span, "#[derive(Trace)] does not support unions")),
    };
    Ok(quote! {
        // SAFETY: the derive visits every field that is not `#[trace(skip)]`; a skipped
        // field is the deriving code's promise that it owns no handle.
        unsafe impl #impl_g ::alloc_core::Trace for #name #ty_g #where_g {
            #[allow(unused_variables)]
            fn trace(&self, tracer: &mut ::alloc_core::Tracer<'_>) {
                #body
            }
        }
    })
}
