//! Progress on stderr: a spinner per step on a terminal, plain lines
//! otherwise (CI logs, pipes). Each step ends with ✓ or ✗ and its time.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use mcc_core::cluster::Reporter;
use mcc_core::{Error, Result};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

struct Step {
    title: String,
    total: usize,
    done: usize,
    started: Instant,
    bar: Option<ProgressBar>,
}

pub struct Progress {
    tty: bool,
    step: Mutex<Option<Step>>,
}

impl Progress {
    pub fn new() -> Self {
        Self {
            tty: std::io::stderr().is_terminal(),
            step: Mutex::new(None),
        }
    }

    /// Takes the spinner off the terminal, before the process ends
    /// without finishing its step (a second Ctrl-C).
    pub fn clear(&self) {
        let step = self.step.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = step.as_ref().and_then(|s| s.bar.as_ref()) {
            b.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    /// A step left open (an error returned mid-step) ends as failed, so
    /// no spinner frame stays on the terminal.
    fn drop(&mut self) {
        let step = self.step.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = step.take() {
            finish(s, false);
        }
    }
}

impl Reporter for Progress {
    fn begin(&self, title: &str, total: usize) {
        let mut step = self.step.lock().unwrap();
        if let Some(old) = step.take() {
            finish(old, true);
        }
        let bar = if self.tty {
            let b = ProgressBar::new_spinner();
            b.set_style(
                ProgressStyle::with_template(" {spinner} {msg}")
                    .expect("valid template")
                    .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ "),
            );
            b.enable_steady_tick(Duration::from_millis(80));
            b.set_message(counted(title, 0, total));
            Some(b)
        } else {
            eprintln!("   {title}…");
            None
        };
        *step = Some(Step {
            title: title.to_string(),
            total,
            done: 0,
            started: Instant::now(),
            bar,
        });
    }

    fn advance(&self, item: &str) {
        let mut step = self.step.lock().unwrap();
        if let Some(s) = step.as_mut() {
            s.done += 1;
            if let Some(b) = &s.bar {
                if s.total == 0 {
                    b.set_message(format!("{} {item}", s.title));
                } else {
                    b.set_message(counted(&s.title, s.done, s.total));
                }
            }
        }
    }

    fn end(&self, ok: bool) {
        if let Some(s) = self.step.lock().unwrap().take() {
            finish(s, ok);
        }
    }

    fn note(&self, message: &str) {
        let step = self.step.lock().unwrap();
        match step.as_ref().and_then(|s| s.bar.as_ref()) {
            Some(b) => b.println(format!("   {message}")),
            None => eprintln!("   {message}"),
        }
    }
}

fn counted(title: &str, done: usize, total: usize) -> String {
    if total == 0 {
        title.to_string()
    } else {
        format!("{title} ({done}/{total})")
    }
}

fn finish(s: Step, ok: bool) {
    let mark = if ok { "✓" } else { "✗" };
    let what = if s.total > 0 {
        format!("{} ({})", s.title, s.total)
    } else {
        s.title.clone()
    };
    if let Some(b) = s.bar {
        b.finish_and_clear();
    }
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        " {mark} {what} {:.2}s",
        s.started.elapsed().as_secs_f64()
    );
}

/// Ctrl-C (SIGINT) as a stream. Listen through one of these for as long
/// as Ctrl-C matters: tokio drops a signal that arrives while nobody
/// listens, so a `tokio::signal::ctrl_c()` made anew in each turn of a
/// loop can miss one.
pub fn interrupts() -> Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| Error::Failed(format!("listening for Ctrl-C: {e}")))
}

/// A token cancelled by the first Ctrl-C; a second one quits at once.
/// The message goes through the progress display, so that a spinner
/// does not draw over it or leave a frame behind.
pub(crate) fn interrupt_token(progress: Arc<Progress>) -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    let Ok(mut interrupt) = interrupts() else {
        return token;
    };
    tokio::spawn(async move {
        if interrupt.recv().await.is_some() {
            progress.note(
                "mcc: interrupted: cleaning up (Ctrl-C again quits at once; `mcc gc` removes \
                 what is left)",
            );
            t.cancel();
            if interrupt.recv().await.is_some() {
                progress.clear();
                std::process::exit(130);
            }
        }
    });
    token
}
