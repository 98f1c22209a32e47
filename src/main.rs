//! The `bsc-bot` binary: daemon and operator CLI in one.

use bsc_bot::cli::{self, Cli, CliError};
use clap::Parser;

fn main() {
    // Everything the bot creates (database, its WAL, logs, backups, exports, keystores) is the
    // operator's alone: files 0600, folders 0700, whatever umask the shell had.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    // Output piped into `head` (or any reader that stops early) ends the command quietly, as it
    // does for other Unix tools, instead of a panic with exit 101.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let broken_pipe = info
            .payload()
            .downcast_ref::<String>()
            .is_some_and(|m| m.contains("Broken pipe"));
        if broken_pipe {
            std::process::exit(0);
        }
        default_hook(info);
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 1,
                _ => cli::context::EXIT_INVALID_INPUT,
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let json = cli.json;
    // One worker: the daemon's engine runs on a thread of its own, and on a small host every
    // extra runnable thread is one more that can preempt it (the CLI needs no parallelism).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => fail(
            json,
            &CliError::runtime(format!("cannot start the async runtime: {e}")),
        ),
    };
    if let Err(e) = runtime.block_on(cli::run(cli)) {
        fail(json, &e);
    }
}

fn fail(json: bool, e: &CliError) -> ! {
    if json {
        let doc = serde_json::json!({"error": {"kind": e.kind(), "exit_code": e.exit_code, "message": e.message}});
        println!("{doc}");
    }
    // Messages echo what came from outside (a parameter key, a reason): shown, never acted on.
    eprintln!("error: {}", cli::output::shown_lines(&e.message));
    std::process::exit(e.exit_code);
}
