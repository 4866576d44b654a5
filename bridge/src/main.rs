//! `kubeknobs-bridge`: parses flags, loads the config, starts logging and hands over to the
//! library. A config error prints `error: …` and exits 2 before anything is bound.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use kubeknobs_bridge::config::Config;
use kubeknobs_bridge::reload::FileWatch;
use kubeknobs_runtime::shutdown;
use kubeknobs_runtime::telemetry::{self, LogFormat};
use tracing::{error, info};

/// Turns OSC controls into safe changes to a Kubernetes cluster, through a kubeknobs gateway.
#[derive(Debug, Parser)]
#[command(name = "kubeknobs-bridge", version, propagate_version = true)]
struct Cli {
    /// Log format: auto (plain on a terminal, JSON lines otherwise), plain or json.
    #[arg(
        long,
        global = true,
        value_enum,
        env = "KUBEKNOBS_LOG_FORMAT",
        default_value_t = LogFormat::Auto
    )]
    log_format: LogFormat,

    /// Log level (error, warn, info, debug, trace) or filter (info,kubeknobs_bridge::midi=debug);
    /// default: RUST_LOG, else info.
    #[arg(long, global = true, value_name = "LEVEL", env = "KUBEKNOBS_LOG_LEVEL")]
    log_level: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the bridge: receive OSC, stream control events to the gateway, send feedback.
    ///
    /// The config is reloaded on SIGHUP and when the file changes; a file that does not
    /// validate is logged and the running config stays.
    Run(ConfigArg),
    /// Validate a config file (and read its token and CA files), print a summary, and exit.
    Check(ConfigArg),
    /// Run the whole pipeline on this machine: an embedded gateway and the bridge.
    ///
    /// The gateway drives the built-in sandbox cluster unless --kubeconfig is given; the bridge
    /// talks to it over real gRPC with TLS on loopback, with a CA and token made for this run.
    /// Prints what to type into TouchOSC, then a line per target state change.
    #[cfg(feature = "demo")]
    Demo(DemoArgs),
    /// List the MIDI input and output ports this machine has (names to use in midi.inputs and
    /// midi.outputs; a part of the name is enough).
    Ports,
    /// Print each incoming MIDI and OSC event as the mapping line that would map it.
    Learn(LearnArgs),
    /// Write a ready-made layout for an OSC app: one control per OSC mapping of a bridge config,
    /// on the mapping's address, with its touch (`/z`) and label addresses.
    Layout(LayoutArgs),
}

#[derive(Debug, Args)]
struct LayoutArgs {
    /// The bridge config whose OSC mappings to lay out (its [gateway] table is not needed).
    #[arg(short, long, value_name = "FILE")]
    config: PathBuf,
    /// The app to write a layout for.
    #[arg(long, value_enum, default_value = "open-stage-control")]
    format: LayoutFormat,
    /// Write here instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LayoutFormat {
    /// An Open Stage Control session (JSON): load it with "Load session".
    OpenStageControl,
}

#[derive(Debug, Args)]
struct LearnArgs {
    /// Take midi.inputs, midi.serial and osc.listen from this bridge config (default: every MIDI
    /// input, no serial device, OSC on 0.0.0.0:8000).
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where to receive OSC (overrides the config's osc.listen).
    #[arg(long, value_name = "ADDR")]
    osc_listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Args)]
struct ConfigArg {
    /// The bridge config file (TOML).
    #[arg(short, long, value_name = "FILE")]
    config: PathBuf,
}

#[cfg(feature = "demo")]
#[derive(Debug, Args)]
struct DemoArgs {
    /// Bridge config to use instead of the built-in examples/demo/bridge.toml (its [gateway]
    /// table, if any, is ignored: the demo connects to its embedded gateway).
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Gateway config to use instead of the built-in examples/demo/gateway.toml.
    #[arg(long, value_name = "FILE")]
    gateway_config: Option<PathBuf>,
    /// Drive the cluster of this kubeconfig instead of the sandbox.
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current context).
    #[arg(long, value_name = "NAME", requires = "kubeconfig")]
    context: Option<String>,
    /// Where to receive OSC (default: the bridge config's osc.listen, 0.0.0.0:8000).
    #[arg(long, value_name = "ADDR")]
    osc_listen: Option<std::net::SocketAddr>,
    /// The port on the phone that receives feedback (default: osc.feedback_port, 9000).
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    feedback_port: Option<u16>,
    /// Where to serve the web control surface (default: the config's web.listen, else
    /// 0.0.0.0:8080).
    #[arg(long, value_name = "ADDR")]
    web_listen: Option<std::net::SocketAddr>,
}

/// Exit code for an unusable config.
const CONFIG_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = telemetry::init(cli.log_format, cli.log_level.as_deref()) {
        eprintln!("error: {}", telemetry::chain(&e));
        return ExitCode::from(CONFIG_ERROR);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(dispatch(cli.command))
}

async fn dispatch(command: Command) -> ExitCode {
    match command {
        Command::Check(arg) => match load(&arg.config) {
            Ok(config) => match kubeknobs_bridge::check(&config) {
                Ok(()) => emit(&format!(
                    "{}: OK\n{}",
                    arg.config.display(),
                    config.summary()
                )),
                Err(e) => config_error(&e),
            },
            Err(code) => code,
        },
        Command::Run(arg) => {
            // Watched from before the first read, so an edit made meanwhile is reloaded.
            let file = FileWatch::new(arg.config.clone());
            match load(&arg.config) {
                Ok(config) => run(config, file).await,
                Err(code) => code,
            }
        }
        #[cfg(feature = "demo")]
        Command::Demo(args) => demo(args).await,
        Command::Ports => ports(),
        Command::Learn(args) => learn(args).await,
        Command::Layout(args) => layout(args),
    }
}

fn ports() -> ExitCode {
    match kubeknobs_bridge::midi::ports::list() {
        Ok((inputs, outputs)) => {
            let backend = kubeknobs_bridge::midi::BACKEND;
            let mut out = format!("MIDI inputs ({backend}):\n");
            for name in inputs {
                out.push_str(&format!("  {name}\n"));
            }
            out.push_str(&format!("MIDI outputs ({backend}):\n"));
            for name in outputs {
                out.push_str(&format!("  {name}\n"));
            }
            emit(&out)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn learn(args: LearnArgs) -> ExitCode {
    use kubeknobs_bridge::config::{DEFAULT_OSC_LISTEN, Local, MidiConfig};
    let (midi, listen) = match &args.config {
        Some(path) => match Local::load(path) {
            Ok(local) => (local.midi, local.osc.listen),
            Err(e) => return config_error(&e),
        },
        None => (MidiConfig::default(), DEFAULT_OSC_LISTEN),
    };
    let listen = args.osc_listen.unwrap_or(listen);
    let result = kubeknobs_bridge::learn::run(midi, listen, shutdown::signal()).await;
    finish(result.context("learn failed"))
}

fn layout(args: LayoutArgs) -> ExitCode {
    use kubeknobs_bridge::config::Local;
    use kubeknobs_bridge::layout::{self, Format};
    let local = match Local::load(&args.config) {
        Ok(local) => local,
        Err(e) => return config_error(&e),
    };
    let format = match args.format {
        LayoutFormat::OpenStageControl => Format::OpenStageControl,
    };
    let text = layout::render(&local.osc, format);
    match &args.output {
        Some(path) => match std::fs::write(path, text + "\n") {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: cannot write {}: {e}", path.display());
                ExitCode::FAILURE
            }
        },
        None => emit(&(text + "\n")),
    }
}

/// Writes `text` to stdout. A reader that went away (`check … | head -1`) ends the output
/// quietly, as it does for other command-line tools; any other failure (`> /dev/full`) is an
/// error that says so (exit 1), never a panic.
fn emit(text: &str) -> ExitCode {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write to stdout: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Loads the config, or prints why not and gives the exit code for it.
fn load(path: &std::path::Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|e| config_error(&e))
}

fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{}", telemetry::chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config, file: FileWatch) -> ExitCode {
    info!(bridge_id = %config.bridge_id, "kubeknobs-bridge {} starting", env!("CARGO_PKG_VERSION"));
    let options = kubeknobs_bridge::Options {
        file: Some(file),
        ..Default::default()
    };
    match kubeknobs_bridge::run(config, options, shutdown::signal()).await {
        Err(e) if e.is_config() => config_error(&e),
        other => finish(other.context("bridge failed")),
    }
}

/// Prints an error found in the config and gives exit code 2.
fn config_error(e: &(dyn std::error::Error + 'static)) -> ExitCode {
    eprintln!("error: {}", telemetry::chain(e));
    ExitCode::from(CONFIG_ERROR)
}

#[cfg(feature = "demo")]
async fn demo(args: DemoArgs) -> ExitCode {
    use kubeknobs_bridge::demo::{self, Options};
    let options = Options {
        config: args.config,
        gateway_config: args.gateway_config,
        kubeconfig: args.kubeconfig,
        context: args.context,
        osc_listen: args.osc_listen,
        feedback_port: args.feedback_port,
        web_listen: args.web_listen,
    };
    match demo::run(options, shutdown::signal()).await {
        Err(e) if e.is_config() => config_error(&e),
        other => finish(other.context("demo failed")),
    }
}
