//! Reading files that may not be what their names say: a report among many in a shared
//! directory, a configuration above the workspace that another user put there.

use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The regular file at `path`, opened without waiting on a FIFO someone put there, and what it
/// is; the error says why not, in words that follow "it".
pub fn open_regular(path: &Path) -> Result<(File, Metadata), String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|error| format!("it cannot be opened ({error})"))?;
    let metadata = file
        .metadata()
        .map_err(|error| format!("it cannot be read ({error})"))?;
    if !metadata.is_file() {
        return Err("it is not a regular file".to_string());
    }
    Ok((file, metadata))
}

/// What `file` holds, read to its end but no further than `limit` bytes; `Ok(None)` where it
/// holds more.
pub fn read_at_most(file: File, limit: u64) -> Result<Option<Vec<u8>>, String> {
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| format!("it cannot be read ({error})"))?;
    Ok((bytes.len() as u64 <= limit).then_some(bytes))
}
