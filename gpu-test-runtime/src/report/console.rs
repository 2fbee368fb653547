//! Everything gpu-test prints while tests run: skip lines, the devices and GPU timings of each
//! test that ran, a test waiting for its leases, warnings, and the summary of skips at the end.
//! All of it goes to stderr, which libtest does not capture.

use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use super::model::DeviceRecord;
use crate::decide::skip::SkipReason;
use crate::decide::reasons::nvrtc_loader_path_fix;
use crate::probe::{Nvrtc, Probe};
use crate::run::Execution;
use crate::run::lease::{Waiting, leases};
use crate::run::timing::Timing;
use crate::settings::Settings;
use crate::util::format::{escape_control, format_duration};
use crate::util::stderr::{with_stderr, write_stderr};

/// Prints one line of text as it is (a message that already says `gpu-test:`).
pub(crate) fn line(text: &str) {
    write_stderr(&format!("{text}\n"));
}

/// Warns, once per process, about `GPU_TEST_*` variables gpu-test does not know.
pub(crate) fn warn_unknown_variables(settings: &Settings) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for unknown in &settings.unknown {
            write_stderr(&format!("gpu-test: warning: {unknown}\n"));
        }
    });
}

/// Says, once per process, that NVRTC came from outside the loader's path: the test passes
/// where a program of the user's own, asking the loader the same way, would not find NVRTC.
pub(crate) fn nvrtc_outside_loader_path(probe: &Probe) {
    static ONCE: Once = Once::new();
    let toolkit = probe.toolkit();
    let Nvrtc::Found { library, .. } = &toolkit.nvrtc else {
        return;
    };
    if !toolkit.outside_loader_path {
        return;
    }
    ONCE.call_once(|| {
        write_stderr(&format!(
            "gpu-test: note: NVRTC is not on the loader's path; gpu-test loaded {} for the tests that declare \
             min_toolkit, and cudarc finds it as {}; programs outside gpu-test do not find it ({})\n",
            escape_control(&library.display()),
            library.name,
            nvrtc_loader_path_fix(probe, library)
        ));
    });
}

/// `gpu-test: <test> ran on <devices>`, then a timing line per label and device.
pub(crate) fn ran(test: &str, execution: &Execution) {
    if execution.devices.is_empty() {
        return;
    }
    let devices: Vec<String> = execution
        .devices
        .iter()
        .map(|d| DeviceRecord::of(d).label())
        .collect();
    let mut lines = format!("gpu-test: {test} ran on {}\n", devices.join(", "));
    for timing in &execution.timings {
        lines.push_str(&timing_line(test, timing));
        lines.push('\n');
    }
    write_stderr(&lines);
}

/// `gpu-test: timing vector_add::large: saxpy 10 x median 41.3 us (min 40.9, max 44.0), device 0 NVIDIA H100`
pub(crate) fn timing_line(test: &str, timing: &Timing) -> String {
    let (unit, scale) = unit_for(timing.median);
    // The median's unit, which the min and max share unless another suits them (`400 ns`,
    // `2.50 s` beside a median in ms, which its unit would show as `0.00` and `2500`).
    let in_median_unit = |duration: Duration| match unit_for(duration) {
        (own, _) if own == unit => number(duration, scale),
        (own, own_scale) => format!("{} {own}", number(duration, own_scale)),
    };
    format!(
        "gpu-test: timing {test}: {} {} x median {} {unit} (min {}, max {}), {}",
        escape_control(&timing.label),
        timing.count,
        number(timing.median, scale),
        in_median_unit(timing.min),
        in_median_unit(timing.max),
        timing.device
    )
}

/// The unit a duration reads best in, and its size in seconds.
fn unit_for(duration: Duration) -> (&'static str, f64) {
    let seconds = duration.as_secs_f64();
    if seconds < 1e-6 {
        ("ns", 1e-9)
    } else if seconds < 1e-3 {
        ("us", 1e-6)
    } else if seconds < 1.0 {
        ("ms", 1e-3)
    } else {
        ("s", 1.0)
    }
}

/// Three significant digits or so: `41.3`, `4.13`, `413`.
fn number(duration: Duration, scale: f64) -> String {
    let value = duration.as_secs_f64() / scale;
    if value < 10.0 {
        format!("{value:.2}")
    } else if value < 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

/// Says that `test` is waiting for device leases, who holds them, and when it gives up.
pub(crate) fn waiting(test: &str, waiting: &Waiting) {
    write_stderr(&waiting_line(test, waiting));
}

fn waiting_line(test: &str, waiting: &Waiting) -> String {
    let slots = waiting.slots;
    let per_device = if slots == 1 {
        "one test per device".to_string()
    } else {
        format!("{slots} tests per device")
    };
    format!(
        "gpu-test: {test} is waiting for {} ({per_device} with GPU_TEST_TESTS_PER_DEVICE={slots}): {}; it gives up \
         after {} (GPU_TEST_LEASE_TIMEOUT)\n",
        leases(waiting.needed),
        waiting.holders,
        format_duration(waiting.timeout)
    )
}

/// `gpu-test: 5 skipped: 5 x <reason>` and `gpu-test: to run them: <fix>`; with several reasons
/// or fixes, one line each below their heading (a reason has commas and semicolons of its own,
/// so reasons joined on one line could not be told apart).
pub(crate) fn skip_summary(groups: &[(&SkipReason, usize)]) -> Option<String> {
    if groups.is_empty() {
        return None;
    }
    let total: usize = groups.iter().map(|g| g.1).sum();
    let mut hints: Vec<&str> = Vec::new();
    for (reason, _) in groups {
        if !reason.hint.is_empty() && !hints.contains(&reason.hint.as_str()) {
            hints.push(&reason.hint);
        }
    }
    let mut text = match groups {
        [(reason, n)] => format!("gpu-test: {total} skipped: {n} x {}\n", reason.reason),
        _ => {
            let mut text = format!("gpu-test: {total} skipped, by reason:\n");
            for (reason, n) in groups {
                text.push_str(&format!("gpu-test:   {n} x {}\n", reason.reason));
            }
            text
        }
    };
    match hints.as_slice() {
        [] => {}
        [hint] => text.push_str(&format!("gpu-test: to run them: {hint}\n")),
        hints => {
            text.push_str("gpu-test: to run them:\n");
            for hint in hints {
                text.push_str(&format!("gpu-test:   {hint}\n"));
            }
        }
    }
    Some(text)
}

/// Prints [`skip_summary`], if anything was skipped.
pub(crate) fn print_skip_summary(groups: &[(&SkipReason, usize)]) {
    if let Some(text) = skip_summary(groups) {
        write_stderr(&text);
    }
}

/// The `gpu-test: skipped <name>: <reason>; hint: <hint>` lines of the default harness, written
/// in batches: one write per skipped test would be most of what a skip costs. A batch goes out
/// when it reaches 32 KiB, within 50 ms of being started (a thread of gpu-test's sees to that,
/// however long the next test runs), and at [`flush_skip_lines`].
///
/// Never held while waiting for stderr's lock: a thread that holds that lock and ends the process
/// (a body calling `exit` as it writes) flushes the batch from the exit hook, and would wait for
/// ever on a thread that held the batch waiting for stderr.
static SKIP_LINES: Mutex<Option<Batch>> = Mutex::new(None);

const BATCH_AGE: Duration = Duration::from_millis(50);
const BATCH_SIZE: usize = if cfg!(test) { 64 } else { 32 * 1024 };

struct Batch {
    text: String,
    /// The last reason written, and `: <reason>; hint: <hint>\n` for it: consecutive tests
    /// usually share their reason.
    reason: Option<(Arc<SkipReason>, String)>,
}

/// Adds the skip line of the test whose name `push_name` appends.
pub(crate) fn skip_line(push_name: impl FnOnce(&mut String), reason: &Arc<SkipReason>) {
    let mut lines = SKIP_LINES.lock().unwrap_or_else(|p| p.into_inner());
    static FLUSHER: Once = Once::new();
    FLUSHER.call_once(|| {
        let flusher = std::thread::Builder::new().name("gpu-test-skip-lines".to_string());
        // One thread for the process, so that no line waits on the next test for long. Without
        // it the lines still go out, with the next full batch or at exit.
        let _ = flusher.spawn(|| {
            loop {
                std::thread::sleep(BATCH_AGE);
                flush_skip_lines();
            }
        });
    });
    let batch = lines.get_or_insert_with(|| Batch {
        text: String::with_capacity(BATCH_SIZE),
        reason: None,
    });
    if !batch
        .reason
        .as_ref()
        .is_some_and(|(last, _)| Arc::ptr_eq(last, reason))
    {
        let tail = format!(": {}; hint: {}\n", reason.reason, reason.hint);
        batch.reason = Some((reason.clone(), tail));
    }
    batch.text.push_str("gpu-test: skipped ");
    push_name(&mut batch.text);
    if let Some((_, tail)) = &batch.reason {
        batch.text.push_str(tail);
    }
    let full = batch.text.len() >= BATCH_SIZE;
    drop(lines);
    if full {
        flush_skip_lines();
    }
}

/// Writes the skip lines not yet written.
pub(crate) fn flush_skip_lines() {
    let pending = |lines: &Option<Batch>| lines.as_ref().is_some_and(|batch| !batch.text.is_empty());
    // Nothing to write needs no stderr: a thread may hold its lock for good (a body stuck in the
    // driver as it writes), and the exit hooks flush.
    if !pending(&SKIP_LINES.lock().unwrap_or_else(|p| p.into_inner())) {
        return;
    }
    // stderr's lock first, so that batches taken one after another are written in that order.
    with_stderr(|stderr| {
        let batch = SKIP_LINES.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(batch) = batch
            && !batch.text.is_empty()
        {
            let _ = stderr.write_all(batch.text.as_bytes());
            let _ = stderr.flush();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::skip::SkipKind;

    fn timing(median_us: f64) -> Timing {
        let us = |v: f64| Duration::from_secs_f64(v * 1e-6);
        Timing {
            label: "saxpy".to_string(),
            device: "device 0 NVIDIA H100".to_string(),
            count: 5,
            total: us(median_us * 5.0),
            min: us(median_us * 0.99),
            median: us(median_us),
            max: us(median_us * 1.065),
        }
    }

    #[test]
    fn timing_lines_use_the_unit_of_the_median() {
        assert_eq!(
            timing_line("vector_add::large", &timing(41.3)),
            "gpu-test: timing vector_add::large: saxpy 5 x median 41.3 us (min 40.9, max 44.0), device 0 NVIDIA H100"
        );
        assert!(timing_line("t", &timing(4.25)).contains("median 4.25 us"));
        assert!(timing_line("t", &timing(1_250.0)).contains("median 1.25 ms (min 1.24, max 1.33)"));
        assert!(timing_line("t", &timing(2_500_000.0)).contains("median 2.50 s"));
        // A min or max another unit suits is written in it.
        let mut spread = timing(1_500.0);
        spread.min = Duration::from_nanos(400);
        spread.max = Duration::from_millis(2_500);
        assert!(
            timing_line("t", &spread).contains("median 1.50 ms (min 400 ns, max 2.50 s)"),
            "{}",
            timing_line("t", &spread)
        );
    }

    #[test]
    fn skips_are_summarised_by_reason_with_their_fixes() {
        let driver = SkipReason::new(SkipKind::NoDriver, "no CUDA driver", "install the driver");
        let devices = SkipReason::new(
            SkipKind::TooFewDevices,
            "needs 2 CUDA devices, found 1",
            "add a GPU",
        );
        assert_eq!(
            skip_summary(&[(&driver, 2), (&devices, 1)]).unwrap(),
            "gpu-test: 3 skipped, by reason:\n\
             gpu-test:   2 x no CUDA driver\n\
             gpu-test:   1 x needs 2 CUDA devices, found 1\n\
             gpu-test: to run them:\n\
             gpu-test:   install the driver\n\
             gpu-test:   add a GPU\n"
        );
        assert_eq!(
            skip_summary(&[(&driver, 2)]).unwrap(),
            "gpu-test: 2 skipped: 2 x no CUDA driver\ngpu-test: to run them: install the driver\n"
        );
        assert_eq!(skip_summary(&[]), None);
    }

    /// A thread that holds stderr's lock and flushes the skip lines (a body that calls `exit` as
    /// it writes, whose exit hook flushes them) is not kept waiting by a thread whose line filled
    /// the batch and which waits for stderr to write it.
    ///
    /// In a process of its own (this test binary again, for this test alone): where the fix
    /// regressed, its threads would hold stderr's lock for good, and the other tests that write
    /// to stderr would wait for ever.
    #[test]
    fn a_full_batch_is_not_held_while_waiting_for_stderr() {
        const IN_ITS_OWN_PROCESS: &str = "CONSOLE_TEST_IN_ITS_OWN_PROCESS";
        if std::env::var_os(IN_ITS_OWN_PROCESS).is_some() {
            a_full_batch_is_not_held_while_waiting_for_stderr_here();
            return;
        }
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "report::console::tests::a_full_batch_is_not_held_while_waiting_for_stderr",
                "--test-threads",
                "1",
            ])
            .env(IN_ITS_OWN_PROCESS, "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        let ended = loop {
            match child.try_wait().unwrap() {
                Some(ended) => break Some(ended),
                None if std::time::Instant::now() > deadline => break None,
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        let Some(ended) = ended else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the test's own process had not ended after 2 minutes");
        };
        let mut said = String::new();
        let _ = std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut said);
        assert!(ended.success(), "{said}");
        // It ran the test, not nothing.
        assert!(said.contains("1 passed"), "{said}");
    }

    fn a_full_batch_is_not_held_while_waiting_for_stderr_here() {
        let reason = Arc::new(SkipReason::new(SkipKind::NoDriver, "no CUDA driver", "install the driver"));
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let stderr = std::io::stderr().lock();
            let adder = std::thread::spawn(move || {
                skip_line(|out| out.push_str("a_test_whose_line_fills_the_batch"), &reason)
            });
            // Until its line is in the batch, which it then goes to write.
            while !adder.is_finished()
                && SKIP_LINES
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .as_ref()
                    .is_none_or(|batch| batch.text.is_empty())
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            flush_skip_lines();
            let _ = done.send(());
            drop(stderr);
            let _ = adder.join();
        });
        assert!(
            finished.recv_timeout(Duration::from_secs(60)).is_ok(),
            "flushing with stderr's lock held waited for the thread that filled the batch"
        );
    }

    #[test]
    fn a_waiting_test_names_the_holders_and_its_limit() {
        let waiting = Waiting {
            needed: 2,
            slots: 1,
            holders: "device 0 NVIDIA H100 is held by a (process 1)".to_string(),
            timeout: Duration::from_secs(600),
        };
        assert_eq!(
            waiting_line("tests::big", &waiting),
            "gpu-test: tests::big is waiting for 2 device leases (one test per device with \
             GPU_TEST_TESTS_PER_DEVICE=1): device 0 NVIDIA H100 is held by a (process 1); it gives up after 10m \
             (GPU_TEST_LEASE_TIMEOUT)\n"
        );
    }
}
