//! The `efa-doctor` binary: parse, run, exit. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // The native helper protocol (`efa-doctor __native TASK ...`) is internal: it is not
    // part of the command line users see, so it is dispatched before clap.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(efa_doctor::native::HELPER_ARG) {
        return ExitCode::from(efa_doctor::native::serve(&args[2..]) as u8);
    }
    let cli = efa_doctor::cli::Cli::parse();
    match efa_doctor::run(cli) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            // A closed pipe while writing is not a failure (`efa-doctor | head`).
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("efa-doctor: {}", efa_doctor::report::show_lines(&format!("{e:#}")));
            ExitCode::from(efa_doctor::report::exit::UNKNOWN as u8)
        }
    }
}
