//! The option types of the leak sweeps: `sweep=T0/T1/T2` and `sweep_young=auto|fallback`.

use super::{Expected, OptionValue};

/// The sweeps' thresholds per generation (`sweep=`); 0 disables a generation's trigger,
/// and a threshold 0 for generation 0 turns automatic sweeps off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds(pub [u32; 3]);

impl Thresholds {
    /// Sweeps off: `sweep=0`.
    pub const OFF: Thresholds = Thresholds([0; 3]);
    /// CPython's: `sweep=1`.
    pub const DEFAULT_ON: Thresholds = Thresholds([700, 10, 10]);

    /// Whether generation 0's trigger is on.
    pub fn enabled(&self) -> bool {
        self.0[0] != 0
    }
}

impl OptionValue for Thresholds {
    const VALUES: &'static str = "0|1|T0/T1/T2";
    fn parse_value(text: &[u8], _: u64, _: u64) -> Result<Self, Expected> {
        match text {
            b"0" => return Ok(Thresholds::OFF),
            b"1" => return Ok(Thresholds::DEFAULT_ON),
            _ => {}
        }
        let mut out = [0u32; 3];
        let mut parts = text.split(|&c| c == b'/');
        for slot in &mut out {
            let part = parts.next().ok_or(Expected::Thresholds)?;
            *slot = u32::parse_value(part, 0, u32::MAX as u64).map_err(|_| Expected::Thresholds)?;
        }
        if parts.next().is_some() {
            return Err(Expected::Thresholds);
        }
        Ok(Thresholds(out))
    }
}

/// How a young sweep finds the old memory written since the last sweep
/// (`sweep_young=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum YoungSweep {
    /// The kernel's record of written pages when it has one, else [`YoungSweep::Fallback`].
    Auto,
    /// Scan every old block whole (slower; the same answers).
    Fallback,
}

impl OptionValue for YoungSweep {
    const VALUES: &'static str = "auto|fallback";
    fn parse_value(text: &[u8], _: u64, _: u64) -> Result<Self, Expected> {
        match text {
            b"auto" => Ok(YoungSweep::Auto),
            b"fallback" => Ok(YoungSweep::Fallback),
            _ => Err(Expected::YoungSweep),
        }
    }
}
