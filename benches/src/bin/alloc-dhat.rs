//! The workloads under dhat in heap-profiling mode (its profile goes to a temp file).
#[global_allocator]
static GLOBAL: dhat::Alloc = dhat::Alloc;

fn main() {
    let file = std::env::temp_dir().join(format!("dhat-bench-{}.json", std::process::id()));
    let profiler = dhat::Profiler::builder().file_name(&file).build();
    benches::child_main();
    drop(profiler);
    let _ = std::fs::remove_file(file);
}
