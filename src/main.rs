//! The `airgate` binary: a thin shell over [`airgate::cli`].

/// mimalloc instead of glibc malloc: the runtime's worker threads allocate
/// from glibc's secondary arenas, which grow and shrink a few pages at a
/// time (mprotect, page faults, consolidation). Writing 100k corpus rows
/// spent about half its time there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    airgate::cli::main()
}
