//! What a gathering is waiting on, for a status line: the `--sample` interval, a probe
//! that may run for a minute. Gatherers report it here and never print; the command decides
//! whether and where it shows (`commands::status`: stderr, on a terminal only).

use std::sync::Arc;
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// Where progress goes: `Some(text)` shows or replaces the status, `None` clears it.
type Sink = dyn Fn(Option<&str>) + Send + Sync;

/// A handle the gatherers report progress through; the default reports nowhere.
#[derive(Clone, Default)]
pub struct Progress(Option<Arc<Sink>>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Progress(shown)" } else { "Progress(silent)" })
    }
}

/// How often a status with a clock in it is rewritten.
const TICK: Duration = Duration::from_secs(1);

/// Whole seconds, rounded up: a wait shows `1 s left` until it is over, never `0 s left`.
fn secs_up(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000) as u64
}

impl Progress {
    pub fn new(sink: impl Fn(Option<&str>) + Send + Sync + 'static) -> Progress {
        Progress(Some(Arc::new(sink)))
    }

    fn show(&self, text: Option<&str>) {
        if let Some(sink) = &self.0 {
            sink(text);
        }
    }

    /// Sleeps for `interval`, showing `what` and the seconds left.
    pub fn wait(&self, what: &str, interval: Duration) {
        let end = Instant::now() + interval;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.show(Some(&format!("{what}: {} s left", secs_up(left))));
            std::thread::sleep(left.min(TICK));
        }
        self.show(None);
    }

    /// Runs `work`, showing `what` and the seconds it has taken (of `limit`, its deadline,
    /// when it has one), and clears the status when it returns.
    pub fn during<T>(&self, what: &str, limit: Option<Duration>, work: impl FnOnce() -> T) -> T {
        if self.0.is_none() {
            return work();
        }
        let start = Instant::now();
        let (done, finished) = channel::<()>();
        let out = std::thread::scope(|scope| {
            scope.spawn(move || {
                loop {
                    let took = start.elapsed().as_secs();
                    let clock = match limit {
                        Some(l) => format!("{took} s (at most {} s)", secs_up(l)),
                        None => format!("{took} s"),
                    };
                    self.show(Some(&format!("{what}: {clock}")));
                    match finished.recv_timeout(TICK) {
                        Err(RecvTimeoutError::Timeout) => {}
                        _ => break,
                    }
                }
            });
            let out = work();
            drop(done);
            out
        });
        self.show(None);
        out
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn recording() -> (Progress, Arc<Mutex<Vec<Option<String>>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        (Progress::new(move |t| s.lock().unwrap().push(t.map(String::from))), seen)
    }

    #[test]
    fn a_wait_counts_down_and_clears() {
        let (p, seen) = recording();
        let start = Instant::now();
        p.wait("sampling", Duration::from_millis(1200));
        assert!(start.elapsed() >= Duration::from_millis(1200), "the whole interval");
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0].as_deref(), Some("sampling: 2 s left"));
        assert_eq!(seen[1].as_deref(), Some("sampling: 1 s left"));
        assert_eq!(seen.last().unwrap(), &None, "cleared at the end");
    }

    #[test]
    fn work_is_timed_and_cleared() {
        let (p, seen) = recording();
        let v = p.during("probing", Some(Duration::from_secs(70)), || 7);
        assert_eq!(v, 7);
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0].as_deref(), Some("probing: 0 s (at most 70 s)"));
        assert_eq!(seen.last().unwrap(), &None);
    }

    #[test]
    fn silent_progress_still_waits_and_works() {
        let p = Progress::default();
        let start = Instant::now();
        p.wait("x", Duration::from_millis(50));
        assert!(start.elapsed() >= Duration::from_millis(50));
        assert_eq!(p.during("y", None, || 3), 3);
    }
}
