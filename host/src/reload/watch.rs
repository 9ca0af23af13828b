//! Reload on file change: the resources directory (its YAML files) and the
//! `.wasm` files its components load are watched, and a burst of changes
//! becomes one reload once the files have been quiet for [`DEBOUNCE`].
//!
//! The watch uses the `notify` crate (inotify on Linux, FSEvents or kqueue
//! elsewhere), not polling: a change is seen at once rather than at the next
//! poll, which keeps "file changed" to "new version serving" near the
//! debounce plus the load itself. Directories are watched, not files, so an
//! editor's or a deploy's write-to-temp-then-rename is seen like an
//! in-place write; events for other files in them are ignored. Reading the
//! files (which the reload itself does) is not a change.
//!
//! The embedded defaults (no resources directory) are not watched.

use super::{ReloadCause, ReloadTrigger, Reloader};
use notify::event::{AccessKind, AccessMode, MetadataKind, ModifyKind};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long the files must be quiet before a reload starts, so that one
/// save (or a copy of several files) is one reload, not several.
pub const DEBOUNCE: Duration = Duration::from_millis(200);
/// The longest a reload is put off by files that keep changing.
const MAX_DEFER: Duration = Duration::from_secs(2);

/// A running watch; dropping it stops watching.
pub struct ResourceWatcher {
    task: JoinHandle<()>,
}

impl Drop for ResourceWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts watching what `reloader` loads from; `None` when it reads no
/// directory (the embedded defaults).
pub async fn spawn(reloader: Arc<Reloader>) -> anyhow::Result<Option<ResourceWatcher>> {
    let Some(dir) = reloader.source().watched_dir() else {
        return Ok(None);
    };
    let (sender, events) = mpsc::unbounded_channel();
    let watcher = notify::recommended_watcher(move |event| {
        // The receiver is gone only once the watch stops.
        let _ = sender.send(event);
    })?;
    let mut targets = Targets::new(dir, watcher)?;
    let _ = targets.update(&reloader.wasm_files().await);
    tracing::info!(dir = %dir.display(), "watching the resources for changes");
    let task = tokio::spawn(run(reloader, targets, events));
    Ok(Some(ResourceWatcher { task }))
}

/// Reloads after every quiet burst of relevant events.
async fn run(
    reloader: Arc<Reloader>,
    mut targets: Targets,
    mut events: mpsc::UnboundedReceiver<notify::Result<Event>>,
) {
    while let Some(event) = events.recv().await {
        if !targets.is_relevant(&event) {
            continue;
        }
        if !quiet(&mut events, &targets).await {
            return;
        }
        reloader.reload(ReloadCause::FileChange).await;
        // The YAML may now name other `.wasm` files. One that changed after
        // the reload read it but before it was watched would go unseen, so
        // newly watched files get one more (usually empty) reload.
        if targets.update(&reloader.wasm_files().await) {
            reloader.reload(ReloadCause::FileChange).await;
        }
    }
}

/// Waits until no relevant event came for [`DEBOUNCE`] (or [`MAX_DEFER`]
/// passed); `false` when the events stopped for good.
async fn quiet(
    events: &mut mpsc::UnboundedReceiver<notify::Result<Event>>,
    targets: &Targets,
) -> bool {
    let until = Instant::now() + MAX_DEFER;
    loop {
        let wait = DEBOUNCE.min(until.saturating_duration_since(Instant::now()));
        if wait.is_zero() {
            return true;
        }
        match tokio::time::timeout(wait, events.recv()).await {
            Err(_elapsed) => return true,
            Ok(None) => return false,
            Ok(Some(event)) if targets.is_relevant(&event) => continue,
            Ok(Some(_)) => {}
        }
    }
}

/// What is watched, and which paths matter.
struct Targets {
    watcher: RecommendedWatcher,
    /// The resources directory, canonical.
    resources_dir: PathBuf,
    /// The `.wasm` files the components load, canonical.
    wasm_files: HashSet<PathBuf>,
    /// The directories watched now.
    watched: HashSet<PathBuf>,
}

impl Targets {
    fn new(dir: &Path, watcher: RecommendedWatcher) -> anyhow::Result<Self> {
        let mut targets = Targets {
            watcher,
            resources_dir: dir.canonicalize()?,
            wasm_files: HashSet::new(),
            watched: HashSet::new(),
        };
        let _ = targets.update(&[]);
        if targets.watched.is_empty() {
            anyhow::bail!("cannot watch {}", dir.display());
        }
        Ok(targets)
    }

    /// Watches the resources directory and the directories of `wasm_files`,
    /// and no others. Returns whether a file is watched that was not before.
    fn update(&mut self, wasm_files: &[PathBuf]) -> bool {
        let files: HashSet<PathBuf> = wasm_files.iter().filter_map(|f| canonical(f)).collect();
        let grew = !files.is_subset(&self.wasm_files);
        self.wasm_files = files;
        let wanted: HashSet<PathBuf> = self
            .wasm_files
            .iter()
            .filter_map(|file| file.parent().map(Path::to_path_buf))
            .chain([self.resources_dir.clone()])
            .collect();
        for gone in self.watched.difference(&wanted) {
            if let Err(err) = self.watcher.unwatch(gone) {
                tracing::debug!(dir = %gone.display(), error = %err, "could not stop watching");
            }
        }
        self.watched.retain(|dir| wanted.contains(dir));
        for dir in wanted {
            if self.watched.contains(&dir) {
                continue;
            }
            match self.watcher.watch(&dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.watched.insert(dir);
                }
                Err(err) => {
                    tracing::warn!(dir = %dir.display(), error = %err, "cannot watch for changes")
                }
            }
        }
        grew
    }

    /// Whether `event` may change what the components are.
    fn is_relevant(&self, event: &notify::Result<Event>) -> bool {
        let event = match event {
            Ok(event) => event,
            Err(err) => {
                tracing::warn!(error = %err, "watching the resources failed; reloading to be safe");
                return true;
            }
        };
        if event.need_rescan() {
            return true;
        }
        changes_content(&event.kind) && event.paths.iter().any(|path| self.matters(path))
    }

    fn matters(&self, path: &Path) -> bool {
        let Some(path) = canonical(path) else {
            return false;
        };
        let is_yaml = path
            .extension()
            .and_then(|ext| ext.to_str())
            .is_some_and(|ext| ext == "yaml" || ext == "yml");
        (is_yaml && path.parent() == Some(self.resources_dir.as_path()))
            || self.wasm_files.contains(&path)
    }
}

/// Whether an event of this kind may change a file's content or presence;
/// reads and access-time updates do not.
fn changes_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)) => false,
        _ => true,
    }
}

/// `path` with its directory made canonical (the file itself may be gone).
fn canonical(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    Some(dir.canonicalize().ok()?.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange, RemoveKind};

    #[test]
    fn reads_are_not_changes_and_writes_are() {
        let cases = [
            (EventKind::Access(AccessKind::Open(AccessMode::Read)), false),
            (
                EventKind::Access(AccessKind::Close(AccessMode::Read)),
                false,
            ),
            (
                EventKind::Access(AccessKind::Close(AccessMode::Write)),
                true,
            ),
            (
                EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)),
                false,
            ),
            (EventKind::Modify(ModifyKind::Data(DataChange::Any)), true),
            (EventKind::Create(CreateKind::File), true),
            (EventKind::Remove(RemoveKind::File), true),
        ];
        for (kind, expected) in cases {
            assert_eq!(changes_content(&kind), expected, "{kind:?}");
        }
    }

    #[test]
    fn only_yaml_in_the_directory_and_named_wasm_files_matter() {
        let dir = tempfile::tempdir().expect("tempdir");
        let elsewhere = tempfile::tempdir().expect("tempdir");
        let watcher = notify::recommended_watcher(|_| {}).expect("watcher");
        let mut targets = Targets::new(dir.path(), watcher).expect("targets");
        let wasm = elsewhere.path().join("store.wasm");
        assert!(
            targets.update(std::slice::from_ref(&wasm)),
            "a new file is watched"
        );
        assert!(!targets.update(std::slice::from_ref(&wasm)), "no new file");
        let cases = [
            (dir.path().join("a.yaml"), true),
            (dir.path().join("b.yml"), true),
            (dir.path().join("notes.txt"), false),
            (dir.path().join("store.wasm"), false),
            (wasm.clone(), true),
            (elsewhere.path().join("other.wasm"), false),
            (elsewhere.path().join("x.yaml"), false),
        ];
        for (path, expected) in cases {
            assert_eq!(targets.matters(&path), expected, "{}", path.display());
        }
        assert_eq!(targets.watched.len(), 2);
        targets.update(&[]);
        assert_eq!(
            targets.watched.len(),
            1,
            "the .wasm directory is no longer watched"
        );
    }
}
