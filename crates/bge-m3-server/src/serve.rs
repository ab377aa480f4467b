//! Starting and stopping the server.

use std::future::IntoFuture as _;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::args::ServeArgs;
use crate::routes::app;
use crate::shutdown;
use crate::state::AppState;

/// The way the server stopped after the first shutdown signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Every request in flight finished.
    Drained,
    /// The shutdown timeout passed with connections still open.
    TimedOut,
    /// A second signal came before the requests in flight finished.
    Forced,
}

/// Runs `bge-m3 serve` until Ctrl-C or SIGTERM: binds the address, loads the model
/// and serves, then finishes the requests in flight and returns.
pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    let result = runtime.block_on(run_async(args));
    // Connections still open after a timed-out or forced shutdown are dropped here.
    runtime.shutdown_background();
    result
}

async fn run_async(args: &ServeArgs) -> anyhow::Result<()> {
    // Binding first makes a taken port fail at once, not after the model's load.
    let address = (args.host, args.port);
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("failed to listen on {}:{}", args.host, args.port))?;
    tracing::info!(model = %args.model.display(), "loading the model");
    let state = AppState::try_new(args)?;
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
    let timeout = Duration::from_secs(args.shutdown_timeout);
    let stopped = serve(listener, state, shutdown::listen(), timeout)
        .await
        .context("the server failed")?;
    match stopped {
        Stopped::Drained => tracing::info!("server stopped"),
        Stopped::TimedOut => tracing::warn!(
            seconds = args.shutdown_timeout,
            "server stopped: the shutdown timeout passed, open connections were closed"
        ),
        Stopped::Forced => {
            tracing::warn!("server stopped on a second signal: open connections were closed");
        }
    }
    Ok(())
}

/// Serves on `listener` until `signals`, a count of shutdown signals, reaches 1. Then
/// it waits for the requests in flight, for up to `timeout` or until the count reaches
/// 2, and returns how it stopped.
///
/// Connections still open when it returns are dropped with the tokio runtime.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    signals: watch::Receiver<u32>,
    timeout: Duration,
) -> std::io::Result<Stopped> {
    let first = reached(signals.clone(), 1);
    let server = axum::serve(listener, app(state))
        .with_graceful_shutdown(first)
        .into_future();
    tokio::pin!(server);

    tokio::select! {
        result = &mut server => return result.map(|()| Stopped::Drained),
        () = reached(signals.clone(), 1) => {}
    }
    tokio::select! {
        result = &mut server => result.map(|()| Stopped::Drained),
        () = tokio::time::sleep(timeout) => Ok(Stopped::TimedOut),
        () = reached(signals, 2) => Ok(Stopped::Forced),
    }
}

/// Completes when the signal count reaches `count`, or never if the sender is gone
/// first.
async fn reached(mut signals: watch::Receiver<u32>, count: u32) {
    if signals
        .wait_for(|&received| received >= count)
        .await
        .is_err()
    {
        std::future::pending::<()>().await;
    }
}
