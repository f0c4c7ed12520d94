//! `infoloss`: the command-line face of the library. Parses flags, calls the library, prints the
//! result; errors are printed once as a one-line chain and exit with status 1.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
