//! Starting and stopping the server.

use std::future::Future;

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::args::ServeArgs;
use crate::routes::app;
use crate::shutdown;
use crate::state::AppState;

/// Runs `bge-m3 serve` until Ctrl-C or SIGTERM: loads the model, binds the address
/// and serves, then finishes the requests in flight and returns.
pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: &ServeArgs) -> anyhow::Result<()> {
    tracing::info!(model = %args.model.display(), "loading the model");
    let state = AppState::try_new(args)?;
    let address = (args.host, args.port);
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("failed to listen on {}:{}", args.host, args.port))?;
    let local = listener
        .local_addr()
        .context("failed to read the bound address")?;
    tracing::info!(
        address = %local,
        model = %state.info().name,
        dimensions = state.info().dimensions,
        authentication = state.api_key().is_some(),
        "server listening"
    );
    serve(listener, state, shutdown::signal())
        .await
        .context("the server failed")?;
    tracing::info!("server stopped");
    Ok(())
}

/// Serves on `listener` until `shutdown` completes, then waits for the requests in
/// flight and returns.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}
