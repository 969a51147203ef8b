//! `hearth`: the program a person (or a script) uses. `hearth up` runs a daemon that owns the
//! keys, the encrypted store and the network node, and serves a local HTTP API on 127.0.0.1
//! (API.md); every other command is a client of that API.
//!
//! Errors end the process with a sentence on stderr and a distinct exit code (see
//! `hearth --help` and API.md), never with a panic or a backtrace.

mod api;
mod cli;
mod client;
mod commands;
mod daemon;
mod days;
mod failure;
mod paths;
mod prompt;
mod render;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::api::ErrorCode;
use crate::cli::Cli;

fn main() -> ExitCode {
    bound_malloc_arenas();
    // The local UTC offset can only be read soundly while the process has one thread.
    days::init_local_offset();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                ErrorCode::Usage.exit_code()
            } else {
                0
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_tracing(&cli);
    // A panic is a bug: say so in one line, without a backtrace, and exit 1.
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".to_owned());
        eprintln!("error: internal error ({message}); this is a bug in Hearth, please report it");
    }));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::from(ErrorCode::Internal.exit_code());
        }
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(commands::run(cli))
    }));
    match result {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(failure)) => {
            eprintln!("error: {failure}");
            ExitCode::from(failure.exit_code())
        }
        Err(_) => ExitCode::from(ErrorCode::Internal.exit_code()),
    }
}

/// The most glibc malloc arenas the process uses.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MALLOC_ARENAS: libc::c_int = 2;

/// Bounds glibc's malloc arenas. glibc gives each thread that finds the arenas busy one of its
/// own, up to 8 per core, and seldom gives their memory back: under bursts of API requests the
/// daemon's RSS crept up by about 2 MiB a burst (36 → 53 MiB over five bursts of 1,000, the
/// `HEARTH_API_SOAK` soak in daemon_faults.rs) and stayed at 48–49 MiB with two arenas. Two
/// is what the daemon's two busy threads (tokio workers on this kind of machine) need; it has
/// to be set before any thread starts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn bound_malloc_arenas() {
    // SAFETY: `mallopt` only sets an allocator parameter, and no other thread exists yet.
    #[allow(unsafe_code)]
    let set = unsafe { libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS) };
    // 0 means the parameter was refused; the allocator then keeps its default, which works.
    let _ = set;
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn bound_malloc_arenas() {}

/// Logs go to stderr: `--log-level` / `HEARTH_LOG` if given, else by `-v` count.
fn init_tracing(cli: &Cli) {
    let filter = match &cli.log_level {
        Some(f) => EnvFilter::try_new(f).unwrap_or_else(|e| {
            eprintln!("warning: the log filter `{f}` is not valid ({e}); using `warn`");
            EnvFilter::new("warn")
        }),
        None => EnvFilter::new(match cli.verbose {
            // Kademlia warns that it has no peers to bootstrap from on every fresh start.
            0 => "warn,libp2p_kad=error",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
