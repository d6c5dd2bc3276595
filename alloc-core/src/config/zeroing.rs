//! The option type of `zero_new=0|1|scopes`: when new blocks start zeroed.

use super::{Expected, OptionValue};

/// When every new block starts zeroed (`zero_new=`), so that the bytes a program leaves
/// unwritten (padding, an enum's unused payload, a `Vec`'s spare capacity) never hold a
/// pointer left there by the memory's earlier occupant. The conservative scan would follow
/// such a word, and if the address it names now holds a leaked block, that leak is hidden.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZeroNew {
    /// Only what asks for zeroed memory (`alloc_zeroed`), and a leak-check scope's own
    /// blocks.
    Never,
    /// Every block, from the first allocation (a `calloc` for each `malloc`).
    Always,
    /// Every block once a leak-check scope has been opened in the process: a test binary
    /// whose tests count their leaks gets answers that do not depend on what the memory
    /// held before.
    Scopes,
}

impl OptionValue for ZeroNew {
    const VALUES: &'static str = "0|1|scopes";
    fn parse_value(text: &[u8], _: u64, _: u64) -> Result<Self, Expected> {
        match text {
            b"0" => Ok(ZeroNew::Never),
            b"1" => Ok(ZeroNew::Always),
            b"scopes" => Ok(ZeroNew::Scopes),
            _ => Err(Expected::ZeroNew),
        }
    }
}
