//! The content-addressed blob store behind the storage service.
//!
//! An upload is received into memory while its sha2-256 is computed; one
//! larger than [`SPILL_BYTES`] spills to a file in `tmp/` as it arrives, so a
//! large upload is never held whole. At commit its bytes are renamed (or, from
//! memory, written to `tmp/` and renamed) to `blobs/<cid>` (CIDv1, raw,
//! sha2-256) — never a partly written `blobs/` file, whatever the crash. The
//! rename happens under the index lock, so two uploads of the same bytes store
//! one file and count once; the second is reported as a duplicate, and a
//! duplicate received in memory touches no disk at all (the journey uploads
//! the same grant file for every user). A staged upload that is dropped before
//! [`BlobStore::commit`] deletes its spill file, so a rejected upload leaves
//! nothing behind. Opening an existing directory re-indexes its blobs.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use protocol::api::storage::cid_from_sha256;

/// What is known of a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// base32 CIDv1 string.
    pub cid: String,
    pub size: u64,
    /// When it was first stored.
    pub pinned_at: DateTime<Utc>,
}

impl ObjectInfo {
    /// `pinned_at` as RFC 3339 with milliseconds (Pinata's `Timestamp`).
    pub fn timestamp(&self) -> String {
        self.pinned_at.to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

/// The outcome of [`BlobStore::commit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub info: ObjectInfo,
    /// The same bytes were already stored (nothing new was written).
    pub duplicate: bool,
}

/// Blobs on disk, addressed by CID.
#[derive(Debug)]
pub struct BlobStore {
    blobs: PathBuf,
    tmp: PathBuf,
    index: Mutex<HashMap<String, ObjectInfo>>,
    used: AtomicU64,
    objects: AtomicU64,
    staged_seq: AtomicU64,
    /// A temporary data directory removed when the store is dropped.
    _owned: Option<tempfile::TempDir>,
}

impl BlobStore {
    /// Opens (creating if needed) `dir`, or a fresh temporary directory owned
    /// by the store when `dir` is `None`.
    pub fn open(dir: Option<&Path>) -> io::Result<Self> {
        let (root, owned) = match dir {
            Some(d) => (d.to_path_buf(), None),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("vana-twin-storage-")
                    .tempdir()?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        let blobs = root.join("blobs");
        let tmp = root.join("tmp");
        std::fs::create_dir_all(&blobs).map_err(|e| named(e, &blobs))?;
        std::fs::create_dir_all(&tmp).map_err(|e| named(e, &tmp))?;
        // Leftovers of uploads interrupted by a crash.
        for entry in std::fs::read_dir(&tmp)? {
            let _ = std::fs::remove_file(entry?.path());
        }
        let mut index = HashMap::new();
        let mut used = 0;
        for entry in std::fs::read_dir(&blobs)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if protocol::api::storage::parse_cid(&name).is_err() {
                continue;
            }
            let meta = entry.metadata()?;
            let pinned_at = meta
                .modified()
                .map(DateTime::<Utc>::from)
                .unwrap_or_else(|_| Utc::now());
            used += meta.len();
            index.insert(
                name.clone(),
                ObjectInfo {
                    cid: name,
                    size: meta.len(),
                    pinned_at,
                },
            );
        }
        let objects = index.len() as u64;
        Ok(BlobStore {
            blobs,
            tmp,
            index: Mutex::new(index),
            used: AtomicU64::new(used),
            objects: AtomicU64::new(objects),
            staged_seq: AtomicU64::new(0),
            _owned: owned,
        })
    }

    /// Bytes stored (each distinct object once).
    pub fn used_bytes(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Distinct objects stored.
    pub fn objects(&self) -> u64 {
        self.objects.load(Ordering::Relaxed)
    }

    /// Starts an upload (in memory until it outgrows [`SPILL_BYTES`]).
    pub fn stage(&self) -> Staged {
        Staged {
            tmp: self.tmp.clone(),
            seq: self.staged_seq.fetch_add(1, Ordering::Relaxed),
            spool: Spool::Memory(Vec::new()),
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// Finishes an upload: the bytes are stored under their CID (once).
    pub async fn commit(&self, mut staged: Staged) -> io::Result<Stored> {
        let digest: [u8; 32] = std::mem::take(&mut staged.hasher).finalize().into();
        let cid = cid_from_sha256(digest).to_string();
        let mut index = self.index.lock().await;
        if let Some(info) = index.get(&cid) {
            // `staged` removes its spill file, if any, when dropped.
            return Ok(Stored {
                info: info.clone(),
                duplicate: true,
            });
        }
        let target = self.blobs.join(&cid);
        match std::mem::replace(&mut staged.spool, Spool::Done) {
            Spool::Memory(bytes) => {
                let part = staged.part_path();
                let to = target.clone();
                tokio::task::spawn_blocking(move || write_then_rename(&part, &bytes, &to))
                    .await
                    .map_err(io::Error::other)??;
            }
            Spool::File { path, mut file } => {
                file.flush().await?;
                drop(file);
                if let Err(e) = tokio::fs::rename(&path, &target).await {
                    let _ = std::fs::remove_file(&path);
                    return Err(named(e, &target));
                }
            }
            Spool::Done => return Err(io::Error::other("staged upload already finished")),
        }
        let info = ObjectInfo {
            cid: cid.clone(),
            size: staged.size,
            pinned_at: Utc::now(),
        };
        index.insert(cid, info.clone());
        self.used.fetch_add(info.size, Ordering::Relaxed);
        self.objects.fetch_add(1, Ordering::Relaxed);
        Ok(Stored {
            info,
            duplicate: false,
        })
    }

    /// The object stored under `cid` (a normalised CID string), if any.
    pub async fn info(&self, cid: &str) -> Option<ObjectInfo> {
        self.index.lock().await.get(cid).cloned()
    }

    /// The bytes stored under `cid`, if any.
    pub async fn read(&self, cid: &str) -> io::Result<Option<Vec<u8>>> {
        if self.info(cid).await.is_none() {
            return Ok(None);
        }
        let path = self.blobs.join(cid);
        tokio::fs::read(&path)
            .await
            .map(Some)
            .map_err(|e| named(e, &path))
    }

    /// The directory holding `blobs/` and `tmp/`.
    pub fn root(&self) -> &Path {
        self.blobs.parent().unwrap_or(&self.blobs)
    }
}

/// Uploads up to this size are received in memory; a larger one spills to a
/// file in `tmp/` as it arrives.
pub const SPILL_BYTES: usize = 1 << 20;

/// An upload being received. Dropping it without committing deletes its bytes.
#[derive(Debug)]
pub struct Staged {
    tmp: PathBuf,
    seq: u64,
    spool: Spool,
    hasher: Sha256,
    size: u64,
}

/// Where a staged upload's bytes are.
#[derive(Debug)]
enum Spool {
    Memory(Vec<u8>),
    File {
        path: PathBuf,
        file: tokio::fs::File,
    },
    /// Committed.
    Done,
}

impl Staged {
    /// Appends a chunk.
    pub async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        if let Spool::Memory(buf) = &mut self.spool {
            if buf.len() + chunk.len() <= SPILL_BYTES {
                buf.extend_from_slice(chunk);
                return Ok(());
            }
            let held = std::mem::take(buf);
            let path = self.part_path();
            let file = tokio::fs::File::create(&path).await;
            // Until the file exists a failure leaves nothing to delete; from
            // here on, dropping `self` deletes it.
            let file = file.map_err(|e| named(e, &path))?;
            self.spool = Spool::File { path, file };
            if let Spool::File { path, file } = &mut self.spool {
                file.write_all(&held).await.map_err(|e| named(e, path))?;
            }
        }
        // Spilled above if it was in memory.
        match &mut self.spool {
            Spool::File { file, path } => file.write_all(chunk).await.map_err(|e| named(e, path)),
            _ => Err(io::Error::other("staged upload already finished")),
        }
    }

    /// Bytes received so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether the upload has spilled to a file.
    pub fn spilled(&self) -> bool {
        matches!(self.spool, Spool::File { .. })
    }

    fn part_path(&self) -> PathBuf {
        self.tmp
            .join(format!("{}-{}.part", rand::random::<u64>(), self.seq))
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Spool::File { path, .. } = &self.spool {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Writes `bytes` to `part`, then renames it to `target` (removing `part` if
/// either fails).
fn write_then_rename(part: &Path, bytes: &[u8], target: &Path) -> io::Result<()> {
    let result = std::fs::write(part, bytes)
        .map_err(|e| named(e, part))
        .and_then(|()| std::fs::rename(part, target).map_err(|e| named(e, target)));
    if result.is_err() {
        let _ = std::fs::remove_file(part);
    }
    result
}

fn named(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn put(store: &BlobStore, bytes: &[u8]) -> Stored {
        let mut s = store.stage();
        for chunk in bytes.chunks(7) {
            s.write(chunk).await.unwrap();
        }
        store.commit(s).await.unwrap()
    }

    #[tokio::test]
    async fn stores_once_and_reindexes_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(Some(dir.path())).unwrap();
        let a = put(&store, b"hello world").await;
        assert!(!a.duplicate);
        assert_eq!(
            a.info.cid,
            "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
        );
        let b = put(&store, b"hello world").await;
        assert!(b.duplicate);
        assert_eq!(b.info, a.info);
        assert_eq!((store.used_bytes(), store.objects()), (11, 1));
        assert_eq!(
            std::fs::read_dir(dir.path().join("blobs")).unwrap().count(),
            1
        );
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
        drop(store);
        let again = BlobStore::open(Some(dir.path())).unwrap();
        assert_eq!((again.used_bytes(), again.objects()), (11, 1));
        assert_eq!(
            again.read(&a.info.cid).await.unwrap().as_deref(),
            Some(&b"hello world"[..])
        );
    }

    fn tmp_files(root: &Path) -> usize {
        std::fs::read_dir(root.join("tmp")).unwrap().count()
    }

    #[tokio::test]
    async fn a_small_upload_stays_in_memory_and_a_duplicate_touches_no_disk() {
        let store = BlobStore::open(None).unwrap();
        let root = store.root().to_path_buf();
        let mut s = store.stage();
        s.write(&[7; 4096]).await.unwrap();
        assert!(!s.spilled());
        assert_eq!(tmp_files(&root), 0, "nothing on disk before the commit");
        let first = store.commit(s).await.unwrap();
        assert!(!first.duplicate);
        assert_eq!(
            store.read(&first.info.cid).await.unwrap().as_deref(),
            Some(&[7u8; 4096][..])
        );
        let modified = std::fs::metadata(root.join("blobs").join(&first.info.cid))
            .unwrap()
            .modified()
            .unwrap();
        let again = put(&store, &[7; 4096]).await;
        assert!(again.duplicate);
        assert_eq!(again.info, first.info);
        assert_eq!(tmp_files(&root), 0);
        assert_eq!(
            std::fs::metadata(root.join("blobs").join(&first.info.cid))
                .unwrap()
                .modified()
                .unwrap(),
            modified,
            "the stored blob is not rewritten"
        );
    }

    #[tokio::test]
    async fn a_large_upload_spills_to_a_file_and_is_stored_whole() {
        let store = BlobStore::open(None).unwrap();
        let root = store.root().to_path_buf();
        let bytes: Vec<u8> = (0..SPILL_BYTES + 70_000).map(|i| (i % 251) as u8).collect();
        let mut s = store.stage();
        for chunk in bytes.chunks(65_536) {
            s.write(chunk).await.unwrap();
        }
        assert!(s.spilled());
        assert_eq!(tmp_files(&root), 1, "the spill file");
        let stored = store.commit(s).await.unwrap();
        assert_eq!(stored.info.size, bytes.len() as u64);
        assert_eq!(tmp_files(&root), 0, "renamed into blobs/");
        assert_eq!(
            store.read(&stored.info.cid).await.unwrap().as_deref(),
            Some(&bytes[..])
        );
        // The same bytes again, spilled: a duplicate, and its file removed.
        let mut s = store.stage();
        s.write(&bytes).await.unwrap();
        assert!(s.spilled());
        assert!(store.commit(s).await.unwrap().duplicate);
        assert_eq!(tmp_files(&root), 0);
        assert_eq!(
            (store.objects(), store.used_bytes()),
            (1, bytes.len() as u64)
        );
    }

    #[tokio::test]
    async fn dropped_upload_leaves_nothing_and_temp_dir_is_removed() {
        let store = BlobStore::open(None).unwrap();
        let root = store.root().to_path_buf();
        let mut small = store.stage();
        small.write(b"abc").await.unwrap();
        let mut large = store.stage();
        large.write(&vec![1; SPILL_BYTES + 1]).await.unwrap();
        assert_eq!(tmp_files(&root), 1);
        drop((small, large));
        assert_eq!(tmp_files(&root), 0);
        assert_eq!(store.objects(), 0);
        drop(store);
        assert!(!root.exists());
    }
}
