//! Run logs in the blobstore (object_store): `logs/{run_id}/raw` holds the exact bytes a run's
//! command wrote (after masking on the runner). The only module that uses object_store.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use object_store::path::Path as BlobPath;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};

/// The exact bytes of a run's output.
const RAW_BLOB: &str = "raw";
/// The whole log rendered to HTML, written as the run goes and served as it is.
const HTML_BLOB: &str = "log.html";
/// Uploads in flight per log before the writer waits.
const LOG_UPLOAD_CONCURRENCY: usize = 4;

/// The blobstore that holds logs.
#[derive(Clone)]
pub struct LogStore {
    store: Arc<dyn ObjectStore>,
    prefix: BlobPath,
}

impl LogStore {
    /// Opens `url`: `file:///…` (created if missing), `memory://`, or any store object_store
    /// knows; `None` means `file://` under `data_dir/blobs`.
    pub fn open(url: Option<&str>, data_dir: &Path) -> anyhow::Result<LogStore> {
        let url = match url {
            Some(url) => {
                url::Url::parse(url).with_context(|| format!("--blobs {url:?} is not a URL"))?
            }
            None => {
                let dir = data_dir.join("blobs");
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                let dir = dir.canonicalize()?;
                url::Url::from_directory_path(&dir)
                    .map_err(|()| anyhow::anyhow!("bad blob dir {}", dir.display()))?
            }
        };
        if url.scheme() == "file" {
            let dir = url.to_file_path().map_err(|()| anyhow::anyhow!("bad file URL {url}"))?;
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let (store, prefix) =
            object_store::parse_url(&url).with_context(|| format!("opening blobstore {url}"))?;
        Ok(LogStore { store: Arc::from(store), prefix })
    }

    fn path(&self, run_id: i64, name: &str) -> BlobPath {
        self.prefix.clone().join("logs").join(run_id.to_string()).join(name)
    }

    fn raw_path(&self, run_id: i64) -> BlobPath {
        self.path(run_id, RAW_BLOB)
    }

    /// A writer for a run's pre-rendered HTML log, `logs/{run_id}/log.html`.
    pub async fn html_writer(&self, run_id: i64) -> anyhow::Result<LogWriter> {
        let path = self.path(run_id, HTML_BLOB);
        let upload = self.store.put_multipart(&path).await.context("starting a log upload")?;
        Ok(LogWriter { upload: WriteMultipart::new(upload), bytes: 0, counts: false })
    }

    /// A run's pre-rendered HTML log, once the run is done.
    pub async fn html(&self, run_id: i64) -> anyhow::Result<Option<Bytes>> {
        self.get(&self.path(run_id, HTML_BLOB)).await
    }

    async fn get(&self, path: &BlobPath) -> anyhow::Result<Option<Bytes>> {
        match self.store.get(path).await {
            Ok(result) => Ok(Some(result.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// A writer for a run's raw log.
    pub async fn writer(&self, run_id: i64) -> anyhow::Result<LogWriter> {
        let upload = self
            .store
            .put_multipart(&self.raw_path(run_id))
            .await
            .context("starting a log upload")?;
        Ok(LogWriter { upload: WriteMultipart::new(upload), bytes: 0, counts: true })
    }

    /// A run's raw log, if it has one.
    pub async fn raw(&self, run_id: i64) -> anyhow::Result<Option<Bytes>> {
        match self.store.get(&self.raw_path(run_id)).await {
            Ok(result) => Ok(Some(result.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// Appends a run's output to its raw log; the blob appears when it is finished.
pub struct LogWriter {
    upload: WriteMultipart,
    bytes: u64,
    /// Whether its bytes count as stored log bytes in the metrics (the raw log's do).
    counts: bool,
}

impl LogWriter {
    pub async fn write(&mut self, data: &[u8]) -> anyhow::Result<()> {
        self.upload.wait_for_capacity(LOG_UPLOAD_CONCURRENCY).await?;
        self.upload.write(data);
        self.bytes += data.len() as u64;
        if self.counts {
            crate::metrics::add(&crate::metrics::LOG_BYTES_STORED, data.len() as u64);
        }
        Ok(())
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub async fn finish(self) -> anyhow::Result<()> {
        self.upload.finish().await.context("finishing a log upload")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_log_written_in_pieces_reads_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let logs = LogStore::open(None, dir.path()).unwrap();
        let mut writer = logs.writer(7).await.unwrap();
        writer.write(b"\x1b[31mred\xff\n").await.unwrap();
        writer.write(b"second").await.unwrap();
        assert_eq!(logs.raw(7).await.unwrap(), None);
        writer.finish().await.unwrap();
        assert_eq!(logs.raw(7).await.unwrap().unwrap(), &b"\x1b[31mred\xff\nsecond"[..]);
        assert!(dir.path().join("blobs/logs/7/raw").exists());
    }

    #[tokio::test]
    async fn memory_stores_work_too() {
        let logs = LogStore::open(Some("memory:///"), Path::new("/nonexistent")).unwrap();
        let mut writer = logs.writer(1).await.unwrap();
        writer.write(b"x").await.unwrap();
        writer.finish().await.unwrap();
        assert_eq!(logs.raw(1).await.unwrap().unwrap(), &b"x"[..]);
    }
}
