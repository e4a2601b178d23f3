//! The `efa-doctor` binary: parse, run, exit. Everything else lives in the library.

use std::ffi::OsString;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Arguments stay OsStrings until clap sees them: paths may be any bytes, and a string
    // option given non-UTF-8 is a usage error from clap, never a panic.
    let args: Vec<OsString> = std::env::args_os().collect();
    // The native helper protocol (`efa-doctor __native TASK ...`) is internal: it is not
    // part of the command line users see, so it is dispatched before clap.
    if args.get(1).is_some_and(|a| a == efa_doctor::native::HELPER_ARG) {
        let rest: Option<Vec<String>> =
            args[2..].iter().map(|a| a.to_str().map(String::from)).collect();
        let Some(rest) = rest else {
            eprintln!("efa-doctor: the native helper's arguments are not UTF-8");
            return ExitCode::from(efa_doctor::report::exit::UNKNOWN as u8);
        };
        return ExitCode::from(efa_doctor::native::serve(&rest) as u8);
    }
    let invocation = efa_doctor::Invocation::start(&args);
    let cli = efa_doctor::cli::parse_from(args);
    match efa_doctor::run(cli, &invocation) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            // A closed pipe while writing is not a failure (`efa-doctor | head`).
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            // Every output asked for already holds the failed run's report (NPD's line
            // included); people read why here.
            eprintln!("efa-doctor: {}", efa_doctor::report::show_lines(&format!("{e:#}")));
            ExitCode::from(efa_doctor::report::exit::UNKNOWN as u8)
        }
    }
}
