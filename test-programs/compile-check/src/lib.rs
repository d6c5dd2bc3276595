//! A program's code that must keep compiling with HeapSweep as its allocator.
//!
//! # Why
//! An allocator must not change how its user's code type-checks. Type inference picks an
//! impl when exactly one fits, so a crate anywhere in the dependency graph that adds impls
//! to std's traits for std types makes code like `assert_eq!(total, it.sum())` ambiguous
//! (E0283/E0284): `serde_json` adds `u64: PartialEq<Value>`, `Value: From<u64>`,
//! `Value: FromStr`, `Value: Default`... Each function below holds one idiom that such an
//! impl breaks; the crate depends on `alloc-core` with its default features only, so
//! building it (`cargo test --workspace` does, with the workspace's features unified) is
//! the check. `alloc-core/tests/dependencies.rs` checks the resolved graph itself.
//!
//! The functions also compute something, and the tests below check the results, so the
//! code is run under the allocator and not merely compiled.

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

/// `assert_eq!(total, (0..n).sum())`: the sum's type comes from `u64: PartialEq<?>`.
pub fn sum_compared(n: u64) -> u64 {
    let total = n * (n - 1) / 2;
    assert_eq!(total, (0..n).sum());
    total
}

/// `x == y.into()`: the target of `into` comes from `u64: PartialEq<?>`.
pub fn into_compared(x: u64, y: u32) -> bool {
    x == y.into()
}

/// `assert_eq!(x, text.parse().unwrap())`: the parsed type comes from the comparison.
pub fn parse_compared(x: u64, text: &str) -> bool {
    let parsed = text.parse().ok();
    parsed.is_some_and(|p| x == p)
}

/// `x == Default::default()` on a number.
pub fn is_default(x: u64) -> bool {
    x == Default::default()
}

/// `assert_eq!(count, v.len().try_into().unwrap())`: the target of `try_into`.
pub fn len_compared(count: u32, v: &[u8]) -> bool {
    count == v.len().try_into().expect("a short slice")
}

/// `f64` and `bool` compared with values whose type is inferred.
#[allow(clippy::useless_conversion)] // `bool == bool.into()` is the idiom under test
pub fn float_and_bool(values: &[f32], flag: bool) -> (bool, bool) {
    let total: f64 = values.iter().map(|&v| f64::from(v)).sum();
    let same_total = total == values.iter().copied().sum::<f32>().into();
    let same_flag = flag == values.is_empty().into();
    (same_total, same_flag)
}

/// `collect()` into inferred types, `let v: Vec<_>`, and `sum()` into a comparison.
pub fn collected(words: &[&str]) -> (Vec<usize>, String, usize) {
    let lengths: Vec<_> = words.iter().map(|w| w.len()).collect();
    let joined: String = words.iter().copied().collect();
    let count = lengths.iter().filter(|&&n| n > 2).count();
    assert_eq!(joined.len(), lengths.iter().sum());
    (lengths, joined, count)
}

/// `i64` and `usize` sums and products compared with literals and inferred folds.
pub fn signed_and_sizes(values: &[i64]) -> bool {
    let negatives = values.iter().filter(|&&v| v < 0).count();
    let product: i64 = values.iter().product();
    negatives == values.iter().map(|&v| usize::from(v < 0)).sum() && product == values.iter().product()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idioms_compute_what_they_should() {
        assert_eq!(sum_compared(10_000), 49_995_000);
        assert!(into_compared(7, 7) && !into_compared(7, 8));
        assert!(parse_compared(42, "42") && !parse_compared(42, "43") && !parse_compared(1, "x"));
        assert!(is_default(0) && !is_default(1));
        assert!(len_compared(3, b"abc") && !len_compared(2, b"abc"));
        assert_eq!(float_and_bool(&[0.5, 1.5], false), (true, true));
        assert_eq!(float_and_bool(&[], false), (true, false));
        let (lengths, joined, long) = collected(&["heap", "of", "blocks"]);
        assert_eq!((lengths, joined.as_str(), long), (vec![4, 2, 6], "heapofblocks", 2));
        assert!(signed_and_sizes(&[-2, 3, -4]));
    }

    #[test]
    fn runs_under_heapsweep() {
        let v: Vec<u64> = (0..1000).collect();
        let info = alloc_core::block_info(v.as_ptr().cast()).expect("the Vec's block is HeapSweep's");
        assert_eq!(info.requested_size, 8000, "{info:?}");
    }
}
