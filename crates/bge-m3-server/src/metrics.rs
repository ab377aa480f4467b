//! Prometheus metrics. Every metric is named here, with the one prefix `bge_m3_`,
//! and rendered in the Prometheus text format (version 0.0.4) by `GET /metrics`.
//!
//! Requests are recorded by the router's middleware and batches by the queue worker,
//! each through one method of [`Metrics`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// The prefix of every metric name.
pub const PREFIX: &str = "bge_m3_";

const REQUESTS: &str = "bge_m3_requests_total";
const REQUEST_DURATION: &str = "bge_m3_request_duration_seconds";
const QUEUE_DURATION: &str = "bge_m3_queue_duration_seconds";
const BATCHES: &str = "bge_m3_batches_total";
const BATCH_FAILURES: &str = "bge_m3_batch_failures_total";
const BATCH_DURATION: &str = "bge_m3_batch_duration_seconds";
const BATCH_TEXTS: &str = "bge_m3_batch_texts";
const BATCH_PADDED_TOKENS: &str = "bge_m3_batch_padded_tokens";
const EMBEDDED_TEXTS: &str = "bge_m3_embedded_texts_total";
const EMBEDDED_TOKENS: &str = "bge_m3_embedded_tokens_total";
const QUEUED_TOKENS: &str = "bge_m3_queued_tokens";

/// Bucket bounds in seconds, for request, queue and model-call durations.
const SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Bucket bounds for texts in one batch.
const TEXTS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
/// Bucket bounds for padded tokens in one batch.
const TOKENS: &[f64] = &[
    64.0, 256.0, 1024.0, 4096.0, 8192.0, 16384.0, 32768.0, 65536.0,
];

/// One model call, as the queue worker records it.
#[derive(Debug, Clone, Copy)]
pub struct BatchRecord {
    /// Texts in the batch.
    pub texts: usize,
    /// Tokens of the texts, without padding.
    pub tokens: usize,
    /// Texts × longest text: the tokens given to the model, padding included.
    pub padded_tokens: usize,
    /// Time of the model call.
    pub duration: Duration,
    /// Whether the call failed.
    pub failed: bool,
}

/// The metrics of one server.
#[derive(Debug, Default)]
pub struct Metrics {
    registry: Mutex<Registry>,
}

#[derive(Debug)]
struct Registry {
    requests: BTreeMap<(String, u16), u64>,
    request_duration: BTreeMap<String, Histogram>,
    queue_duration: Histogram,
    batches: u64,
    batch_failures: u64,
    batch_duration: Histogram,
    batch_texts: Histogram,
    batch_padded_tokens: Histogram,
    embedded_texts: u64,
    embedded_tokens: u64,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            requests: BTreeMap::new(),
            request_duration: BTreeMap::new(),
            queue_duration: Histogram::new(SECONDS),
            batches: 0,
            batch_failures: 0,
            batch_duration: Histogram::new(SECONDS),
            batch_texts: Histogram::new(TEXTS),
            batch_padded_tokens: Histogram::new(TOKENS),
            embedded_texts: 0,
            embedded_tokens: 0,
        }
    }
}

impl Metrics {
    /// Records one finished HTTP request. `route` is the matched route pattern, so
    /// the label set stays bounded.
    pub fn record_request(&self, route: &str, status: u16, duration: Duration) {
        let mut registry = self.lock();
        *registry
            .requests
            .entry((route.to_owned(), status))
            .or_default() += 1;
        registry
            .request_duration
            .entry(route.to_owned())
            .or_insert_with(|| Histogram::new(SECONDS))
            .observe(duration.as_secs_f64());
    }

    /// Records the wait of one job between entering the queue and its first batch.
    pub fn record_queue_wait(&self, duration: Duration) {
        self.lock().queue_duration.observe(duration.as_secs_f64());
    }

    /// Records one model call.
    pub fn record_batch(&self, batch: BatchRecord) {
        let mut registry = self.lock();
        registry.batches += 1;
        registry
            .batch_duration
            .observe(batch.duration.as_secs_f64());
        registry.batch_texts.observe(batch.texts as f64);
        registry
            .batch_padded_tokens
            .observe(batch.padded_tokens as f64);
        if batch.failed {
            registry.batch_failures += 1;
        } else {
            registry.embedded_texts += batch.texts as u64;
            registry.embedded_tokens += batch.tokens as u64;
        }
    }

    /// Renders every metric in the Prometheus text format, with the current number
    /// of queued tokens as a gauge.
    pub fn render(&self, queued_tokens: usize) -> String {
        let registry = self.lock();
        let mut out = String::new();
        render_requests(&mut out, &registry);

        let queue_help = "Seconds from entering the queue to the first model call of a request.";
        histogram(
            &mut out,
            QUEUE_DURATION,
            queue_help,
            &registry.queue_duration,
        );
        counter(&mut out, BATCHES, "Model calls.", registry.batches);
        let failures_help = "Model calls that failed.";
        counter(
            &mut out,
            BATCH_FAILURES,
            failures_help,
            registry.batch_failures,
        );
        let duration_help = "Seconds of one model call.";
        histogram(
            &mut out,
            BATCH_DURATION,
            duration_help,
            &registry.batch_duration,
        );
        let texts_help = "Texts in one model call.";
        histogram(&mut out, BATCH_TEXTS, texts_help, &registry.batch_texts);
        let padded_help = "Tokens of one model call, padding included.";
        histogram(
            &mut out,
            BATCH_PADDED_TOKENS,
            padded_help,
            &registry.batch_padded_tokens,
        );

        counter(
            &mut out,
            EMBEDDED_TEXTS,
            "Texts embedded.",
            registry.embedded_texts,
        );
        let tokens_help = "Tokens embedded, without padding.";
        counter(
            &mut out,
            EMBEDDED_TOKENS,
            tokens_help,
            registry.embedded_tokens,
        );
        header(
            &mut out,
            QUEUED_TOKENS,
            "gauge",
            "Tokens of the requests queued or running.",
        );
        let _ = writeln!(out, "{QUEUED_TOKENS} {queued_tokens}");
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        // A panic while holding the lock leaves plain counters behind, still usable.
        self.registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn render_requests(out: &mut String, registry: &Registry) {
    header(
        out,
        REQUESTS,
        "counter",
        "HTTP requests by route and status code.",
    );
    for ((route, status), count) in &registry.requests {
        let route = escape(route);
        let _ = writeln!(
            out,
            "{REQUESTS}{{route=\"{route}\",status=\"{status}\"}} {count}"
        );
    }
    header(
        out,
        REQUEST_DURATION,
        "histogram",
        "Seconds from receiving a request to its response.",
    );
    for (route, histogram) in &registry.request_duration {
        let labels = format!("route=\"{}\",", escape(route));
        histogram.render(out, REQUEST_DURATION, &labels);
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn histogram(out: &mut String, name: &str, help: &str, values: &Histogram) {
    header(out, name, "histogram", help);
    values.render(out, name, "");
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    header(out, name, "counter", help);
    let _ = writeln!(out, "{name} {value}");
}

/// Escapes a label value as the text format requires.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    /// Observations per bucket, not cumulative; the last bucket is `+Inf`.
    counts: Vec<u64>,
    sum: f64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
        }
    }

    fn observe(&mut self, value: f64) {
        let bucket = self.bounds.partition_point(|&bound| bound < value);
        self.counts[bucket] += 1;
        self.sum += value;
    }

    /// Writes the cumulative buckets, sum and count; `labels` ends with a comma.
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            cumulative += count;
            let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.counts[self.bounds.len()];
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {cumulative}");
        let bare = labels.trim_end_matches(',');
        let braces = if bare.is_empty() {
            String::new()
        } else {
            format!("{{{bare}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {cumulative}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let mut histogram = Histogram::new(&[1.0, 2.0]);
        histogram.observe(0.5);
        histogram.observe(1.0);
        histogram.observe(1.5);
        histogram.observe(9.0);
        let mut out = String::new();
        histogram.render(&mut out, "x", "");
        assert!(out.contains("x_bucket{le=\"1\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"2\"} 3\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 4\n"), "{out}");
        assert!(out.contains("x_sum 12\n"), "{out}");
        assert!(out.contains("x_count 4\n"), "{out}");
    }

    #[test]
    fn every_metric_has_the_prefix() {
        let metrics = Metrics::default();
        metrics.record_request("/embed", 200, Duration::from_millis(3));
        metrics.record_batch(BatchRecord {
            texts: 2,
            tokens: 7,
            padded_tokens: 8,
            duration: Duration::from_millis(1),
            failed: false,
        });
        let text = metrics.render(5);
        for line in text.lines() {
            let name = line
                .trim_start_matches("# HELP ")
                .trim_start_matches("# TYPE ");
            assert!(name.starts_with(PREFIX), "{line}");
        }
        assert!(text.contains("bge_m3_requests_total{route=\"/embed\",status=\"200\"} 1\n"));
        assert!(text.contains("bge_m3_embedded_tokens_total 7\n"));
        assert!(text.contains("bge_m3_queued_tokens 5\n"));
    }
}
