//! The `linnet` command: `linnet broker`, `linnet bench`, and the clients `pub`, `sub` and
//! `rr` (each in its own module). The only place that installs a tracing subscriber.

// A command-line tool: standard output is its interface (the libraries may not print).
#![allow(clippy::print_stdout)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use linnet_broker::{Broker, Config};

mod bench;
mod client_args;
mod format;
mod pub_cmd;
mod rr_cmd;
mod sub_cmd;

#[derive(Debug, Parser)]
#[command(name = "linnet", version, about = "Linnet MQTT platform")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the MQTT broker (TCP 1883 and WebSocket 8083 at /mqtt by default).
    #[command(
        after_help = "Examples:\n  linnet broker\n  linnet broker --tcp 127.0.0.1:1883 --ws 127.0.0.1:8083\n  linnet broker --config linnet.toml\n  linnet broker --print-config > linnet.toml"
    )]
    Broker(BrokerArgs),
    /// Benchmark an MQTT broker (any broker): conn, pub, sub and scenarios.
    Bench(Box<bench::BenchArgs>),
    /// Publish messages, like mosquitto_pub (-h is the host; help is --help).
    #[command(after_help = pub_cmd::AFTER_HELP, after_long_help = format!("{}\n\n{}", pub_cmd::AFTER_HELP, client_args::EXIT_CODES_HELP))]
    Pub(Box<pub_cmd::PubArgs>),
    /// Subscribe and print messages, like mosquitto_sub (-h is the host; help is --help).
    #[command(after_help = sub_cmd::AFTER_HELP, after_long_help = format!("{}\n\n{}", sub_cmd::AFTER_HELP, client_args::EXIT_CODES_HELP))]
    Sub(Box<sub_cmd::SubArgs>),
    /// Request / response, like mosquitto_rr: publish a request, print the reply.
    #[command(after_help = rr_cmd::AFTER_HELP, after_long_help = format!("{}\n\n{}", rr_cmd::AFTER_HELP, client_args::EXIT_CODES_HELP))]
    Rr(Box<rr_cmd::RrArgs>),
}

#[derive(Debug, Args)]
struct BrokerArgs {
    /// TOML configuration file (see --print-config for every key).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Listen for MQTT over TCP on ADDR:PORT (repeatable). Any --tcp/--ws replaces all configured listeners.
    #[arg(long, value_name = "ADDR:PORT")]
    tcp: Vec<SocketAddr>,
    /// Listen for MQTT over WebSocket on ADDR:PORT (repeatable). Any --tcp/--ws replaces all configured listeners.
    #[arg(long, value_name = "ADDR:PORT")]
    ws: Vec<SocketAddr>,
    /// Worker threads (overrides `runtime.threads`); 0 = one per available core.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(0..=1024))]
    threads: Option<u16>,
    /// Print the default configuration, every key documented, and exit.
    #[arg(long)]
    print_config: bool,
    /// Log filter, e.g. `info`, `debug`, `linnet_broker=debug` (default: RUST_LOG or info).
    #[arg(long, value_name = "FILTER")]
    log: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Broker(args) => run_broker(args),
        Command::Bench(args) => bench::run(*args),
        Command::Pub(args) => return pub_cmd::run(*args),
        Command::Sub(args) => return sub_cmd::run(*args),
        Command::Rr(args) => return rr_cmd::run(*args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("linnet: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_broker(args: BrokerArgs) -> anyhow::Result<()> {
    if args.print_config {
        print!("{}", linnet_broker::config::DEFAULT_CONFIG_TOML);
        return Ok(());
    }
    init_tracing(args.log.as_deref())?;
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    // Flags override the file, one listener kind at a time.
    if !args.tcp.is_empty() || !args.ws.is_empty() {
        config.listeners.tcp = args.tcp;
        config.listeners.ws = args.ws;
    }
    if let Some(threads) = args.threads {
        config.runtime.threads = usize::from(threads);
    }
    config.validate()?;
    // One thread: the single-threaded scheduler, which skips the work-stealing one's
    // cross-thread bookkeeping (about a tenth of the instructions per message at low rates).
    let threads = config.runtime.effective_threads();
    let runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
    .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let broker = Broker::new(config);
        let signals = broker.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down");
            signals.shutdown();
        });
        linnet_broker::serve(broker).await.context("broker stopped")
    })
}

/// SIGINT or SIGTERM.
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn init_tracing(filter: Option<&str>) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = match filter {
        Some(text) => {
            EnvFilter::try_new(text).with_context(|| format!("invalid --log filter {text:?}"))?
        }
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
    Ok(())
}
