//! Bounded parallelism that always joins: every task started is awaited
//! before the caller sees any result, so cleanup never races an in-flight
//! create. Once cancelled, tasks not yet started are skipped.

use std::future::Future;

use futures_util::stream::{self, StreamExt};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

/// How many engine calls mcc keeps in flight at once.
pub const PARALLELISM: usize = 16;

/// Runs `f` over `items`, at most `limit` at a time, and returns every
/// result in the order of `items`.
pub async fn run_all<T, R, F, Fut>(
    items: Vec<T>,
    limit: usize,
    cancel: &CancellationToken,
    f: F,
) -> Vec<Result<R>>
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = Result<R>>,
{
    let f = &f;
    let mut results: Vec<(usize, Result<R>)> = stream::iter(items.into_iter().enumerate())
        .map(|(i, item)| async move {
            if cancel.is_cancelled() {
                return (i, Err(Error::Interrupted));
            }
            (i, f(item).await)
        })
        .buffer_unordered(limit.max(1))
        .collect()
        .await;
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// The first error of a batch, preferring a real failure over the
/// interruptions it caused; `Ok` with every value when all succeeded.
pub fn first_error<R>(results: Vec<Result<R>>) -> Result<Vec<R>> {
    let mut values = Vec::with_capacity(results.len());
    let mut interrupted = false;
    let mut failure = None;
    for r in results {
        match r {
            Ok(v) => values.push(v),
            Err(Error::Interrupted) => interrupted = true,
            Err(e) => {
                if failure.is_none() {
                    failure = Some(e);
                }
            }
        }
    }
    match (failure, interrupted) {
        (Some(e), _) => Err(e),
        (None, true) => Err(Error::Interrupted),
        (None, false) => Ok(values),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn bounded_and_ordered() {
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let cancel = CancellationToken::new();
        let out = run_all((0..20).collect(), 4, &cancel, |i: u32| {
            let (running, peak) = (&running, &peak);
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(i * 2)
            }
        })
        .await;
        let values = first_error(out).unwrap();
        assert_eq!(values, (0..20).map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(peak.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn cancel_skips_unstarted_but_joins_started() {
        let cancel = CancellationToken::new();
        let finished = AtomicUsize::new(0);
        let out = run_all((0..10).collect(), 2, &cancel, |i: u32| {
            let (cancel, finished) = (&cancel, &finished);
            async move {
                if i == 1 {
                    cancel.cancel();
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
                finished.fetch_add(1, Ordering::SeqCst);
                Ok(i)
            }
        })
        .await;
        // the two started before the cancel ran to the end
        assert_eq!(finished.load(Ordering::SeqCst), 2);
        assert!(matches!(first_error(out), Err(Error::Interrupted)));
    }

    #[test]
    fn failures_win_over_interruptions() {
        let r: Vec<Result<()>> = vec![
            Err(Error::Interrupted),
            Err(Error::Failed("boom".into())),
            Ok(()),
        ];
        assert_eq!(first_error(r).unwrap_err().to_string(), "boom");
    }
}
