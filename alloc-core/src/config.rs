//! Configuration: the `HEAPSWEEP` environment variable.
//!
//! # Syntax
//! `key=value` pairs separated by `,` or `:` (as in `LSAN_OPTIONS`); spaces around pairs
//! are ignored; a value in double quotes may hold `,` and `:`. An unknown key or a
//! malformed value prints one warning line naming it, and the default is kept.
//!
//! # Declaring options
//! Every option is one line of the `options!` table below: type, name, default,
//! description. The table generates [`Options`], its parser and [`OPTIONS`], the list the
//! command-line tool prints.
//!
//! # When
//! Parsed once, on the allocator's first allocation, without allocating: `getenv`, a
//! fixed-size parser, warnings through a stack buffer.

use core::sync::atomic::{AtomicU8, Ordering};

/// A path held inline (options must be parsed without allocating). Up to 4095 bytes.
#[derive(Clone, Copy)]
pub struct FixedPath {
    len: u16,
    bytes: [u8; FixedPath::CAPACITY],
}

impl FixedPath {
    /// Longest path held.
    pub const CAPACITY: usize = 4095;

    /// The empty path: "not set".
    pub const fn empty() -> Self {
        Self { len: 0, bytes: [0; Self::CAPACITY] }
    }

    /// A path from bytes, or `None` if longer than [`FixedPath::CAPACITY`].
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() > Self::CAPACITY {
            return None;
        }
        let mut p = Self::empty();
        p.bytes[..b.len()].copy_from_slice(b);
        p.len = b.len() as u16;
        Some(p)
    }

    /// The path's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// Whether no path is set.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `Some(self)` when set.
    pub fn as_option(&self) -> Option<&FixedPath> {
        (!self.is_empty()).then_some(self)
    }

    /// The path with `%p` replaced by `pid` (cut at [`FixedPath::CAPACITY`]).
    pub fn expand(&self, pid: u32) -> FixedPath {
        let mut out = FixedPath::empty();
        let mut n = 0;
        let mut push = |b: u8, n: &mut usize| {
            if *n < Self::CAPACITY {
                out.bytes[*n] = b;
                *n += 1;
            }
        };
        let src = self.as_bytes();
        let mut i = 0;
        while i < src.len() {
            if src[i] == b'%' && src.get(i + 1) == Some(&b'p') {
                let mut digits = [0u8; 10];
                let mut k = 0;
                let mut v = pid;
                loop {
                    digits[k] = b'0' + (v % 10) as u8;
                    k += 1;
                    v /= 10;
                    if v == 0 {
                        break;
                    }
                }
                for d in digits[..k].iter().rev() {
                    push(*d, &mut n);
                }
                i += 2;
            } else {
                push(src[i], &mut n);
                i += 1;
            }
        }
        out.len = n as u16;
        out
    }
}

impl core::fmt::Debug for FixedPath {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

/// What [`OPTIONS`] lists for each option.
#[derive(Clone, Copy, Debug)]
pub struct OptionDoc {
    /// The key, as written in `HEAPSWEEP`.
    pub name: &'static str,
    /// The default, as text.
    pub default: &'static str,
    /// What it does.
    pub description: &'static str,
}

/// Parses one value of an option's type; `Err` names what was expected.
trait OptionValue: Sized {
    fn parse_value(text: &[u8], min: i64, max: i64) -> Result<Self, &'static str>;
}

impl OptionValue for bool {
    fn parse_value(text: &[u8], _: i64, _: i64) -> Result<Self, &'static str> {
        match text {
            b"1" | b"true" | b"yes" => Ok(true),
            b"0" | b"false" | b"no" => Ok(false),
            _ => Err("expected 0 or 1"),
        }
    }
}

fn parse_int(text: &[u8], min: i64, max: i64) -> Result<i64, &'static str> {
    if text.is_empty() || text.len() > 18 || !text.iter().all(u8::is_ascii_digit) {
        return Err("expected an integer");
    }
    let v = text.iter().fold(0i64, |acc, d| acc * 10 + (d - b'0') as i64);
    if v < min || v > max {
        return Err("out of range");
    }
    Ok(v)
}

impl OptionValue for u32 {
    fn parse_value(text: &[u8], min: i64, max: i64) -> Result<Self, &'static str> {
        parse_int(text, min, max).map(|v| v as u32)
    }
}

impl OptionValue for FixedPath {
    fn parse_value(text: &[u8], _: i64, _: i64) -> Result<Self, &'static str> {
        if text.is_empty() {
            return Err("expected a path");
        }
        FixedPath::from_bytes(text).ok_or("path longer than 4095 bytes")
    }
}

macro_rules! options {
    ($( $(#[doc = $doc:literal])* $name:ident : $ty:ty = $default:expr, $default_text:literal, range $min:literal ..= $max:literal; )*) => {
        /// The options in force; see [`current`]. Every field is one `HEAPSWEEP` key.
        #[derive(Clone, Copy, Debug)]
        pub struct Options {
            $( $(#[doc = $doc])* pub $name: $ty, )*
        }

        impl Options {
            /// Every option at its default.
            pub const fn defaults() -> Options {
                Options { $( $name: $default, )* }
            }

            /// Sets option `key` from `value`; `Err` says why not.
            fn set(&mut self, key: &[u8], value: &[u8]) -> Result<(), SetError> {
                $(
                    if key == stringify!($name).as_bytes() {
                        self.$name = <$ty as OptionValue>::parse_value(value, $min, $max).map_err(SetError::BadValue)?;
                        return Ok(());
                    }
                )*
                Err(SetError::UnknownKey)
            }
        }

        /// Every option, for help texts.
        pub const OPTIONS: &[OptionDoc] = &[
            $( OptionDoc { name: stringify!($name), default: $default_text, description: concat!($($doc),*) }, )*
        ];
    };
}

options! {
    /// 1 runs a full leak check when the process ends; 0 skips it.
    check_at_exit: bool = true, "1", range 0..=1;
    /// Exit status when leaks are found; 0 leaves the program's own status.
    exitcode: u32 = 23, "23", range 0..=255;
    /// Path of the JSON report written at exit, leaks or not (`%p` becomes the pid).
    report: FixedPath = FixedPath::empty(), "none", range 0..=0;
    /// Frames kept per allocation stack; 0 records none.
    stack_depth: u32 = 32, "32", range 0..=64;
    /// Path of a suppressions file: lines `leak:PATTERN`, `#` comments.
    suppressions: FixedPath = FixedPath::empty(), "none", range 0..=0;
    /// 1 walks frame pointers to capture stacks (fast); 0 unwinds with DWARF (slow, complete).
    fast_unwind: bool = true, "1", range 0..=1;
    /// 1 resolves function names, files and lines in reports; 0 keeps raw addresses.
    symbolize: bool = true, "1", range 0..=1;
    /// 0 prints leaks only; 1 adds a line per check; 2 adds details of each phase.
    verbosity: u32 = 0, "0", range 0..=2;
    /// Most leak groups printed in the text report; 0 prints all.
    max_leaks: u32 = 0, "0", range 0..=1000000;
    /// Scan thread stacks for roots.
    use_stacks: bool = true, "1", range 0..=1;
    /// Scan stopped threads' registers for roots.
    use_registers: bool = true, "1", range 0..=1;
    /// Scan the writable data of loaded objects for roots.
    use_globals: bool = true, "1", range 0..=1;
    /// Scan thread-local storage for roots.
    use_tls: bool = true, "1", range 0..=1;
    /// Scan regions registered with `register_root`.
    use_root_regions: bool = true, "1", range 0..=1;
    /// Scan other writable memory (the libc heap, foreign anonymous mappings) for roots.
    use_other_mappings: bool = true, "1", range 0..=1;
}

impl Default for Options {
    fn default() -> Self {
        Options::defaults()
    }
}

enum SetError {
    UnknownKey,
    BadValue(&'static str),
}

/// Splits `input` into `(key, value)` pairs, honouring double quotes.
fn for_each_pair(input: &[u8], mut f: impl FnMut(&[u8], &[u8], bool)) {
    let mut i = 0;
    while i < input.len() {
        let start = i;
        let mut in_quotes = false;
        while i < input.len() && (in_quotes || (input[i] != b',' && input[i] != b':')) {
            if input[i] == b'"' {
                in_quotes = !in_quotes;
            }
            i += 1;
        }
        let pair = input[start..i].trim_ascii();
        i += 1;
        if pair.is_empty() {
            continue;
        }
        match pair.iter().position(|&c| c == b'=') {
            Some(eq) => {
                let key = pair[..eq].trim_ascii();
                let mut value = pair[eq + 1..].trim_ascii();
                let quoted = value.len() >= 2 && value[0] == b'"' && value[value.len() - 1] == b'"';
                let unbalanced = !quoted && value.contains(&b'"');
                if quoted {
                    value = &value[1..value.len() - 1];
                }
                f(key, value, !unbalanced);
            }
            None => f(pair, b"", false),
        }
    }
}

/// Parses a `HEAPSWEEP` value. Calls `on_warning` with one line per unknown key or bad
/// value (those keep their defaults). Never panics, never allocates.
pub fn parse(input: &[u8], on_warning: &mut dyn FnMut(&str)) -> Options {
    use core::fmt::Write;
    let mut opts = Options::defaults();
    for_each_pair(input, |key, value, well_formed| {
        let mut w = crate::fatal::StackWriter::<512>::new();
        let key_text = core::str::from_utf8(key).unwrap_or("<non-UTF-8>");
        let value_text = core::str::from_utf8(value).unwrap_or("<non-UTF-8>");
        if !well_formed {
            let _ = write!(w, "HEAPSWEEP: malformed entry '{key_text}' (expected key=value); ignored");
        } else {
            match opts.set(key, value) {
                Ok(()) => return,
                Err(SetError::UnknownKey) => {
                    let _ = write!(w, "HEAPSWEEP: unknown key '{key_text}' (ignored)");
                }
                Err(SetError::BadValue(why)) => {
                    let default = OPTIONS.iter().find(|o| o.name.as_bytes() == key).map_or("", |o| o.default);
                    let _ = write!(w, "HEAPSWEEP: bad value '{value_text}' for {key_text}: {why}; using {default}");
                }
            }
        }
        on_warning(core::str::from_utf8(w.as_bytes()).unwrap_or("HEAPSWEEP: bad entry"));
    });
    opts
}

/// Override of `check_at_exit` set from code: 0 none, 1 on, 2 off.
static CHECK_AT_EXIT_OVERRIDE: AtomicU8 = AtomicU8::new(0);

/// Turns the at-exit leak check on or off from code, whatever `HEAPSWEEP` says: for a
/// test binary whose tests leak on purpose, say.
///
/// ```
/// alloc_core::config::set_check_at_exit(false);
/// assert!(!alloc_core::config::check_at_exit());
/// ```
pub fn set_check_at_exit(on: bool) {
    CHECK_AT_EXIT_OVERRIDE.store(if on { 1 } else { 2 }, Ordering::Relaxed);
}

/// Whether the at-exit check will run: `check_at_exit`, or the override from
/// [`set_check_at_exit`].
pub fn check_at_exit() -> bool {
    match CHECK_AT_EXIT_OVERRIDE.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => current().check_at_exit,
    }
}

const STATE_NONE: u8 = 0;
const STATE_PARSING: u8 = 1;
const STATE_READY: u8 = 2;
static STATE: AtomicU8 = AtomicU8::new(STATE_NONE);
static mut CURRENT: Options = Options::defaults();

/// The options in force, parsed from `HEAPSWEEP` on first use (thread-safe, without
/// allocating: this runs inside the allocator's first allocation).
///
/// ```
/// let opts = alloc_core::config::current();
/// assert!(opts.stack_depth <= 64);
/// ```
pub fn current() -> &'static Options {
    if STATE.load(Ordering::Acquire) != STATE_READY {
        init();
    }
    // SAFETY: CURRENT is written once, before STATE becomes READY (Release), and never
    // again; readers see READY with Acquire first.
    unsafe { &*core::ptr::addr_of!(CURRENT) }
}

#[cold]
fn init() {
    if STATE.compare_exchange(STATE_NONE, STATE_PARSING, Ordering::AcqRel, Ordering::Acquire).is_err() {
        while STATE.load(Ordering::Acquire) != STATE_READY {
            core::hint::spin_loop();
        }
        return;
    }
    // SAFETY: getenv with a NUL-terminated name; the returned string (if any) is read
    // before anything could change the environment in this single-writer window.
    let raw = unsafe { libc::getenv(c"HEAPSWEEP".as_ptr()) };
    let opts = if raw.is_null() {
        Options::defaults()
    } else {
        // SAFETY: getenv returns a NUL-terminated string.
        let bytes = unsafe { core::ffi::CStr::from_ptr(raw) }.to_bytes();
        parse(bytes, &mut |line| warning!("{}", line))
    };
    // SAFETY: only the thread that won the CAS writes, before publishing READY.
    unsafe { *core::ptr::addr_of_mut!(CURRENT) = opts };
    STATE.store(STATE_READY, Ordering::Release);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_collect(s: &str) -> (Options, Vec<String>) {
        let mut warnings = Vec::new();
        let o = parse(s.as_bytes(), &mut |w| warnings.push(w.to_string()));
        (o, warnings)
    }

    #[test]
    fn defaults_match_the_contract() {
        let (o, w) = parse_collect("");
        assert!(w.is_empty());
        assert!(o.check_at_exit);
        assert_eq!(o.exitcode, 23);
        assert!(o.report.is_empty() && o.suppressions.is_empty());
        assert_eq!(o.stack_depth, 32);
    }

    #[test]
    fn every_contract_key_parses_with_both_separators() {
        let (o, w) =
            parse_collect("check_at_exit=0,exitcode=7:report=/tmp/r-%p.json, stack_depth=0 ,suppressions=supp.txt");
        assert!(w.is_empty(), "{w:?}");
        assert!(!o.check_at_exit);
        assert_eq!(o.exitcode, 7);
        assert_eq!(o.report.as_bytes(), b"/tmp/r-%p.json");
        assert_eq!(o.stack_depth, 0);
        assert_eq!(o.suppressions.as_bytes(), b"supp.txt");
    }

    #[test]
    fn quoted_values_may_hold_separators() {
        let (o, w) = parse_collect(r#"report="/tmp/a,b:c.json",exitcode=0"#);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(o.report.as_bytes(), b"/tmp/a,b:c.json");
        assert_eq!(o.exitcode, 0);
    }

    #[test]
    fn unknown_keys_and_bad_values_warn_once_each_and_keep_defaults() {
        let (o, w) = parse_collect("bogus=1,stack_depth=lots,exitcode=300,check_at_exit=maybe,verbosity=1,noequals");
        assert_eq!(w.len(), 5, "{w:?}");
        assert!(w[0].contains("unknown key 'bogus'"));
        assert!(w[1].contains("stack_depth") && w[1].contains("lots") && w[1].contains("using 32"));
        assert!(w[2].contains("exitcode") && w[2].contains("out of range"));
        assert!(w[3].contains("check_at_exit"));
        assert!(w[4].contains("noequals"));
        assert_eq!(o.stack_depth, 32);
        assert_eq!(o.exitcode, 23);
        assert!(o.check_at_exit);
        assert_eq!(o.verbosity, 1);
    }

    #[test]
    fn pid_expands_in_paths() {
        let p = FixedPath::from_bytes(b"/tmp/leaks-%p.json").unwrap();
        assert_eq!(p.expand(4321).as_bytes(), b"/tmp/leaks-4321.json");
        let q = FixedPath::from_bytes(b"%p%p%").unwrap();
        assert_eq!(q.expand(7).as_bytes(), b"77%");
    }

    #[test]
    fn every_option_is_documented() {
        assert!(OPTIONS.len() >= 15);
        for o in OPTIONS {
            assert!(!o.description.is_empty(), "{}", o.name);
            let (_, w) = parse_collect(&format!("{}={}", o.name, if o.default == "none" { "x" } else { o.default }));
            assert!(w.is_empty(), "default of {} does not parse: {w:?}", o.name);
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_input_never_panics(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = parse(&input, &mut |_| {});
        }

        #[test]
        fn near_valid_input_never_panics(input in "[a-z_=,:\"0-9%/. ]{0,120}") {
            let _ = parse(input.as_bytes(), &mut |_| {});
        }
    }
}
