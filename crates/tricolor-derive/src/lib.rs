//! `#[derive(Trace)]` for [tricolor](https://docs.rs/tricolor), a Go-style
//! garbage collector for Rust values.
//!
//! Use it through the runtime crate, which re-exports it next to the trait of
//! the same name: `use tricolor::Trace; #[derive(Trace)] struct Node { .. }`.
//!
//! # What is generated
//!
//! For
//!
//! ```ignore
//! #[derive(Trace)]
//! struct Node<T> { value: T, next: Member<Node<T>> }
//! ```
//!
//! the derive emits (names prefixed with `__` are private to the expansion):
//!
//! ```ignore
//! // 1. The impl. Every type parameter gets a `Trace` bound; the item's own
//! //    bounds and `where` clause are kept.
//! #[automatically_derived]
//! unsafe impl<T: ::tricolor::Trace> ::tricolor::Trace for Node<T> {
//!     // "noscan" unless some field may hold an edge.
//!     const NEEDS_TRACE: bool = false
//!         || <T as ::tricolor::Trace>::NEEDS_TRACE
//!         || <Member<Node<T>> as ::tricolor::Trace>::NEEDS_TRACE;
//!     #[inline]
//!     fn trace(&self, tracer: &mut ::tricolor::Tracer) {
//!         <T as ::tricolor::Trace>::trace(&self.value, tracer);
//!         <Member<Node<T>> as ::tricolor::Trace>::trace(&self.next, tracer);
//!     }
//! }
//!
//! // 2. One assertion per field, located at the field's type: a field type
//! //    that is not `Trace` is an error pointing at that field.
//! const _: () = {
//!     fn __check<T: ::tricolor::Trace>(_: &Node<T>) {
//!         let _ = <T as ::tricolor::Trace>::NEEDS_TRACE;
//!         let _ = <Member<Node<T>> as ::tricolor::Trace>::NEEDS_TRACE;
//!     }
//! };
//!
//! // 3. Only when the type holds edges (see below), and without
//! //    `#[tricolor(unsafe_allow_drop)]`: a hand-written `Drop` is rejected,
//! //    as two overlapping impls of a trait whose name is the explanation.
//! const _: () = {
//!     trait Node_holds_edges_so_it_must_not_implement_Drop__use_tricolor_add_cleanup_instead {}
//!     impl<T: ::core::ops::Drop + ?Sized> Node_holds_edges_so_it_must_not_implement_Drop__use_tricolor_add_cleanup_instead for T {}
//!     impl<T> Node_holds_edges_so_it_must_not_implement_Drop__use_tricolor_add_cleanup_instead for Node<T> {}
//! };
//! ```
//!
//! A bare `Self` in a field type is replaced by the item's type where the
//! expansion needs it outside the impl.
//!
//! For an enum, `trace` matches on `self` and traces every field of the
//! active variant. Unit structs and field-less enums get
//! `NEEDS_TRACE == false` and an empty `trace`.
//!
//! # Why
//!
//! `Trace` is an `unsafe` trait: the collector frees whatever `trace` does not
//! report, so an impl that forgets an edge is a use-after-free. The derive
//! upholds the invariants of the design (`docs/design/DESIGN.md`, section 3):
//!
//! - **INV-TRACE.** `trace` visits every field, and nothing else. A field
//!   whose type does not implement `Trace` is a compile error pointing at that
//!   field: every use of a field type in the expansion carries the field
//!   type's source location. There is deliberately no `#[tricolor(skip)]`:
//!   skipping a field that holds an edge would be unsound, and a field
//!   without edges costs nothing to trace (its `NEEDS_TRACE` is `false`).
//! - **No roots in the heap.** A field whose type mentions `Root` (any path
//!   segment named `Root`, at any depth: `Root<X>`, `Vec<Root<X>>`,
//!   `tricolor::Root<X>`) is rejected with an explanation: a root inside a
//!   managed object would keep its own cycle alive forever. Heap-to-heap
//!   edges are `Member<T>`. (`Root` does not implement `Trace` either, so a
//!   root hidden behind a type alias is still rejected, with the generic
//!   "does not implement `Trace`" error.)
//! - **INV-NODROP.** A managed type's `Drop` must never read an edge: its
//!   target may already be freed when the sweeper drops the object. When a
//!   field type *syntactically* mentions `Member`, `GcVec`, `GcMap`, `Weak` or
//!   `Gc`, or one of the item's type parameters, the type "holds edges" and
//!   the derive makes a hand-written `impl Drop` a compile error (a
//!   conflicting-implementations error naming a trait that explains itself).
//!   Plain-data types (numbers, `String`, `Vec<u8>`, a `File`, ...) may
//!   implement `Drop` freely. Finalisation for types with edges is
//!   `tricolor::add_cleanup`. The check is syntactic: it does not see edges
//!   behind another type's name (`inner: Inner`, where `Inner` holds a
//!   `Member`) or a type alias. The runtime is the backstop: a `Drop` run by
//!   the sweeper cannot obtain a guard, hence cannot load an edge.
//!
//! # Attributes
//!
//! - `#[tricolor(unsafe_allow_drop)]` on the item: skip the `Drop` check.
//!   This is **your promise** that the type's `Drop` never touches (loads,
//!   stores, dereferences) any edge it holds, directly or through a field's
//!   methods. Breaking it is undefined behaviour.
//!
//! Any other `#[tricolor(...)]` attribute, on the item, a variant or a field,
//! is a compile error. Unions and `#[repr(packed)]` types are rejected.

#![forbid(unsafe_code)]

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2, TokenTree};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{
    parse_macro_input, parse_quote, Data, DeriveInput, Fields, GenericParam, Generics, Ident,
    Index, Type,
};

/// Derives `tricolor::Trace` for a struct or an enum.
///
/// The impl traces every field (every field of the active variant, for an
/// enum), adds a `T: Trace` bound to every type parameter, and sets
/// `NEEDS_TRACE` to `true` exactly when some field type needs tracing, so
/// plain-data types are never scanned.
///
/// Compile errors, each pointing at the offending field or item:
///
/// - a field type that does not implement `Trace`;
/// - a field type that mentions `Root` (a root inside the heap would keep its
///   cycle alive forever; use `Member<T>` for heap-to-heap edges);
/// - a hand-written `impl Drop` on a type that holds edges (a field type
///   mentions `Member`, `GcVec`, `GcMap`, `Weak`, `Gc` or a type parameter),
///   unless the item carries `#[tricolor(unsafe_allow_drop)]`, your promise
///   that the `Drop` never touches an edge; use `tricolor::add_cleanup` for
///   finalisation instead;
/// - an unknown `#[tricolor(...)]` attribute, a union, a `#[repr(packed)]`
///   type.
///
/// ```ignore
/// use tricolor::{Member, Trace};
///
/// #[derive(Trace)]
/// struct Node<T> {
///     value: T,
///     children: Vec<Member<Node<T>>>,
/// }
///
/// #[derive(Trace)]
/// enum Expr {
///     Num(f64),
///     Add(Member<Expr>, Member<Expr>),
///     Nil,
/// }
/// ```
#[proc_macro_derive(Trace, attributes(tricolor))]
pub fn derive_trace(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(input).into()
}

/// The message for a field whose type mentions `Root`.
const ROOT_IN_HEAP: &str = "a `Root` cannot be stored inside a managed object: a root inside the heap would keep its cycle alive forever; use `Member<T>` for heap-to-heap edges";

/// Path segment names of the types that are (or contain) edges.
const EDGE_TYPES: &[&str] = &["Member", "GcVec", "GcMap", "Weak", "Gc"];

/// One field of the item, with what the expansion needs to know about it.
struct FieldInfo {
    /// `self.name` / `self.0` for a struct; the match binding for an enum.
    access: TokenStream2,
    /// The field type, with a bare `Self` replaced by the item's type.
    ty: Type,
    /// Where errors about this field point: the field's type.
    span: Span,
    /// The type mentions `Member`, `GcVec`, `GcMap`, `Weak`, `Gc` or a type
    /// parameter of the item.
    holds_edges: bool,
}

/// The whole expansion: the impl, the field checks, the `Drop` check and any
/// errors, as one token stream (errors are emitted next to the impl so that a
/// single mistake gives a single error).
fn expand(input: DeriveInput) -> TokenStream2 {
    let mut errors: Vec<syn::Error> = Vec::new();
    let allow_drop = parse_item_attrs(&input, &mut errors);

    let name = &input.ident;
    let (_, ty_generics, _) = input.generics.split_for_impl();
    let self_ty: Type = parse_quote!(#name #ty_generics);
    let type_params: Vec<Ident> = input
        .generics
        .type_params()
        .map(|p| p.ident.clone())
        .collect();

    // Fields in declaration order, checked; and the body of `trace`.
    let cx = FieldCx {
        type_params: &type_params,
        self_ty: &self_ty,
    };
    let mut fields: Vec<FieldInfo> = Vec::new();
    let trace_body = match &input.data {
        Data::Struct(data) => {
            for (i, field) in data.fields.iter().enumerate() {
                let access = match &field.ident {
                    Some(ident) => quote!(self.#ident),
                    None => {
                        let index = Index {
                            index: i as u32,
                            span: field.ty.span(),
                        };
                        quote!(self.#index)
                    }
                };
                fields.extend(check_field(field, access, &cx, &mut errors));
            }
            let calls = fields.iter().map(|f| {
                let span = at(f.span);
                let (ty, access) = (&f.ty, &f.access);
                quote_spanned!(span=> <#ty as ::tricolor::Trace>::trace(&#access, tracer);)
            });
            quote!(#(#calls)*)
        }
        Data::Enum(data) => {
            let mut arms = Vec::new();
            for variant in &data.variants {
                reject_field_attrs(&variant.attrs, &mut errors);
                let first = fields.len();
                let bindings: Vec<Ident> = (0..variant.fields.len())
                    .map(|i| format_ident!("__tricolor_field_{}", i))
                    .collect();
                for (field, binding) in variant.fields.iter().zip(&bindings) {
                    fields.extend(check_field(
                        field,
                        binding.to_token_stream(),
                        &cx,
                        &mut errors,
                    ));
                }
                let calls = fields[first..].iter().map(|f| {
                    let span = at(f.span);
                    let (ty, access) = (&f.ty, &f.access);
                    quote_spanned!(span=> <#ty as ::tricolor::Trace>::trace(#access, tracer);)
                });
                let variant_name = &variant.ident;
                let pattern = match &variant.fields {
                    Fields::Named(named) => {
                        let names = named.named.iter().map(|f| &f.ident);
                        quote!(Self::#variant_name { #(#names: #bindings),* })
                    }
                    Fields::Unnamed(_) => quote!(Self::#variant_name(#(#bindings),*)),
                    Fields::Unit => quote!(Self::#variant_name),
                };
                // A binding whose field was rejected (a `Root`) is unused.
                let allow = if fields.len() - first < variant.fields.len() {
                    quote!(#[allow(unused_variables)])
                } else {
                    TokenStream2::new()
                };
                arms.push(quote!(#allow #pattern => { #(#calls)* }));
            }
            if arms.is_empty() {
                quote!(match *self {})
            } else {
                quote!(match self { #(#arms)* })
            }
        }
        Data::Union(data) => {
            errors.push(syn::Error::new(
                data.union_token.span,
                "Trace cannot be derived for unions",
            ));
            return to_compile_errors(errors);
        }
    };

    if let Some(packed) = packed_repr(&input) {
        errors.push(syn::Error::new(
            packed,
            "Trace cannot be derived for `#[repr(packed)]` types: fields are traced through references, and a packed field may be unaligned",
        ));
        return to_compile_errors(errors);
    }

    // `impl<T: Bounds + Trace> ... where <item's where clause>`.
    let impl_generics_owned = with_trace_bounds(&input.generics);
    let (impl_generics, _, where_clause) = impl_generics_owned.split_for_impl();

    let needs_trace = fields.iter().map(|f| {
        let span = at(f.span);
        let ty = &f.ty;
        quote_spanned!(span=> || <#ty as ::tricolor::Trace>::NEEDS_TRACE)
    });
    let tracer = if fields.is_empty() {
        quote!(_tracer)
    } else {
        quote!(tracer)
    };

    let field_check = field_check(name, &input.generics, &fields);
    let holds_edges = fields.iter().any(|f| f.holds_edges);
    let drop_check = if holds_edges && !allow_drop {
        drop_check(&input)
    } else {
        TokenStream2::new()
    };
    let errors = to_compile_errors(errors);

    quote! {
        #errors

        #[automatically_derived]
        unsafe impl #impl_generics ::tricolor::Trace for #name #ty_generics #where_clause {
            const NEEDS_TRACE: bool = false #(#needs_trace)*;

            #[inline]
            fn trace(&self, #tracer: &mut ::tricolor::Tracer) {
                #trace_body
            }
        }

        #field_check

        #drop_check
    }
}

/// What checking a field needs to know about the item.
struct FieldCx<'a> {
    type_params: &'a [Ident],
    self_ty: &'a Type,
}

/// Checks one field: `#[tricolor]` attributes, `Root`, edges. Returns `None`
/// when the field is rejected (its error is in `errors`), so that the impl
/// leaves it out and the user sees one error, not two.
fn check_field(
    field: &syn::Field,
    access: TokenStream2,
    cx: &FieldCx<'_>,
    errors: &mut Vec<syn::Error>,
) -> Option<FieldInfo> {
    reject_field_attrs(&field.attrs, errors);
    let names = segment_names(&field.ty);
    if names.iter().any(|n| n == "Root") {
        let span_tokens = match &field.ident {
            Some(ident) => {
                let ty = &field.ty;
                quote!(#ident: #ty)
            }
            None => field.ty.to_token_stream(),
        };
        errors.push(syn::Error::new_spanned(span_tokens, ROOT_IN_HEAP));
        return None;
    }
    let holds_edges = names
        .iter()
        .any(|n| EDGE_TYPES.contains(&n.as_str()) || cx.type_params.iter().any(|p| p == n));
    Some(FieldInfo {
        access,
        holds_edges,
        ty: replace_self(&field.ty, cx.self_ty),
        span: field.ty.span(),
    })
}

/// The item's generics with `::tricolor::Trace` added to the bounds of every
/// type parameter. The bound goes on the parameter itself, not into the
/// `where` clause, so that `struct S<T: ?Sized>` does not end up with bounds
/// in two places (which `clippy::multiple_bound_locations` reports).
fn with_trace_bounds(generics: &Generics) -> Generics {
    let mut generics = generics.clone();
    for param in generics.type_params_mut() {
        if param.colon_token.is_none() {
            param.colon_token = Some(Default::default());
        }
        param.bounds.push(parse_quote!(::tricolor::Trace));
    }
    generics
}

/// A span at `located` that keeps the macro's call-site hygiene, so that lints
/// treat the tokens as macro output while errors point at the user's code.
fn at(located: Span) -> Span {
    Span::call_site().located_at(located)
}

/// The per-field assertions:
/// `const _: () = { fn __check<..>(_: &Name<..>) { let _ = <F as Trace>::NEEDS_TRACE; .. } };`
///
/// One assertion per field, located at the field's type, so that "does not
/// implement `Trace`" points at the field. The impl uses the very same
/// `<F as ::tricolor::Trace>::..` form at the same location, so rustc
/// reports one diagnostic per bad field, not three. The `&Name<..>` argument
/// brings the item's implied bounds (`T: 'a` for a `&'a T` field) into scope.
fn field_check(name: &Ident, generics: &Generics, fields: &[FieldInfo]) -> TokenStream2 {
    if fields.is_empty() {
        return TokenStream2::new();
    }
    // Functions cannot have defaults for their generic parameters.
    let mut generics = with_trace_bounds(generics);
    for param in generics.params.iter_mut() {
        match param {
            GenericParam::Type(t) => {
                t.eq_token = None;
                t.default = None;
            }
            GenericParam::Const(c) => {
                c.eq_token = None;
                c.default = None;
            }
            GenericParam::Lifetime(_) => {}
        }
    }
    let (fn_generics, ty_generics, where_clause) = generics.split_for_impl();
    let asserts = fields.iter().map(|f| {
        let span = at(f.span);
        let ty = &f.ty;
        quote_spanned!(span=> let _ = <#ty as ::tricolor::Trace>::NEEDS_TRACE;)
    });
    quote! {
        const _: () = {
            #[allow(dead_code, clippy::extra_unused_type_parameters)]
            fn __check #fn_generics (_: &#name #ty_generics) #where_clause {
                #(#asserts)*
            }
        };
    }
}

/// The conflicting-impl trick: a blanket impl for every `T: Drop` and one for
/// the item, which overlap exactly when the item implements `Drop`.
fn drop_check(input: &DeriveInput) -> TokenStream2 {
    let name = &input.ident;
    // The error ("conflicting implementations of trait `Node_holds_edges_...`
    // for type `Node`") points at the item's name.
    let span = at(name.span());
    let trait_name = format_ident!(
        "{}_holds_edges_so_it_must_not_implement_Drop__use_tricolor_add_cleanup_instead",
        name.unraw(),
        span = span
    );
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let item_impl = quote_spanned! {span=>
        impl #impl_generics #trait_name for #name #ty_generics #where_clause {}
    };
    quote! {
        const _: () = {
            #[allow(non_camel_case_types)]
            trait #trait_name {}
            #[allow(drop_bounds)]
            impl<__T: ::core::ops::Drop + ?::core::marker::Sized> #trait_name for __T {}
            #item_impl
        };
    }
}

/// Reads `#[tricolor(...)]` on the item; returns whether `unsafe_allow_drop`
/// was given. Anything else is an error.
fn parse_item_attrs(input: &DeriveInput, errors: &mut Vec<syn::Error>) -> bool {
    let mut allow_drop = false;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("tricolor")) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("unsafe_allow_drop") {
                if !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
                    return Err(meta.error("`unsafe_allow_drop` takes no value: write `#[tricolor(unsafe_allow_drop)]`"));
                }
                allow_drop = true;
                Ok(())
            } else if meta.path.is_ident("skip") {
                Err(meta.error(SKIP_UNSUPPORTED))
            } else {
                Err(meta.error(unknown_attr(&meta.path)))
            }
        });
        if let Err(e) = result {
            errors.push(e);
        }
    }
    allow_drop
}

/// `#[tricolor(...)]` is not accepted on fields or variants.
fn reject_field_attrs(attrs: &[syn::Attribute], errors: &mut Vec<syn::Error>) {
    for attr in attrs.iter().filter(|a| a.path().is_ident("tricolor")) {
        let mut reported = false;
        // A malformed attribute (`#[tricolor]`, `#[tricolor = 1]`) fails to
        // parse before any `meta` is seen: it is reported below.
        let _ = attr.parse_nested_meta(|meta| {
            let message = if meta.path.is_ident("skip") {
                SKIP_UNSUPPORTED.to_string()
            } else if meta.path.is_ident("unsafe_allow_drop") {
                "`#[tricolor(unsafe_allow_drop)]` goes on the struct or enum, not on a field or variant"
                    .to_string()
            } else {
                unknown_attr(&meta.path)
            };
            errors.push(meta.error(message));
            reported = true;
            Ok(())
        });
        if !reported {
            errors.push(syn::Error::new_spanned(attr, MALFORMED_ATTR));
        }
    }
}

const MALFORMED_ATTR: &str = "malformed tricolor attribute: the only attribute is `#[tricolor(unsafe_allow_drop)]` on the struct or enum";

const SKIP_UNSUPPORTED: &str = "`#[tricolor(skip)]` is not supported: skipping a field that holds an edge would let the collector free its target while it is still reachable; a field without edges costs nothing to trace";

fn unknown_attr(path: &syn::Path) -> String {
    let name = path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect::<Vec<_>>()
        .join("::");
    format!(
        "unknown tricolor attribute `{name}`: the only attribute is `#[tricolor(unsafe_allow_drop)]` on the struct or enum"
    )
}

/// The span of `packed` in a `#[repr(packed)]` / `#[repr(packed(N))]`, if any.
fn packed_repr(input: &DeriveInput) -> Option<Span> {
    input
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("repr"))
        .find_map(|attr| {
            let mut packed = None;
            let _ = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("packed") {
                    packed = Some(meta.path.span());
                }
                // Skip `(N)` in `packed(N)` / `align(N)`.
                if meta.input.peek(syn::token::Paren) {
                    let _content;
                    syn::parenthesized!(_content in meta.input);
                }
                Ok(())
            });
            packed
        })
}

fn to_compile_errors(errors: Vec<syn::Error>) -> TokenStream2 {
    errors.into_iter().map(|e| e.to_compile_error()).collect()
}

/// Every path segment name in a type, at any depth (`Vec<Root<X>>` gives
/// `Vec`, `Root`, `X`), including paths inside trait bounds and qualified
/// `<T as Trait>::X` types. Types written inside macros are not seen.
fn segment_names(ty: &Type) -> Vec<String> {
    struct Names(Vec<String>);
    impl<'ast> Visit<'ast> for Names {
        fn visit_path_segment(&mut self, segment: &'ast syn::PathSegment) {
            self.0.push(segment.ident.unraw().to_string());
            syn::visit::visit_path_segment(self, segment);
        }
    }
    let mut names = Names(Vec::new());
    names.visit_type(ty);
    names.0
}

/// Replaces a bare `Self` (not `Self::...`) with the item's type, so that
/// field types can be named outside the impl (in the field assertions).
fn replace_self(ty: &Type, self_ty: &Type) -> Type {
    fn walk(tokens: TokenStream2, self_ty: &Type) -> TokenStream2 {
        let mut out = TokenStream2::new();
        let mut iter = tokens.into_iter().peekable();
        while let Some(tt) = iter.next() {
            match tt {
                TokenTree::Ident(ident) if ident == "Self" => {
                    let followed_by_path = matches!(
                        iter.peek(),
                        Some(TokenTree::Punct(p)) if p.as_char() == ':'
                    );
                    if followed_by_path {
                        out.extend([TokenTree::Ident(ident)]);
                    } else {
                        // Keep the user's location for error messages.
                        let span = ident.span();
                        out.extend(self_ty.to_token_stream().into_iter().map(|mut t| {
                            t.set_span(span);
                            t
                        }));
                    }
                }
                TokenTree::Group(group) => {
                    let mut new =
                        proc_macro2::Group::new(group.delimiter(), walk(group.stream(), self_ty));
                    new.set_span(group.span());
                    out.extend([TokenTree::Group(new)]);
                }
                other => out.extend([other]),
            }
        }
        out
    }
    let replaced = walk(ty.to_token_stream(), self_ty);
    syn::parse2(replaced).unwrap_or_else(|_| ty.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_str(input: TokenStream2) -> String {
        expand(syn::parse2(input).unwrap()).to_string()
    }

    #[test]
    fn segment_names_sees_nested_paths() {
        let ty: Type = parse_quote!(Vec<Option<tricolor::Root<(u8, [Member<X>; 2])>>>);
        let names = segment_names(&ty);
        for n in ["Vec", "Option", "tricolor", "Root", "u8", "Member", "X"] {
            assert!(names.iter().any(|s| s == n), "{n} in {names:?}");
        }
    }

    #[test]
    fn root_field_is_an_error_and_left_out() {
        let out = expand_str(quote!(
            struct S {
                a: u8,
                r: Vec<Root<X>>,
            }
        ));
        assert!(out.contains("compile_error"), "{out}");
        assert!(out.contains("a `Root` cannot be stored"), "{out}");
        assert!(!out.contains("self . r"), "{out}");
    }

    #[test]
    fn plain_data_has_no_drop_check() {
        let out = expand_str(quote!(
            struct S {
                a: i64,
                b: String,
                c: std::fs::File,
            }
        ));
        assert!(!out.contains("holds_edges"), "{out}");
        assert!(!out.contains("compile_error"), "{out}");
    }

    #[test]
    fn edges_and_type_params_get_a_drop_check() {
        for input in [
            quote!(
                struct S {
                    a: Option<Member<S>>,
                }
            ),
            quote!(
                struct S<T> {
                    a: T,
                }
            ),
            quote!(
                enum S {
                    A(tricolor::GcVec<u8>),
                }
            ),
            quote!(
                struct S(GcMap<u8, u8>);
            ),
        ] {
            let out = expand_str(input);
            assert!(
                out.contains(
                    "S_holds_edges_so_it_must_not_implement_Drop__use_tricolor_add_cleanup_instead"
                ),
                "{out}"
            );
        }
        let out = expand_str(quote!(
            #[tricolor(unsafe_allow_drop)]
            struct S {
                a: Member<S>,
            }
        ));
        assert!(!out.contains("holds_edges"), "{out}");
    }

    #[test]
    fn bad_attributes_and_unions_are_errors() {
        for input in [
            quote!(
                #[tricolor(frobnicate)]
                struct S;
            ),
            quote!(
                struct S {
                    #[tricolor(skip)]
                    a: u8,
                }
            ),
            quote!(
                union U {
                    a: u8,
                }
            ),
            quote!(
                #[repr(C, packed(2))]
                struct S {
                    a: u8,
                }
            ),
        ] {
            let out = expand_str(input);
            assert!(out.contains("compile_error"), "{out}");
        }
    }

    #[test]
    fn self_is_replaced_in_field_types() {
        let self_ty: Type = parse_quote!(Node<T>);
        let ty: Type = parse_quote!(Option<Member<Self>>);
        let replaced = replace_self(&ty, &self_ty);
        let squash = |s: String| s.replace(' ', "");
        assert_eq!(
            squash(replaced.to_token_stream().to_string()),
            "Option<Member<Node<T>>>"
        );
    }

    #[test]
    fn generics_get_trace_bounds() {
        let out = expand_str(quote!(
            struct S<'a, T: Copy, const N: usize = 3>
            where
                T: Send,
            {
                a: &'a [T; N],
            }
        ));
        assert!(out.contains("T : Copy + :: tricolor :: Trace"), "{out}");
        // Defaults are kept off the impl and the check function.
        assert!(!out.contains("= 3"), "{out}");
    }
}
