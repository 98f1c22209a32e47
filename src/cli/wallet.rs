//! `bsc-bot wallet generate|import|list`: trading wallets in encrypted keystores.
//!
//! The password comes from `BSC_BOT_KEYSTORE_PASSWORD`, else from the terminal (asked twice when
//! a keystore is written). A private key to import comes from `BSC_BOT_PRIVATE_KEY` only, never
//! from an argument (arguments show in `ps` and shell history). Only addresses are printed.

use clap::Subcommand;
use serde_json::json;

use super::output::{print_json, print_table};
use super::{CliError, Context};
use crate::chain::ChainClient;
use crate::wallet::{Keystore, WalletError};

#[derive(Debug, Subcommand)]
pub enum WalletCommand {
    /// Create a wallet with a new random key; prints its address.
    Generate {
        /// Wallet name (a live strategy names its wallet).
        #[arg(short, long, default_value = "default")]
        name: String,
    },
    /// Encrypt the key in BSC_BOT_PRIVATE_KEY into a keystore; prints its address.
    Import {
        #[arg(short, long, default_value = "default")]
        name: String,
    },
    /// Wallets with their addresses, and BNB and token balances when a node answers.
    List {
        /// Do not ask the chain for balances.
        #[arg(long)]
        no_balances: bool,
    },
}

pub async fn run(cmd: WalletCommand, ctx: &Context) -> Result<(), CliError> {
    let keystore = Keystore::of_config(&ctx.config);
    match cmd {
        WalletCommand::Generate { name } => {
            let password = password(true)?;
            let address = keystore.generate(&name, &password).map_err(wallet_error)?;
            created(ctx, &keystore, &name, address)
        }
        WalletCommand::Import { name } => {
            let key = std::env::var("BSC_BOT_PRIVATE_KEY")
                .ok()
                .filter(|k| !k.trim().is_empty())
                .ok_or_else(|| CliError::invalid("set BSC_BOT_PRIVATE_KEY to the key to import"))?;
            let password = password(true)?;
            let address = keystore
                .import(&name, &key, &password)
                .map_err(wallet_error)?;
            created(ctx, &keystore, &name, address)
        }
        WalletCommand::List { no_balances } => list(ctx, &keystore, no_balances).await,
    }
}

fn wallet_error(e: WalletError) -> CliError {
    match e {
        WalletError::Io { .. } => CliError::runtime(e.to_string()),
        _ => CliError::invalid(e.to_string()),
    }
}

/// The keystore password: from the environment, else typed at the terminal.
pub fn password(confirm: bool) -> Result<String, CliError> {
    if let Ok(p) = std::env::var("BSC_BOT_KEYSTORE_PASSWORD") {
        if !p.is_empty() {
            return Ok(p);
        }
    }
    let ask = |prompt: &str| {
        rpassword::prompt_password(prompt).map_err(|e| {
            CliError::invalid(format!(
                "no keystore password: set BSC_BOT_KEYSTORE_PASSWORD or run on a terminal ({e})"
            ))
        })
    };
    let first = ask("keystore password: ")?;
    if confirm && ask("again: ")? != first {
        return Err(CliError::invalid("the passwords differ"));
    }
    Ok(first)
}

fn created(
    ctx: &Context,
    keystore: &Keystore,
    name: &str,
    address: alloy::primitives::Address,
) -> Result<(), CliError> {
    let file = keystore.dir().join(format!("{name}.json"));
    if ctx.json {
        return print_json(&json!({"name": name, "address": address, "keystore": file}));
    }
    println!("{address}");
    eprintln!("wallet {name:?} saved to {} (mode 0600)", file.display());
    Ok(())
}

async fn list(ctx: &Context, keystore: &Keystore, no_balances: bool) -> Result<(), CliError> {
    let wallets = keystore.list().map_err(wallet_error)?;
    let client = if no_balances || wallets.is_empty() {
        None
    } else {
        match ChainClient::connect(&ctx.config.chain).await {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("balances not shown: {e}");
                None
            }
        }
    };
    // Tokens of the configured assets, as the chain describes them.
    let mut tokens = Vec::new();
    if let Some(c) = &client {
        for (asset, addr) in &ctx.config.dex.assets {
            let Ok(address) = addr.parse() else { continue };
            match c.token(address).await {
                Ok(t) => tokens.push((asset.clone(), t)),
                Err(e) => eprintln!("{asset} ({addr}): {e}"),
            }
        }
    }
    let mut docs = Vec::new();
    for w in &wallets {
        let mut balances = serde_json::Map::new();
        if let Some(c) = &client {
            match c.native_balance(w.address).await {
                Ok(b) => {
                    balances.insert("BNB".into(), json!(b.normalize().to_string()));
                }
                Err(e) => eprintln!("{}: BNB balance: {e}", w.name),
            }
            for (asset, t) in &tokens {
                match c.token_balance(t, w.address).await {
                    Ok(b) => {
                        balances.insert(
                            crate::config::DexConfig::token_label(asset),
                            json!(b.normalize().to_string()),
                        );
                    }
                    Err(e) => eprintln!("{}: {asset} balance: {e}", w.name),
                }
            }
        }
        docs.push(json!({"name": w.name, "address": w.address, "balances": balances}));
    }
    if ctx.json {
        return print_json(
            &json!({"wallets": docs, "chain_id": client.as_ref().map(|c| c.chain_id())}),
        );
    }
    if docs.is_empty() {
        println!("no wallets (create one with `bsc-bot wallet generate --name NAME`)");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = docs
        .iter()
        .map(|d| {
            let balances = d["balances"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k} {}", v.as_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "-".into());
            vec![
                d["name"].as_str().unwrap_or_default().to_string(),
                d["address"].as_str().unwrap_or_default().to_string(),
                balances,
            ]
        })
        .collect();
    print_table(&["NAME", "ADDRESS", "BALANCES"], &rows);
    Ok(())
}
