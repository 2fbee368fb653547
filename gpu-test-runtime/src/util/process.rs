//! Running another program with a time limit: a tool that hangs (an `nvcc` on a stale network
//! mount, say) must not hang gpu-test with it.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::format::format_duration;
use super::os::{child_has_ended, kill_group};

/// Runs `command` and returns its standard output, or why there is none: it could not start,
/// failed, or was still running after `limit` (then it is killed).
pub(crate) fn stdout_within(command: &mut Command, limit: Duration) -> Result<String, String> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        // A group of its own, so that what a wrapper script starts is stopped with it.
        .process_group(0)
        .spawn()
        .map_err(|error| format!("could not start: {error}"))?;
    let mut stdout = child.stdout.take();
    // The output is read on a thread of its own, so that a full pipe cannot stop the child.
    let (sent, output) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(stdout) = stdout.as_mut() {
            let _ = stdout.read_to_string(&mut text);
        }
        let _ = sent.send(text);
    });
    let started = Instant::now();
    let stopped = || {
        format!(
            "did not finish within {} (GPU_TEST_PROBE_TIMEOUT) and was stopped",
            format_duration(limit)
        )
    };
    // The child is left unreaped until its group has been stopped where that is needed: while
    // it is a zombie, its id cannot be given to another process, nor to another group.
    loop {
        match child_has_ended(child.id()) {
            Ok(true) => break,
            Ok(false) if started.elapsed() >= limit => {
                kill_group(child.id());
                let _ = child.kill();
                // Reaped elsewhere: a killed process in uninterruptible sleep (an nvidia-smi
                // inside a wedged driver) ends only when the kernel lets it.
                let _ = std::thread::Builder::new()
                    .name("gpu-test-reaper".to_string())
                    .spawn(move || child.wait());
                return Err(stopped());
            }
            Ok(false) => std::thread::sleep(Duration::from_millis(10)),
            Err(error) => return Err(format!("could not be waited for: {error}")),
        }
    }
    // Something it started may still hold its output open: wait for that no longer than the rest.
    let text = output.recv_timeout(limit.saturating_sub(started.elapsed()));
    if text.is_err() {
        kill_group(child.id());
    }
    let status = child.wait().map_err(|error| format!("could not be waited for: {error}"))?;
    let text = text.map_err(|_| stopped())?;
    if status.success() {
        Ok(text)
    } else {
        Err(format!("failed ({status})"))
    }
}

/// The start time of process `pid` in clock ticks since boot (field 22 of `/proc/<pid>/stat`),
/// which tells a process apart from a later one that reuses its id; `None` when it is gone.
pub(crate) fn process_start_time(pid: u32) -> Option<u64> {
    stat_field(pid, 22)?.parse().ok()
}

/// The parent of process `pid` (field 4 of `/proc/<pid>/stat`); `None` when it is gone or is
/// the first process.
pub(crate) fn parent_of(pid: u32) -> Option<u32> {
    stat_field(pid, 4)?.parse().ok().filter(|&parent| parent != 0)
}

/// The command name of process `pid` (`/proc/<pid>/comm`), read as bytes: the kernel cuts a
/// name at 15 bytes, also inside a character.
pub(crate) fn command_name(pid: u32) -> Option<String> {
    let name = std::fs::read(format!("/proc/{pid}/comm")).ok()?;
    Some(String::from_utf8_lossy(&name).trim_end_matches('\n').to_string())
}

/// Whether `argument` is one of the arguments process `pid` was started with.
pub(crate) fn started_with_argument(pid: u32, argument: &OsStr) -> bool {
    arguments(pid).is_some_and(|arguments| arguments.iter().any(|arg| arg == argument))
}

/// The arguments process `pid` was started with, its program first (`/proc/<pid>/cmdline`);
/// `None` when it is gone or they cannot be read.
pub(crate) fn arguments(pid: u32) -> Option<Vec<OsString>> {
    let line = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let line = line.strip_suffix(&[0]).unwrap_or(&line);
    Some(
        line.split(|&byte| byte == 0)
            .map(|arg| OsStr::from_bytes(arg).to_os_string())
            .collect(),
    )
}

/// Field `number` (counted from 1, as in proc(5)) of `/proc/<pid>/stat`, for fields after the
/// command name.
fn stat_field(pid: u32, number: usize) -> Option<String> {
    field_of_stat(&std::fs::read(format!("/proc/{pid}/stat")).ok()?, number)
}

/// Field `number` of the text of a `/proc/<pid>/stat` file, read as bytes: the command name
/// (field 2) is in parentheses and may hold spaces, parentheses and bytes that are not UTF-8 (the
/// kernel cuts it at 15 bytes, also inside a character); the fields after it are ASCII.
fn field_of_stat(stat: &[u8], number: usize) -> Option<String> {
    let after_name = &stat[stat.iter().rposition(|&byte| byte == b')')? + 1..];
    std::str::from_utf8(after_name)
        .ok()?
        .split_whitespace()
        .nth(number.checked_sub(3)?)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_is_read_after_any_command_name() {
        let stat = b"4242 (gpu-t\xc3\xabst-runn\xc3) S 17 4242 4242 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 123456 0";
        assert_eq!(field_of_stat(stat, 4).as_deref(), Some("17"));
        assert_eq!(field_of_stat(stat, 22).as_deref(), Some("123456"));
        let spaced = b"7 (a) b (c)) R 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0";
        assert_eq!(field_of_stat(spaced, 4).as_deref(), Some("1"));
        assert_eq!(field_of_stat(b"no name here", 4), None);
    }

    #[test]
    fn output_is_returned_and_a_hung_program_is_stopped() {
        let out = stdout_within(Command::new("echo").arg("hello"), Duration::from_secs(60));
        assert_eq!(out.as_deref(), Ok("hello\n"));
        let hung = stdout_within(Command::new("sleep").arg("600"), Duration::from_millis(50));
        assert!(hung.unwrap_err().contains("did not finish within"));
        let failed = stdout_within(&mut Command::new("false"), Duration::from_secs(60));
        assert!(failed.unwrap_err().starts_with("failed"));
    }

    /// A program that ends while something it started keeps its output open: stopped at the
    /// limit, that something with it (its group is stopped before the program is reaped, so the
    /// group's id is still the program's own).
    #[test]
    fn what_a_program_started_is_stopped_with_it() {
        let dir = crate::util::files::scratch_dir("process-group");
        std::fs::create_dir_all(&dir).unwrap();
        let pid_file = dir.join("pid");
        let script = format!("sleep 600 & echo $! > '{}'; echo started", pid_file.display());
        let held = stdout_within(Command::new("sh").args(["-c", &script]), Duration::from_millis(300));
        assert!(held.unwrap_err().contains("did not finish within"));
        let sleeper: u32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
        // It ends once the kernel has delivered the SIGKILL sent before the call returned (the
        // bound only turns a miss into a failure rather than a hang).
        assert!(
            crate::util::os::wait_for_end_of(sleeper, 60_000).expect("pidfd_open"),
            "the program's child was not stopped with it"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_process_names_its_parent_its_command_and_its_arguments() {
        // This process, not a child: a child read just after it starts may not have exec'd yet.
        let me = std::process::id();
        assert_eq!(parent_of(me), Some(std::os::unix::process::parent_id()));
        assert_eq!(parent_of(1), None, "the first process has no parent");
        let executable = std::env::current_exe().unwrap();
        let file_name = executable.file_name().unwrap().to_string_lossy();
        // The kernel keeps the first 15 bytes of the name.
        assert_eq!(
            command_name(me).as_deref(),
            Some(&file_name[..file_name.len().min(15)])
        );
        assert!(started_with_argument(me, &std::env::args_os().next().unwrap()));
        assert_eq!(arguments(me), Some(std::env::args_os().collect()));
        assert!(!started_with_argument(
            me,
            OsStr::new("--an-argument-nobody-gave")
        ));
    }
}
