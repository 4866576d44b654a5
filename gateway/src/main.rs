//! `kubeknobs-gateway`: parses flags, loads the config, binds, and hands over to the library.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use kubeknobs_gateway::config::{BackendConfig, Config, Flags, TlsIdentity};
use kubeknobs_gateway::telemetry::{self, LogFormat};
use kubeknobs_gateway::{auth, reload, server, shutdown, tls};

/// Turns control events from kubeknobs bridges into safe, rate-limited changes to a Kubernetes cluster.
#[derive(Debug, Parser)]
#[command(name = "kubeknobs-gateway", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve bridges: authenticate operators, apply their changes, stream cluster state back.
    ///
    /// The config is reloaded on SIGHUP and when the file changes: operators, policy, limits and
    /// target settings apply at once; a file that does not validate, or changes what only a
    /// restart can (listen addresses, TLS, cluster, the set of targets), changes nothing and the
    /// log says why.
    Run {
        /// The gateway config file (TOML).
        #[arg(short, long, env = "KUBEKNOBS_GATEWAY_CONFIG")]
        config: PathBuf,
        #[command(flatten)]
        flags: ServeFlags,
        /// Log format: auto (plain on a terminal, JSON lines otherwise), plain or json.
        #[arg(long, value_enum, default_value_t, env = "KUBEKNOBS_LOG_FORMAT")]
        log_format: LogFormat,
        /// Log level (error, warn, info, debug, trace) or filter
        /// (info,kubeknobs_gateway::leader=debug); default: RUST_LOG, else info.
        #[arg(long, value_name = "LEVEL", env = "KUBEKNOBS_LOG_LEVEL")]
        log_level: Option<String>,
    },
    /// Validate a config file as `run` with the same flags would, and print what it defines; exit 2 naming the file, line and field if it is wrong.
    Check {
        /// The gateway config file (TOML).
        #[arg(short, long)]
        config: PathBuf,
        #[command(flatten)]
        flags: ServeFlags,
    },
    /// Print the SHA-256 of a token for `token_sha256` (reads the token from stdin or --token-file).
    HashToken {
        /// File holding the token (surrounding whitespace is ignored).
        #[arg(long)]
        token_file: Option<PathBuf>,
    },
    /// Print the RBAC the config needs and nothing more: a Role and RoleBinding per target namespace, and a ClusterRole for nodes, TokenReview and impersonation, every rule limited to the named objects where Kubernetes allows it, all named kubeknobs:NAMESPACE:SERVICE_ACCOUNT.
    Rbac {
        /// The gateway config file (TOML).
        #[arg(short, long)]
        config: PathBuf,
        /// The gateway's ServiceAccount.
        #[arg(long, default_value = "kubeknobs-gateway")]
        service_account: String,
        /// The namespace the gateway runs in.
        #[arg(long, default_value = "kubeknobs")]
        namespace: String,
    },
    /// Generate a private CA and a server certificate: DIR/ca.pem, DIR/server.pem, DIR/server.key.
    GenCerts {
        /// Directory to write into (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// DNS names and IP addresses the server certificate is valid for (repeatable).
        #[arg(long = "name", default_values = ["localhost", "127.0.0.1", "::1"])]
        names: Vec<String>,
    },
}

/// What `run` serves besides the file; `check` takes them too, to judge what `run` would do.
#[derive(Debug, clap::Args)]
struct ServeFlags {
    /// Listen on this address instead of `server.listen` (port 0 picks a free port).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Serve plaintext gRPC without TLS; refused unless the address is loopback.
    #[arg(long)]
    insecure: bool,
}

impl ServeFlags {
    fn flags(&self) -> Flags {
        Flags {
            listen: self.listen,
            insecure: self.insecure,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            config,
            flags,
            log_format,
            log_level,
        } => {
            if let Err(err) = telemetry::init(log_format, log_level.as_deref()) {
                eprintln!("error: {}", telemetry::chain(&err));
                return ExitCode::from(2);
            }
            exit(run(config, flags.flags()))
        }
        Command::Check { config, flags } => exit(check(config, &flags.flags())),
        Command::HashToken { token_file } => exit(hash_token(token_file)),
        Command::Rbac {
            config,
            service_account,
            namespace,
        } => exit(rbac(config, &service_account, &namespace)),
        Command::GenCerts { out, names } => exit(gen_certs(out, &names)),
    }
}

fn exit(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // Each cause once: some errors repeat their source in their own message.
            eprintln!("error: {}", telemetry::chain(err.as_ref()));
            ExitCode::from(2)
        }
    }
}

/// Writes `text` to stdout. A reader that went away (`check … | head -1`) ends the output
/// quietly, as it does for other command-line tools; any other failure (`> /dev/full`) is an
/// error that says so, never a panic.
fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => result.context("cannot write to stdout"),
    }
}

#[tokio::main]
async fn run(path: PathBuf, flags: Flags) -> anyhow::Result<()> {
    // Watched from before the first read, so an edit made meanwhile is reloaded.
    let file = reload::trigger::FileWatch::new(path.clone());
    // The one judgement of a config, at start and at every reload (and by `check`).
    let load = {
        let path = path.clone();
        move || Config::load(&path, &flags)
    };
    let config = load()?;
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    let addr = config.listen;
    let listener = kubeknobs_gateway::listener::bind(addr)
        .with_context(|| format!("cannot listen on {addr}"))?;
    let source = reload::Source {
        file,
        load: Box::new(load),
    };
    server::serve_with(config, listener, shutdown::signal(), Some(source)).await?;
    tracing::info!("stopped");
    Ok(())
}

fn check(path: PathBuf, flags: &Flags) -> anyhow::Result<()> {
    use std::fmt::Write as _;
    let config = Config::load(&path, flags)?;
    let mut out = String::new();
    let _ = writeln!(out, "{}: OK", path.display());
    let _ = writeln!(
        out,
        "  listen {} ({})",
        config.listen,
        if config.tls.is_some() {
            "TLS"
        } else {
            "plaintext, --insecure"
        }
    );
    let _ = writeln!(out, "  cluster: {}", cluster(&config.backend));
    if let Some(lease) = &config.leader_election {
        let _ = writeln!(
            out,
            "  leader election on the lease {}/{} ({} s)",
            lease.namespace,
            lease.name,
            lease.duration.as_secs()
        );
    }
    let _ = writeln!(out, "  {} operator(s)", config.operators.len());
    if config.token_review {
        let _ = writeln!(
            out,
            "  TokenReview for tokens minted for {:?}",
            config.token_review_audiences
        );
    }
    if let Some(bound) = config.impersonated() {
        let accounts: Vec<String> = bound
            .service_accounts
            .iter()
            .flat_map(|(ns, names)| names.iter().map(move |n| format!("{ns}/{n}")))
            .collect();
        let _ = writeln!(
            out,
            "  impersonates only users {:?}, groups {:?}, ServiceAccounts {:?}",
            bound.users, bound.groups, accounts
        );
    }
    for target in config.catalog.iter() {
        let _ = writeln!(
            out,
            "  target {}: {}, {}",
            target.name,
            target.describe(),
            target.settings()
        );
        let _ = writeln!(out, "    {}", target.ownership.explain(target.kind));
    }
    for warning in config.warnings() {
        eprintln!("warning: {}: {warning}", path.display());
    }
    emit(&out)
}

/// The cluster in words, for `check`.
fn cluster(backend: &BackendConfig) -> String {
    match backend {
        BackendConfig::Sandbox => {
            "the built-in sandbox (in memory: nothing real is changed)".into()
        }
        BackendConfig::Kube {
            kubeconfig,
            context,
        } => format!(
            "Kubernetes through {}, {}",
            kubeconfig.as_ref().map_or(
                "KUBECONFIG, ~/.kube/config or the in-cluster account".to_owned(),
                |path| format!("the kubeconfig {}", path.display())
            ),
            context
                .as_ref()
                .map_or("its current context".to_owned(), |c| format!("context {c}"))
        ),
    }
}

fn hash_token(token_file: Option<PathBuf>) -> anyhow::Result<()> {
    let token = match token_file {
        Some(path) => std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?,
        None => {
            let mut token = String::new();
            std::io::stdin()
                .read_to_string(&mut token)
                .context("cannot read the token from stdin")?;
            token
        }
    };
    auth::check_token_length(&token).map_err(anyhow::Error::msg)?;
    emit(&format!("{}\n", auth::hash_token(&token)))
}

fn rbac(path: PathBuf, service_account: &str, namespace: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    // Only the catalog matters here; the TLS files usually exist only inside the cluster.
    let config = Config::parse_with_tls(&text, &path, TlsIdentity::default())?;
    emit(&kubeknobs_gateway::rbac::manifests(
        &config,
        service_account,
        namespace,
    )?)
}

fn gen_certs(out: PathBuf, names: &[String]) -> anyhow::Result<()> {
    let bundle = tls::CertBundle::generate(names)?;
    bundle.write(&out)?;
    emit(&format!(
        "wrote {0}/ca.pem, {0}/server.pem, {0}/server.key for {1}\n",
        out.display(),
        names.join(", ")
    ))
}
