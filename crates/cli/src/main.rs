//! `regain`: serve the API, migrate the database, administer tenants, staff, keys and customer
//! records, and run the demo. This binary is the only place that reads configuration and picks
//! a storage backend; everything else is handed typed values.

mod admin;
mod audit;
mod cli;
mod config;
mod context;
mod database;
mod demo;
mod import;
mod keys;
mod logging;
mod serve;

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;

use crate::cli::{Cli, Command, ConfigCommand};
use crate::config::Config;
use crate::logging::Audience;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Needs no configuration and no database: works even where the config is broken.
    if let Command::Totp(args) = &cli.command {
        return admin::totp(args).map(|()| ExitCode::SUCCESS);
    }
    let config = Config::load(cli.config.as_deref())?;
    if let Command::Config(ConfigCommand::Show) = &cli.command {
        print!("{}", admin::show_config(&config)?);
        return Ok(ExitCode::SUCCESS);
    }
    let audience = match cli.command {
        Command::Serve => Audience::Service,
        _ => Audience::Command,
    };
    logging::init(&config.log, audience)?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve => serve::serve(&config).await.map(|()| ExitCode::SUCCESS),
            Command::Migrate(args) => admin::migrate(&config, &args).await,
            Command::Tenant(cmd) => admin::tenant(&config, cmd).await,
            Command::Staff(cmd) => admin::staff(&config, cmd).await,
            Command::ApiKey(cmd) => admin::api_key(&config, cmd).await,
            Command::Customer(cli::CustomerCommand::Import(args)) => import::run(&config, &args).await,
            Command::Demo(args) => demo::run(&config, &args).await,
            Command::Audit(cmd) => audit::run(&config, cmd).await,
            Command::Keys(cmd) => keys::run(&config, cmd).await,
            Command::Customer(cli::CustomerCommand::Erase(args)) => admin::erase_customer(&config, &args).await,
            Command::Totp(_) | Command::Config(_) => Ok(ExitCode::SUCCESS),
        }
    })
}
