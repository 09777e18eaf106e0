//! The spool: images between "accepted" and "delivered everywhere" (FIG. 4, S41–S45).
//!
//! An upload is written into `spool/tmp/<id>/` page by page; [`Upload::finish`] fsyncs every
//! page, renames the folder to `spool/<id>/` and fsyncs the spool folder, and only after that
//! is the distribution recorded as accepted. [`Spool::remove`] erases a finished one (S45).
//! While a distribution is being delivered its pages are also held in memory once
//! ([`SpooledImage`]), shared by every terminal's connection, so pushing an image to a
//! thousand terminals reads and holds it once.
//!
//! Memory is counted by what is held: an upload kept in memory copies each piece into one
//! buffer per page, allocated at the page's announced size (which is what it reserved from the
//! budget), and keeps no part of the frames the pieces came in. A frame can therefore never
//! pin more memory than its own page data, whatever it carries, and pages come out in
//! [`CHUNK_SIZE`] pieces however the sender cut them.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use imagecast_shared::DistributionId;
use imagecast_shared::limits::CHUNK_SIZE;
use thiserror::Error;
use tokio::sync::OnceCell;

use super::files::{create_private_dir, create_private_file};

/// Images up to this size are held in memory while they are delivered.
pub const MEMORY_IMAGE_LIMIT: u64 = 64 << 20;
/// Total size of the images held in memory at once.
pub const MEMORY_TOTAL_LIMIT: u64 = 512 << 20;

/// A spool fault.
#[derive(Debug, Error)]
#[error("spool {}: {source}", path.display())]
pub struct SpoolError {
    /// The file or folder.
    pub path: PathBuf,
    /// The system's reason.
    pub source: std::io::Error,
}

fn err(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError {
        path: path.to_owned(),
        source,
    }
}

/// The spool folder.
#[derive(Clone, Debug)]
pub struct Spool {
    dir: PathBuf,
    /// Bytes that uploads in progress hold in memory, across every connection.
    uploading_bytes: Arc<AtomicU64>,
}

impl Spool {
    /// The spool in `dir` (created if missing, like every folder and file in it, for its owner
    /// only: it holds the documents in transit).
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, SpoolError> {
        let dir = dir.into();
        create_private_dir(&dir).map_err(err(&dir))?;
        let tmp = dir.join("tmp");
        create_private_dir(&tmp).map_err(err(&tmp))?;
        Ok(Self {
            dir,
            uploading_bytes: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Reserves memory for an upload's pages if the server-wide budget allows it.
    fn reserve_memory(&self, bytes: u64) -> bool {
        if bytes > MEMORY_IMAGE_LIMIT {
            return false;
        }
        self.uploading_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held + bytes <= MEMORY_TOTAL_LIMIT).then_some(held + bytes)
            })
            .is_ok()
    }

    fn dist_dir(&self, dist: &DistributionId) -> PathBuf {
        self.dir.join(dist.to_string())
    }

    /// The file holding one page of an accepted distribution.
    pub fn page_path(&self, dist: &DistributionId, page: usize) -> PathBuf {
        self.dist_dir(dist).join(page.to_string())
    }

    /// Starts receiving an upload.
    pub fn begin(&self, dist: DistributionId, sizes: &[u64]) -> Result<Upload, SpoolError> {
        let mut rnd = [0u8; 8];
        let _ = getrandom::fill(&mut rnd);
        let tmp = self
            .dir
            .join("tmp")
            .join(format!("{dist}-{:016x}", u64::from_le_bytes(rnd)));
        create_private_dir(&tmp).map_err(err(&tmp))?;
        // Small images are also kept in memory for the fan-out, within a server-wide budget;
        // the others are read back from the spool file while they are delivered.
        let total: u64 = sizes.iter().sum();
        let keep = self.reserve_memory(total);
        Ok(Upload {
            spool: self.clone(),
            dist,
            tmp,
            sizes: sizes.to_vec(),
            page: 0,
            offset: 0,
            file: None,
            keep: keep.then(Vec::new),
            reserved: if keep { total } else { 0 },
        })
    }

    /// Erases an accepted distribution's pages (FIG. 4, S45).
    pub fn remove(&self, dist: &DistributionId) -> Result<(), SpoolError> {
        let dir = self.dist_dir(dist);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(err(&dir)(e)),
        }
    }

    /// Removes unfinished uploads and spooled images that no live distribution needs.
    pub fn clean(&self, live: &dyn Fn(&DistributionId) -> bool) -> Result<usize, SpoolError> {
        let tmp = self.dir.join("tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        create_private_dir(&tmp).map_err(err(&tmp))?;
        let mut removed = 0;
        for entry in std::fs::read_dir(&self.dir)
            .map_err(err(&self.dir))?
            .flatten()
        {
            let name = entry.file_name();
            let Some(dist) = name.to_str().and_then(|n| n.parse::<DistributionId>().ok()) else {
                continue;
            };
            if !live(&dist) {
                std::fs::remove_dir_all(entry.path()).map_err(err(&entry.path()))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// An upload being received. Dropping it unfinished removes its pages.
pub struct Upload {
    spool: Spool,
    dist: DistributionId,
    tmp: PathBuf,
    sizes: Vec<u64>,
    page: usize,
    offset: u64,
    file: Option<File>,
    /// The pages held in memory, when the upload is kept there: one buffer per page, with
    /// room for exactly its announced size.
    keep: Option<Vec<BytesMut>>,
    /// Bytes of the server-wide upload memory budget this upload holds.
    reserved: u64,
}

/// Why a piece of page data was refused.
#[derive(Debug, Error)]
pub enum UploadError {
    /// The piece is not the one expected next.
    #[error("{0}")]
    OutOfOrder(String),
    /// The page would grow past its announced size.
    #[error("{0}")]
    TooLong(String),
    /// Storing failed.
    #[error(transparent)]
    Spool(#[from] SpoolError),
}

impl Upload {
    /// Bytes still expected.
    pub fn remaining(&self) -> u64 {
        let done: u64 = self.sizes[..self.page.min(self.sizes.len())].iter().sum();
        self.sizes.iter().sum::<u64>() - done - self.offset
    }

    /// Stores the next piece, which must continue exactly where the last one ended.
    pub fn write(&mut self, page: u32, offset: u64, data: Bytes) -> Result<(), UploadError> {
        let page = page as usize;
        // Pages before `page` must be complete; empty pages may be skipped over.
        while self.page < page && self.page < self.sizes.len() {
            if self.offset != self.sizes[self.page] {
                break;
            }
            self.close_page()?;
        }
        if page != self.page || offset != self.offset {
            return Err(UploadError::OutOfOrder(format!(
                "page data for page {} at byte {offset}, but page {} at byte {} was expected",
                page + 1,
                self.page + 1,
                self.offset
            )));
        }
        let size = self.sizes.get(page).copied().unwrap_or(0);
        if page >= self.sizes.len() || offset + data.len() as u64 > size {
            return Err(UploadError::TooLong(format!(
                "page {} is longer than its announced {size} bytes",
                page + 1
            )));
        }
        if self.file.is_none() {
            let path = self.tmp.join(page.to_string());
            self.file = Some(create_private_file(&path).map_err(err(&path))?);
        }
        if let Some(f) = self.file.as_mut() {
            f.write_all(&data).map_err(err(&self.tmp))?;
        }
        self.offset += data.len() as u64;
        if let Some(keep) = self.keep.as_mut() {
            if keep.len() <= page {
                keep.resize_with(page + 1, BytesMut::new);
            }
            let buf = &mut keep[page];
            if buf.capacity() == 0 {
                // Within the reservation: `size` is at most the image's reserved total.
                *buf = BytesMut::with_capacity(size as usize);
            }
            // A copy, so the frame the piece came in is freed at once.
            buf.extend_from_slice(&data);
        }
        Ok(())
    }

    fn close_page(&mut self) -> Result<(), SpoolError> {
        let path = self.tmp.join(self.page.to_string());
        match self.file.take() {
            Some(f) => f.sync_all().map_err(err(&path))?,
            None => create_private_file(&path)
                .and_then(|f| f.sync_all())
                .map_err(err(&path))?,
        }
        self.page += 1;
        self.offset = 0;
        Ok(())
    }

    /// True when every announced byte has arrived.
    pub fn complete(&self) -> bool {
        self.remaining() == 0
    }

    /// Makes the upload durable: fsyncs every page, moves the folder into place and fsyncs
    /// the spool. Blocking: run it off the async threads.
    pub fn finish(mut self) -> Result<SpooledImage, SpoolError> {
        while self.page < self.sizes.len() {
            self.close_page()?;
        }
        sync_dir(&self.tmp)?;
        let target = self.spool.dist_dir(&self.dist);
        if target.exists() {
            std::fs::remove_dir_all(&target).map_err(err(&target))?;
        }
        std::fs::rename(&self.tmp, &target).map_err(err(&target))?;
        sync_dir(&self.spool.dir)?;
        let keep = self.keep.take();
        let image = SpooledImage::new(&self.spool, self.dist, &self.sizes, keep);
        self.tmp = PathBuf::new();
        Ok(image)
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        self.spool
            .uploading_bytes
            .fetch_sub(self.reserved, Ordering::AcqRel);
        if !self.tmp.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(err(dir))
}

/// An accepted image, ready to be pushed: its pages in memory, or on disk when large.
pub struct SpooledImage {
    pages: Vec<SpooledPage>,
}

struct SpooledPage {
    path: PathBuf,
    size: u64,
    /// The whole page, when it is held in memory.
    memory: Option<Bytes>,
}

impl SpooledImage {
    fn new(
        spool: &Spool,
        dist: DistributionId,
        sizes: &[u64],
        memory: Option<Vec<BytesMut>>,
    ) -> Self {
        let mut memory = memory.map(|m| m.into_iter());
        let pages = sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| SpooledPage {
                path: spool.page_path(&dist, i),
                size,
                memory: memory
                    .as_mut()
                    .map(|m| m.next().unwrap_or_default().freeze()),
            })
            .collect();
        Self { pages }
    }

    /// Reads an accepted image back from the spool (after a restart), into memory when it
    /// is small enough.
    pub fn load(
        spool: &Spool,
        dist: DistributionId,
        sizes: &[u64],
        into_memory: bool,
    ) -> Result<Self, SpoolError> {
        let mut image = Self::new(spool, dist, sizes, None);
        if into_memory {
            for page in &mut image.pages {
                let bytes = Bytes::from(std::fs::read(&page.path).map_err(err(&page.path))?);
                if bytes.len() as u64 != page.size {
                    return Err(SpoolError {
                        path: page.path.clone(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!("holds {} bytes, {} expected", bytes.len(), page.size),
                        ),
                    });
                }
                page.memory = Some(bytes);
            }
        }
        Ok(image)
    }

    /// Number of pages.
    pub fn page_count(&self) -> usize {
        self.pages.len()
    }

    /// Bytes held in memory.
    pub fn memory_bytes(&self) -> u64 {
        self.pages
            .iter()
            .filter_map(|p| p.memory.as_ref())
            .map(|m| m.len() as u64)
            .sum()
    }

    /// The pieces of page `page`, each at most [`CHUNK_SIZE`], in order.
    pub async fn chunks(&self, page: usize) -> Result<PageChunks<'_>, SpoolError> {
        let p = &self.pages[page];
        Ok(PageChunks {
            page: p,
            index: 0,
            file: None,
        })
    }
}

/// Iterates a page's pieces, from memory or from the spool file.
pub struct PageChunks<'a> {
    page: &'a SpooledPage,
    index: usize,
    file: Option<Arc<File>>,
}

impl PageChunks<'_> {
    /// The next piece with its byte offset, or `None` at the end of the page.
    pub async fn next(&mut self) -> Result<Option<(u64, Bytes)>, SpoolError> {
        let offset = (self.index * CHUNK_SIZE) as u64;
        if offset >= self.page.size {
            return Ok(None);
        }
        self.index += 1;
        let len = CHUNK_SIZE.min((self.page.size - offset) as usize);
        if let Some(mem) = &self.page.memory {
            let start = offset as usize;
            return Ok(mem
                .get(start..start + len)
                .map(|_| (offset, mem.slice(start..start + len))));
        }
        if self.file.is_none() {
            let path = self.page.path.clone();
            let f = tokio::task::spawn_blocking(move || File::open(&path))
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))
                .and_then(|r| r)
                .map_err(err(&self.page.path))?;
            self.file = Some(Arc::new(f));
        }
        let file = self.file.clone().ok_or_else(|| SpoolError {
            path: self.page.path.clone(),
            source: std::io::Error::other("spool file not open"),
        })?;
        let bytes = tokio::task::spawn_blocking(move || {
            use std::os::unix::fs::FileExt;
            let mut buf = vec![0u8; len];
            file.read_exact_at(&mut buf, offset).map(|_| buf)
        })
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))
        .and_then(|r| r)
        .map_err(err(&self.page.path))?;
        Ok(Some((offset, Bytes::from(bytes))))
    }
}

/// The images currently being delivered, each held once and shared.
#[derive(Default)]
pub struct ImageCache {
    inner: Mutex<HashMap<DistributionId, Arc<OnceCell<Arc<SpooledImage>>>>>,
}

impl ImageCache {
    /// Puts a freshly accepted image in the cache.
    pub fn insert(&self, dist: DistributionId, mut image: SpooledImage) {
        if self.held_bytes() + image.memory_bytes() > MEMORY_TOTAL_LIMIT {
            for page in &mut image.pages {
                page.memory = None;
            }
        }
        let cell = Arc::new(OnceCell::new_with(Some(Arc::new(image))));
        self.lock().insert(dist, cell);
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<DistributionId, Arc<OnceCell<Arc<SpooledImage>>>>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The image, loaded from the spool once if it is not held yet.
    pub async fn get(
        &self,
        spool: &Spool,
        dist: DistributionId,
        sizes: &[u64],
    ) -> Result<Arc<SpooledImage>, SpoolError> {
        let cell = self.lock().entry(dist).or_default().clone();
        let image = cell
            .get_or_try_init(|| async {
                let total: u64 = sizes.iter().sum();
                let held: u64 = self.held_bytes();
                let into_memory = total <= MEMORY_IMAGE_LIMIT && held + total <= MEMORY_TOTAL_LIMIT;
                let spool = spool.clone();
                let sizes = sizes.to_vec();
                tokio::task::spawn_blocking(move || {
                    SpooledImage::load(&spool, dist, &sizes, into_memory).map(Arc::new)
                })
                .await
                .map_err(|e| SpoolError {
                    path: PathBuf::from(dist.to_string()),
                    source: std::io::Error::other(e.to_string()),
                })?
            })
            .await?;
        Ok(image.clone())
    }

    fn held_bytes(&self) -> u64 {
        self.lock()
            .values()
            .filter_map(|c| c.get())
            .map(|i| i.memory_bytes())
            .sum()
    }

    /// Forgets a finished distribution's image.
    pub fn remove(&self, dist: &DistributionId) {
        self.lock().remove(dist);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_share_one_memory_budget_and_give_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let big = MEMORY_IMAGE_LIMIT;
        let n = (MEMORY_TOTAL_LIMIT / big) as usize;
        let held: Vec<Upload> = (0..n)
            .map(|_| spool.begin(DistributionId::new_random(), &[big]).unwrap())
            .collect();
        assert!(held.iter().all(|u| u.keep.is_some()));
        let over = spool.begin(DistributionId::new_random(), &[big]).unwrap();
        assert!(
            over.keep.is_none(),
            "over the budget: streamed from disk instead"
        );
        drop(over);
        drop(held);
        assert_eq!(spool.uploading_bytes.load(Ordering::Acquire), 0);
        let again = spool.begin(DistributionId::new_random(), &[10]).unwrap();
        assert!(again.keep.is_some());
    }

    /// Uploads `pages` cut into pieces of `piece` bytes, then reads the accepted image back the
    /// way deliveries do.
    async fn round_trip(spool: &Spool, pages: &[Vec<u8>], piece: usize) -> Vec<Vec<u8>> {
        let sizes: Vec<u64> = pages.iter().map(|p| p.len() as u64).collect();
        let dist = DistributionId::new_random();
        let mut up = spool.begin(dist, &sizes).unwrap();
        for (i, page) in pages.iter().enumerate() {
            for (k, chunk) in page.chunks(piece).enumerate() {
                up.write(i as u32, (k * piece) as u64, Bytes::copy_from_slice(chunk))
                    .unwrap();
            }
        }
        assert!(up.complete());
        let image = up.finish().unwrap();
        let mut out = Vec::new();
        for i in 0..image.page_count() {
            let mut chunks = image.chunks(i).await.unwrap();
            let mut page = Vec::new();
            while let Some((offset, bytes)) = chunks.next().await.unwrap() {
                assert_eq!(offset, page.len() as u64);
                assert!(bytes.len() <= CHUNK_SIZE);
                page.extend_from_slice(&bytes);
            }
            out.push(page);
        }
        out
    }

    #[tokio::test]
    async fn any_piece_size_comes_out_byte_identical() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let page = |len: usize, seed: u8| -> Vec<u8> {
            (0..len)
                .map(|i| (i as u8).wrapping_mul(31) ^ seed)
                .collect()
        };
        let pages = vec![
            page(1024, 1),
            Vec::new(),
            page(CHUNK_SIZE * 2 + 17, 2),
            page(3, 3),
        ];
        for piece in [
            1,
            100,
            4095,
            CHUNK_SIZE - 1,
            CHUNK_SIZE,
            CHUNK_SIZE + 1,
            1 << 20,
        ] {
            // Held in memory (small image), as the fan-out does.
            assert_eq!(
                round_trip(&spool, &pages, piece).await,
                pages,
                "piece {piece}"
            );
        }
        // Read back from disk, as after a restart.
        let sizes: Vec<u64> = pages.iter().map(|p| p.len() as u64).collect();
        let dist = DistributionId::new_random();
        let mut up = spool.begin(dist, &sizes).unwrap();
        for (i, p) in pages.iter().enumerate() {
            for (k, chunk) in p.chunks(100).enumerate() {
                up.write(i as u32, (k * 100) as u64, Bytes::copy_from_slice(chunk))
                    .unwrap();
            }
        }
        drop(up.finish().unwrap());
        for into_memory in [false, true] {
            let image = SpooledImage::load(&spool, dist, &sizes, into_memory).unwrap();
            for (i, p) in pages.iter().enumerate() {
                let mut chunks = image.chunks(i).await.unwrap();
                let mut got = Vec::new();
                while let Some((_, bytes)) = chunks.next().await.unwrap() {
                    got.extend_from_slice(&bytes);
                }
                assert_eq!(&got, p, "page {i}, into memory {into_memory}");
            }
        }
    }

    #[test]
    fn a_piece_keeps_nothing_of_its_frame() {
        // A 1-byte piece borrowed from a 1 MiB frame (as the zero-copy decoder hands it over)
        // must not keep the frame alive, in the upload or in the accepted image.
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let mut up = spool.begin(DistributionId::new_random(), &[2]).unwrap();
        let mut frames = Vec::new();
        for offset in 0..2u64 {
            let frame = Bytes::from(vec![7u8; 1 << 20]);
            up.write(0, offset, frame.slice(0..1)).unwrap();
            frames.push(frame);
        }
        assert!(
            frames.iter().all(|f| f.is_unique()),
            "the upload holds a frame"
        );
        let image = up.finish().unwrap();
        assert!(
            frames.iter().all(|f| f.is_unique()),
            "the image holds a frame"
        );
        assert_eq!(image.memory_bytes(), 2);
    }
}
