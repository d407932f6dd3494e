//! `zoe-session-host`: `serve` and the operator commands over the embedded component.

use clap::Parser;
use std::process::ExitCode;
use zoe_session_host::cli::{Cli, run};

#[tokio::main]
async fn main() -> ExitCode {
    run(Cli::parse()).await
}
