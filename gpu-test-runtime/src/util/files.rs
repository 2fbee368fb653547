//! Files shared between processes: replaced atomically, updated under a lock, named stably.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use super::os::{exchange_files, user_id};

/// A file of gpu-test's own in a directory it owns: never followed through a symbolic link,
/// readable and writable by this user alone.
fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    options
}

/// Opens the file at `path` for reading, if there is one: never through a symbolic link
/// (`ELOOP`), and without waiting on a FIFO someone put there.
pub fn open_existing(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
}

/// Opens (creating it if need be) a lock file: never through a symbolic link, mode 0600.
pub(crate) fn open_lock_file(path: &Path) -> io::Result<File> {
    private_options()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
}

/// Reads `path` (empty if absent), lets `update` change the text, and writes the result back
/// atomically, all under an exclusive lock on `<path>.lock` so that concurrent processes each see
/// the others' changes. `path` is in a private directory: nothing there is followed through a
/// symbolic link.
pub(crate) fn update_locked<T>(path: &Path, update: impl FnOnce(String) -> (String, T)) -> io::Result<T> {
    update_locked_then(path, String::new(), update, |result, _| result)
}

/// [`update_locked`], then `then` with what `update` returned and the text now written, still
/// under the lock: for a file made from it (a report rendered from its state), which must never
/// hold what the state does not. The file is read into `buffer`, whose room a caller that
/// updates a large file often keeps from one update to the next: allocating it afresh each time
/// costs the kernel more than the copying.
pub(crate) fn update_locked_then<R, T>(
    path: &Path,
    buffer: String,
    update: impl FnOnce(String) -> (String, R),
    then: impl FnOnce(R, String) -> T,
) -> io::Result<T> {
    if let Some(parent) = path.parent() {
        create_private_dirs(parent)?;
    }
    let lock = lock_in_place(&path.with_extension("lock"))?;
    let mut current = buffer;
    current.clear();
    match private_options().read(true).open(path) {
        Ok(mut file) => {
            file.read_to_string(&mut current)?;
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let (next, result) = update(current);
    write_atomically(path, next.as_bytes(), 0o600)?;
    let result = then(result, next);
    drop(lock);
    Ok(result)
}

/// An exclusive lock on the lock file at `path`, which still has its name once the lock is held:
/// [`remove_stale_states`] may have removed it meanwhile, and a lock on a removed file would keep
/// out no process that opens the path anew.
fn lock_in_place(path: &Path) -> io::Result<File> {
    loop {
        let lock = open_lock_file(path)?;
        lock.lock()?;
        if still_linked(&lock, path)? {
            return Ok(lock);
        }
    }
}

/// Whether the open `file` is still the file at `path`: one a sweep removed has no name left
/// (NFS keeps an open file under a hidden name, so the path must lead to the same file too),
/// whatever has since been made at its path.
fn still_linked(file: &File, path: &Path) -> io::Result<bool> {
    let open = file.metadata()?;
    if open.nlink() == 0 {
        return Ok(false);
    }
    match fs::symlink_metadata(path) {
        Ok(there) => Ok(there.dev() == open.dev() && there.ino() == open.ino()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error),
    }
}

/// Removes from `dir` the states of [`update_locked`] (`<name>.json` with its `<name>.lock`)
/// that nobody has written for `age` and that `keep` (given the state's text) does not claim,
/// each while holding its lock, and temporary files that a killed process left behind. One state
/// is made per report path, so without this they would pile up for ever.
pub(crate) fn remove_stale_states(dir: &Path, age: Duration, keep: &dyn Fn(&str) -> bool) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let older = |path: &Path| {
        fs::symlink_metadata(path)
            .and_then(|metadata| metadata.modified())
            .ok()
            .and_then(|modified| SystemTime::now().duration_since(modified).ok())
            .is_some_and(|since| since > age)
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.ends_with(".tmp") {
            if older(&path) {
                let _ = fs::remove_file(&path);
            }
            continue;
        }
        // A state is found by its lock, which exists as long as the state does.
        if path.extension().is_none_or(|extension| extension != "lock") {
            continue;
        }
        let state = path.with_extension("json");
        let stale = |state: &Path| match fs::symlink_metadata(state) {
            Ok(_) => older(state),
            Err(_) => older(&path),
        };
        if !stale(&state) {
            continue;
        }
        let Ok(lock) = open_lock_file(&path) else {
            continue;
        };
        // A process updating it now keeps it; so does one that wrote it since the first look, and
        // a run that is still going (one that has lasted a day).
        if lock.try_lock().is_err() || !stale(&state) {
            continue;
        }
        let text = fs::read_to_string(&state).unwrap_or_default();
        if keep(&text) {
            continue;
        }
        let _ = fs::remove_file(&state);
        let _ = fs::remove_file(&path);
    }
}

/// Writes `bytes` to a new temporary file beside `path` (created exclusively, never through a
/// symbolic link, with `mode`), then puts it in `path`'s place ([`replace`]): readers see the old
/// file or the new one, never a half-written one. On any failure the temporary file is removed;
/// a process killed while writing leaves it (or, just after an exchange, the old file) under
/// a hidden temporary name beside `path`.
///
/// The file is not synced to the disk: what is written this way (a run's report, its state, the
/// list phase's decisions, the GitHub annotations already made) is of a run that a machine's crash
/// ends anyway, and a test run that writes its report as each body starts and ends would otherwise
/// wait on the disk for each.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = dir.join(format!(
        ".{name}.{}.{}.{:016x}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        unpredictable()
    ));
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&temporary)?;
    // Only what this process made is removed on failure: a name another user took first (in a
    // directory others may write) is theirs, and fails the write.
    let written = { file }
        .write_all(bytes)
        .and_then(|()| replace(&temporary, path).map(drop));
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written
}

/// A number no one can guess ahead of time, for the names of temporary files beside a report,
/// which may be in a directory others can write to (`/tmp`): a name they could guess they could
/// take first, and so keep the report from being written.
pub(crate) fn unpredictable() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // Each `RandomState` is keyed from the operating system's randomness (per thread, then
    // stepped for each new one), which is all this needs: no key is ever reused in a process.
    std::collections::hash_map::RandomState::new().build_hasher().finish()
}

/// Puts the file `temporary` in `path`'s place, as atomically for readers as a rename. Where a
/// regular file is there, the two are exchanged and the old one is then removed: ext4 starts
/// writing a file renamed over another out to the disk at once (for programs that never sync), so
/// that a report written as each body starts and ends kept the disk busy. Where nothing is there
/// yet, or the file system or kernel cannot exchange, a rename.
fn replace(temporary: &Path, path: &Path) -> io::Result<Replaced> {
    let a_file_is_there = fs::symlink_metadata(path).is_ok_and(|there| there.file_type().is_file());
    if a_file_is_there && exchange_files(temporary, path).is_ok() {
        return remove_exchanged(temporary, path);
    }
    fs::rename(temporary, path).map(|()| Replaced::Renamed)
}

/// Once `temporary` and `path` are exchanged, removes the old file, which `temporary` now names.
/// A directory made at `path` since it was looked at goes back, as a rename over it would fail.
fn remove_exchanged(temporary: &Path, path: &Path) -> io::Result<Replaced> {
    if fs::symlink_metadata(temporary).is_ok_and(|old| old.is_dir()) {
        exchange_files(temporary, path)?;
        return Err(io::Error::from_raw_os_error(libc::EISDIR));
    }
    let _ = fs::remove_file(temporary);
    Ok(Replaced::Exchanged)
}

/// How [`replace`] put a file in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Replaced {
    /// Exchanged with the file there, which was then removed.
    Exchanged,
    /// Renamed over what was there, or where nothing was.
    Renamed,
}

/// Creates `dir` and any missing parents, each new one mode 0700.
pub(crate) fn create_private_dirs(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Makes sure `dir` is a directory this user alone controls: created mode 0700 if missing, and
/// refused if it is a symbolic link, belongs to another user, or others may write to it (anyone
/// who could would be able to plant, block or redirect gpu-test's files there), or if a
/// directory on the way to it is not trusted as [`trusted_to_load`] says (whoever may write
/// there could move it away and put a directory of their own in its place).
pub(crate) fn ensure_private_dir(dir: &Path) -> Result<(), String> {
    if !dir.is_absolute() {
        // A relative TMPDIR: each process would find it from its own working directory.
        return Err(format!(
            "{} is a relative path: every test process of a run must find the same directory, whatever its \
             working directory",
            dir.display()
        ));
    }
    let movable = || match movable_by_others(dir) {
        Some((place, problem)) => Err(format!(
            "{} is inside {}, which {problem}: another user could move it away and put a directory of \
             theirs in its place",
            dir.display(),
            place.display()
        )),
        None => Ok(()),
    };
    movable()?;
    if let Err(error) = create_private_dirs(dir) {
        return Err(format!("{} could not be created: {error}", dir.display()));
    }
    // Again, now that the whole path exists: a missing directory on the way counted as trusted,
    // and someone could have made it (or a link in its place) in between.
    movable()?;
    let metadata =
        fs::symlink_metadata(dir).map_err(|error| format!("{} cannot be read: {error}", dir.display()))?;
    if metadata.file_type().is_symlink() {
        return Err(format!(
            "{} is a symbolic link; gpu-test keeps its files only in a directory of this user's own",
            dir.display()
        ));
    }
    if !metadata.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    let me = user_id();
    if metadata.uid() != me {
        return Err(format!(
            "{} belongs to user {}, not to this user ({me}): another user may have created it to read, block \
             or redirect gpu-test's files",
            dir.display(),
            metadata.uid()
        ));
    }
    if writable_by_others(&metadata) {
        return Err(format!(
            "{} may be written by other users (mode {:o}): make it private (chmod 700)",
            dir.display(),
            metadata.mode() & 0o7777
        ));
    }
    Ok(())
}

/// Where on the way to the absolute path `dir` someone other than root and this user could move
/// it away, and why, as [`trusted_to_load`] judges the directories above it; `None` where no one
/// could (a path that does not lead anywhere yet counts: what is missing is made private).
pub(crate) fn movable_by_others(dir: &Path) -> Option<(PathBuf, String)> {
    let parent = dir.parent().filter(|_| dir.is_absolute())?;
    match trusted_to_load(parent) {
        Err(NotTrusted::Others { place, problem }) => Some((place, problem)),
        Ok(()) | Err(NotTrusted::Unreadable(_)) => None,
    }
}

/// Why a file may not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NotTrusted {
    /// `place`, on the way to the file or the file itself, belongs to another user or may be
    /// written by group or others: `problem` says which.
    Others { place: PathBuf, problem: String },
    /// The path could not be followed to the end.
    Unreadable(String),
}

impl std::fmt::Display for NotTrusted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotTrusted::Others { place, problem } => write!(f, "{} {problem}", place.display()),
            NotTrusted::Unreadable(why) => f.write_str(why),
        }
    }
}

/// Whether code may be loaded from `file` without trusting anyone but root and this user: every
/// directory the loader passes on the way to it, every symbolic link it follows (to the end),
/// and the file itself belong to root or this user, and none of them may be written by group or
/// others, except a directory with the sticky bit (such as `/tmp`), where others cannot replace
/// what is not theirs. Only root or this user could then swap the file between this check and
/// its loading.
pub(crate) fn trusted_to_load(file: &Path) -> Result<(), NotTrusted> {
    if !file.is_absolute() {
        return Err(NotTrusted::Unreadable(format!("{} is not an absolute path", file.display())));
    }
    let mut links = 0;
    walk_trusted(file, file, &mut links).map(|_| ())
}

/// Follows `path` from the root a component at a time, checking each step; returns where it
/// leads. `asked` is the file first asked about, for the message.
fn walk_trusted(path: &Path, asked: &Path, links: &mut u32) -> Result<PathBuf, NotTrusted> {
    use std::path::Component;
    let mut at = PathBuf::from("/");
    check_trusted(&at, &fs::symlink_metadata(&at).map_err(|e| unreadable(&at, &e))?)?;
    for component in path.components() {
        let next = match component {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => continue,
            Component::ParentDir => {
                at.pop();
                continue;
            }
            Component::Normal(name) => at.join(name),
        };
        let metadata = fs::symlink_metadata(&next).map_err(|e| unreadable(&next, &e))?;
        check_trusted(&next, &metadata)?;
        if metadata.file_type().is_symlink() {
            *links += 1;
            if *links > 40 {
                return Err(NotTrusted::Unreadable(format!(
                    "{} passes through more than 40 symbolic links",
                    asked.display()
                )));
            }
            let target = fs::read_link(&next).map_err(|e| unreadable(&next, &e))?;
            at = walk_trusted(&at.join(target), asked, links)?;
        } else {
            at = next;
        }
    }
    Ok(at)
}

fn check_trusted(path: &Path, metadata: &fs::Metadata) -> Result<(), NotTrusted> {
    let me = user_id();
    let others = |problem: String| NotTrusted::Others {
        place: path.to_path_buf(),
        problem,
    };
    if metadata.uid() != 0 && metadata.uid() != me {
        return Err(others(format!(
            "belongs to user {}, not to root or this user ({me})",
            metadata.uid()
        )));
    }
    let sticky_dir = metadata.is_dir() && metadata.mode() & 0o1000 != 0;
    // A link's own mode means nothing: who owns it, and its directory, is what counts.
    if !metadata.file_type().is_symlink() && writable_by_others(metadata) && !sticky_dir {
        return Err(others(format!(
            "may be written by group or others (mode {:o})",
            metadata.mode() & 0o7777
        )));
    }
    Ok(())
}

/// Whether someone other than its owner may write to the file: others, or a group that is not
/// this user's private group (Debian and Ubuntu give each user a group of their own and
/// a umask of 002, so every directory a user makes is group-writable, by that user alone).
pub(crate) fn writable_by_others(metadata: &fs::Metadata) -> bool {
    metadata.mode() & 0o002 != 0 || (metadata.mode() & 0o020 != 0 && Some(metadata.gid()) != private_group())
}

/// This user's private group, if its primary group is one: see [`is_private_group`].
fn private_group() -> Option<u32> {
    static PRIVATE: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
    *PRIVATE.get_or_init(|| {
        let (uid, gid) = (user_id(), crate::util::os::group_id());
        let read = |path: &str| fs::read(path).ok().map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
        // Without nsswitch.conf, glibc reads the files alone.
        let nsswitch = read("/etc/nsswitch.conf").unwrap_or_default();
        let (passwd, group) = (read("/etc/passwd")?, read("/etc/group")?);
        (files_alone(&nsswitch) && is_private_group(uid, gid, &passwd, &group)).then_some(gid)
    })
}

/// Whether accounts and groups come from `/etc/passwd` and `/etc/group` alone, as
/// `nsswitch.conf` (its text) says: a directory service (`sss`, `ldap`, `nis`, ...) could give
/// another user this user's group. Read as glibc reads it: a database's name ends at a blank or
/// `:`, and an action (`[NOTFOUND=return]`) may be followed by a source with no blank between.
fn files_alone(nsswitch: &str) -> bool {
    nsswitch.lines().all(|line| {
        let line = line.trim_start();
        if line.starts_with('#') {
            return true;
        }
        let name_end = line.find(|c: char| c == ':' || c.is_whitespace()).unwrap_or(line.len());
        let (database, rest) = line.split_at(name_end);
        if !matches!(database, "passwd" | "group" | "initgroups" | "gshadow") {
            return true;
        }
        let mut sources = String::new();
        let mut in_action = false;
        for c in rest.trim_start_matches([':', ' ', '\t']).chars() {
            match c {
                '[' => {
                    in_action = true;
                    sources.push(' ');
                }
                ']' => {
                    in_action = false;
                    sources.push(' ');
                }
                _ if !in_action => sources.push(c),
                _ => {}
            }
        }
        sources
            .split_whitespace()
            .all(|source| matches!(source, "files" | "systemd"))
    })
}

/// Whether group `gid` belongs to user `uid` alone, as `/etc/passwd` and `/etc/group` (their
/// texts) say: it is the user's primary group, no other account has it as theirs, and every line
/// of it in `/etc/group` lists no member but the user. A group these files do not describe, or
/// files that include others (`+` and `-` lines, NIS's), are not taken as private.
fn is_private_group(uid: u32, gid: u32, passwd: &str, group: &str) -> bool {
    let meaningful = |text: &str| {
        text.lines()
            .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
            .map(str::to_string)
            .collect::<Vec<String>>()
    };
    let (passwd, group) = (meaningful(passwd), meaningful(group));
    if passwd.iter().chain(&group).any(|line| line.starts_with(['+', '-'])) {
        return false;
    }
    let accounts: Vec<(&str, Option<u32>, Option<u32>)> = passwd
        .iter()
        .map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            let number = |i: usize| fields.get(i).and_then(|f| f.parse().ok());
            (fields[0], number(2), number(3))
        })
        .collect();
    let Some(&(name, _, Some(primary))) = accounts.iter().find(|(_, u, _)| *u == Some(uid)) else {
        return false;
    };
    let shared = accounts
        .iter()
        .any(|(_, u, g)| *u != Some(uid) && (*g == Some(gid) || g.is_none()));
    let members: Vec<&str> = group
        .iter()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() == 4 && fields[2].trim().parse() == Ok(gid)).then(|| fields[3])
        })
        .collect();
    primary == gid
        && !shared
        && !members.is_empty()
        && members
            .iter()
            .all(|members| members.split(',').all(|m| m.is_empty() || m == name))
}

fn unreadable(path: &Path, error: &io::Error) -> NotTrusted {
    NotTrusted::Unreadable(format!("{} cannot be read: {error}", path.display()))
}

/// Whether `a` and `b` name the same place: equal, or leading to the same file through links
/// (`/usr/local/cuda/lib64` and `/usr/local/cuda-13.0/targets/x86_64-linux/lib`).
pub(crate) fn same_place(a: &Path, b: &Path) -> bool {
    a == b || fs::canonicalize(a).is_ok_and(|a| fs::canonicalize(b).is_ok_and(|b| a == b))
}

#[cfg(test)]
mod private_group_tests {
    use super::is_private_group;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
                          ada:x:1000:1000:Ada:/home/ada:/bin/bash\n\
                          bob:x:1001:100:Bob:/home/bob:/bin/bash\n\
                          cy:x:1002:100:Cy:/home/cy:/bin/bash\n";

    #[test]
    fn a_group_of_the_user_alone_is_private() {
        let group = "root:x:0:\nada:x:1000:\nusers:x:100:bob,cy\n";
        assert!(is_private_group(1000, 1000, PASSWD, group));
        // Listing the user as a member changes nothing.
        assert!(is_private_group(1000, 1000, PASSWD, "ada:x:1000:ada\n"));
    }

    #[test]
    fn a_shared_or_unknown_group_is_not() {
        let group = "ada:x:1000:eve\nusers:x:100:\n";
        // Another member.
        assert!(!is_private_group(1000, 1000, PASSWD, group));
        // Another account's primary group too.
        assert!(!is_private_group(1001, 100, PASSWD, group));
        // Not in /etc/group (a directory service's), or not the user's primary group.
        assert!(!is_private_group(1000, 1000, PASSWD, "users:x:100:\n"));
        assert!(!is_private_group(1000, 100, PASSWD, group));
        // An account /etc/passwd does not know.
        assert!(!is_private_group(4242, 4242, PASSWD, "x:x:4242:\n"));
        // NIS lines might name anyone: nothing is taken as private.
        assert!(!is_private_group(1000, 1000, &format!("{PASSWD}+::::::\n"), "ada:x:1000:\n"));
        assert!(!is_private_group(1000, 1000, PASSWD, "ada:x:1000:\n+:::\n"));
        // A second group of the same id (groupadd -o) with another member.
        assert!(!is_private_group(1000, 1000, PASSWD, "ada:x:1000:\ndevs:x:1000:eve\n"));
    }

    #[test]
    fn blank_lines_and_comments_change_nothing() {
        let passwd = format!("# accounts\n\n{PASSWD}\n");
        assert!(is_private_group(1000, 1000, &passwd, "\nada:x:1000:\n"));
    }

    #[test]
    fn groups_from_a_directory_service_are_not_trusted() {
        use super::files_alone;
        assert!(files_alone(""));
        assert!(files_alone("passwd: files systemd\ngroup: files [SUCCESS=merge] systemd\nhosts: files dns\n"));
        assert!(!files_alone("passwd: files sss\ngroup: files sss\n"));
        assert!(!files_alone("group:  files ldap # the directory\n"));
        assert!(!files_alone("passwd: compat\n"));
        // As glibc reads it: a comment after the sources is read as sources, the colon may be
        // missing, and an action may run into the next source.
        assert!(!files_alone("group: files # sss\n"));
        assert!(!files_alone("group files sss\n"));
        assert!(!files_alone("group: files [NOTFOUND=return]sss\n"));
        assert!(!files_alone("initgroups: sss\n"));
        assert!(files_alone("# group: sss\ngroup: files [NOTFOUND=return] systemd"));
    }
}

/// A fresh, empty directory for one unit test, under the system's temporary directory: made
/// here, mode 0700, under a name no one can guess, so that another user cannot have made it first
/// (with links in it to files of the tester's, which the test would then write through).
#[cfg(test)]
pub(crate) fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "gpu-test-{name}-{}-{:016x}",
        std::process::id(),
        unpredictable()
    ));
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .unwrap_or_else(|error| panic!("cannot make {}: {error}", dir.display()));
    dir
}

/// FNV-1a: a stable hash for naming state files after paths, the same in every process.
pub(crate) fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Keeps letters, digits, `-`, `_` and `.`: ids become file names.
pub(crate) fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    fn scratch(name: &str) -> PathBuf {
        scratch_dir(&format!("files-{name}"))
    }

    #[test]
    fn locked_updates_from_many_threads_lose_nothing() {
        let dir = scratch("locked");
        let path = dir.join("counter");
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..25 {
                        update_locked(&path, |text| {
                            let n: u32 = text.trim().parse().unwrap_or(0);
                            ((n + 1).to_string(), ())
                        })
                        .unwrap();
                    }
                });
            }
        });
        assert_eq!(fs::read_to_string(&path).unwrap(), "200");
        fs::remove_dir_all(&dir).unwrap();
    }

    fn written_hours_ago(path: &Path, hours: u64) {
        let then = SystemTime::now() - Duration::from_secs(hours * 3600);
        File::options().write(true).custom_flags(libc::O_NOFOLLOW).open(path).unwrap().set_modified(then).unwrap();
    }

    #[test]
    fn states_nobody_wrote_for_a_day_are_removed_and_others_kept() {
        let dir = scratch("stale");
        let day = Duration::from_secs(24 * 3600);
        for name in ["old", "fresh", "held", "kept"] {
            update_locked(&dir.join(format!("{name}.json")), |_| ("{}".to_string(), ())).unwrap();
        }
        fs::write(dir.join("kept.json"), "still going").unwrap();
        for name in ["old.json", "old.lock", "held.json", "held.lock", "fresh.lock", "kept.json", "kept.lock"] {
            written_hours_ago(&dir.join(name), 25);
        }
        fs::write(dir.join(".report.json.7.0.tmp"), "half").unwrap();
        written_hours_ago(&dir.join(".report.json.7.0.tmp"), 25);
        fs::write(dir.join("orphan.lock"), "").unwrap();
        written_hours_ago(&dir.join("orphan.lock"), 25);
        fs::write(dir.join("unrelated.txt"), "").unwrap();
        written_hours_ago(&dir.join("unrelated.txt"), 25);
        let held = open_lock_file(&dir.join("held.lock")).unwrap();
        held.lock().unwrap();

        remove_stale_states(&dir, day, &|text| text == "still going");

        let mut left: Vec<String> =
            fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        assert_eq!(
            left,
            ["fresh.json", "fresh.lock", "held.json", "held.lock", "kept.json", "kept.lock", "unrelated.txt"]
        );
        drop(held);
        // A process that opened a lock before the sweep removed it holds a lock on nothing.
        let path = dir.join("fresh.lock");
        let opened = open_lock_file(&path).unwrap();
        assert!(still_linked(&opened, &path).unwrap());
        fs::remove_file(&path).unwrap();
        assert!(!still_linked(&opened, &path).unwrap());
        let _anew = open_lock_file(&path).unwrap();
        assert!(!still_linked(&opened, &path).unwrap());
        fs::remove_dir_all(&dir).unwrap();
    }

    /// Whether `dir` is on a file system known to exchange files (`stat -f`'s name for it).
    fn exchanges_files(dir: &Path) -> bool {
        let kind = std::process::Command::new("stat")
            .args(["-f", "-c", "%T"])
            .arg(dir)
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
            .unwrap_or_default();
        matches!(kind.as_str(), "ext2/ext3" | "tmpfs" | "xfs" | "btrfs")
    }

    /// Two files change places in one step where the file system can (ext4, tmpfs, XFS, btrfs),
    /// and a write over a file takes that way there; elsewhere the call says it cannot, a sandbox
    /// may refuse it anywhere, and a write renames instead.
    #[test]
    fn two_files_are_exchanged_in_one_step() {
        let dir = scratch("exchange");
        let (a, b) = (dir.join("a"), dir.join("b"));
        fs::write(&a, "a").unwrap();
        fs::write(&b, "b").unwrap();
        let exchanged = exchange_files(&a, &b);
        match &exchanged {
            Ok(()) => {
                assert_eq!(fs::read_to_string(&a).unwrap(), "b");
                assert_eq!(fs::read_to_string(&b).unwrap(), "a");
            }
            // A sandbox's refusal, or a file system that cannot exchange.
            Err(error) => match error.raw_os_error() {
                Some(libc::ENOSYS | libc::EPERM) => {}
                Some(libc::EINVAL) => assert!(!exchanges_files(&dir), "{error}"),
                _ => panic!("{error}"),
            },
        }
        let missing = exchange_files(&a, &dir.join("missing")).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);

        let temporary = dir.join("temporary");
        fs::write(&temporary, "new").unwrap();
        let way = replace(&temporary, &a).unwrap();
        assert_eq!(way == Replaced::Exchanged, exchanged.is_ok(), "{way:?}");
        assert_eq!(fs::read_to_string(&a).unwrap(), "new");
        assert!(!temporary.exists());
        fs::write(&temporary, "new").unwrap();
        assert_eq!(replace(&temporary, &dir.join("c")).unwrap(), Replaced::Renamed);

        // A directory made at the path between the look and the exchange goes back.
        if exchanged.is_ok() {
            let there = dir.join("there");
            fs::create_dir(&there).unwrap();
            fs::write(&temporary, "new").unwrap();
            exchange_files(&temporary, &there).unwrap();
            let error = remove_exchanged(&temporary, &there).unwrap_err();
            assert_eq!(error.raw_os_error(), Some(libc::EISDIR));
            assert!(there.is_dir());
            assert_eq!(fs::read_to_string(&temporary).unwrap(), "new");
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn files_are_private_and_never_followed_through_links() {
        let dir = scratch("private");
        let target = dir.join("elsewhere");
        fs::write(&target, "precious").unwrap();
        let link = dir.join("state");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(update_locked(&link, |text| (text, ())).is_err());
        assert_eq!(fs::read_to_string(&target).unwrap(), "precious");

        let file = dir.join("report.json");
        write_atomically(&file, b"{}", 0o600).unwrap();
        assert_eq!(fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
        // Over a file there (exchanged where the file system can, then the old one removed), with
        // another name for the old file, which keeps its text; and over a link, which is
        // replaced, not followed.
        let old_name = dir.join("old-report.json");
        fs::hard_link(&file, &old_name).unwrap();
        write_atomically(&file, b"{\"new\":1}", 0o600).unwrap();
        assert_eq!(fs::read_to_string(&file).unwrap(), "{\"new\":1}");
        assert_eq!(fs::read_to_string(&old_name).unwrap(), "{}");
        let linked = dir.join("linked.json");
        std::os::unix::fs::symlink(&target, &linked).unwrap();
        write_atomically(&linked, b"{}", 0o600).unwrap();
        assert!(fs::symlink_metadata(&linked).unwrap().file_type().is_file());
        assert_eq!(fs::read_to_string(&target).unwrap(), "precious");
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");

        let open = dir.join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(
            ensure_private_dir(&open)
                .unwrap_err()
                .contains("may be written by other users")
        );
        // Inside a directory others may write to, without the sticky bit: they could move it away.
        let inside = open.join("runtime");
        let error = ensure_private_dir(&inside).unwrap_err();
        assert!(
            error.contains(&format!(
                "{} is inside {}, which may be written by group or others (mode 777)",
                inside.display(),
                open.display()
            )),
            "{error}"
        );
        // With the sticky bit (as /tmp has), others cannot move what is not theirs.
        fs::set_permissions(&open, fs::Permissions::from_mode(0o1777)).unwrap();
        ensure_private_dir(&inside).unwrap();
        let private = dir.join("runtime/nested");
        ensure_private_dir(&private).unwrap();
        assert_eq!(fs::metadata(&private).unwrap().mode() & 0o777, 0o700);
        let linked = dir.join("linked");
        std::os::unix::fs::symlink(&private, &linked).unwrap();
        assert!(ensure_private_dir(&linked).unwrap_err().contains("symbolic link"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hashes_and_names_are_stable() {
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(sanitize("nx::h$a b"), "nx__h_a_b");
    }

    #[test]
    fn loading_is_trusted_only_where_no_other_user_may_write() {
        let dir = scratch("trusted");
        let lib = dir.join("lib");
        fs::create_dir_all(&lib).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(&lib, fs::Permissions::from_mode(0o755)).unwrap();
        let file = lib.join("libnvrtc.so.12");
        fs::write(&file, "").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(trusted_to_load(&file), Ok(()));

        // A link is followed: a target under a directory others may write is refused, by name.
        let open = dir.join("open");
        fs::create_dir_all(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        fs::write(open.join("libnvrtc.so.12"), "").unwrap();
        let link = lib.join("libnvrtc.so.11");
        std::os::unix::fs::symlink("../open/libnvrtc.so.12", &link).unwrap();
        assert_eq!(
            trusted_to_load(&link),
            Err(NotTrusted::Others {
                place: open.clone(),
                problem: "may be written by group or others (mode 777)".to_string()
            })
        );

        // The sticky bit keeps others from replacing what is not theirs.
        fs::set_permissions(&open, fs::Permissions::from_mode(0o1777)).unwrap();
        assert_eq!(trusted_to_load(&link), Ok(()));

        // Group write counts as others' where the group may hold other users (one made for no
        // one, as root can give it; otherwise this user's group, unless it is private).
        fs::set_permissions(&file, fs::Permissions::from_mode(0o664)).unwrap();
        if user_id() == 0 {
            std::os::unix::fs::chown(&file, None, Some(65534)).unwrap();
        }
        if Some(fs::metadata(&file).unwrap().gid()) != private_group() {
            let error = trusted_to_load(&file).unwrap_err().to_string();
            assert_eq!(error, format!("{} may be written by group or others (mode 664)", file.display()));
        }

        // Dangling links, loops and relative paths are errors, not panics or hangs.
        let dangling = lib.join("libnvrtc.so.10");
        std::os::unix::fs::symlink("missing", &dangling).unwrap();
        assert!(matches!(trusted_to_load(&dangling), Err(NotTrusted::Unreadable(_))));
        let looped = lib.join("libnvrtc.so.9");
        std::os::unix::fs::symlink("libnvrtc.so.9", &looped).unwrap();
        assert_eq!(
            trusted_to_load(&looped),
            Err(NotTrusted::Unreadable(format!(
                "{} passes through more than 40 symbolic links",
                looped.display()
            )))
        );
        assert!(matches!(
            trusted_to_load(Path::new("relative/libnvrtc.so")),
            Err(NotTrusted::Unreadable(_))
        ));
        fs::remove_dir_all(&dir).unwrap();
    }
}
