//! `stop_signal=`: the signal a leak check stops the other threads with.
//!
//! # What it owns
//! [`StopSignal`]: parsing the option's value and refusing the signals that cannot serve.
//!
//! # The default: `SIGPWR`
//! A check interrupts every other thread with a signal whose handler parks it (see
//! `leak::stop`). The signal must be catchable, never sent by the kernel for its own
//! reasons, and one the program is unlikely to use: the Boehm collector stops threads
//! with `SIGPWR` on Linux for those reasons (power-failure notices are not sent to
//! ordinary programs), and so does HeapSweep by default.
//!
//! The handler is installed for the length of each check only; the program's own action
//! for the signal is put back after the world resumes, and the program's signals that
//! arrive meanwhile are forwarded to it. A program that uses `SIGPWR` itself keeps working,
//! but a standard signal does not queue: one of the program's arriving at a thread at the
//! very moment the check's does is merged with it by the kernel. Such a program should
//! name another signal, best a real-time one, which queues: `stop_signal=RTMIN+3`.
//!
//! # Refused
//! `KILL` and `STOP` (cannot be caught); the fault signals `SEGV`, `BUS`, `ILL`, `FPE`,
//! `TRAP`, `ABRT` (a fault inside the check must reach the program); `CHLD`, `CONT`,
//! `TSTP`, `TTIN`, `TTOU`, `PIPE` (the kernel sends them on its own); 32 and 33 (glibc
//! keeps them); the [`SCOPE_SIGNALS`] highest real-time signals, which leak-check scopes
//! use as data in the signal mask (`runtime::scope::inherit`).

use super::{Expected, OptionValue};
use crate::platform;
use core::fmt;

/// How many of the highest real-time signals leak-check scopes keep in the threads'
/// signal masks (`SIGRTMAX - 12 ..= SIGRTMAX`); none of them may stop threads.
pub(crate) const SCOPE_SIGNALS: i32 = 13;

/// The signal a leak check stops threads with (`stop_signal`); see the module docs.
///
/// ```
/// use alloc_core::config::Options;
/// let mut o = Options::defaults();
/// assert_eq!(o.stop_signal.to_string(), "SIGPWR");
/// o.set(b"stop_signal", b"sigusr2").unwrap();
/// assert_eq!((o.stop_signal.number(), o.stop_signal.to_string().as_str()), (12, "SIGUSR2"));
/// o.set(b"stop_signal", b"RTMIN+3").unwrap();
/// assert_eq!(o.stop_signal.to_string(), "SIGRTMIN+3");
/// assert!(o.set(b"stop_signal", b"KILL").is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StopSignal(i32);

impl StopSignal {
    /// `SIGPWR`.
    pub const DEFAULT: StopSignal = StopSignal(platform::SIGPWR);

    /// The signal's number.
    pub fn number(self) -> i32 {
        self.0
    }
}

impl fmt::Display for StopSignal {
    /// `SIGPWR`, `SIGRTMIN+3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match platform::STANDARD_SIGNALS.iter().find(|&&(_, n)| n == self.0) {
            Some((name, _)) => write!(f, "SIG{name}"),
            None if self.0 >= platform::rt_signal_min() => write!(f, "SIGRTMIN+{}", self.0 - platform::rt_signal_min()),
            None => write!(f, "signal {}", self.0),
        }
    }
}

impl OptionValue for StopSignal {
    const VALUES: &'static str = "signal";
    fn parse_value(text: &[u8], _: u64, _: u64) -> Result<Self, Expected> {
        let sig = signal_number(text).ok_or(Expected::StopSignal { why: "" })?;
        match refusal(sig) {
            None => Ok(StopSignal(sig)),
            Some(why) => Err(Expected::StopSignal { why }),
        }
    }
}

/// The number `text` names: `PWR` or `SIGPWR` (any case), `30`, `RTMIN`, `RTMIN+3`,
/// `RTMAX-14`. Real-time names must stay in the real-time range.
fn signal_number(text: &[u8]) -> Option<i32> {
    let name = match text {
        [b'S' | b's', b'I' | b'i', b'G' | b'g', rest @ ..] => rest,
        _ => text,
    };
    if !name.is_empty() && name.iter().all(u8::is_ascii_digit) {
        return small_number(name);
    }
    let (min, max) = (platform::rt_signal_min(), platform::rt_signal_max());
    let rt = |prefix: &[u8], sign: i32| -> Option<i32> {
        let rest = name.get(prefix.len()..).filter(|_| name[..prefix.len()].eq_ignore_ascii_case(prefix))?;
        let base = if sign > 0 { min } else { max };
        let offset = match rest {
            [] => 0,
            [op, digits @ ..] if *op == if sign > 0 { b'+' } else { b'-' } => small_number(digits)?,
            _ => return None,
        };
        Some(base + sign * offset).filter(|s| (min..=max).contains(s))
    };
    if name.len() >= 5 {
        if let Some(sig) = rt(b"RTMIN", 1).or_else(|| rt(b"RTMAX", -1)) {
            return Some(sig);
        }
    }
    platform::STANDARD_SIGNALS.iter().find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name)).map(|&(_, s)| s)
}

/// A decimal number of at most 3 digits.
fn small_number(digits: &[u8]) -> Option<i32> {
    if digits.is_empty() || digits.len() > 3 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0, |a, d| a * 10 + (d - b'0') as i32))
}

/// Why signal `sig` cannot stop threads, or `None` when it can.
fn refusal(sig: i32) -> Option<&'static str> {
    use platform::STANDARD_SIGNALS as S;
    let named = |names: &[&str]| names.iter().any(|n| S.iter().any(|&(m, s)| m == *n && s == sig));
    let max = platform::rt_signal_max();
    if sig < 1 || sig > max {
        Some("not a signal on this system")
    } else if named(&["KILL", "STOP"]) {
        Some("a signal that cannot be caught")
    } else if named(&["SEGV", "BUS", "ILL", "FPE", "TRAP", "ABRT"]) {
        Some("a fault signal, which must reach the program")
    } else if named(&["CHLD", "CONT", "TSTP", "TTIN", "TTOU", "PIPE"]) {
        Some("a signal the kernel sends on its own (child processes, job control, broken pipes)")
    } else if sig > S.len() as i32 && sig < platform::rt_signal_min() {
        Some("a signal glibc keeps for itself")
    } else if sig > max - SCOPE_SIGNALS {
        Some("one of the 13 highest real-time signals, which leak-check scopes use")
    } else {
        None
    }
}
