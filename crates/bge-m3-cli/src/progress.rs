//! A byte progress bar on stderr for Hub downloads.

use bge_m3::hub::DownloadProgress;
use indicatif::{ProgressBar, ProgressStyle};

/// Draws one bar per file on stderr; indicatif draws nothing when stderr is not a
/// terminal.
pub struct DownloadBar {
    bar: Option<ProgressBar>,
}

impl DownloadBar {
    pub fn new() -> Self {
        Self { bar: None }
    }
}

impl DownloadProgress for DownloadBar {
    fn start(&mut self, file: &str, total: u64, done: u64) {
        let style = ProgressStyle::with_template(
            "{msg} {bar:30} {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
        )
        .expect("the progress template is valid");
        let bar = ProgressBar::new(total)
            .with_style(style)
            .with_message(file.to_owned());
        bar.set_position(done);
        self.bar = Some(bar);
    }

    fn advance(&mut self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
