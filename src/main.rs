use clap::Parser;
use voxbridge::cli::{Cli, Command};
use voxbridge::config::Config;
use voxbridge::store::Store;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("VOXBRIDGE_LOG").unwrap_or_else(|_| "info".into());
    // VOXBRIDGE_LOG_FORMAT=json: one JSON object a line, for journald/Loki/Elastic.
    if std::env::var("VOXBRIDGE_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        tracing_subscriber::fmt().json().with_env_filter(filter).with_writer(std::io::stderr).init();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("voxbridge: error: {e:#}");
            match e.downcast_ref::<voxbridge::cli::ExitError>() {
                Some(x) => std::process::ExitCode::from(x.code),
                None => std::process::ExitCode::FAILURE,
            }
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let cfg = Config::load(cli.config.as_deref())?;
    match voxbridge::mail::net::TlsPolicy::from_config(&cfg.mail) {
        Ok(p) => voxbridge::mail::net::set_policy(p),
        // The server must not start without the CA it was told to trust; a command still
        // runs (`config show` to find the mistake), its mail connections without that CA.
        Err(e) if matches!(cli.command, Command::Serve) => return Err(e),
        Err(e) => {
            eprintln!("voxbridge: warning: {e:#}; mail servers are checked against the system's CAs only");
            let (require, verify) = (cfg.mail.require_tls, cfg.mail.tls_verify);
            voxbridge::mail::net::set_policy(voxbridge::mail::net::TlsPolicy { require, verify, ca_certs: Vec::new() });
        }
    }
    match cli.command {
        Command::Serve => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(voxbridge::driver::server::serve(cfg, cli.config.clone())),
        Command::Status { json } => voxbridge::cli::control::status(&cfg, json),
        Command::Calls { json } => voxbridge::cli::control::calls(&cfg, json),
        Command::Hangup { call, json } => voxbridge::cli::control::hangup(&cfg, &call, json),
        Command::Reload { json } => voxbridge::cli::control::reload(&cfg, json),
        Command::Shutdown { graceful, wait_secs, json } => {
            voxbridge::cli::control::shutdown(&cfg, graceful, graceful.then_some(wait_secs), json)
        }
        Command::Mailbox(c) => voxbridge::cli::mailbox::run(&Store::open(&cfg.store.path)?, &cfg, c),
        Command::Messages(c) => voxbridge::cli::messages::run(&Store::open(&cfg.store.path)?, &cfg, c),
        Command::Tts(c) => voxbridge::cli::tts::run(&cfg, c),
        Command::Fax(c) => match voxbridge::cli::fax::run(&cfg, c)? {
            true => Ok(()),
            false => anyhow::bail!("the fax was not sent (see the report above)"),
        },
        Command::Config(c) => voxbridge::cli::config::run(&cfg, c),
        Command::Prompts(c) => voxbridge::cli::prompts::run(&cfg, c),
        Command::Completions { shell } => {
            voxbridge::cli::completions(shell);
            Ok(())
        }
        Command::Manpages { dir } => voxbridge::cli::manpages(&dir),
        Command::Dialplan(c) => voxbridge::cli::dialplan::run(&cfg, c),
        Command::Smdi(c) => voxbridge::cli::smdi::run(&cfg, c),
        Command::List(c) => voxbridge::cli::lists::run(&Store::open(&cfg.store.path)?, &cfg, c),
        Command::Filters(c) => voxbridge::cli::filters::run(&Store::open(&cfg.store.path)?, c),
        Command::Substitutions(c) => voxbridge::cli::substitutions::run(&Store::open(&cfg.store.path)?, &cfg, c),
        Command::Sync { number: Some(number), json, each_line, confirm_removals, .. } => {
            let opts = voxbridge::cli::sync::Options { brake: cfg.sync.brake(), confirm_removals, json };
            voxbridge::cli::sync::run(&Store::open(&cfg.store.path)?, &number, &opts, each_line)
        }
        Command::Sync { number: None, json, confirm_removals, .. } => {
            let opts = voxbridge::cli::sync::Options { brake: cfg.sync.brake(), confirm_removals, json };
            voxbridge::cli::sync::run_all(&Store::open(&cfg.store.path)?, &opts)
        }
        Command::SyncLog { number, limit, json } => {
            voxbridge::cli::sync::log(&Store::open(&cfg.store.path)?, number.as_deref(), limit, json, &cfg.sync.brake())
        }
    }
}
