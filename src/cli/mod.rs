//! The command line: clap definitions, dispatch and the runtime.

pub mod args;
pub mod exit;
mod load;
mod smoke;

use clap::{Parser, Subcommand};

use crate::shutdown::Shutdown;
use args::{ContractCommand, LoadArgs, ReportCommand, ServeArgs, SmokeArgs};
use exit::Exit;

/// Live sports and market data over WebSockets: a reference server, a load
/// generator and a contract checker.
#[derive(Debug, Parser)]
#[command(name = "livegames", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the live games server (with mock ESPN, Kalshi and API-SPORTS upstreams).
    Serve(Box<ServeArgs>),
    /// Load-test a live games server over WebSockets (an embedded one without a URL).
    Load(Box<LoadArgs>),
    /// Work with load reports.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Check a running server (an embedded one without --url) against the message contract.
    Smoke(Box<SmokeArgs>),
    /// Work with the message contract offline: validate recordings, print schemas.
    #[command(subcommand)]
    Contract(ContractCommand),
}

/// Runs a parsed command line to completion.
pub fn run(cli: Cli) -> Exit {
    match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Load(args) => load::run(*args),
        Command::Report(ReportCommand::Merge(args)) => load::merge(args),
        Command::Smoke(args) => smoke::run(*args),
        Command::Contract(ContractCommand::Validate(args)) => contract_validate(args),
        Command::Contract(ContractCommand::Schema { name }) => {
            match crate::inspect::schema_text(name.as_deref()) {
                Ok(text) => {
                    println!("{text}");
                    Exit::Ok
                }
                Err(e) => {
                    eprintln!("livegames contract schema: {e}");
                    Exit::Usage
                }
            }
        }
        Command::Contract(ContractCommand::Asyncapi) => match crate::inspect::asyncapi() {
            Ok(doc) => {
                println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
                Exit::Ok
            }
            Err(e) => {
                eprintln!("livegames contract asyncapi: {e}");
                Exit::Failed
            }
        },
        Command::Contract(ContractCommand::Record(args)) => match runtime() {
            Ok(rt) => rt.block_on(contract_record(args)),
            Err(e) => {
                eprintln!("livegames contract record: cannot start the runtime: {e}");
                Exit::Failed
            }
        },
    }
}

pub(crate) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

fn serve(args: ServeArgs) -> Exit {
    crate::telemetry::init(args.log_format);
    let config = match args.lower() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("livegames serve: {e}");
            return Exit::Usage;
        }
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("livegames serve: cannot start the runtime: {e}");
            return Exit::Failed;
        }
    };
    rt.block_on(async move {
        let listener = match crate::serve::bind(args.addr) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("livegames serve: cannot listen on {}: {e}", args.addr);
                return Exit::Failed;
            }
        };
        let shutdown = Shutdown::new();
        let on_signal = shutdown.clone();
        let mut signals = match crate::shutdown::Signals::install() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("livegames serve: cannot listen for signals: {e}");
                return Exit::Failed;
            }
        };
        tokio::spawn(async move {
            signals.recv().await;
            tracing::info!("shutdown requested; closing client connections");
            on_signal.trigger();
        });
        match crate::serve::run(config, listener, shutdown).await {
            Ok(()) => Exit::Ok,
            Err(e) => {
                eprintln!("livegames serve: {e}");
                Exit::Failed
            }
        }
    })
}

fn contract_validate(args: args::ValidateArgs) -> Exit {
    let schemas = match crate::inspect::load_schemas(args.schema_dir.as_deref(), args.strict) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("livegames contract validate: {e}");
            return Exit::Usage;
        }
    };
    let result = if args.file.as_os_str() == "-" {
        crate::inspect::validate(std::io::stdin().lock(), &schemas)
    } else {
        match std::fs::File::open(&args.file) {
            Ok(f) => crate::inspect::validate(std::io::BufReader::new(f), &schemas),
            Err(e) => {
                eprintln!(
                    "livegames contract validate: cannot read {}: {e}",
                    args.file.display()
                );
                return Exit::Usage;
            }
        }
    };
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "livegames contract validate: reading {} failed: {e}",
                args.file.display()
            );
            return Exit::Usage;
        }
    };
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(j) => println!("{j}"),
            Err(e) => eprintln!("livegames contract validate: {e}"),
        }
    } else {
        print!("{}", report.render_text());
    }
    if report.passed() {
        Exit::Ok
    } else {
        Exit::Failed
    }
}

async fn contract_record(args: args::RecordArgs) -> Exit {
    use futures_util::StreamExt;
    use std::io::Write;
    let url = match crate::client::ws::stream_url(&args.url).await {
        Ok(u) => u,
        Err(e) => {
            eprintln!("livegames contract record: {e}");
            return Exit::Unreachable;
        }
    };
    let mut connected =
        match crate::client::ws::connect(&url, std::time::Duration::from_secs(10), 64 * 1024).await
        {
            Ok(c) => c,
            Err(e) => {
                eprintln!("livegames contract record: {url}: {e}");
                return Exit::Unreachable;
            }
        };
    let file = match std::fs::File::create(&args.out) {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "livegames contract record: cannot write {}: {e}",
                args.out.display()
            );
            return Exit::Usage;
        }
    };
    let mut out = std::io::BufWriter::new(file);
    let deadline = tokio::time::Instant::now() + args.duration;
    let mut recorded = 0u64;
    let end = loop {
        if recorded >= args.frames {
            break crate::inspect::RecordEnd::Frames;
        }
        let next = tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break crate::inspect::RecordEnd::Time,
            next = connected.socket.next() => next,
        };
        match next {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) => {
                if writeln!(out, "{}", crate::inspect::jsonl_line(text.as_str())).is_err() {
                    eprintln!(
                        "livegames contract record: cannot write {}",
                        args.out.display()
                    );
                    return Exit::Failed;
                }
                recorded += 1;
            }
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame))) => {
                break crate::inspect::RecordEnd::Closed(frame.map(|f| u16::from(f.code)));
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break crate::inspect::RecordEnd::Closed(None),
        }
    };
    let _ = connected.socket.close(None).await;
    if out.flush().is_err() {
        eprintln!(
            "livegames contract record: cannot write {}",
            args.out.display()
        );
        return Exit::Failed;
    }
    eprintln!(
        "recorded {recorded} frames from {url} to {} ({end:?})",
        args.out.display()
    );
    Exit::Ok
}
