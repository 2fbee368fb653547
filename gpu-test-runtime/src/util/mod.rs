//! Small tools every stage uses: formatting for people, name suggestions, the stderr writer,
//! files written atomically under a lock, and the few operating-system calls std lacks.

pub(crate) mod files;
pub(crate) mod format;
pub(crate) mod os;
pub(crate) mod process;
pub(crate) mod stderr;
pub(crate) mod suggest;
