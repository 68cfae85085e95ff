//! `trellis`: the one binary. `trellis serve` runs every service in one process with zero
//! configuration, or any subset of them (`--services`) for a distributed deployment.

mod app;
mod audit_cli;
mod config;
mod secrets;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Overrides;

#[derive(Parser)]
#[command(name = "trellis", version, about = "Projects and tasks for teams.")]
struct Cli {
    /// A TOML configuration file (layered over defaults, under environment and flags).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Folder for the embedded database, local objects and generated secrets.
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API, the web app and the background work.
    Serve {
        /// Services to run here: `all`, or a comma-separated subset of gateway, auth, users,
        /// projects, worker.
        #[arg(long, value_name = "LIST")]
        services: Option<String>,
        /// Address to listen on (default 127.0.0.1:8080).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Configuration helpers.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// List the services and what each needs.
    Services,
    /// Administration.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// The hash-chained audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Access-token signing keys and personal-data keys of this deployment.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Data-lifecycle jobs (expired sessions, old events, temporary files, erased users…).
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
}

#[derive(Subcommand)]
enum JobsCommand {
    /// List the jobs: name, interval, last run (start, outcome, items) and what each does.
    List,
    /// Run a job now in this process, under its lease (exit 1 if another process holds it).
    Run {
        /// The job's name, as `trellis jobs list` shows it.
        name: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the whole chain: every archive in object storage, then the entries in the database;
    /// exit 1 and print the first broken archive or entry if it is broken.
    Verify {
        /// Check only the entries in the database (from the newest archive's last hash on).
        #[arg(long)]
        skip_archives: bool,
    },
    /// Move the entries older than the retention to object storage, as gzip JSON Lines with their
    /// chain hashes (`audit/archive/`), and delete them from the database. The newest entry stays.
    Archive {
        /// Archive entries older than this many days.
        #[arg(long, default_value_t = 365)]
        older_than_days: u32,
        /// Entries per archive object.
        #[arg(long, default_value_t = worker::audit::ARCHIVE_BATCH,
              value_parser = clap::value_parser!(u32).range(1..=i64::from(worker::audit::ARCHIVE_BATCH)))]
        batch: u32,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Make a new signing key of the configured algorithm (`auth.signing_algorithm`) and print
    /// its kid. Running servers publish it at their next check and sign with it shortly after;
    /// the previous key stays in the JWKS until the tokens it signed have expired.
    Rotate,
    /// List the signing keys: kid, algorithm, created, state (next, current, previous, retired).
    List,
    /// Make a key pair for one service's calls to others (docs/OPERATIONS.md "Service keys") and
    /// print both settings: the private key goes to the processes running that service only, the
    /// public key to every process.
    ServiceKey {
        /// gateway, auth, users, projects or worker.
        service: String,
    },
    /// Re-encrypt every user's personal data under the newest key-encryption key (`pii.keys`),
    /// in batches, while servers keep serving. Interrupted, it carries on where it stopped when
    /// run again; once it reports nothing left, older keys can be removed from `pii.keys`.
    RotatePii {
        /// Users per batch (one transaction each).
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        batch_size: u32,
        /// Stop after this many batches (to spread the work over several runs).
        #[arg(long)]
        max_batches: Option<u64>,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an account (the first administrator, say). The password is read from the first
    /// line of standard input, never from the command line.
    CreateUser {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// admin, user or guest.
        #[arg(long, default_value = "admin")]
        role: String,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the default configuration as TOML.
    PrintDefault,
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutdown requested; finishing in-flight requests");
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut overrides = Overrides { data_dir: cli.data_dir.clone(), ..Default::default() };
    match cli.command {
        Command::Serve { services, listen } => {
            overrides.services = services;
            overrides.listen = listen;
            let settings = config::load(cli.config.as_deref(), &overrides)?;
            platform::telemetry::init_logging(&settings.log.level, settings.log.format);
            let listener = tokio::net::TcpListener::bind(settings.listen)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.listen))?;
            app::serve(settings, listener, shutdown_signal()).await
        }
        Command::Migrate => {
            let settings = config::load(cli.config.as_deref(), &overrides)?;
            platform::telemetry::init_logging(&settings.log.level, settings.log.format);
            app::migrate(&settings).await
        }
        Command::Config { command: ConfigCommand::PrintDefault } => {
            let text = toml::to_string_pretty(&config::Settings::default())?;
            #[allow(clippy::print_stdout)]
            {
                println!("{text}");
            }
            Ok(())
        }
        Command::Admin { command: AdminCommand::CreateUser { email, name, role } } => {
            let role = api::users::Role::parse(&role)
                .ok_or_else(|| anyhow::anyhow!("--role must be admin, user or guest (got {role:?})"))?;
            let settings = config::load(cli.config.as_deref(), &overrides)?;
            platform::telemetry::init_logging("warn", settings.log.format);
            let mut password = String::new();
            std::io::stdin().read_line(&mut password)?;
            let password = password.trim_end_matches(['\n', '\r']);
            anyhow::ensure!(!password.is_empty(), "no password on standard input");
            let user = app::create_user(settings, &email, &name, role, password).await?;
            #[allow(clippy::print_stdout)]
            {
                println!("created {} ({}) with role {}", user.email, user.id, user.role.as_str());
            }
            Ok(())
        }
        Command::Keys { command } => {
            let settings = config::load(cli.config.as_deref(), &overrides)?;
            platform::telemetry::init_logging("warn", settings.log.format);
            let rfc3339 =
                |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
            match command {
                KeysCommand::Rotate => {
                    let (kid, active_from) = app::rotate_key(&settings).await?;
                    #[allow(clippy::print_stdout)]
                    {
                        println!("{kid}");
                    }
                    eprintln!(
                        "new {} signing key {kid}; it signs from {}",
                        settings.auth.signing_algorithm,
                        rfc3339(active_from)
                    );
                }
                KeysCommand::RotatePii { batch_size, max_batches } => {
                    let done = app::rotate_pii(&settings, batch_size, max_batches).await?;
                    eprintln!(
                        "{} users re-encrypted under personal-data key version {}; {} left on older versions",
                        done.rewritten, done.version, done.remaining
                    );
                    if done.remaining == 0 {
                        eprintln!("no user needs an older key version any more: it can be removed from pii.keys");
                    }
                }
                KeysCommand::ServiceKey { service } => {
                    let service: api::internal::Service = service.parse().map_err(anyhow::Error::msg)?;
                    let (key, private) = platform::service_auth::ServiceKey::generate(service);
                    let upper = service.as_str().to_uppercase();
                    #[allow(clippy::print_stdout)]
                    {
                        println!("TRELLIS_INTERNAL__PRIVATE_KEYS__{upper}={private}");
                        println!("TRELLIS_INTERNAL__PUBLIC_KEYS__{upper}={}", key.public_key());
                    }
                    eprintln!(
                        "the first line to the processes that run the {service} service only (a secret), \
                         the second to every process"
                    );
                }
                KeysCommand::List => {
                    let keys = app::list_keys(&settings).await?;
                    #[allow(clippy::print_stdout)]
                    {
                        println!("{:<36}  {:<5}  {:<20}  {:<8}  RETIRES", "KID", "ALG", "CREATED", "STATE");
                        for k in keys {
                            let created = rfc3339(k.created_at.replace_nanosecond(0).unwrap_or(k.created_at));
                            let retires = k
                                .retires_at
                                .map(|t| rfc3339(t.replace_nanosecond(0).unwrap_or(t)))
                                .unwrap_or_else(|| "-".into());
                            println!(
                                "{:<36}  {:<5}  {:<20}  {:<8}  {retires}",
                                k.kid,
                                k.alg,
                                created,
                                k.state.as_str()
                            );
                        }
                    }
                }
            }
            Ok(())
        }
        Command::Jobs { command } => {
            let settings = config::load(cli.config.as_deref(), &overrides)?;
            let rfc3339 = |t: time::OffsetDateTime| {
                t.replace_nanosecond(0)
                    .unwrap_or(t)
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()
            };
            match command {
                JobsCommand::List => {
                    platform::telemetry::init_logging("warn", settings.log.format);
                    let now = time::OffsetDateTime::now_utc();
                    let jobs = app::list_jobs(&settings).await?;
                    #[allow(clippy::print_stdout)]
                    {
                        println!(
                            "{:<17}  {:<8}  {:<20}  {:<10}  {:<40}  DESCRIPTION",
                            "NAME", "INTERVAL", "LAST STARTED", "OUTCOME", "ITEMS"
                        );
                        for j in jobs {
                            let (started, outcome, items) = match &j.status {
                                Some(s) => (
                                    s.last_started_at.map(rfc3339).unwrap_or_else(|| "-".into()),
                                    if s.running(now) {
                                        "running".to_string()
                                    } else {
                                        s.last_outcome.clone().unwrap_or_else(|| "-".into())
                                    },
                                    s.last_items.summary(),
                                ),
                                None => ("never".into(), "-".into(), "-".into()),
                            };
                            println!(
                                "{:<17}  {:<8}  {started:<20}  {outcome:<10}  {items:<40}  {}",
                                j.name,
                                format!("{}h", j.interval.as_secs() / 3600),
                                j.description
                            );
                        }
                    }
                }
                JobsCommand::Run { name } => {
                    // Progress lines go to standard error, the counts to standard output.
                    platform::telemetry::init_logging(&settings.log.level, settings.log.format);
                    let report = app::run_job(&settings, &name).await?;
                    #[allow(clippy::print_stdout)]
                    {
                        println!("{name}: {}", report.summary());
                    }
                }
            }
            Ok(())
        }
        Command::Audit { command } => {
            let settings = config::load(cli.config.as_deref(), &overrides)?;
            platform::telemetry::init_logging("warn", settings.log.format);
            match command {
                AuditCommand::Verify { skip_archives } => audit_cli::verify(&settings, skip_archives).await,
                AuditCommand::Archive { older_than_days, batch } => {
                    audit_cli::archive(&settings, older_than_days, batch).await
                }
            }
        }
        Command::Services => {
            #[allow(clippy::print_stdout)]
            {
                println!("gateway   public entry point: routing, token checks, rate limits, web app (needs: cache)");
                println!("auth      registration, login, tokens, signing keys (needs: database, users)");
                println!("users     profiles (needs: database)");
                println!("projects  projects and tasks (needs: database, auth keys)");
                println!("worker    outbox relay and event consumers (needs: database, event bus)");
            }
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("trellis: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("trellis: {e:#}");
            ExitCode::FAILURE
        }
    }
}
