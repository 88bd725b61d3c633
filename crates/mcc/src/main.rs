//! The `mcc` binary: parses arguments, runs a command, prints, exits with
//! the right code (2 for usage errors).

mod backend;
mod cli;
mod cloud;
mod commands;
mod complete;
mod enter;
mod forward;
mod host;
mod local;
mod out;
mod progress;
mod remote;
mod service;
mod table;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // answers the shell when it asks for completions (COMPLETE=bash mcc …)
    clap_complete::CompleteEnv::with_factory(<cli::Cli as clap::CommandFactory>::command)
        .complete();
    let args: Vec<String> = std::env::args().collect();
    // `mcc help --help`: the help of help is mcc's help
    if args.len() == 3 && args[1] == "help" && matches!(args[2].as_str(), "--help" | "-h") {
        let _ = <cli::Cli as clap::CommandFactory>::command().print_help();
        return ExitCode::SUCCESS;
    }
    let cli = match cli::Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let hint = dash_dash_hint(&args, &e);
            let _ = e.print();
            if let Some(h) = hint {
                eprintln!("\n  hint: {h}");
            }
            return ExitCode::from(e.exit_code() as u8);
        }
    };
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
    let code = runtime.block_on(commands::run(cli));
    // stdin readers of `enter` may still be blocked; do not wait for them
    runtime.shutdown_background();
    ExitCode::from(code)
}

/// For `mcc exec lab ls -l`: the command belongs after `--`, which the
/// error alone does not say. The corrected line, when that is the mistake.
fn dash_dash_hint(args: &[String], e: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() != ErrorKind::UnknownArgument || args.iter().any(|a| a == "--") {
        return None;
    }
    let verb = args.get(1)?;
    if verb != "exec" && verb != "enter" {
        return None;
    }
    let Some(ContextValue::String(bad)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let at = args.iter().skip(2).position(|a| a == bad)? + 2;
    let mut fixed: Vec<&str> = args[1..at].iter().map(String::as_str).collect();
    fixed.push("--");
    fixed.extend(args[at..].iter().map(String::as_str));
    Some(format!(
        "put `--` before the command to run: mcc {}",
        fixed.join(" ")
    ))
}
