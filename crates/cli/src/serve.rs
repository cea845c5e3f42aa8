//! `regain serve`: migrate, bind, serve until Ctrl-C or SIGTERM, then finish the requests in
//! flight.

use anyhow::Context as _;
use regain_server::Application;

use crate::config::Config;
use crate::context::{Context, Schema};

pub async fn serve(config: &Config) -> anyhow::Result<()> {
    let ctx = Context::open(config, Schema::Migrate).await?;
    let listen = config.server.listen;
    let app = Application::build(ctx.state.clone()).await.with_context(|| format!("listening on {listen}"))?;
    let addr = app.local_addr().context("reading the bound address")?;
    tracing::info!(
        listen = %addr,
        backend = ctx.backend.name(),
        database = %config.database_display(),
        public_url = %config.server.public_url,
        "regain is serving"
    );
    app.run_until(shutdown_signal()).await.context("serving")?;
    ctx.backend.close().await;
    tracing::info!("regain stopped");
    Ok(())
}

/// Completes on Ctrl-C or, on Unix, SIGTERM (what orchestrators send to stop a process).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received; shutting down"),
        () = terminate => tracing::info!("SIGTERM received; shutting down"),
    }
}
