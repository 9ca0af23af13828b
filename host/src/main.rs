//! The `outrig` binary: parses the command line, sets up logging, runs.

use clap::Parser;
use outrig::cli::{CaCommand, Cli, Command, ComponentsCommand};
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("outrig: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => outrig::cli::run::run(args).await,
            Command::Components(ComponentsCommand::Inspect(args)) => {
                outrig::cli::inspect::inspect(args).await
            }
            Command::Components(ComponentsCommand::Validate(args)) => {
                outrig::cli::validate::validate(&args)
            }
            Command::Ca(CaCommand::Init(args)) => outrig::cli::ca::init(&args),
            Command::Ca(CaCommand::Issue(args)) => outrig::cli::ca::issue(&args),
            Command::Version => {
                println!("outrig {}", env!("CARGO_PKG_VERSION"));
                Ok(0)
            }
        }
    });
    match outcome {
        Ok(code) => std::process::ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("outrig: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(cli: &Cli) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cli.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cli.log_as_json {
        builder.json().init();
    } else {
        builder.init();
    }
}
