//! What nextest's configuration says about which tests a run selects: a profile's
//! `default-filter` narrows every run of that profile that gives no filter of its own, and
//! `cargo gpu-test run` must then not take "no tests to run" for "every GPU test was skipped".
//!
//! A configuration that is not TOML counts as one with a filter (nextest refuses it anyway), so
//! that a filter is never taken for none.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::runner_args::{option_value, option_values, runner_words};

/// Whether a nextest profile's `default-filter` may narrow a run of `cargo nextest run` with
/// `args`, started in `cwd`: the profile in use (`--profile`/`-P`, else `NEXTEST_PROFILE`, given
/// as `env_profile`, else `default`), or one it inherits from, has one in a configuration the
/// run may read (the `.config/nextest.toml` of the current directory and of each one up to the
/// workspace's root, which is more than nextest reads, so that a filter is never missed;
/// `--config-file`; `--tool-config-file`), and `--ignore-default-filter` is not given.
pub(crate) fn default_filter_may_narrow(args: &[OsString], cwd: &Path, env_profile: Option<&str>) -> bool {
    let words = runner_words(args);
    if words.iter().any(|word| word == "--ignore-default-filter") {
        return false;
    }
    let profile = option_value(&words, "--profile", Some("-P"))
        .or_else(|| env_profile.filter(|p| !p.is_empty()).map(str::to_string))
        .unwrap_or_else(|| "default".to_string());
    let texts: Vec<String> = config_files(&words, cwd)
        .iter()
        .filter_map(|file| read_config(file, Owners::Anyone))
        .collect();
    gives_default_filter(&texts, &profile)
}

/// The most a configuration or manifest read here may hold: far more than any real one.
const CONFIG_LIMIT: u64 = 4 << 20;

/// Whose files [`read_config`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owners {
    /// Anyone's: a configuration can only add filters and profiles to those of the files before
    /// it (every profile's chain ends at `default`), so another user's can make `run` keep
    /// nextest's "no tests to run", never hide a filter; and the workspace's own, or a
    /// `--config-file`, may well belong to another user (a checkout mounted into a container
    /// that runs as another uid, a CI administrator's file), and nextest reads it.
    Anyone,
    /// This user's or root's alone: a manifest above the workspace, which decides where the
    /// search for configurations stops, and which another user may have put there.
    TrustedOnly,
}

/// The text of the configuration (or manifest) at `path`, where one is there to read: a regular
/// file (of this user's or root's, where `owners` asks for that), read without waiting on a FIFO
/// and no more than [`CONFIG_LIMIT`]. One larger, or not UTF-8, reads as text that is not TOML,
/// which counts as a filter (nextest would refuse it).
fn read_config(path: &Path, owners: Owners) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let (file, metadata) = crate::files::open_regular(path).ok()?;
    // SAFETY: getuid takes no arguments and cannot fail.
    let me = unsafe { libc::getuid() };
    if owners == Owners::TrustedOnly && metadata.uid() != 0 && metadata.uid() != me {
        return None;
    }
    Some(match crate::files::read_at_most(file, CONFIG_LIMIT).ok()? {
        Some(bytes) => {
            String::from_utf8(bytes).unwrap_or_else(|_| String::from("not a configuration: not UTF-8"))
        }
        None => String::from("not a configuration: larger than any"),
    })
}

/// The configuration files a run started in `cwd` with `words` may read: `--config-file` (which
/// nextest reads in place of the workspace's), else the workspace's `.config/nextest.toml`; and
/// each `--tool-config-file TOOL:PATH`. Relative paths are the current directory's, as nextest
/// takes them.
fn config_files(words: &[String], cwd: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    match option_value(words, "--config-file", None) {
        Some(file) => files.push(cwd.join(file)),
        None => files.extend(workspace_configs(&workspace_dir(words, cwd))),
    }
    for value in option_values(words, "--tool-config-file", None) {
        let path = value.split_once(':').map_or(value.as_str(), |(_, path)| path);
        files.push(cwd.join(path));
    }
    files
}

/// The directory the workspace is looked for from: that of `--manifest-path`, else `cwd`.
fn workspace_dir(words: &[String], cwd: &Path) -> PathBuf {
    match option_value(words, "--manifest-path", None) {
        Some(manifest) => {
            let manifest = cwd.join(manifest);
            manifest
                .parent()
                .map_or_else(|| cwd.to_path_buf(), Path::to_path_buf)
        }
        None => cwd.to_path_buf(),
    }
}

/// The `.config/nextest.toml` of `dir` and of each directory above it, up to the workspace's
/// root: the first whose `Cargo.toml` has `[workspace]` (or the file system's root, where none
/// has: then every one counts).
fn workspace_configs(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for ancestor in dir.ancestors() {
        files.push(ancestor.join(".config/nextest.toml"));
        let manifest = read_config(&ancestor.join("Cargo.toml"), Owners::TrustedOnly).unwrap_or_default();
        if manifest
            .parse::<toml::Table>()
            .is_ok_and(|manifest| manifest.contains_key("workspace"))
        {
            break;
        }
    }
    files
}

/// What the configurations say of a profile: whether one sets its `default-filter`, and the
/// profile it inherits from.
#[derive(Debug, Clone, Default)]
struct ProfileSays {
    default_filter: bool,
    inherits: Option<String>,
}

/// Whether one of a profile's `[[profile.NAME.overrides]]` sets `default-filter` (nextest takes
/// it on the platforms the override names): counted whatever the platform, since whether it
/// matches this one is nextest's to judge, and a filter must never be taken for none.
fn overrides_give_default_filter(profile: &toml::Table) -> bool {
    match profile.get("overrides") {
        Some(toml::Value::Array(overrides)) => overrides.iter().any(|entry| {
            entry
                .as_table()
                .is_some_and(|entry| entry.contains_key("default-filter"))
        }),
        _ => false,
    }
}

/// Whether the configurations `texts` give `profile` a `default-filter`, itself or through the
/// profiles it inherits from (its `inherits`, else `default`), taken together as nextest layers
/// them (the first file's `inherits` wins); or one of them is not TOML, which counts, as nextest
/// refuses it anyway.
fn gives_default_filter(texts: &[String], profile: &str) -> bool {
    let mut profiles: HashMap<String, ProfileSays> = HashMap::new();
    for text in texts {
        let Ok(config) = text.parse::<toml::Table>() else {
            return true;
        };
        let Some(toml::Value::Table(tables)) = config.get("profile") else {
            continue;
        };
        for (name, table) in tables {
            let Some(table) = table.as_table() else {
                continue;
            };
            let says = profiles.entry(name.clone()).or_default();
            says.default_filter |=
                table.contains_key("default-filter") || overrides_give_default_filter(table);
            if let Some(parent) = table.get("inherits").and_then(toml::Value::as_str) {
                says.inherits.get_or_insert_with(|| parent.to_string());
            }
        }
    }
    let mut name = profile.to_string();
    // Each profile once: an `inherits` cycle (which nextest refuses) ends here too.
    let mut seen = Vec::new();
    while !seen.contains(&name) {
        let says = profiles.get(&name).cloned().unwrap_or_default();
        if says.default_filter {
            return true;
        }
        seen.push(name.clone());
        name = match says.inherits {
            Some(parent) => parent,
            None if name != "default" => "default".to_string(),
            None => break,
        };
    }
    // Every chain nextest accepts ends at `default`; one that loops (in a file nextest may not
    // even read, such as one above the workspace) must not hide the default's filter.
    profiles.get("default").is_some_and(|says| says.default_filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_in_use_and_those_it_inherits_from_count() {
        let says = |text: &str, profile: &str| gives_default_filter(&[text.to_string()], profile);
        let text = "# default-filter = \"all()\"\n[profile.default]\nretries = 1\n\n[profile.ci]\n\
                    default-filter = \"not test(slow)\"\n\n[profile.nightly]\ninherits = \"ci\" # the same\n\n\
                    [profile.ci.junit]\npath = \"x.xml\"\n";
        assert!(!says(text, "default"), "a comment, and another profile's");
        assert!(says(text, "ci"));
        assert!(says(text, "nightly"), "inherited");
        assert!(!says(text, "other"), "the default profile's rules");
        let default =
            "[profile.default]\ndefault-filter = \"kind(test)\"\n[profile.other]\nslow-timeout = \"1m\"\n";
        assert!(says(default, "other"), "every profile inherits the default's");
        assert!(!says(
            "[profile.a]\ninherits = \"b\"\n[profile.b]\ninherits = \"a\"\n",
            "a"
        ));
        // Quotes of either kind, spaces and comments around a header, a quoted key.
        let quoted = "[ profile.'ci' ] # CI\n'default-filter' = 'not test(slow)'\n\
                      [profile.\"nightly\"] # nightly\ninherits = 'ci'\n";
        assert!(says(quoted, "ci"));
        assert!(says(quoted, "nightly"));
        assert!(!says(quoted, "default"));
        // Dotted keys and inline tables name their profile.
        let dotted = "profile.ci.default-filter = \"x\"\nprofile.nightly = { inherits = \"ci\" }\n";
        assert!(says(dotted, "ci"));
        assert!(says(dotted, "nightly"));
        assert!(!says(dotted, "default"), "another profile's, in dotted keys");
        let layered = [
            "[profile]\nweekly.inherits = \"nightly\"\n".to_string(),
            dotted.to_string(),
        ];
        assert!(gives_default_filter(&layered, "weekly"));
        assert!(!gives_default_filter(&layered, "default"));
        // What only looks like a profile's table or key, inside a multi-line string.
        let in_string = "[profile.ci]\nslow-timeout = \"1m\"\n[scripts.setup.doc]\ntext = \"\"\"\n\
                         [profile.default]\ndefault-filter = \"x\"\n\"\"\"\n";
        assert!(!says(in_string, "default"));
        assert!(!says(in_string, "ci"));
        // A loop of `inherits` does not hide the default profile's filter.
        let looped = "[profile.default]\ndefault-filter = \"x\"\n[profile.a]\ninherits = \"b\"\n\
                      [profile.b]\ninherits = \"a\"\n";
        assert!(says(looped, "a"));
        // An override's per-platform default filter, whatever the platform.
        let per_platform = "[[profile.default.overrides]]\nplatform = 'cfg(target_os = \"linux\")'\n\
                            default-filter = 'test(/gpu/)'\n[[profile.ci.overrides]]\nfilter = 'test(x)'\nretries = 2\n";
        assert!(says(per_platform, "default"));
        assert!(says(per_platform, "ci"), "inherited from the default profile");
        let other_override = "[[profile.ci.overrides]]\nplatform = 'cfg(windows)'\nretries = 1\n";
        assert!(!says(other_override, "ci"), "an override that sets no filter");
        let inline = "[profile.ci]\noverrides = [{ platform = 'x86_64-unknown-linux-gnu', default-filter = 'all()' }]\n";
        assert!(says(inline, "ci"));
        assert!(!says(inline, "default"));
        // What is not TOML (nextest refuses it): counted.
        assert!(says("[profile.nightly x]\ninherits = \"ci\"\n", "default"));
        // A profile inheriting from one another file defines.
        let layered = [
            "[profile.nightly]\ninherits = \"base\"\n".to_string(),
            "[profile.base]\ndefault-filter = \"kind(test)\"\n".to_string(),
        ];
        assert!(gives_default_filter(&layered, "nightly"));
        assert!(!gives_default_filter(&layered, "default"));
    }

    #[test]
    fn the_profile_and_the_files_are_those_nextest_reads() {
        let words = |line: &str| line.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(
            option_value(&words("-P ci"), "--profile", Some("-P")).as_deref(),
            Some("ci")
        );
        assert_eq!(
            option_value(&words("-Pci"), "--profile", Some("-P")).as_deref(),
            Some("ci")
        );
        assert_eq!(
            option_value(&words("--profile=ci"), "--profile", Some("-P")).as_deref(),
            Some("ci")
        );
        assert_eq!(
            option_value(&words("--no-fail-fast"), "--profile", Some("-P")),
            None
        );
        let cwd = Path::new("/work/here");
        assert_eq!(
            config_files(
                &words("--manifest-path sub/Cargo.toml --config-file ci.toml"),
                cwd
            ),
            [PathBuf::from("/work/here/ci.toml")]
        );
        assert_eq!(
            config_files(
                &words("--config-file=/etc/ci.toml --tool-config-file mine:t.toml"),
                cwd
            ),
            [PathBuf::from("/etc/ci.toml"), PathBuf::from("/work/here/t.toml")]
        );
        assert_eq!(
            config_files(&words("--tool-config-file=mine:/t.toml"), Path::new("/"))[..2],
            [PathBuf::from("/.config/nextest.toml"), PathBuf::from("/t.toml")]
        );
    }

    #[test]
    fn only_a_regular_file_of_a_bounded_size_is_read_and_a_fifo_never_waited_on() {
        let root = std::env::temp_dir().join(format!("gpu-test-config-files-{}", std::process::id()));
        let project = root.join("project");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::create_dir_all(root.join(".config")).unwrap();
        // A FIFO above the crate, where the search goes for a single package's workspace: read
        // on its own thread, so that a wait on it fails the test rather than stopping it.
        let fifo = root.join(".config/nextest.toml");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        let (sender, receiver) = std::sync::mpsc::channel();
        let asked = project.clone();
        std::thread::spawn(move || sender.send(default_filter_may_narrow(&[], &asked, None)).unwrap());
        let narrowed = receiver.recv_timeout(std::time::Duration::from_secs(60));
        assert_eq!(
            narrowed,
            Ok(false),
            "a FIFO is no configuration, and is not waited on"
        );
        assert_eq!(
            read_config(&root.join(".config"), Owners::Anyone),
            None,
            "a directory"
        );
        // Too large to be a configuration: not TOML, which counts as a filter.
        let large = root.join("large.toml");
        std::fs::write(&large, vec![b'#'; (CONFIG_LIMIT + 1) as usize]).unwrap();
        assert!(gives_default_filter(
            &[read_config(&large, Owners::Anyone).unwrap()],
            "default"
        ));
        let small = root.join("small.toml");
        std::fs::write(&small, "[profile.default]\n").unwrap();
        assert_eq!(
            read_config(&small, Owners::Anyone).as_deref(),
            Some("[profile.default]\n")
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_workspace_config_is_found_from_a_member_and_not_beyond_the_workspace() {
        let root = std::env::temp_dir().join(format!("gpu-test-default-filter-{}", std::process::id()));
        let member = root.join("crates/member");
        std::fs::create_dir_all(&member).unwrap();
        std::fs::create_dir_all(root.join(".config")).unwrap();
        let args = |line: &str| line.split_whitespace().map(OsString::from).collect::<Vec<_>>();
        std::fs::write(
            root.join(".config/nextest.toml"),
            "[profile.ci]\n  default-filter = \"not test(slow)\"\n",
        )
        .unwrap();
        assert!(
            !default_filter_may_narrow(&[], &member, None),
            "the default profile has none"
        );
        assert!(default_filter_may_narrow(&args("-P ci"), &member, None));
        assert!(default_filter_may_narrow(&[], &member, Some("ci")));
        assert!(!default_filter_may_narrow(
            &args("-P ci --ignore-default-filter"),
            &member,
            None
        ));
        assert!(default_filter_may_narrow(
            &args("-P ci -- --ignore-default-filter"),
            &member,
            None
        ));
        // A workspace of its own below is read alone, as nextest reads it.
        std::fs::write(
            member.join("Cargo.toml"),
            "[package]\nname = \"member\"\n\n[workspace] # of its own\n",
        )
        .unwrap();
        assert!(!default_filter_may_narrow(&args("-P ci"), &member, None));
        // --config-file in place of the workspace's.
        std::fs::write(
            root.join("ci.toml"),
            "[profile.default]\ndefault-filter=\"kind(test)\"\n",
        )
        .unwrap();
        assert!(default_filter_may_narrow(
            &args("--config-file ci.toml"),
            &root,
            None
        ));
        assert!(!default_filter_may_narrow(
            &args("--config-file none.toml -P ci"),
            &root,
            None
        ));
        // Another user's configuration is still read: a checkout mounted into a container that
        // runs as another uid, or a CI administrator's --config-file. Only root can give a file
        // away (CI runs the suite as root, where it is checked).
        match std::os::unix::fs::chown(root.join("ci.toml"), Some(65534), Some(65534)) {
            Ok(()) => assert!(default_filter_may_narrow(
                &args("--config-file ci.toml"),
                &root,
                None
            )),
            Err(error) => eprintln!("not checked: a file of another user's cannot be made here ({error})"),
        }
        std::fs::remove_dir_all(&root).unwrap();
    }
}
