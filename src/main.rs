//! `msa`: the command-line tool of the msa microservices runtime.
//!
//! Parsing and dispatch live in `cli`; see `msa --help`.

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    // `msa node` sets up logging once its config (log_format) is read.
    if let Some(filter) = cli.default_log_filter() {
        cli::init_text_logging(filter);
    }
    match cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole chain on one line, without a backtrace.
            eprintln!("msa: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
