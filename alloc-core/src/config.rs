//! Configuration: the `HEAPSWEEP` environment variable.
//!
//! # What it owns
//! The option table ([`Options`], [`OPTIONS`]), the parser ([`parse`]), the process-wide
//! options in force ([`current`]) and the code-side override of the at-exit check
//! ([`set_check_at_exit`]). The heap reads `stack_depth` / `fast_unwind` when it makes a
//! thread's heap, the leak check reads the root switches, the report reads the rest;
//! `leak-report` prints [`OPTIONS`] as help text.
//!
//! # Syntax
//! `key=value` pairs separated by `,` or `:` (as in `LSAN_OPTIONS`); spaces around pairs
//! and empty pairs are ignored; a value written wholly in double quotes may hold `,` and
//! `:`. An unknown key or a malformed or out-of-range value prints one warning line naming
//! it, and that option keeps its default. A key given twice takes its last value.
//!
//! ```
//! let opts = alloc_core::config::parse(br#"exitcode=0:report="/tmp/a,b-%p.json""#, &mut |w| panic!("{w}"));
//! assert_eq!(opts.exitcode, 0);
//! assert_eq!(opts.report.as_bytes(), b"/tmp/a,b-%p.json");
//! assert_eq!(opts.report.expand(42).as_bytes(), b"/tmp/a,b-42.json");
//! ```
//!
//! # Declaring options
//! Every option is one entry of the `options!` table below: doc comment (the
//! description), name, type, default, the default as text, and for integers the accepted
//! range. The table generates [`Options`] (fields, [`Options::defaults`], [`Options::set`])
//! and [`OPTIONS`]; nothing else lists the options.
//!
//! # When
//! Parsed once, in the allocator's first allocation, so without allocating: `getenv`, a
//! parser over byte slices, warnings formatted into a stack buffer, paths kept in
//! [`FixedPath`] buffers, and a hand-rolled once-cell (std's `OnceLock` may allocate or
//! park the thread, and this runs before the allocator can serve anyone).

mod path;
mod stop_signal;
mod sweep;
mod zeroing;

use crate::platform;
use core::cell::UnsafeCell;
use core::fmt::{self, Write as _};
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, Ordering};
pub use path::FixedPath;
use path::Lossy;
pub use stop_signal::StopSignal;
pub(crate) use stop_signal::SCOPE_SIGNALS;
pub use sweep::{Thresholds, YoungSweep};
pub use zeroing::ZeroNew;

/// What [`OPTIONS`] lists for each option.
#[derive(Clone, Copy, Debug)]
pub struct OptionDoc {
    /// The key, as written in `HEAPSWEEP`.
    pub name: &'static str,
    /// The default, as text.
    pub default: &'static str,
    /// The values accepted, e.g. `0|1`, `0..=64`, `path`.
    pub values: &'static str,
    /// What it does.
    pub description: &'static str,
}

/// What a value should have looked like: the tail of a "bad value" warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    /// `0` or `1`.
    Bool,
    /// A decimal integer in `min..=max`.
    Int {
        /// Smallest accepted.
        min: u64,
        /// Largest accepted.
        max: u64,
    },
    /// A path of at most [`FixedPath::CAPACITY`] bytes.
    Path,
    /// A signal: a name like `USR2` or `SIGUSR2`, or a number 1..=64.
    Signal,
    /// A signal to stop threads with ([`StopSignal`]); `why` says why a signal was
    /// refused, and is empty when the value names no signal at all.
    StopSignal {
        /// Why the signal cannot serve ("a signal that cannot be caught"), or empty.
        why: &'static str,
    },
    /// Sweep thresholds: `0`, `1` or three integers `T0/T1/T2`.
    Thresholds,
    /// `auto` or `fallback`.
    YoungSweep,
    /// `0`, `1` or `scopes`.
    ZeroNew,
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expected::Bool => f.write_str("expected 0 or 1"),
            Expected::Int { min, max } => write!(f, "expected an integer {min}..={max}"),
            Expected::Path => write!(f, "expected a path of at most {} bytes", FixedPath::CAPACITY),
            Expected::Signal => f.write_str("expected a signal name such as USR2 or SIGUSR2, or a number 1..=64"),
            Expected::StopSignal { why } => {
                if !why.is_empty() {
                    write!(f, "{why}; ")?;
                }
                f.write_str(
                    "expected a catchable signal such as PWR, XCPU, SYS or USR2 (SIG optional), a number, or RTMIN+n",
                )
            }
            Expected::Thresholds => f.write_str("expected 0 (off), 1 (700/10/10) or three integers T0/T1/T2"),
            Expected::YoungSweep => f.write_str("expected auto or fallback"),
            Expected::ZeroNew => f.write_str("expected 0, 1 or scopes"),
        }
    }
}

/// Why [`Options::set`] refused a key or value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionError {
    /// No option has this name.
    UnknownKey,
    /// The value does not parse, or is out of range.
    BadValue(Expected),
}

/// Parses one value of an option's type. `min..=max` is the declared range (integers).
trait OptionValue: Sized {
    /// The values accepted, for [`OptionDoc::values`] (integers say their range instead).
    const VALUES: &'static str;
    fn parse_value(text: &[u8], min: u64, max: u64) -> Result<Self, Expected>;
}

impl OptionValue for bool {
    const VALUES: &'static str = "0|1";
    fn parse_value(text: &[u8], _: u64, _: u64) -> Result<Self, Expected> {
        match text {
            b"1" | b"true" | b"yes" => Ok(true),
            b"0" | b"false" | b"no" => Ok(false),
            _ => Err(Expected::Bool),
        }
    }
}

impl OptionValue for u32 {
    const VALUES: &'static str = "integer";
    fn parse_value(text: &[u8], min: u64, max: u64) -> Result<Self, Expected> {
        let bad = Expected::Int { min, max };
        if text.is_empty() {
            return Err(bad);
        }
        let mut v: u64 = 0;
        for &d in text {
            if !d.is_ascii_digit() {
                return Err(bad);
            }
            v = v.checked_mul(10).and_then(|v| v.checked_add((d - b'0') as u64)).ok_or(bad)?;
        }
        if v < min || v > max {
            return Err(bad);
        }
        u32::try_from(v).map_err(|_| bad)
    }
}

impl OptionValue for FixedPath {
    const VALUES: &'static str = "path";
    /// An empty value unsets the path (`report=` writes no report).
    fn parse_value(text: &[u8], _: u64, _: u64) -> Result<Self, Expected> {
        FixedPath::from_bytes(text).ok_or(Expected::Path)
    }
}

/// A signal named in an option; `Signal::NONE` (0) when unset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signal(pub i32);

impl Signal {
    /// No signal.
    pub const NONE: Signal = Signal(0);

    /// Names accepted (with or without `SIG`, any case), and their numbers on Linux.
    const NAMES: &'static [(&'static str, i32)] = platform::SIGNAL_NAMES;

    /// The signal's number, or `None` when unset.
    pub fn number(self) -> Option<i32> {
        (self.0 != 0).then_some(self.0)
    }
}

impl OptionValue for Signal {
    const VALUES: &'static str = "signal";
    /// An empty value unsets it. Signals the runtime or the leak check rely on (`SEGV`,
    /// `KILL`, `STOP`, `PWR`, ...) are not in the name table, but can be given by number.
    fn parse_value(text: &[u8], _: u64, _: u64) -> Result<Self, Expected> {
        if text.is_empty() {
            return Ok(Signal::NONE);
        }
        if text.iter().all(u8::is_ascii_digit) {
            let n = u32::parse_value(text, 1, 64).map_err(|_| Expected::Signal)?;
            return Ok(Signal(n as i32));
        }
        let name = match text {
            [b'S' | b's', b'I' | b'i', b'G' | b'g', rest @ ..] => rest,
            _ => text,
        };
        Signal::NAMES
            .iter()
            .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name))
            .map(|&(_, num)| Signal(num))
            .ok_or(Expected::Signal)
    }
}

macro_rules! options {
    (@range) => { (0, u64::MAX) };
    (@range $min:literal $max:literal) => { ($min, $max) };
    (@values $ty:ty;) => { <$ty as OptionValue>::VALUES };
    (@values $ty:ty; $min:literal $max:literal) => { concat!(stringify!($min), "..=", stringify!($max)) };
    ($( $(#[doc = $doc:literal])+ $name:ident : $ty:ty = $default:expr, $default_text:literal
        $(, range $min:literal ..= $max:literal)? ; )*) => {
        /// The options in force; see [`current`]. Every field is one `HEAPSWEEP` key.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct Options {
            $( $(#[doc = $doc])+ pub $name: $ty, )*
        }

        impl Options {
            /// Every option at its default (`const`: the allocator uses it before parsing).
            pub const fn defaults() -> Options {
                Options { $( $name: $default, )* }
            }

            /// Sets option `key` from its text `value` (quotes already removed). On error
            /// the option keeps its value.
            ///
            /// ```
            /// use alloc_core::config::{Expected, OptionError, Options};
            /// let mut o = Options::defaults();
            /// assert_eq!(o.set(b"stack_depth", b"8"), Ok(()));
            /// assert_eq!(o.stack_depth, 8);
            /// assert_eq!(o.set(b"stack_depth", b"65"), Err(OptionError::BadValue(Expected::Int { min: 0, max: 64 })));
            /// assert_eq!(o.set(b"no_such_key", b"1"), Err(OptionError::UnknownKey));
            /// ```
            pub fn set(&mut self, key: &[u8], value: &[u8]) -> Result<(), OptionError> {
                $(
                    if key == stringify!($name).as_bytes() {
                        let (min, max) = options!(@range $($min $max)?);
                        self.$name = <$ty as OptionValue>::parse_value(value, min, max).map_err(OptionError::BadValue)?;
                        return Ok(());
                    }
                )*
                Err(OptionError::UnknownKey)
            }
        }

        /// Every option, in table order, for help texts.
        pub const OPTIONS: &[OptionDoc] = &[
            $( OptionDoc {
                name: stringify!($name),
                default: $default_text,
                values: options!(@values $ty; $($min $max)?),
                description: concat!($($doc),+).trim_ascii(),
            }, )*
        ];
    };
}

options! {
    /// 1 runs a full leak check when the process ends; 0 skips it.
    check_at_exit: bool = true, "1";
    /// Exit status when leaks are found; 0 leaves the program's own status.
    exitcode: u32 = 23, "23", range 0..=255;
    /// Exit status when the at-exit check could not run to the end (threads that did not
    /// stop, unreadable roots, out of memory: the report says which); 0 leaves the
    /// program's own status.
    failure_exitcode: u32 = 24, "24", range 0..=255;
    /// Path of the JSON report written at exit, leaks or not (`%p` becomes the pid).
    report: FixedPath = FixedPath::empty(), "none";
    /// Frames kept per allocation stack; 0 records none.
    stack_depth: u32 = 32, "32", range 0..=64;
    /// Path of a suppressions file: lines `leak:PATTERN`, `#` comments.
    suppressions: FixedPath = FixedPath::empty(), "none";
    /// Path of an earlier leak report (JSON): its leak groups, matched by kind and
    /// allocation site (function, file, line), are printed as known and do not set the
    /// exit status.
    baseline: FixedPath = FixedPath::empty(), "none";
    /// 1 captures stacks with the cached unwinder: unwind rules from `.eh_frame`, looked
    /// up once per return address and cached, frame-pointer records where no rule exists
    /// (complete with or without frame pointers, a few ns a frame); 0 unwinds every frame
    /// with libgcc's DWARF unwinder (the same stacks, about 100 times slower: for
    /// comparison, or if the cached unwinder warns that it disagrees with it).
    fast_unwind: bool = true, "1";
    /// 1 resolves function names, files and lines in reports; 0 keeps raw addresses.
    symbolize: bool = true, "1";
    /// 0 prints leaks only; 1 adds a line per check; 2 adds details of each phase.
    verbosity: u32 = 0, "0", range 0..=2;
    /// Most leak groups printed in the text report; 0 prints all.
    max_leaks: u32 = 0, "0", range 0..=4294967295;
    /// Scan thread stacks for roots.
    use_stacks: bool = true, "1";
    /// Scan stopped threads' registers for roots.
    use_registers: bool = true, "1";
    /// Scan the writable data of loaded objects for roots.
    use_globals: bool = true, "1";
    /// Scan thread-local storage for roots.
    use_tls: bool = true, "1";
    /// Scan regions registered with `register_root`.
    use_root_regions: bool = true, "1";
    /// Scan other writable memory (the libc heap, foreign anonymous mappings) for roots.
    use_other_mappings: bool = true, "1";
    /// The signal a check stops the other threads with, installed for the check only (the
    /// program's handler is put back after): `PWR`, `XCPU`, `USR2`, a number, `RTMIN+n`.
    stop_signal: StopSignal = StopSignal::DEFAULT, "PWR";
    /// Path of the heap profile written at exit (`%p` becomes the pid); set, it turns on
    /// per-stack allocation counting from the start.
    profile: FixedPath = FixedPath::empty(), "none";
    /// A signal (e.g. `USR2`) that writes the heap profile, at the next allocation after
    /// it arrives, to the `profile` path with `.1`, `.2`, ... appended.
    profile_signal: Signal = Signal::NONE, "none";
    /// Leak sweeps while the program runs: thresholds `T0/T1/T2` of generations 0, 1 and
    /// 2, as Python's `gc.set_threshold` (`1` means 700/10/10, `0` off; a 0 threshold
    /// disables that generation's trigger). A background thread sweeps; each new leak is
    /// reported once (stderr through `tracing`, `sweep::on_leak`, and JSON lines appended
    /// to `report` when set).
    sweep: Thresholds = Thresholds::OFF, "0";
    /// With sweeps, also a generation-0 sweep every N milliseconds if anything was
    /// allocated meanwhile; 0 off.
    sweep_interval_ms: u32 = 0, "0", range 0..=86400000;
    /// A signal (e.g. `USR1`) that runs a full sweep and appends its new leaks to
    /// `report`, on the sweeper thread.
    sweep_signal: Signal = Signal::NONE, "none";
    /// How young sweeps find old memory written since the last sweep: `auto` (the
    /// kernel's record of written pages when it has one) or `fallback` (scan every old
    /// block).
    sweep_young: YoungSweep = YoungSweep::Auto, "auto";
    /// When new blocks start zeroed, so that bytes a program leaves unwritten never hold
    /// an earlier occupant's pointer (which would hide a leak now at that address): `0`
    /// only `alloc_zeroed` and a leak-check scope's blocks, `1` every block, `scopes` every
    /// block once a leak-check scope has been opened (exact scope answers in tests).
    zero_new: ZeroNew = ZeroNew::Scopes, "scopes";
}

impl Default for Options {
    fn default() -> Self {
        Options::defaults()
    }
}

impl Options {
    /// `path` with every `%p` replaced by `pid`; see [`FixedPath::expand`].
    pub fn expand_path(path: &FixedPath, pid: u32) -> FixedPath {
        path.expand(pid)
    }
}

/// One entry of the input, as split by [`for_each_pair`].
enum Pair<'a> {
    /// `key=value`, value unquoted.
    Entry(&'a [u8], &'a [u8]),
    /// Not `key=value`: the entry's text and why.
    Malformed(&'a [u8], &'static str),
}

/// Splits `input` at `,` and `:` outside double quotes, trims each piece and calls `f` for
/// every non-empty one.
fn for_each_pair(input: &[u8], mut f: impl FnMut(Pair<'_>)) {
    let mut i = 0;
    while i < input.len() {
        let start = i;
        let mut in_quotes = false;
        while i < input.len() && (in_quotes || (input[i] != b',' && input[i] != b':')) {
            in_quotes ^= input[i] == b'"';
            i += 1;
        }
        let piece = input[start..i].trim_ascii();
        i += 1;
        if !piece.is_empty() {
            f(split_pair(piece));
        }
    }
}

/// `key=value` (the value unquoted), or why `piece` is not that.
fn split_pair(piece: &[u8]) -> Pair<'_> {
    let Some(eq) = piece.iter().position(|&c| c == b'=') else {
        return Pair::Malformed(piece, "expected key=value");
    };
    let key = piece[..eq].trim_ascii();
    let value = piece[eq + 1..].trim_ascii();
    if key.is_empty() {
        return Pair::Malformed(piece, "empty key");
    }
    match value {
        [b'"', inner @ .., b'"'] if !inner.contains(&b'"') => Pair::Entry(key, inner),
        _ if value.contains(&b'"') => Pair::Malformed(piece, "a quoted value must be wholly in double quotes"),
        _ => Pair::Entry(key, value),
    }
}

/// Longest excerpt of the input a warning quotes, in characters.
const QUOTE_CHARS: usize = 80;

/// Parses a `HEAPSWEEP` value. Calls `on_warning` with one line (no newline, no
/// `heapsweep:` prefix) per unknown key, malformed entry or bad value; those keep their
/// defaults. Never panics, never allocates through the global allocator.
///
/// ```
/// let mut warnings = Vec::new();
/// let opts = alloc_core::config::parse(b"stack_depth=x, bogus=1", &mut |w| warnings.push(w.to_string()));
/// assert_eq!(opts.stack_depth, 32);
/// assert_eq!(warnings, [
///     "HEAPSWEEP: bad value 'x' for stack_depth: expected an integer 0..=64; using 32",
///     "HEAPSWEEP: unknown key 'bogus' (ignored)",
/// ]);
/// ```
pub fn parse(input: &[u8], on_warning: &mut dyn FnMut(&str)) -> Options {
    let mut opts = Options::defaults();
    for_each_pair(input, |pair| {
        let mut w = crate::fatal::StackWriter::<400>::new();
        let _ = match pair {
            Pair::Entry(key, value) => match opts.set(key, value) {
                Ok(()) => return,
                Err(OptionError::UnknownKey) => write!(w, "HEAPSWEEP: unknown key '{}' (ignored)", shown(key)),
                Err(OptionError::BadValue(expected)) => {
                    let default = OPTIONS.iter().find(|o| o.name.as_bytes() == key).map_or("", |o| o.default);
                    let (k, v) = (shown(key), shown(value));
                    write!(w, "HEAPSWEEP: bad value '{v}' for {k}: {expected}; using {default}")
                }
            },
            Pair::Malformed(text, why) => write!(w, "HEAPSWEEP: malformed entry '{}' ({why}; ignored)", shown(text)),
        };
        on_warning(utf8_prefix(w.as_bytes()));
    });
    if opts.profile_signal.number() == Some(opts.stop_signal.number()) {
        let mut w = crate::fatal::StackWriter::<200>::new();
        let _ =
            write!(w, "HEAPSWEEP: profile_signal is the stop signal ({}); profile_signal ignored", opts.stop_signal);
        on_warning(utf8_prefix(w.as_bytes()));
        opts.profile_signal = Signal::NONE;
    }
    let sweep = opts.sweep_signal.number();
    let taken_by = if sweep == Some(opts.stop_signal.number()) {
        Some("the stop signal")
    } else if sweep.is_some() && sweep == opts.profile_signal.number() {
        Some("profile_signal")
    } else {
        None
    };
    if let Some(other) = taken_by {
        let mut w = crate::fatal::StackWriter::<200>::new();
        let _ = write!(w, "HEAPSWEEP: sweep_signal is {other} already; sweep_signal ignored");
        on_warning(utf8_prefix(w.as_bytes()));
        opts.sweep_signal = Signal::NONE;
    }
    opts
}

/// `bytes` as a warning quotes them.
fn shown(bytes: &[u8]) -> Lossy<'_> {
    Lossy { bytes, max_chars: QUOTE_CHARS, escape: true }
}

/// The longest valid UTF-8 prefix of `b` (a cut buffer may end inside a character).
fn utf8_prefix(b: &[u8]) -> &str {
    match core::str::from_utf8(b) {
        Ok(s) => s,
        Err(e) => core::str::from_utf8(&b[..e.valid_up_to()]).unwrap_or_default(),
    }
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

/// Whether the process runs under the `LD_PRELOAD` library (`heapsweep-preload`): its C
/// allocation functions set it on their first call. The report then applies the default
/// suppressions of the C library's own allocations.
static PRELOADED: AtomicBool = AtomicBool::new(false);

/// Marks the process as running under the `LD_PRELOAD` library. Cheap when already set.
#[inline]
pub(crate) fn set_preloaded() {
    if !PRELOADED.load(Ordering::Relaxed) {
        PRELOADED.store(true, Ordering::Relaxed);
    }
}

/// Whether the process runs under the `LD_PRELOAD` library (see [`set_preloaded`]).
pub(crate) fn preloaded() -> bool {
    PRELOADED.load(Ordering::Relaxed)
}

const UNINIT: u8 = 0;
const INITIALIZING: u8 = 1;
const READY: u8 = 2;

/// A once-cell that neither allocates nor parks: the first caller runs the initializer,
/// later callers spin until it is done. Invariants: `value` is written only by the thread
/// that moved `state` from `UNINIT` to `INITIALIZING`, before it stores `READY`
/// (Release); `value` is read only after `READY` was loaded (Acquire).
struct Once<T> {
    state: AtomicU8,
    /// Kernel thread id of the initializing thread (0 when none).
    initializer: AtomicI32,
    value: UnsafeCell<T>,
}

// SAFETY: `value` is written once, by one thread, before `READY` is published with
// Release, and shared only as `&T` after an Acquire load of `READY` (see the invariants).
unsafe impl<T: Send + Sync> Sync for Once<T> {}

impl<T> Once<T> {
    const fn new(placeholder: T) -> Self {
        Self { state: AtomicU8::new(UNINIT), initializer: AtomicI32::new(0), value: UnsafeCell::new(placeholder) }
    }

    /// The value, made by `init` on the first call. A re-entrant call from the
    /// initializing thread itself (a signal handler that allocates, say) gets `fallback`
    /// instead of waiting for itself forever.
    #[inline]
    fn get_or_init<'a>(&'a self, fallback: &'a T, init: impl FnOnce() -> T) -> &'a T {
        if self.state.load(Ordering::Acquire) != READY && !self.init_slow(init) {
            return fallback;
        }
        // SAFETY: READY was observed with Acquire (here or in `init_slow`): `value` is
        // written and never written again.
        unsafe { &*self.value.get() }
    }

    /// Runs `init` or waits for the thread that does. False when that thread is us.
    #[cold]
    fn init_slow(&self, init: impl FnOnce() -> T) -> bool {
        let me = platform::gettid();
        if self.state.compare_exchange(UNINIT, INITIALIZING, Ordering::Acquire, Ordering::Acquire).is_ok() {
            self.initializer.store(me, Ordering::Relaxed);
            let v = init();
            // SAFETY: we moved the state to INITIALIZING: no one else writes `value`, and
            // no one reads it before READY.
            unsafe { *self.value.get() = v };
            self.initializer.store(0, Ordering::Relaxed);
            self.state.store(READY, Ordering::Release);
            return true;
        }
        while self.state.load(Ordering::Acquire) != READY {
            if self.initializer.load(Ordering::Relaxed) == me {
                return false;
            }
            core::hint::spin_loop();
        }
        true
    }
}

static CURRENT: Once<Options> = Once::new(Options::defaults());
static DEFAULTS: Options = Options::defaults();

/// The options in force, parsed from `HEAPSWEEP` on first use (thread-safe, without
/// allocating: this runs inside the allocator's first allocation). Warnings go to stderr,
/// once per process.
///
/// ```
/// let opts = alloc_core::config::current();
/// assert!(opts.stack_depth <= 64);
/// assert!(core::ptr::eq(opts, alloc_core::config::current()));
/// ```
pub fn current() -> &'static Options {
    CURRENT.get_or_init(&DEFAULTS, read_env)
}

/// The options of `HEAPSWEEP`, or the defaults when it is unset. Reads the variable in
/// place, without copying it (a concurrent `setenv` by another thread is the caller's
/// race, as for any getenv).
fn read_env() -> Options {
    platform::getenv(c"HEAPSWEEP", |bytes| parse(bytes, &mut |line| warning!("{}", line)))
        .unwrap_or_else(Options::defaults)
}

#[cfg(test)]
mod tests;
