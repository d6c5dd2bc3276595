//! The workloads under dhat in heap-profiling mode: the profiler runs for the whole
//! process and writes its profile to a temporary file, removed afterwards.
#[global_allocator]
static GLOBAL: dhat::Alloc = dhat::Alloc;

fn main() {
    let file = std::env::temp_dir().join(format!("dhat-bench-{}.json", std::process::id()));
    let profiler = dhat::Profiler::builder().file_name(&file).build();
    benches::child_main();
    drop(profiler);
    let _ = std::fs::remove_file(file);
}
