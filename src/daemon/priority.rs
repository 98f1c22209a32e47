//! CPU priority inside the daemon: the engine thread decides on ticks, everything else (the
//! writer, SQLite, the API, alerts) can wait a few milliseconds. On a small host they share two
//! cores, and when a burst of fills wakes the writer it should not preempt the engine.
//!
//! Unprivileged processes may only lower a thread's priority, so the daemon lowers every other
//! thread (raising nice) instead of raising the engine. Threads started later by a lowered
//! thread inherit its nice value.

/// Raise the nice value of every thread of this process except `keep` (a kernel thread id) to
/// `nice`. Returns how many threads were changed. Linux only; elsewhere nothing changes.
#[cfg(target_os = "linux")]
pub fn lower_other_threads(keep: i32, nice: i32) -> std::io::Result<usize> {
    use rustix::process::{getpriority_process, setpriority_process, Pid};
    let mut changed = 0;
    for entry in std::fs::read_dir("/proc/self/task")?.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        if tid == keep {
            continue;
        }
        let Some(pid) = Pid::from_raw(tid) else {
            continue;
        };
        // Never raise a priority someone lowered further on purpose (and never fail on a
        // thread that ended meanwhile).
        let below = getpriority_process(Some(pid)).is_ok_and(|current| current < nice);
        if below && setpriority_process(Some(pid), nice).is_ok() {
            changed += 1;
        }
    }
    Ok(changed)
}

#[cfg(not(target_os = "linux"))]
pub fn lower_other_threads(_keep: i32, _nice: i32) -> std::io::Result<usize> {
    Ok(0)
}

/// The kernel id of the calling thread (what [`lower_other_threads`] keeps).
#[cfg(target_os = "linux")]
pub fn current_thread_id() -> i32 {
    rustix::thread::gettid().as_raw_nonzero().get()
}

#[cfg(not(target_os = "linux"))]
pub fn current_thread_id() -> i32 {
    0
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use rustix::process::{getpriority_process, Pid};

    fn nice_of(tid: i32) -> i32 {
        getpriority_process(Pid::from_raw(tid)).expect("getpriority")
    }

    #[test]
    fn lowers_every_thread_but_the_kept_one() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let kept = std::thread::spawn(move || {
            tx.send(super::current_thread_id()).unwrap();
            done_rx.recv().unwrap();
        });
        let kept_tid = rx.recv().unwrap();
        let me = super::current_thread_id();
        let kept_before = nice_of(kept_tid);
        let target = (nice_of(me) + 3).min(19);
        let changed = super::lower_other_threads(kept_tid, target).unwrap();
        assert!(changed >= 1, "the test thread itself was lowered");
        assert_eq!(nice_of(me), target);
        assert_eq!(
            nice_of(kept_tid),
            kept_before,
            "the kept thread is untouched"
        );
        // Already at or above the target: left alone (the count may include threads other tests
        // started meanwhile, so the check is on the threads this test knows).
        super::lower_other_threads(kept_tid, target - 1).unwrap();
        assert_eq!(nice_of(me), target, "not raised back to a lower nice");
        assert_eq!(nice_of(kept_tid), kept_before);
        done_tx.send(()).unwrap();
        kept.join().unwrap();
    }
}
