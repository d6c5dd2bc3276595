//! Reports of allocator misuse: double free, freeing a pointer never handed out, freeing
//! an interior pointer. Each names the address and, where known, the block's allocation
//! stack, then aborts (a corrupted heap must not run on).

/// Prints the misuse report and aborts. Runs with the reentrancy guard held, so
/// symbolization may allocate (from the internal heap).
pub(crate) fn print_and_abort(op: &str, addr: usize, what: &str) -> ! {
    let mut out = String::new();
    out.push_str(&format!("heapsweep: error: {op}({addr:#x}): {what}\n"));
    if let Some(stack) = allocation_stack_of(addr) {
        out.push_str("heapsweep: the block was allocated at:\n");
        for (i, line) in describe_stack(stack).iter().enumerate() {
            out.push_str(&format!("    #{i} {line}\n"));
        }
    }
    out.push_str("heapsweep: misuse detected; aborting\n");
    crate::fatal::write_all_fd(2, out.as_bytes());
    crate::fatal::abort()
}

/// The allocation stack id recorded for the block containing `addr`, live or freed.
fn allocation_stack_of(addr: usize) -> Option<u32> {
    let stack = crate::block::containing(addr)?.stack();
    (stack != 0).then_some(stack)
}

/// `0x... in function file:line` for each frame of a stack, symbolized in-process and
/// trimmed of the allocator's own frames, as in leak reports.
fn describe_stack(id: u32) -> Vec<String> {
    let ips = crate::stack::frames(crate::stack::StackId::from_u32(id));
    let mut sym = crate::report::symbolize::InProcess::default();
    crate::report::symbolize::stack_frames(ips, &mut sym)
        .into_iter()
        .map(|f| {
            let mut line = format!("{} in {}", f.ip, f.function.as_deref().unwrap_or("<unknown>"));
            if let (Some(file), Some(n)) = (&f.file, f.line) {
                line.push_str(&format!(" {file}:{n}"));
            }
            line
        })
        .collect()
}
