//! Run logs in the blobstore (object_store): `logs/{run_id}/raw` holds the exact bytes a run's
//! command wrote (after masking on the runner). The only module that uses object_store.

use std::path::Path;
use std::sync::Arc;

use std::ops::Range;

use anyhow::Context;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use object_store::path::Path as BlobPath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use serde::{Deserialize, Serialize};

/// How a complete HTML log divides into pages, so that a page of a huge log is read from the
/// blob alone: page `k` (from 0) holds lines `k * lines_per_page + 1` onwards and starts at byte
/// `offsets[k]` of `log.html`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogPages {
    /// The number of lines in the log.
    pub lines: u64,
    pub lines_per_page: u64,
    pub offsets: Vec<u64>,
    /// The size of `log.html`.
    pub bytes: u64,
}

impl LogPages {
    /// The bytes of page `k` (from 0), if there is such a page.
    pub fn range(&self, k: usize) -> Option<Range<u64>> {
        let start = *self.offsets.get(k)?;
        let end = self.offsets.get(k + 1).copied().unwrap_or(self.bytes);
        Some(start..end)
    }
}

/// A log's bytes as they are read from the blobstore.
pub type BlobStream = BoxStream<'static, anyhow::Result<Bytes>>;

/// The exact bytes of a run's output.
const RAW_BLOB: &str = "raw";
/// The whole log rendered to HTML, written as the run goes and served as it is.
const HTML_BLOB: &str = "log.html";
/// Where each page of the HTML log starts, written once the log is complete.
const PAGES_BLOB: &str = "pages.json";
/// Environment variables that configure cloud blobstores, as object_store's own `from_env`
/// builders read them.
const CLOUD_ENV_PREFIXES: [&str; 3] = ["AWS_", "GOOGLE_", "AZURE_"];
/// Uploads in flight per log before the writer waits.
const LOG_UPLOAD_CONCURRENCY: usize = 4;

/// The blobstore that holds logs.
#[derive(Clone)]
pub struct LogStore {
    store: Arc<dyn ObjectStore>,
    prefix: BlobPath,
}

impl LogStore {
    /// Opens `url`: `file:///…` (created if missing), `memory://`, or, built with the `cloud`
    /// feature, `s3://`, `gs://`, `az://` and the other stores object_store knows, configured by
    /// the usual `AWS_*`, `GOOGLE_*` and `AZURE_*` environment variables; `None` means `file://`
    /// under `data_dir/blobs`.
    pub fn open(url: Option<&str>, data_dir: &Path) -> anyhow::Result<LogStore> {
        let env = std::env::vars()
            .filter(|(key, _)| CLOUD_ENV_PREFIXES.iter().any(|prefix| key.starts_with(prefix)));
        LogStore::open_with(url, data_dir, env.collect())
    }

    /// Opens `url` with object_store configuration `options` (`aws_region`, `aws_endpoint`, …).
    fn open_with(
        url: Option<&str>,
        data_dir: &Path,
        options: Vec<(String, String)>,
    ) -> anyhow::Result<LogStore> {
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
        } else if !matches!(url.scheme(), "memory") && !cfg!(feature = "cloud") {
            anyhow::bail!(
                "--blobs {url}: this tether was built without cloud blobstores \
                 (build it with `cargo build --release --features cloud`)"
            );
        }
        #[cfg(feature = "cloud")]
        // object_store's HTTP client (reqwest on rustls) needs a process-wide crypto provider;
        // an error only means one is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (store, prefix) = object_store::parse_url_opts(&url, options)
            .with_context(|| format!("opening blobstore {url}"))?;
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
        self.upload(&self.path(run_id, HTML_BLOB), false).await
    }

    /// A writer for a blob, whose bytes count as stored log bytes if `counts`.
    async fn upload(&self, path: &BlobPath, counts: bool) -> anyhow::Result<LogWriter> {
        let upload = self.store.put_multipart(path).await.context("starting a log upload")?;
        Ok(LogWriter { upload: WriteMultipart::new(upload), bytes: 0, counts })
    }

    /// A run's pre-rendered HTML log, once the run is done.
    pub async fn html(&self, run_id: i64) -> anyhow::Result<Option<Bytes>> {
        self.get(&self.path(run_id, HTML_BLOB)).await
    }

    /// Streams a run's HTML log, or the bytes `range` of it, without holding it in memory.
    pub async fn html_stream(
        &self,
        run_id: i64,
        range: Option<Range<u64>>,
    ) -> anyhow::Result<Option<BlobStream>> {
        self.stream(&self.path(run_id, HTML_BLOB), range).await
    }

    /// Streams a run's raw log without holding it in memory.
    pub async fn raw_stream(&self, run_id: i64) -> anyhow::Result<Option<BlobStream>> {
        self.stream(&self.raw_path(run_id), None).await
    }

    async fn stream(
        &self,
        path: &BlobPath,
        range: Option<Range<u64>>,
    ) -> anyhow::Result<Option<BlobStream>> {
        let options = GetOptions { range: range.map(GetRange::Bounded), ..GetOptions::default() };
        match self.store.get_opts(path, options).await {
            Ok(result) => Ok(Some(result.into_stream().map(|chunk| Ok(chunk?)).boxed())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Records where the pages of a run's complete HTML log start.
    pub async fn put_pages(&self, run_id: i64, pages: &LogPages) -> anyhow::Result<()> {
        let json = serde_json::to_vec(pages)?;
        self.store
            .put(&self.path(run_id, PAGES_BLOB), PutPayload::from(json))
            .await
            .context("storing a log's page index")?;
        Ok(())
    }

    /// Where the pages of a run's HTML log start, if it was recorded.
    pub async fn pages(&self, run_id: i64) -> anyhow::Result<Option<LogPages>> {
        let Some(json) = self.get(&self.path(run_id, PAGES_BLOB)).await? else { return Ok(None) };
        Ok(Some(serde_json::from_slice(&json).context("reading a log's page index")?))
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
        self.upload(&self.raw_path(run_id), true).await
    }

    /// A run's raw log, if it has one.
    pub async fn raw(&self, run_id: i64) -> anyhow::Result<Option<Bytes>> {
        self.get(&self.raw_path(run_id)).await
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

    #[test]
    fn a_cloud_url_without_the_cloud_feature_says_how_to_get_it() {
        let opened = LogStore::open(Some("s3://bucket/logs"), Path::new("/nonexistent"));
        if cfg!(feature = "cloud") {
            assert!(opened.is_ok());
        } else {
            let error = format!("{:#}", opened.err().unwrap());
            assert!(error.contains("--features cloud"), "{error}");
        }
    }

    /// With the `cloud` feature: an S3 store on a loopback endpoint is asked for a log, with the
    /// credentials it was given, and its 404 reads as no log.
    #[cfg(feature = "cloud")]
    #[tokio::test]
    async fn s3_requests_are_signed_and_a_missing_log_is_none() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = vec![0; 8192];
            let n = socket.read(&mut request).await.unwrap();
            let body = "<Error><Code>NoSuchKey</Code></Error>";
            let response = format!(
                "HTTP/1.1 404 Not Found\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            socket.write_all(response.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&request[..n]).into_owned()
        });
        let options = [
            ("aws_endpoint", endpoint.as_str()),
            ("aws_allow_http", "true"),
            ("aws_region", "eu-west-1"),
            ("aws_access_key_id", "test-key"),
            ("aws_secret_access_key", "test-secret"),
        ];
        let options = options.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let logs = LogStore::open_with(Some("s3://bucket/ci"), Path::new("/x"), options).unwrap();
        assert_eq!(logs.raw(7).await.unwrap(), None);
        let request = server.await.unwrap();
        assert!(request.starts_with("GET /bucket/ci/logs/7/raw "), "{request}");
        let auth = "authorization: AWS4-HMAC-SHA256 Credential=test-key/";
        assert!(request.to_ascii_lowercase().contains(&auth.to_ascii_lowercase()), "{request}");
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
