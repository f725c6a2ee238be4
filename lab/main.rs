//! `lab`: the command-line front. The process is set up here (the allocator, the compute pool,
//! the window-system probe's environment); the commands are the library's (`moe_lab::cli`).

use std::process::ExitCode;

use clap::Parser;

use moe_lab::cli::{self, Cli};
use moe_lab::error::{EXIT_BAD_INPUT, SpecError};

/// Lets glibc's malloc keep freed tensor buffers for reuse. By default it serves every buffer
/// over a (dynamic) threshold with its own `mmap` and hands freed heap tops back to the
/// kernel, so each training step's tensors fault their pages in afresh (docs/performance.md, "What the figures depend on"). Buffers up to
/// glibc's largest threshold (32 MiB) now come from the heap, and up to 256 MiB of its free
/// top is kept. Peak memory is unchanged: only memory the run already used is retained.
///
/// One arena for every thread: the command runs on a rayon worker ([`on_compute_pool`]), and glibc
/// would give that thread an arena of its own, built from separate `mmap`ed heaps, where a large
/// matmul's buffers ran slower than from the main heap. Threads allocate per
/// tensor, not per element, so sharing the arena's lock costs nothing measurable.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

fn main() -> ExitCode {
    keep_freed_memory();
    quiet_window_system_probe();
    let cli = Cli::parse();
    match on_compute_pool(|| cli::run(cli)) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            moe_lab::say!("error: {e:#}");
            let code = if e.downcast_ref::<SpecError>().is_some() {
                EXIT_BAD_INPUT
            } else {
                1
            };
            ExitCode::from(code as u8)
        }
    }
}

/// Runs `command` on a worker thread of rayon's global pool rather than on the main thread. flex
/// and gemm split their larger operations over that pool. Called from a thread outside it, each
/// such operation is handed to a worker through the pool's queue and the caller sleeps until it is
/// done: a futex wake-up and a context switch per operation, several hundred per step, even with
/// `RAYON_NUM_THREADS=1`. On a worker, the operation starts on the calling thread and other workers
/// steal its parts (docs/performance.md, "What the figures depend on").
fn on_compute_pool<R: Send>(command: impl FnOnce() -> R + Send) -> R {
    // The main thread's stack size: burn's autodiff and the data pipeline recurse no deeper on a
    // worker than they did there.
    const STACK: usize = 8 << 20;
    // An error means the pool already exists (it cannot here: nothing ran before main).
    let _ = rayon::ThreadPoolBuilder::new()
        .stack_size(STACK)
        .build_global();
    rayon::scope(|_| command())
}

/// Probing wgpu adapters loads Mesa's Vulkan drivers, whose Wayland window-system code prints
/// "error: XDG_RUNTIME_DIR is invalid or not set in the environment." on any headless machine
/// where the variable is unset: a user reads "error" on a healthy run. The lab never opens a
/// window, so where the variable does not name a directory it points it at a private one
/// (mode 0700, per user) before anything probes. Child `lab train` processes inherit it.
fn quiet_window_system_probe() {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let set =
        std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| std::path::Path::new(&d).is_dir());
    if set {
        return;
    }
    let uid = std::fs::metadata("/proc/self").map_or(0, |m| m.uid());
    let dir = std::env::temp_dir().join(format!("moe-lab-runtime-{uid}"));
    let made = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    if made.is_ok() || dir.is_dir() {
        // SAFETY: called first thing in `main`, before any other thread exists, so nothing
        // reads the environment concurrently.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
    }
}
