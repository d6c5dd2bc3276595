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

/// `0x... in function file:line` for each frame of a stack, symbolized in-process.
fn describe_stack(id: u32) -> Vec<String> {
    let mut lines = Vec::new();
    for &ip in crate::stack::frames(crate::stack::StackId::from_u32(id)) {
        let mut line = format!("{ip:#x}");
        backtrace::resolve(ip as *mut core::ffi::c_void, |sym| {
            if let Some(name) = sym.name() {
                line.push_str(&format!(" in {name:#}"));
            }
            if let (Some(file), Some(n)) = (sym.filename(), sym.lineno()) {
                line.push_str(&format!(" {}:{n}", file.display()));
            }
        });
        lines.push(line);
    }
    lines
}
