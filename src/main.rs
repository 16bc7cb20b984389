//! `product-api [serve | migrate]`: thin entry point; see `startup` for the work.

use std::process::ExitCode;

use product_api::{
    config::Config,
    startup::{self, Application},
    telemetry,
};

const USAGE: &str = "usage: product-api [serve | migrate | healthcheck]
  serve        run the HTTP server (default)
  migrate      apply pending database migrations and exit
  healthcheck  exit 0 if the server on $PORT is ready (for container health checks)
Configuration comes from environment variables; see .env.example.";

// glibc's malloc was a tenth of the server's CPU under load; mimalloc serves 25% more reads
// per second on the same machine (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let command = std::env::args().nth(1);
    if matches!(command.as_deref(), Some("-h" | "--help" | "help")) {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("product-api: {e}");
            return ExitCode::from(2);
        }
    };
    if command.as_deref() != Some("healthcheck") {
        telemetry::init(config.log_format());
    }
    match command.as_deref() {
        None | Some("serve") => serve(config).await,
        Some("healthcheck") => match startup::healthcheck(config.port).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("product-api: not ready: {e}");
                ExitCode::FAILURE
            }
        },
        Some("migrate") => match startup::migrate(&config).await {
            Ok(()) => {
                tracing::info!("migrations applied");
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!(error = %e, "migration failed");
                ExitCode::FAILURE
            }
        },
        Some(other) => {
            eprintln!("product-api: unknown command `{other}`\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

async fn serve(config: Config) -> ExitCode {
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "startup failed");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(port = app.port(), "listening");
    match app.run_until(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
