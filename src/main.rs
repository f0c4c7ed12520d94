//! `infoloss`: the command-line face of the library. Parses flags, calls the library, prints the
//! result; errors are printed once as a one-line chain and exit with status 1.

mod cli;

/// Counts heap bytes so `infoloss bench split` can report real peaks (a relaxed atomic per allocation).
#[global_allocator]
static ALLOCATOR: infoloss::alloc_counter::CountingAlloc = infoloss::alloc_counter::CountingAlloc;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`infoloss hooks | head`) instead of panicking in println!.
    #[cfg(unix)]
    // SAFETY: restoring the default SIGPIPE disposition before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Keep freed large buffers in the heap instead of returning them to the kernel: the training
    // engine allocates tensors of the same sizes every step, and fresh mmap'd pages cost page faults
    // and zeroing each time (glibc only).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes glibc's allocator; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
    // Fault injection for the kill-and-resume torture test (a no-op unless built with `failpoints`).
    #[cfg(feature = "failpoints")]
    let _scenario = fail::FailScenario::setup();
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
