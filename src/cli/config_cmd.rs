//! `bsc-bot config check`: the effective config, secrets redacted.

use clap::Subcommand;
use serde_json::json;

use super::output::print_json;
use super::{CliError, Context};
use crate::config::load::SECRET_ENV_VARS;
use crate::config::ConfigSource;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the config and print it as it takes effect (file + env), secrets redacted.
    Check,
}

pub fn run(cmd: ConfigCommand, ctx: &Context) -> Result<(), CliError> {
    match cmd {
        ConfigCommand::Check => check(ctx),
    }
}

fn check(ctx: &Context) -> Result<(), CliError> {
    let mut shown = ctx.config.clone();
    shown.database.url = shown.database.redacted_url();
    // RPC URLs often carry an API key in their path: only scheme and host are shown.
    let redact_rpc = |u: &String| match u.split_once("://") {
        Some((scheme, _)) => format!("{scheme}://{}/…", crate::config::host_of(u)),
        None => crate::config::host_of(u),
    };
    shown.chain.rpc_urls = shown.chain.rpc_urls.iter().map(redact_rpc).collect();
    shown.chain.ws_urls = shown.chain.ws_urls.iter().map(redact_rpc).collect();
    if !shown.chain.private_tx_url.is_empty() {
        shown.chain.private_tx_url = redact_rpc(&shown.chain.private_tx_url);
    }
    // A webhook's URL is its secret (Slack's and Telegram's carry the token in the path).
    if !shown.alerts.webhook_url.is_empty() {
        shown.alerts.webhook_url = redact_rpc(&shown.alerts.webhook_url);
    }
    let source = match &ctx.source {
        ConfigSource::File(p) => p.display().to_string(),
        ConfigSource::Defaults => "embedded defaults (no config file)".to_string(),
    };
    // Only whether each secret is set: the values never leave the process.
    let secrets: serde_json::Map<String, serde_json::Value> = SECRET_ENV_VARS
        .iter()
        .map(|name| {
            let set = std::env::var(name).map(|v| !v.is_empty()).unwrap_or(false);
            (name.to_string(), json!(if set { "set" } else { "unset" }))
        })
        .collect();
    if ctx.json {
        return print_json(
            &json!({"valid": true, "source": source, "config": shown, "secrets": secrets}),
        );
    }
    let text = toml::to_string_pretty(&shown)
        .map_err(|e| CliError::runtime(format!("cannot render config: {e}")))?;
    println!("# config OK, from {source}");
    println!("{}", text.trim_end());
    println!("\n# secrets (from the environment; values never shown)");
    for (name, state) in &secrets {
        println!("# {name}: {}", state.as_str().unwrap_or_default());
    }
    Ok(())
}
