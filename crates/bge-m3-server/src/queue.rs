//! The batching queue: requests wait here as tokenized texts, and one worker thread
//! merges them into model calls under the token budget.
//!
//! The split follows text-embeddings-inference (`core/src/queue.rs`,
//! `core/src/infer.rs`): handlers tokenize and enqueue, and the model runs on its
//! own thread, off the async runtime. Each call takes the oldest waiting text, so no
//! text waits forever, together with the texts `bge_m3::plan_batches` groups with it
//! when it plans all waiting texts: those of similar length, which pad little.
//!
//! A text's outputs depend only on its own rows of the batch (the library's batching
//! tests check this within 1e-6), so a request gets what the library returns for it
//! alone. A failed call fails only the requests in it (`failed_text_fails_only_its_request`
//! tests this). When the library names the text that failed, only that text's request
//! fails and the call runs again without it.

use std::collections::{HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Instant;

use bge_m3::{plan_batches, BatchLimits, Embedder, Embedding, Outputs, TokenizedText};
use tokio::sync::oneshot;

use crate::admission::QueuedTokens;
use crate::error::ApiError;
use crate::metrics::{BatchRecord, Metrics};

/// Why a job failed: the message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFailure {
    /// The message, naming the input position when one input caused the failure.
    pub message: String,
}

type JobResult = Result<Vec<Embedding>, JobFailure>;

/// The texts of one request, waiting for the worker.
struct Job {
    texts: Vec<TokenizedText>,
    outputs: Outputs,
    reply: oneshot::Sender<JobResult>,
    queued_at: Instant,
}

/// The sending side of the queue, cloned into every handler.
#[derive(Debug, Clone)]
pub struct QueueHandle {
    sender: mpsc::Sender<Job>,
    queued: Arc<QueuedTokens>,
    running: Arc<AtomicBool>,
}

/// The worker: owns the waiting texts and runs the model.
pub struct Worker {
    receiver: mpsc::Receiver<Job>,
    embedder: Arc<Embedder>,
    metrics: Arc<Metrics>,
    limits: BatchLimits,
    running: Arc<AtomicBool>,
    jobs: HashMap<u64, JobState>,
    next_job: u64,
    pending: VecDeque<Entry>,
}

struct JobState {
    texts: Vec<TokenizedText>,
    outputs: Outputs,
    results: Vec<Option<Embedding>>,
    remaining: usize,
    reply: oneshot::Sender<JobResult>,
    queued_at: Instant,
    started: bool,
}

/// One waiting text: its job and its position in the job.
#[derive(Debug, Clone, Copy)]
struct Entry {
    job: u64,
    text: usize,
    length: usize,
}

/// Creates a queue. The worker does nothing until [`Worker::spawn`] or
/// [`Worker::run`]; jobs sent before then wait in the channel.
pub fn queue(
    embedder: Arc<Embedder>,
    metrics: Arc<Metrics>,
    queued: Arc<QueuedTokens>,
) -> (QueueHandle, Worker) {
    let (sender, receiver) = mpsc::channel();
    let running = Arc::new(AtomicBool::new(true));
    let limits = embedder.batch_limits();
    let handle = QueueHandle {
        sender,
        queued,
        running: Arc::clone(&running),
    };
    let worker = Worker {
        receiver,
        embedder,
        metrics,
        limits,
        running,
        jobs: HashMap::new(),
        next_job: 0,
        pending: VecDeque::new(),
    };
    (handle, worker)
}

impl QueueHandle {
    /// Embeds the texts of one request, computing `outputs`.
    ///
    /// Fails at once when the queue is full, and with [`ApiError::ModelFailed`] when
    /// the model call for these texts failed.
    pub async fn embed(
        &self,
        texts: Vec<TokenizedText>,
        outputs: Outputs,
    ) -> Result<Vec<Embedding>, ApiError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let tokens = texts.iter().map(|text| text.ids.len()).sum();
        let _permit = self.queued.try_admit(tokens)?;
        let (reply, receiver) = oneshot::channel();
        let job = Job {
            texts,
            outputs,
            reply,
            queued_at: Instant::now(),
        };
        self.sender.send(job).map_err(|_| ApiError::Unavailable)?;
        let result = receiver.await.map_err(|_| ApiError::Unavailable)?;
        result.map_err(|failure| ApiError::ModelFailed {
            message: failure.message,
        })
    }

    /// Returns whether the worker thread is running.
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// Returns the tokens queued or running now.
    pub fn queued_tokens(&self) -> usize {
        self.queued.current()
    }
}

/// Marks the worker stopped when it returns or unwinds.
struct RunningFlag(Arc<AtomicBool>);

impl Drop for RunningFlag {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Worker {
    /// Runs the worker on a new thread named `bge-m3-queue`.
    pub fn spawn(self) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("bge-m3-queue".to_owned())
            .spawn(move || self.run())
    }

    /// Runs batches until every [`QueueHandle`] is dropped and no text waits.
    pub fn run(mut self) {
        let _flag = RunningFlag(Arc::clone(&self.running));
        tracing::info!(
            token_budget = self.limits.token_budget,
            "queue worker started"
        );
        while self.receive() {
            self.drop_cancelled();
            let batch = self.next_batch();
            self.run_batch(batch);
        }
        tracing::info!("queue worker stopped");
    }

    /// Waits for a job when nothing waits, then takes every job already sent.
    /// Returns false when the queue is closed and empty.
    fn receive(&mut self) -> bool {
        if self.pending.is_empty() {
            match self.receiver.recv() {
                Ok(job) => self.add(job),
                Err(mpsc::RecvError) => return false,
            }
        }
        while let Ok(job) = self.receiver.try_recv() {
            self.add(job);
        }
        true
    }

    fn add(&mut self, job: Job) {
        let id = self.next_job;
        self.next_job += 1;
        for (text, tokenized) in job.texts.iter().enumerate() {
            let length = tokenized.ids.len();
            self.pending.push_back(Entry {
                job: id,
                text,
                length,
            });
        }
        let state = JobState {
            results: vec![None; job.texts.len()],
            remaining: job.texts.len(),
            texts: job.texts,
            outputs: job.outputs,
            reply: job.reply,
            queued_at: job.queued_at,
            started: false,
        };
        self.jobs.insert(id, state);
    }

    /// Forgets the jobs whose client has gone, so they cost no model time.
    fn drop_cancelled(&mut self) {
        let cancelled: Vec<u64> = self
            .jobs
            .iter()
            .filter(|(_, state)| state.reply.is_closed())
            .map(|(&id, _)| id)
            .collect();
        if cancelled.is_empty() {
            return;
        }
        tracing::debug!(
            jobs = cancelled.len(),
            "dropping requests whose client has gone"
        );
        for id in cancelled {
            self.jobs.remove(&id);
            self.pending.retain(|entry| entry.job != id);
        }
    }

    /// Takes the batch that contains the oldest waiting text out of the queue.
    fn next_batch(&mut self) -> Vec<Entry> {
        let lengths: Vec<usize> = self.pending.iter().map(|entry| entry.length).collect();
        let Some(plan) = plan_batches(&lengths, &self.limits)
            .into_iter()
            .find(|batch| batch.members.contains(&0))
        else {
            return Vec::new();
        };
        let mut chosen = vec![false; self.pending.len()];
        for &member in &plan.members {
            chosen[member] = true;
        }
        let (batch, rest): (Vec<_>, Vec<_>) = self
            .pending
            .drain(..)
            .zip(chosen)
            .partition(|&(_, is_chosen)| is_chosen);
        self.pending = rest.into_iter().map(|(entry, _)| entry).collect();
        batch.into_iter().map(|(entry, _)| entry).collect()
    }

    /// Runs one batch. When the library names a failed text, that text's request
    /// fails and the rest run again; each retry has at least one request fewer.
    fn run_batch(&mut self, mut batch: Vec<Entry>) {
        self.record_queue_waits(&batch);
        while !batch.is_empty() {
            match self.call_model(&batch) {
                Ok(embeddings) => {
                    self.deliver(&batch, embeddings);
                    return;
                }
                Err(ModelError::Text { position, message }) => {
                    let job = batch[position].job;
                    self.fail_job(job, message);
                    batch.retain(|entry| entry.job != job);
                }
                Err(ModelError::Batch { message }) => {
                    let mut jobs: Vec<u64> = batch.iter().map(|entry| entry.job).collect();
                    jobs.sort_unstable();
                    jobs.dedup();
                    for job in jobs {
                        self.fail_job(job, message.clone());
                    }
                    return;
                }
            }
        }
    }

    fn call_model(&self, batch: &[Entry]) -> Result<Vec<Embedding>, ModelError> {
        let mut outputs = Outputs {
            dense: false,
            sparse: false,
            colbert: false,
        };
        let mut texts = Vec::with_capacity(batch.len());
        for entry in batch {
            let state = &self.jobs[&entry.job];
            outputs.dense |= state.outputs.dense;
            outputs.sparse |= state.outputs.sparse;
            outputs.colbert |= state.outputs.colbert;
            texts.push(state.texts[entry.text].clone());
        }

        let started = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| {
            self.embedder.embed_tokenized(&texts, outputs)
        }));
        let longest = batch.iter().map(|entry| entry.length).max().unwrap_or(0);
        self.metrics.record_batch(BatchRecord {
            texts: batch.len(),
            tokens: batch.iter().map(|entry| entry.length).sum(),
            padded_tokens: batch.len() * longest,
            duration: started.elapsed(),
            failed: !matches!(result, Ok(Ok(_))),
        });
        match result {
            Ok(Ok(embeddings)) => Ok(embeddings),
            Ok(Err(error)) => Err(self.describe(&error, batch)),
            Err(panic) => Err(ModelError::Batch {
                message: format!("the model call panicked: {}", panic_message(&panic)),
            }),
        }
    }

    /// Turns a library error into the failure of one text, when the error names
    /// one, or of the whole batch.
    fn describe(&self, error: &bge_m3::Error, batch: &[Entry]) -> ModelError {
        let chain = error_chain(error);
        match error
            .input_index()
            .and_then(|position| Some((position, batch.get(position)?)))
        {
            Some((position, entry)) => {
                tracing::warn!(error = %chain, input = entry.text, batch_texts = batch.len(),
                    "model call failed for one input; running the rest of the batch again");
                let message = match error {
                    bge_m3::Error::NonFinite { output, .. } => format!(
                        "the model produced a non-finite value in the {output} output of input {}",
                        entry.text
                    ),
                    _ => format!("failed to embed input {}: {chain}", entry.text),
                };
                ModelError::Text { position, message }
            }
            None => {
                tracing::error!(error = %chain, batch_texts = batch.len(), "model call failed");
                ModelError::Batch {
                    message: format!("failed to embed the inputs: {chain}"),
                }
            }
        }
    }

    fn deliver(&mut self, batch: &[Entry], embeddings: Vec<Embedding>) {
        for (entry, embedding) in batch.iter().zip(embeddings) {
            let Some(state) = self.jobs.get_mut(&entry.job) else {
                continue;
            };
            state.results[entry.text] = Some(keep_outputs(embedding, state.outputs));
            state.remaining -= 1;
            if state.remaining == 0 {
                let state = self
                    .jobs
                    .remove(&entry.job)
                    .expect("the job was just found");
                let results = state.results.into_iter().flatten().collect();
                // The client may have gone since, and then the result is dropped.
                let _ = state.reply.send(Ok(results));
            }
        }
    }

    fn fail_job(&mut self, job: u64, message: String) {
        self.pending.retain(|entry| entry.job != job);
        if let Some(state) = self.jobs.remove(&job) {
            let _ = state.reply.send(Err(JobFailure { message }));
        }
    }

    fn record_queue_waits(&mut self, batch: &[Entry]) {
        for entry in batch {
            if let Some(state) = self.jobs.get_mut(&entry.job) {
                if !state.started {
                    state.started = true;
                    self.metrics.record_queue_wait(state.queued_at.elapsed());
                }
            }
        }
    }
}

enum ModelError {
    /// The text at `position` of the batch failed.
    Text { position: usize, message: String },
    /// The whole call failed.
    Batch { message: String },
}

/// Drops the outputs a request did not ask for, computed for others in its batch.
fn keep_outputs(mut embedding: Embedding, outputs: Outputs) -> Embedding {
    if !outputs.dense {
        embedding.dense = None;
    }
    if !outputs.sparse {
        embedding.sparse = None;
    }
    if !outputs.colbert {
        embedding.colbert = None;
    }
    embedding
}

/// Formats an error with its sources, as anyhow's `{:#}` does.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "no message".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bge_m3::EmbedderOptions;
    use std::path::PathBuf;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures")
            .join(name)
    }

    fn start(model: &str) -> (Arc<Embedder>, QueueHandle, Worker) {
        let embedder = Arc::new(Embedder::try_new(fixture(model), EmbedderOptions::new()).unwrap());
        let metrics = Arc::new(Metrics::default());
        let (handle, worker) = queue(Arc::clone(&embedder), metrics, QueuedTokens::new(100_000));
        (embedder, handle, worker)
    }

    fn tokenize(embedder: &Embedder, texts: &[&str]) -> Vec<TokenizedText> {
        texts
            .iter()
            .map(|text| embedder.tokenizer().encode(text, 8192, 0).unwrap())
            .collect()
    }

    /// Sends jobs before the worker starts, so that its first batch contains them all.
    #[tokio::test]
    async fn failed_text_fails_only_its_request() {
        let (embedder, handle, worker) = start("nan-outputs");
        let good = handle.embed(tokenize(&embedder, &["dog", "cat"]), Outputs::ALL);
        let bad = handle.embed(tokenize(&embedder, &["dog", "a cat"]), Outputs::ALL);
        let other = handle.embed(tokenize(&embedder, &["bird"]), Outputs::ALL);
        let worker = std::thread::spawn(move || {
            // Give the three futures time to send their jobs before the first batch.
            std::thread::sleep(std::time::Duration::from_millis(200));
            worker.run();
        });
        let (good, bad, other) = tokio::join!(good, bad, other);
        assert_eq!(good.unwrap().len(), 2);
        assert_eq!(other.unwrap().len(), 1);
        let error = bad.unwrap_err().to_string();
        assert!(error.contains("non-finite"), "{error}");
        assert!(error.contains("input 1"), "{error}");
        drop(handle);
        worker.join().unwrap();
    }

    #[tokio::test]
    async fn jobs_sharing_a_batch_equal_jobs_alone() {
        let (embedder, handle, worker) = start("tiny-bge-m3");
        let texts = [
            "short",
            "a somewhat longer text about embeddings",
            "",
            "x y z",
        ];
        let dense_only = Outputs {
            dense: true,
            sparse: false,
            colbert: false,
        };
        let first = handle.embed(tokenize(&embedder, &texts[..2]), Outputs::ALL);
        let second = handle.embed(tokenize(&embedder, &texts[2..]), dense_only);

        let worker = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            worker.run();
        });
        let (first, second) = tokio::join!(first, second);
        let (first, second) = (first.unwrap(), second.unwrap());

        let alone = embedder.embed(&texts).unwrap();
        for (served, expected) in first.iter().zip(&alone[..2]) {
            assert_eq!(served.tokens, expected.tokens);
            assert_close(
                served.dense.as_ref().unwrap(),
                expected.dense.as_ref().unwrap(),
            );
            assert!(served.sparse.is_some());
            assert!(served.colbert.is_some());
        }
        for (served, expected) in second.iter().zip(&alone[2..]) {
            assert_close(
                served.dense.as_ref().unwrap(),
                expected.dense.as_ref().unwrap(),
            );
            assert!(served.sparse.is_none(), "sparse was not requested");
            assert!(served.colbert.is_none(), "ColBERT was not requested");
        }

        drop(handle);
        worker.join().unwrap();
    }

    fn assert_close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-6, "{x} != {y}");
        }
    }
}
