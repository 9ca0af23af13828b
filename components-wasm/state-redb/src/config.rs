//! The store's metadata, read and checked once at init.

use outrig_sdk::{Error, Metadata, Result};
use std::path::PathBuf;

/// Where the database lives and how much memory its page cache may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    /// The database file: `dir` joined with `fileName`.
    pub(crate) path: PathBuf,
    /// redb's page cache, in bytes. redb's own default (1 GiB) would outgrow
    /// the memory a component is usually granted.
    pub(crate) cache_bytes: usize,
    /// Whether commits also save redb's allocator state. The guest never
    /// closes the database cleanly (an instance is dropped, not shut down),
    /// so every reopen is a crash recovery: a full scan of the file without
    /// this, near-instant with it, at the price of slower commits.
    pub(crate) quick_repair: bool,
}

/// `dir`: the guest path of the directory the host preopens for the store.
const DIR: &str = "dir";
/// `fileName`: the database file inside `dir`.
const FILE_NAME: &str = "fileName";
/// `cacheSizeMiB`: the page cache size.
const CACHE_SIZE_MIB: &str = "cacheSizeMiB";
/// `quickRepair`: see [`Config::quick_repair`].
const QUICK_REPAIR: &str = "quickRepair";

const DEFAULT_DIR: &str = "/data";
const DEFAULT_FILE_NAME: &str = "state.redb";
const DEFAULT_CACHE_SIZE_MIB: usize = 16;

impl Config {
    /// Reads the metadata and checks that the directory is there, so a
    /// missing grant fails the load with a message saying so.
    pub(crate) fn from_metadata(metadata: &Metadata) -> Result<Config> {
        let config = Config::parse(metadata)?;
        let dir = config.path.parent().unwrap_or(config.path.as_path());
        match std::fs::metadata(dir) {
            Ok(found) if found.is_dir() => Ok(config),
            Ok(_) => Err(Error::InvalidArgument(format!(
                "metadata field `{DIR}`: `{}` is not a directory",
                dir.display()
            ))),
            Err(err) => Err(Error::InvalidArgument(format!(
                "metadata field `{DIR}`: directory `{}` is not available to the component \
                 ({err}); the host must grant it as a preopened directory",
                dir.display()
            ))),
        }
    }

    /// Reads the metadata without touching the file system.
    fn parse(metadata: &Metadata) -> Result<Config> {
        let dir = metadata
            .get(DIR)
            .filter(|d| !d.is_empty())
            .unwrap_or(DEFAULT_DIR);
        let file_name = metadata
            .get(FILE_NAME)
            .filter(|f| !f.is_empty())
            .unwrap_or(DEFAULT_FILE_NAME);
        if file_name.contains(['/', '\\']) || file_name == "." || file_name == ".." {
            return Err(Error::InvalidArgument(format!(
                "metadata field `{FILE_NAME}`: `{file_name}` must be a plain file name"
            )));
        }
        let cache_mib = metadata.parse_or(CACHE_SIZE_MIB, DEFAULT_CACHE_SIZE_MIB)?;
        if cache_mib == 0 {
            return Err(Error::InvalidArgument(format!(
                "metadata field `{CACHE_SIZE_MIB}` must be at least 1"
            )));
        }
        Ok(Config {
            path: PathBuf::from(dir).join(file_name),
            cache_bytes: cache_mib.saturating_mul(1 << 20),
            quick_repair: metadata.flag(QUICK_REPAIR, false)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(pairs: &[(&str, &str)]) -> Metadata {
        Metadata::from(
            pairs
                .iter()
                .map(|&(k, v)| (k.into(), v.into()))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn parse_table() {
        let cases = [
            (vec![], Some(("/data/state.redb", 16, false))),
            (
                vec![("dir", "/x"), ("fileName", "a.db")],
                Some(("/x/a.db", 16, false)),
            ),
            (
                vec![("DIR", "/d"), ("filename", "")],
                Some(("/d/state.redb", 16, false)),
            ),
            (
                vec![("cacheSizeMiB", "4")],
                Some(("/data/state.redb", 4, false)),
            ),
            (
                vec![("quickRepair", "true")],
                Some(("/data/state.redb", 16, true)),
            ),
            (vec![("quickRepair", "maybe")], None),
            (vec![("cacheSizeMiB", "0")], None),
            (vec![("cacheSizeMiB", "lots")], None),
            (vec![("fileName", "../escape.db")], None),
            (vec![("fileName", "..")], None),
        ];
        for (pairs, want) in cases {
            let got = Config::parse(&metadata(&pairs)).ok().map(|c| {
                let path = c.path.display().to_string();
                (path, c.cache_bytes >> 20, c.quick_repair)
            });
            let want = want.map(|(path, mib, quick)| (path.to_string(), mib, quick));
            assert_eq!(got, want, "{pairs:?}");
        }
    }

    #[test]
    fn a_missing_directory_fails_with_a_clear_error() {
        let missing = std::env::temp_dir().join("outrig-redb-no-such-dir/nested");
        let dir = missing.display().to_string();
        match Config::from_metadata(&metadata(&[("dir", &dir)])) {
            Err(Error::InvalidArgument(message)) => {
                assert!(message.contains("not available"), "{message}");
                assert!(message.contains(&dir), "{message}");
            }
            other => panic!("want invalid-argument, got {other:?}"),
        }
    }
}
