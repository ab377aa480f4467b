//! The shutdown signals: Ctrl-C (SIGINT) and SIGTERM.
//!
//! The first signal stops the server from accepting connections and lets the
//! requests in flight finish, for up to `--shutdown-timeout` seconds. A second signal
//! stops it at once.

use tokio::sync::watch;

/// Returns a receiver of the number of shutdown signals received so far.
///
/// Call it inside the tokio runtime: it spawns the task that listens.
pub fn listen() -> watch::Receiver<u32> {
    let (sender, receiver) = watch::channel(0);
    tokio::spawn(async move {
        let mut signals = Signals::new();
        let name = signals.next().await;
        tracing::info!(
            signal = name,
            "shutting down: finishing the requests in flight \
             (send the signal again to stop now)"
        );
        sender.send_replace(1);
        // The server logs how it stopped, so the second signal is not logged here.
        signals.next().await;
        sender.send_replace(2);
    });
    receiver
}

/// The signal streams, registered once so that no signal between two waits is lost.
struct Signals {
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let terminate = signal(SignalKind::terminate())
                .inspect_err(|error| tracing::error!(%error, "failed to listen for SIGTERM"))
                .ok();
            Self { terminate }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// Waits for the next Ctrl-C or SIGTERM and returns its name.
    async fn next(&mut self) -> &'static str {
        let ctrl_c = async {
            if let Err(error) = tokio::signal::ctrl_c().await {
                tracing::error!(%error, "failed to listen for Ctrl-C");
                std::future::pending::<()>().await;
            }
        };
        #[cfg(unix)]
        let terminate = async {
            match &mut self.terminate {
                Some(stream) => {
                    stream.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();

        tokio::select! {
            () = ctrl_c => "SIGINT",
            () = terminate => "SIGTERM",
        }
    }
}
