//! Why a leak check could not run to the end.
//!
//! # What it owns
//! [`Failure`]: what a phase found it could not do. Made while other threads are stopped,
//! so it carries only numbers and static text (nothing is allocated then); the check
//! turns it into the report's status, with words and a hint, once they resume. A check
//! with a failure never passes for clean: the at-exit check prints it and exits with its
//! own status.
//!
//! # Which failures
//! - The threads could not be listed (`/proc/self/task`): threads that were not listed
//!   were neither stopped nor scanned as threads.
//! - Threads did not stop (the stop signal blocked, a thread stuck, more threads than the
//!   stop table): their stacks were scanned whole while they ran, which can hide leaks
//!   and, with pointers moving meanwhile, show false ones.
//! - The mappings could not be read (`/proc/self/maps`): no root list.
//! - Out of memory for the check's own tables (the stop table, roots, mark bits, mark
//!   stack, the list of leaked blocks).

/// What made a check incomplete. The first failure of a check is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// `/proc/self/task` could not be read: `errno`.
    ThreadsNotListed { errno: i32 },
    /// `count` threads did not stop within `timeout_ms`; `first_tid` is one of them.
    ThreadsNotStopped { first_tid: i32, count: u32, timeout_ms: u64 },
    /// The process has more threads than the stop table holds (`max`).
    TooManyThreads { max: usize },
    /// `/proc/self/maps` could not be opened or read: `errno`.
    RootsUnreadable { errno: i32 },
    /// Memory for `what` (the check's own tables) was refused.
    OutOfMemory { what: &'static str },
}

impl Failure {
    /// Counts one more thread that did not stop into `slot` (the first failure stays).
    pub(crate) fn thread_not_stopped(slot: &mut Option<Failure>, tid: i32, timeout_ms: u64) {
        match slot {
            None => *slot = Some(Failure::ThreadsNotStopped { first_tid: tid, count: 1, timeout_ms }),
            Some(Failure::ThreadsNotStopped { count, .. }) => *count += 1,
            Some(_) => {}
        }
    }

    /// Records `f` in `slot` unless a failure is there already.
    pub(crate) fn record(slot: &mut Option<Failure>, f: Failure) {
        slot.get_or_insert(f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_stays_and_unstopped_threads_are_counted() {
        let mut slot = None;
        Failure::thread_not_stopped(&mut slot, 7, 2000);
        Failure::thread_not_stopped(&mut slot, 9, 2000);
        Failure::record(&mut slot, Failure::OutOfMemory { what: "x" });
        assert_eq!(slot, Some(Failure::ThreadsNotStopped { first_tid: 7, count: 2, timeout_ms: 2000 }));
        let mut slot = None;
        Failure::record(&mut slot, Failure::RootsUnreadable { errno: 2 });
        Failure::thread_not_stopped(&mut slot, 7, 2000);
        assert_eq!(slot, Some(Failure::RootsUnreadable { errno: 2 }));
    }
}
