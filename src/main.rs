use std::io;
use std::process::ExitCode;

use clap::Parser;

use dockersnoop::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    dockersnoop::logger::init(cli.verbose);
    let result = match cli.command {
        Command::Record(args) => dockersnoop::capture::record::run(&args),
        Command::Decode(args) => dockersnoop::decode::run(&args),
        Command::Watch(args) => dockersnoop::watch::run(&args),
        Command::Schema { command } => dockersnoop::schema::cmd::run(&command),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            // A closed pipe (`dockersnoop decode f | head`) is how the reader
            // says it has seen enough: not an error.
            if let Some(e) = err.downcast_ref::<io::Error>() {
                if e.kind() == io::ErrorKind::BrokenPipe {
                    return ExitCode::SUCCESS;
                }
            }
            eprintln!("dockersnoop: {err:#}");
            ExitCode::FAILURE
        }
    }
}
