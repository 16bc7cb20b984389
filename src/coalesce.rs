//! Request coalescing: concurrent callers queue for one task that hands whatever is waiting
//! to a [`Batch`] as one unit of work, one batch at a time.
//!
//! A lone call goes out at once; under load, calls that arrive while a batch is in flight
//! form the next one, so one round trip serves many requests and the batch size follows the
//! load by itself. Used where one round trip per request would dominate the request's cost:
//! rate-limit decisions (one Redis script run per batch) and product reads by id (one query
//! per batch).

use std::{future::Future, sync::Arc, sync::OnceLock};

use tokio::sync::{mpsc, oneshot};

/// Work done for many inputs at once.
pub trait Batch: Send + Sync + 'static {
    type Input: Send + 'static;
    type Output: Send + 'static;

    /// One output per input, in the inputs' order.
    fn run(&self, inputs: &[Self::Input]) -> impl Future<Output = Vec<Self::Output>> + Send;
}

/// The batching task is gone (the runtime is shutting down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the batching task has stopped")]
pub struct Stopped;

struct Waiting<B: Batch> {
    input: B::Input,
    output: oneshot::Sender<B::Output>,
}

/// Queues calls for one batching task, started by the first call (so construction needs no
/// runtime). The task ends when the coalescer is dropped.
pub struct Coalescer<B: Batch> {
    batch: Arc<B>,
    max_batch: usize,
    queue: OnceLock<mpsc::Sender<Waiting<B>>>,
}

impl<B: Batch> Coalescer<B> {
    /// `max_batch` bounds one batch; more waiting calls go into the next.
    pub fn new(batch: B, max_batch: usize) -> Self {
        Self {
            batch: Arc::new(batch),
            max_batch: max_batch.max(1),
            queue: OnceLock::new(),
        }
    }

    pub fn batch(&self) -> &B {
        &self.batch
    }

    /// `input`'s output, computed in the next batch. A caller that stops waiting (a timeout
    /// around this future) leaves its output unread; the batch still runs.
    pub async fn call(&self, input: B::Input) -> Result<B::Output, Stopped> {
        let (output, ready) = oneshot::channel();
        self.queue()
            .send(Waiting { input, output })
            .await
            .map_err(|_| Stopped)?;
        ready.await.map_err(|_| Stopped)
    }

    fn queue(&self) -> &mpsc::Sender<Waiting<B>> {
        self.queue.get_or_init(|| {
            let (queue, waiting) = mpsc::channel(4 * self.max_batch);
            tokio::spawn(run_batches(
                Arc::clone(&self.batch),
                waiting,
                self.max_batch,
            ));
            queue
        })
    }
}

/// Takes what is waiting (at least one call), runs it, answers, repeats.
async fn run_batches<B: Batch>(
    batch: Arc<B>,
    mut waiting: mpsc::Receiver<Waiting<B>>,
    max_batch: usize,
) {
    let mut calls = Vec::with_capacity(max_batch);
    let mut inputs = Vec::with_capacity(max_batch);
    while waiting.recv_many(&mut calls, max_batch).await > 0 {
        let outputs: Vec<oneshot::Sender<B::Output>> = calls
            .drain(..)
            .map(|call: Waiting<B>| {
                inputs.push(call.input);
                call.output
            })
            .collect();
        let results = batch.run(&inputs).await;
        inputs.clear();
        // A missing output drops its sender: that caller sees `Stopped`, never a wrong answer.
        for (output, result) in outputs.into_iter().zip(results) {
            // A caller that gave up waiting has nobody to answer.
            let _ = output.send(result);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Doubles its inputs and counts its runs; the first run waits for `gate` so that the
    /// calls made meanwhile queue up.
    struct Double {
        runs: AtomicUsize,
        gate: tokio::sync::Semaphore,
    }

    impl Batch for Double {
        type Input = u32;
        type Output = u32;

        async fn run(&self, inputs: &[u32]) -> Vec<u32> {
            if self.runs.fetch_add(1, Ordering::SeqCst) == 0 {
                let _permit = self.gate.acquire().await;
            }
            inputs.iter().map(|i| i * 2).collect()
        }
    }

    #[tokio::test]
    async fn calls_waiting_behind_a_batch_share_the_next_one_and_get_their_own_answers() {
        let coalescer = Arc::new(Coalescer::new(
            Double {
                runs: AtomicUsize::new(0),
                gate: tokio::sync::Semaphore::new(0),
            },
            16,
        ));
        let first = tokio::spawn({
            let c = Arc::clone(&coalescer);
            async move { c.call(1).await }
        });
        while coalescer.batch().runs.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let rest: Vec<_> = (2..=40)
            .map(|i| {
                let c = Arc::clone(&coalescer);
                tokio::spawn(async move { (i, c.call(i).await) })
            })
            .collect();
        // Let every call reach the queue before the first batch finishes.
        while coalescer.queue().capacity() > coalescer.queue().max_capacity() - 39 {
            tokio::task::yield_now().await;
        }
        coalescer.batch().gate.add_permits(1);

        assert_eq!(first.await.expect("join"), Ok(2));
        for call in rest {
            let (i, answer) = call.await.expect("join");
            assert_eq!(answer, Ok(i * 2), "input {i}");
        }
        // 39 queued calls in batches of at most 16: three more runs.
        assert_eq!(coalescer.batch().runs.load(Ordering::SeqCst), 4);
    }

    /// Answers nothing: its callers must see an error rather than hang or get another's
    /// answer.
    struct Silent;

    impl Batch for Silent {
        type Input = ();
        type Output = ();

        async fn run(&self, _: &[()]) -> Vec<()> {
            Vec::new()
        }
    }

    #[tokio::test]
    async fn an_input_without_an_output_is_an_error() {
        let coalescer = Coalescer::new(Silent, 4);
        assert_eq!(coalescer.call(()).await, Err(Stopped));
    }
}
