//! Unwind rules read from `.eh_frame`: what the rule cache does not know yet.
//!
//! # What it owns
//! [`rule_for`], the miss path of the cached unwinder: given a code address, it finds the
//! loaded object that holds it, its `.eh_frame_hdr` (the `PT_GNU_EH_FRAME` segment: a
//! binary-search table from function start to FDE), the FDE of the address, runs its
//! call-frame instructions up to the address (with `gimli`, allocation-free: a context of
//! fixed size, kept in a static), and turns the row into a compact [`Rule`], which it
//! stores in the rule cache (`rules`). One miss costs a few microseconds; a process has a
//! few thousand distinct return addresses at most, so misses stop early in its life.
//!
//! # Rules (what `capture` relies on)
//! - Never allocates, never panics (bad or unusual CFI gives [`Rule::FRAME_POINTER`]: that
//!   frame is walked by its frame-pointer record, validated as ever).
//! - The object is read inside `dl_iterate_phdr`'s callback, under the loader's lock: no
//!   object is unloaded while its tables are read. The miss takes that lock as libgcc's
//!   unwinder does on every frame.
//! - One miss at a time, under a lock of its own taken inside that callback, so always
//!   after the loader's lock: a program's own `dl_iterate_phdr` callback may allocate
//!   (backtrace-rs's list of loaded objects does), and a miss of that allocation needs
//!   the miss lock while its thread holds the loader's. Taken the other way round, the
//!   two threads waited on each other: the miss gave up after [`WAIT_NS`], and a test
//!   binary printing panics' backtraces ran 0.5-0.9 s instead of 0.12 now and then.
//!   The holder is known (its thread pointer): a thread that finds the lock held by itself
//!   (a signal handler, or a nested allocation, interrupting its own miss) does not wait,
//!   and a thread that waits gives up after [`WAIT_NS`] (a holder stopped by a leak
//!   check). Giving up answers `None`: that frame falls back to its frame-pointer record,
//!   and nothing is cached. So no deadlock is possible through this lock. In the child of
//!   a `fork` that happened while a thread of the parent held the lock, the first miss
//!   takes the lock over (that thread does not exist in the child).
//! - A `fork` waits until no thread is inside a miss, and misses that start while it
//!   waits give up ([`hold_for_fork`]): a child must not inherit the loader's lock held
//!   by a thread it does not have.
//!
//! # Loaded and unloaded objects
//! Each miss reads the loader's counts of loads and unloads (`dlpi_adds`, `dlpi_subs`);
//! when they changed since the last miss, the whole cache is cleared before the new rule
//! goes in. So after a `dlopen` or `dlclose`, rules computed before it are used only until
//! the next miss. An address cached from an object that was then unloaded can still
//! answer in that window if a new object is mapped over the same address and a stack
//! passes through that exact return address before any miss: its frame then unwinds by
//! the old rule, which gives a wrong caller but never a read outside the thread's stack
//! (every read of a walk is checked against the stack bounds). A frame in code that no
//! object holds (generated code) has no rule: its frame-pointer record is followed.

use super::rules::{self, Base, Rule};
use crate::platform::{self, LoadedObject, ProgramHeader};
use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use gimli::{
    BaseAddresses, CfaRule, EhFrame, EhFrameHdr, EhFrameOffset, LittleEndian, Pointer, Register, RegisterRule,
    UnwindContext, UnwindContextStorage, UnwindSection, UnwindTableRow,
};

/// Longest a miss waits for another thread's miss to end before it gives up.
const WAIT_NS: u64 = 50_000_000;

/// `gimli`'s unwind context in fixed arrays: rules for 32 registers (x86-64 code names at
/// most the 17 general registers and the return address), 4 remembered states.
#[derive(Debug)]
struct Fixed;

impl UnwindContextStorage<usize> for Fixed {
    type Rules = [(Register, RegisterRule<usize>); 32];
    type Stack = [UnwindTableRow<usize, Self>; 4];
}

type Context = UnwindContext<usize, Fixed>;

/// What the lock protects: the unwind context (made on first use), and the loader's
/// counts at the last miss.
struct Scratch {
    context: MaybeUninit<Context>,
    made: bool,
    loads: u64,
    unloads: u64,
}

/// The miss lock: the holder's thread pointer, 0 when free.
static OWNER: AtomicUsize = AtomicUsize::new(0);
/// Threads inside a miss (between [`MissGate::enter`] and its drop).
static IN_MISS: AtomicUsize = AtomicUsize::new(0);
/// A `fork` is being prepared: misses that start now give up (see [`hold_for_fork`]).
static FORKING: AtomicBool = AtomicBool::new(false);

/// The process id of the last thread that took [`OWNER`] (0 before the first): a child
/// of `fork` finds its parent's id here if a thread of the parent held the lock at the
/// fork (that thread does not exist in the child, so the child takes the lock over).
static HOLDER_PID: AtomicI32 = AtomicI32::new(0);

/// This process's id, once asked (0 before; cleared in the child of a `fork` by
/// [`forget_pid_after_fork`]): `getpid` is a system call, and every miss records the
/// holder's process.
static MY_PID: AtomicI32 = AtomicI32::new(0);

fn my_pid() -> i32 {
    match MY_PID.load(Ordering::Relaxed) {
        0 => {
            let pid = platform::getpid();
            MY_PID.store(pid, Ordering::Relaxed);
            pid
        }
        pid => pid,
    }
}

/// In the child of a `fork`, before anything else: its process id is its own.
/// Async-signal-safe (one store).
pub(crate) fn forget_pid_after_fork() {
    MY_PID.store(0, Ordering::Relaxed);
}

/// [`Scratch`] behind [`OWNER`].
struct Locked(UnsafeCell<Scratch>);

// SAFETY: the scratch is reached only through a `MissGuard`, which exists only while its
// thread holds `OWNER` (taken with an Acquire CAS from 0, released with a Release store):
// one thread at a time, each seeing the last one's writes.
unsafe impl Sync for Locked {}

static SCRATCH: Locked =
    Locked(UnsafeCell::new(Scratch { context: MaybeUninit::uninit(), made: false, loads: 0, unloads: 0 }));

/// Holding the miss lock. Invariant: `OWNER` holds this thread's thread pointer from
/// [`MissGuard::acquire`] until the drop.
struct MissGuard(usize);

impl MissGuard {
    /// Takes the lock; `None` if this thread holds it already, or another thread holds it
    /// for longer than [`WAIT_NS`].
    fn acquire() -> Option<MissGuard> {
        let me = platform::thread_pointer();
        let mut deadline = 0;
        let mut spins = 0u32;
        loop {
            match OWNER.compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return Some(MissGuard::held(me)),
                Err(holder) if holder == me => return None,
                Err(holder) if spins == 64 && Self::held_before_fork(holder, me) => return Some(MissGuard::held(me)),
                Err(_) => {}
            }
            spins += 1;
            if spins < 64 {
                core::hint::spin_loop();
                continue;
            }
            let now = platform::monotonic_ns();
            if deadline == 0 {
                deadline = now + WAIT_NS;
            } else if now >= deadline {
                return None;
            }
            platform::sched_yield();
        }
    }

    /// This thread now holds the lock: records the process it belongs to.
    fn held(me: usize) -> MissGuard {
        HOLDER_PID.store(my_pid(), Ordering::Relaxed);
        MissGuard(me)
    }

    /// Whether `holder` took the lock in the parent of this process (see [`HOLDER_PID`]):
    /// then this thread takes it over from it (a CAS, so one thread does).
    fn held_before_fork(holder: usize, me: usize) -> bool {
        let pid = HOLDER_PID.load(Ordering::Relaxed);
        pid != 0 && pid != my_pid() && OWNER.compare_exchange(holder, me, Ordering::Acquire, Ordering::Relaxed).is_ok()
    }

    /// The scratch, for as long as the lock is held.
    fn scratch(&mut self) -> &mut Scratch {
        // SAFETY: this guard holds the lock (type invariant), so no other reference to
        // the scratch exists: the `&mut self` borrow makes this one exclusive too.
        unsafe { &mut *SCRATCH.0.get() }
    }
}

impl Drop for MissGuard {
    fn drop(&mut self) {
        debug_assert_eq!(OWNER.load(Ordering::Relaxed), self.0);
        OWNER.store(0, Ordering::Release);
    }
}

/// Being inside a miss: counted in [`IN_MISS`] from [`MissGate::enter`] to the drop.
struct MissGate;

impl MissGate {
    /// Enters, unless a `fork` is being prepared (`None`: the miss gives up).
    fn enter() -> Option<MissGate> {
        // Sequentially consistent with `hold_for_fork`'s store and load: either it sees
        // this count, or this load sees its flag (or both).
        IN_MISS.fetch_add(1, Ordering::SeqCst);
        if FORKING.load(Ordering::SeqCst) {
            IN_MISS.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(MissGate)
    }
}

impl Drop for MissGate {
    fn drop(&mut self) {
        IN_MISS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Before `fork`: stops misses from starting and waits for those in progress on other
/// threads to end, so that no thread is inside `dl_iterate_phdr` for a miss at the fork.
/// (A fork in the middle of one left the child with the loader's lock held by a thread it
/// does not have, and the child's first miss waited on it for ever: seen once in a
/// release run of `tests/fork.rs`.) Gives up waiting after [`WAIT_NS`] (a miss's thread
/// stopped by a leak check, or this thread's own miss interrupted by a handler that
/// forks): the fork then goes ahead.
pub(crate) fn hold_for_fork() {
    FORKING.store(true, Ordering::SeqCst);
    let deadline = platform::monotonic_ns() + WAIT_NS;
    while IN_MISS.load(Ordering::SeqCst) != 0 && platform::monotonic_ns() < deadline {
        platform::sched_yield();
    }
}

/// After `fork`, in the parent and in the child: misses may start again. In the child,
/// the misses of the parent's other threads (when [`hold_for_fork`] gave up waiting) are
/// not in progress: their threads do not exist.
pub(crate) fn release_after_fork(in_child: bool) {
    if in_child {
        IN_MISS.store(0, Ordering::SeqCst);
    }
    FORKING.store(false, Ordering::SeqCst);
}

/// The rule for the code address `addr` (a frame's own pc, or a return address minus
/// one), computed and cached. `None` when the miss lock could not be taken (see the
/// module notes): then nothing is cached.
#[cold]
#[inline(never)]
pub(super) fn rule_for(addr: usize) -> Option<Rule> {
    let _inside = MissGate::enter()?;
    // Taken in the first callback, under the loader's lock (see the module notes).
    let mut guard: Option<MissGuard> = None;
    let found = platform::find_loaded_object(|object| {
        let scratch = match &mut guard {
            Some(held) => held.scratch(),
            None => {
                // Not taken: the walk stops, and the miss gives up.
                let Some(held) = MissGuard::acquire() else { return Some(None) };
                let scratch = guard.insert(held).scratch();
                if (object.loads, object.unloads) != (scratch.loads, scratch.unloads) {
                    rules::clear();
                    (scratch.loads, scratch.unloads) = (object.loads, object.unloads);
                }
                scratch
            }
        };
        let segment = segment_of(object, addr)?;
        Some(Some(if segment.p_flags & platform::PF_R == 0 {
            Rule::FRAME_POINTER
        } else {
            rule_in(object, addr, scratch)
        }))
    });
    // No callback (the loader listed no object) takes no lock: nothing is cached then.
    let _held = guard?;
    let rule = found.flatten().unwrap_or(Rule::FRAME_POINTER);
    rules::insert(addr, rule);
    Some(rule)
}

/// The `PT_LOAD` segment of `object` that holds `addr`.
fn segment_of<'a>(object: &LoadedObject<'a>, addr: usize) -> Option<&'a ProgramHeader> {
    object.program_headers.iter().find(|p| {
        let start = object.load_bias.wrapping_add(p.p_vaddr as usize);
        p.p_type == platform::PT_LOAD && addr >= start && addr - start < p.p_memsz as usize
    })
}

/// `len` bytes at `addr`, when they lie in one readable, read-only `PT_LOAD` segment of
/// `object`.
///
/// A safe `fn` private to this module whose callers ensure that `object` is the loader's
/// description of a loaded object, given to a `find_loaded_object` callback that is still
/// running (so the object stays mapped, and its read-only segments unchanged, for the
/// lifetime `'a` the callback's borrow allows).
fn bytes_of<'a>(object: &LoadedObject<'a>, addr: usize, len: usize) -> Option<&'a [u8]> {
    let segment = segment_of(object, addr)?;
    let start = object.load_bias.wrapping_add(segment.p_vaddr as usize);
    let readable = segment.p_flags & platform::PF_R != 0 && segment.p_flags & platform::PF_W == 0;
    if !readable || addr - start + len > segment.p_memsz as usize {
        return None;
    }
    // SAFETY: `[addr, addr + len)` lies in a `PT_LOAD` segment of `object` (checked
    // above), which the loader mapped readable (`PF_R`, checked) and read-only (no `PF_W`,
    // checked: nothing writes it), and which stays mapped while the callback runs
    // (callers). Bytes need no alignment.
    Some(unsafe { core::slice::from_raw_parts(addr as *const u8, len) })
}

/// The rule at `addr` from `object`'s unwind tables; [`Rule::FRAME_POINTER`] when they
/// have none, or one the compact form cannot hold. Same contract as [`bytes_of`].
fn rule_in(object: &LoadedObject<'_>, addr: usize, scratch: &mut Scratch) -> Rule {
    let Some(hdr) = object.program_headers.iter().find(|p| p.p_type == platform::PT_GNU_EH_FRAME) else {
        return Rule::FRAME_POINTER;
    };
    let hdr_addr = object.load_bias.wrapping_add(hdr.p_vaddr as usize);
    let Some(hdr_bytes) = bytes_of(object, hdr_addr, hdr.p_memsz as usize) else { return Rule::FRAME_POINTER };
    let bases = BaseAddresses::default().set_eh_frame_hdr(hdr_addr as u64);
    let Ok(parsed) = EhFrameHdr::new(hdr_bytes, LittleEndian).parse(&bases, 8) else { return Rule::FRAME_POINTER };
    let Pointer::Direct(eh_frame_addr) = parsed.eh_frame_ptr() else { return Rule::FRAME_POINTER };
    let eh_frame_addr = eh_frame_addr as usize;
    let Some(segment) = segment_of(object, eh_frame_addr) else { return Rule::FRAME_POINTER };
    let segment_end = object.load_bias.wrapping_add(segment.p_vaddr as usize) + segment.p_memsz as usize;
    let Some(eh_bytes) = bytes_of(object, eh_frame_addr, segment_end - eh_frame_addr) else {
        return Rule::FRAME_POINTER;
    };
    let eh_frame = EhFrame::new(eh_bytes, LittleEndian);
    let bases = bases.set_eh_frame(eh_frame_addr as u64);
    let found = match table_offset_sdata4(hdr_bytes, hdr_addr, eh_frame_addr, addr) {
        // The usual encoding: searched here, without decoding each entry.
        Some(found) => found.and_then(|offset| {
            let fde = eh_frame.fde_from_offset(&bases, EhFrameOffset(offset), EhFrame::cie_from_offset).ok()?;
            fde.contains(addr as u64).then_some(fde)
        }),
        None => parsed
            .table()
            .and_then(|table| table.fde_for_address(&eh_frame, &bases, addr as u64, EhFrame::cie_from_offset).ok()),
    };
    let Some(fde) = found else { return Rule::FRAME_POINTER };
    if fde.is_signal_trampoline() {
        return Rule::END;
    }
    if !scratch.made {
        scratch.context.write(Context::new_in());
        scratch.made = true;
    }
    // SAFETY: `made` is set only just after the context was written.
    let context = unsafe { scratch.context.assume_init_mut() };
    match fde.unwind_info_for_address(&eh_frame, &bases, context, addr as u64) {
        Ok(row) => compact(row.cfa(), row.register(RETURN_ADDRESS), row.register(RBP)),
        Err(_) => Rule::FRAME_POINTER,
    }
}

/// The search table's usual encoding, as GNU ld and lld write it: `eh_frame_ptr` as
/// `DW_EH_PE_pcrel | DW_EH_PE_sdata4`, `fde_count` as `DW_EH_PE_udata4`, and the table as
/// `DW_EH_PE_datarel | DW_EH_PE_sdata4` pairs (function start, FDE), both relative to the
/// header's own address.
const USUAL_ENCODING: [u8; 4] = [1, 0x1b, 0x03, 0x3b];

/// The offset in `.eh_frame` of the FDE whose function starts last at or before `addr`,
/// from the `.eh_frame_hdr` at `hdr_addr` (its bytes `hdr`) when its encoding is the usual
/// one: `Some(None)` when no function starts at or before `addr`; `None` when the
/// encoding is another (the caller asks `gimli`, which decodes each entry it reads: that
/// decoding was most of a miss's search). The FDE found may not cover `addr`: the
/// caller checks.
fn table_offset_sdata4(hdr: &[u8], hdr_addr: usize, eh_frame_addr: usize, addr: usize) -> Option<Option<usize>> {
    if hdr.get(..4)? != USUAL_ENCODING {
        return None;
    }
    let word = |at: usize| hdr.get(at..at + 4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let count = word(8)? as u32 as usize;
    const TABLE: usize = 12;
    if TABLE + count * 8 > hdr.len() {
        return None;
    }
    let start_of = |i: usize| word(TABLE + i * 8).map(|rel| hdr_addr.wrapping_add(rel as isize as usize));
    // The number of entries whose function starts at or before `addr`.
    let (mut lo, mut hi) = (0, count);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if start_of(mid)? <= addr {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if lo == 0 {
        return Some(None);
    }
    let fde = hdr_addr.wrapping_add(word(TABLE + (lo - 1) * 8 + 4)? as isize as usize);
    Some(fde.checked_sub(eh_frame_addr))
}

const RSP: Register = Register(platform::DWARF_RSP);
const RBP: Register = Register(platform::DWARF_RBP);
const RETURN_ADDRESS: Register = Register(platform::DWARF_RETURN_ADDRESS);

/// The compact rule for one row of an unwind table: its CFA, the rule of the return
/// address and of `rbp` (`None`: not named, that is unchanged).
pub(super) fn compact(cfa: &CfaRule<usize>, ra: Option<RegisterRule<usize>>, rbp: Option<RegisterRule<usize>>) -> Rule {
    match ra {
        Some(RegisterRule::Offset(-8)) => {}
        Some(RegisterRule::Undefined) => return Rule::END,
        _ => return Rule::FRAME_POINTER,
    }
    let &CfaRule::RegisterAndOffset { register, offset } = cfa else { return Rule::FRAME_POINTER };
    let base = match register {
        RSP => Base::Rsp,
        RBP => Base::Rbp,
        _ => return Rule::FRAME_POINTER,
    };
    let slot = match rbp {
        None | Some(RegisterRule::SameValue) | Some(RegisterRule::Undefined) => Some(0),
        Some(RegisterRule::Offset(o)) if o < 0 && o % 8 == 0 => u32::try_from(-o / 8).ok(),
        Some(_) => None,
    };
    let offset = u32::try_from(offset).ok().filter(|&o| o >= 8);
    match (offset, slot) {
        (Some(offset), Some(slot)) => Rule::cfa(base, offset, slot).unwrap_or(Rule::FRAME_POINTER),
        _ => Rule::FRAME_POINTER,
    }
}

/// Empties the rule cache, under the miss lock (tests: the cache then fills again).
#[cfg(test)]
pub(super) fn clear_cache() {
    with_lock(rules::clear);
}

/// Runs `f` under the miss lock (tests that write the cache).
#[cfg(test)]
pub(super) fn with_lock(f: impl FnOnce()) {
    let _guard = MissGuard::acquire().expect("the miss lock");
    f();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The search of the usual table finds the entry `gimli` finds, at every address of
    /// this test binary's code (sampled).
    #[test]
    fn the_usual_tables_search_agrees_with_gimlis() {
        let here = the_usual_tables_search_agrees_with_gimlis as *const () as usize;
        let checked = platform::find_loaded_object(|object| {
            segment_of(object, here)?;
            let hdr = object.program_headers.iter().find(|p| p.p_type == platform::PT_GNU_EH_FRAME)?;
            let hdr_addr = object.load_bias.wrapping_add(hdr.p_vaddr as usize);
            let hdr_bytes = bytes_of(object, hdr_addr, hdr.p_memsz as usize)?;
            let bases = BaseAddresses::default().set_eh_frame_hdr(hdr_addr as u64);
            let parsed = EhFrameHdr::new(hdr_bytes, LittleEndian).parse(&bases, 8).ok()?;
            let Pointer::Direct(eh_frame_addr) = parsed.eh_frame_ptr() else { return None };
            let bases = bases.set_eh_frame(eh_frame_addr);
            let table = parsed.table()?;
            let code = segment_of(object, here)?;
            let (start, len) = (object.load_bias.wrapping_add(code.p_vaddr as usize), code.p_memsz as usize);
            let mut checked = 0;
            for addr in (start..start + len).step_by(97) {
                let ours = table_offset_sdata4(hdr_bytes, hdr_addr, eh_frame_addr as usize, addr)
                    .expect("this binary's table has the usual encoding");
                let theirs = table.lookup(addr as u64, &bases).ok().and_then(|p| table.pointer_to_offset(p).ok());
                match ours {
                    Some(offset) => assert_eq!(Some(EhFrameOffset(offset)), theirs, "at {addr:#x}"),
                    // Before the first function: gimli gives the first entry, which the
                    // caller's `contains` check refuses.
                    None => assert!(theirs.is_some(), "at {addr:#x}"),
                }
                checked += 1;
            }
            Some(checked)
        });
        assert!(checked.is_some_and(|n| n > 1000), "{checked:?}");
    }

    #[test]
    fn another_encoding_is_left_to_gimli() {
        let mut hdr = [0u8; 28];
        hdr[..4].copy_from_slice(&[1, 0x1b, 0x03, 0x3c]); // datarel | sdata8
        assert_eq!(table_offset_sdata4(&hdr, 0x1000, 0x2000, 0x1500), None);
        // The usual encoding, a count larger than the bytes: refused too.
        hdr[..4].copy_from_slice(&USUAL_ENCODING);
        hdr[8..12].copy_from_slice(&100u32.to_le_bytes());
        assert_eq!(table_offset_sdata4(&hdr, 0x1000, 0x2000, 0x1500), None);
    }

    /// A miss made inside a `dl_iterate_phdr` callback (a program listing its loaded
    /// objects allocates there) is answered while another thread's miss waits for the
    /// loader's lock. With the miss lock taken before the loader's, the other thread held
    /// it while it waited, and this miss gave up after `WAIT_NS`.
    #[test]
    fn a_miss_inside_the_loaders_callback_is_answered_while_another_thread_waits() {
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;
        let here = a_miss_inside_the_loaders_callback_is_answered_while_another_thread_waits as *const () as usize;
        for round in 0..3 {
            let go = Arc::new(AtomicBool::new(false));
            let other = {
                let go = go.clone();
                std::thread::spawn(move || {
                    while !go.load(Ordering::Acquire) {
                        std::hint::spin_loop();
                    }
                    rule_for(here + 3)
                })
            };
            let inside = platform::find_loaded_object(|_| {
                go.store(true, Ordering::Release);
                // The other thread's miss is now waiting for the loader's lock, held here.
                std::thread::sleep(std::time::Duration::from_millis(20));
                Some(rule_for(here + 1))
            });
            assert!(inside.expect("the executable is listed").is_some(), "round {round}: the miss gave up");
            assert!(other.join().unwrap().is_some(), "round {round}: the other thread's miss gave up");
        }
    }
}
