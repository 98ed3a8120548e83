//! Entry point: command line → config → logging → database → the chosen command.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // A .env file is optional; the environment wins over it.
    let _ = dotenvy::dotenv();
    let cli = hindsight::cli::Cli::parse();
    let config = match hindsight::config::Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("hindsight: {err}");
            return ExitCode::from(2);
        }
    };
    hindsight::cli::init_tracing(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("hindsight: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(hindsight::cli::run(cli, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("hindsight: {err}");
            ExitCode::FAILURE
        }
    }
}
