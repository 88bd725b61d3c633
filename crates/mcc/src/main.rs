//! The `mcc` binary: parses arguments, runs a command, prints, exits with
//! the right code (2 for usage errors).

mod cli;
mod commands;
mod enter;
mod out;
mod progress;
mod table;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mcc: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(commands::run(cli.command));
    // stdin readers of `enter` may still be blocked; do not wait for them
    runtime.shutdown_background();
    ExitCode::from(code)
}
