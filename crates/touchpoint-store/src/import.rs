//! The import path: order files -> normalised orders -> identity resolution ->
//! store, streaming, in chunks of one transaction each.
//!
//! A reader thread parses the file and hands chunks of orders over a bounded
//! channel, so memory holds a few chunks and the identity index, never the
//! file. Each chunk is written in one transaction together with the identity
//! changes it caused, so a crash leaves the store as it was after the last
//! whole chunk, and running the import again finishes the job: every write is
//! keyed (orders by channel + order id, lines by line number, identifiers by
//! kind + value), and an order whose content did not change is not touched.

use std::collections::HashSet;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;
use touchpoint_core::identity::{
    EventKind, IdentityConfig, IdentityGraph, IdentityOp, IdentityStats, NodeId, RecordRef,
};
use touchpoint_core::ingest::{
    self, FileError, InputFormat, OrderRecord, ReadOptions, Rejected, RowError,
};
use touchpoint_core::{Identifier, MemberId};

use touchpoint_core::domain::DomainEvent;

use crate::unit_of_work::UnitOfWork;
use crate::writes::{self, PreparedOrder};
pub use crate::writes::{OrderChange, PreviousOrder, WriteCounts};
use crate::{Store, StoreError};

/// How to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The files' format.
    pub format: InputFormat,
    /// Normalisation settings (channel, country, currency, time zone, encoding).
    pub read: ReadOptions,
    /// Identity resolution settings.
    pub identity: IdentityConfig,
    /// Import nothing if any row is bad.
    pub strict: bool,
    /// Where to write rejected rows (with several input files, one file each:
    /// `STEM-INPUTNAME`).
    pub rejects: Option<PathBuf>,
    /// Orders per transaction.
    pub chunk_orders: usize,
    /// Rebuild the analytics summaries at the end when the import made them
    /// stale. A caller importing several files in a row (the demo) turns it off
    /// for all but the last; reports also rebuild stale summaries themselves.
    pub refresh_analytics: bool,
}

/// Errors that stop an import.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A file could not be opened.
    #[error("{path}: {source}")]
    Open {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not in the format at all.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        source: FileError,
    },
    /// Writing the rejects file failed.
    #[error("cannot write rejects file {path}: {source}")]
    Rejects {
        /// The rejects file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Counts of orders.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OrderCounts {
    /// New orders.
    pub inserted: u64,
    /// Orders that existed with other content (a status change, a refund).
    pub updated: u64,
    /// Orders that existed with the same content.
    pub unchanged: u64,
    /// Orders rejected (all rows of a rejected order are rejected).
    pub rejected: u64,
}

/// Counts of order lines.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LineCounts {
    /// Lines of new orders.
    pub inserted: u64,
    /// Lines of updated orders.
    pub updated: u64,
    /// Lines of unchanged orders.
    pub unchanged: u64,
    /// Rows rejected.
    pub rejected: u64,
}

impl OrderCounts {
    fn add(&mut self, w: WriteCounts) {
        self.inserted += w.inserted;
        self.updated += w.updated;
        self.unchanged += w.unchanged;
    }
}
impl LineCounts {
    fn add(&mut self, w: WriteCounts) {
        self.inserted += w.inserted;
        self.updated += w.updated;
        self.unchanged += w.unchanged;
    }
}

/// One rejected order, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct RejectedOrder {
    /// The order id if it could be read.
    pub order_id: Option<String>,
    /// Every problem, each with line, column, value and accepted form.
    pub errors: Vec<RowError>,
}

/// What happened to one file.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    /// The file as given.
    pub path: String,
    /// Orders.
    pub orders: OrderCounts,
    /// Lines.
    pub lines: LineCounts,
    /// Every rejected order with its errors.
    pub rejected: Vec<RejectedOrder>,
    /// Where its rejected rows were written.
    pub rejects_file: Option<String>,
}

/// The result of `touchpoint import orders`. Serialised as the documented JSON
/// shape of `--output json` (see docs/import.md).
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// The format.
    pub format: InputFormat,
    /// Per file.
    pub files: Vec<FileReport>,
    /// Totals of orders.
    pub orders: OrderCounts,
    /// Totals of lines.
    pub lines: LineCounts,
    /// Identity changes.
    pub identity: IdentityStats,
    /// Identifiers marked shared during this import, as `kind value`.
    pub shared_identifiers: Vec<String>,
    /// `--strict` found bad rows, so nothing was imported.
    pub strict_aborted: bool,
}

impl ImportReport {
    /// Exit status convention: 0 all rows in, 2 some rejected (or strict abort).
    pub fn has_rejects(&self) -> bool {
        self.orders.rejected > 0
    }
}

/// Progress of an import, for a progress bar.
#[derive(Debug, Clone)]
pub enum Progress {
    /// A file is starting; its size in bytes.
    File {
        /// The file.
        path: String,
        /// Its size.
        bytes: u64,
    },
    /// Bytes of the current file read so far.
    Read(u64),
}

type Chunk = Vec<Result<OrderRecord, Rejected>>;

fn open_reader(
    path: &Path,
    options: &ImportOptions,
) -> Result<Box<dyn ingest::OrderReader>, ImportError> {
    let shown = path.display().to_string();
    let file = File::open(path).map_err(|source| ImportError::Open {
        path: shown.clone(),
        source,
    })?;
    ingest::open(
        options.format,
        Box::new(BufReader::with_capacity(256 * 1024, file)),
        &shown,
        &options.read,
    )
    .map_err(|source| ImportError::File {
        path: shown,
        source,
    })
}

/// Chunks of a file with its header, as the reader thread sends them.
type ChunkReceiver = tokio::sync::mpsc::Receiver<Result<(Vec<String>, Chunk), ImportError>>;

/// Read a file on a thread, sending chunks; returns the header through the channel's first message.
fn spawn_reader(
    path: PathBuf,
    options: ImportOptions,
    read_bytes: Arc<AtomicU64>,
) -> (ChunkReceiver, std::thread::JoinHandle<()>) {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let handle = std::thread::spawn(move || {
        let mut reader = match open_reader(&path, &options) {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        let header = reader.header().to_vec();
        let mut chunk = Vec::with_capacity(options.chunk_orders);
        while let Some(item) = reader.next() {
            chunk.push(item);
            if chunk.len() >= options.chunk_orders {
                read_bytes.store(reader.bytes_read(), Ordering::Relaxed);
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(options.chunk_orders));
                if tx.blocking_send(Ok((header.clone(), full))).is_err() {
                    return;
                }
            }
        }
        read_bytes.store(reader.bytes_read(), Ordering::Relaxed);
        let _ = tx.blocking_send(Ok((header, chunk)));
    });
    (rx, handle)
}

/// Writes the rejected rows of one input file, creating the file on first use:
/// CSV with the input's header, or the raw lines for JSONL input.
struct RejectsWriter {
    path: PathBuf,
    out: Option<RejectsOut>,
}

enum RejectsOut {
    Csv(Box<csv::Writer<File>>),
    Lines(std::io::BufWriter<File>),
}

impl RejectsWriter {
    fn io_err(&self, source: std::io::Error) -> ImportError {
        ImportError::Rejects {
            path: self.path.display().to_string(),
            source,
        }
    }

    fn write(&mut self, header: &[String], rejected: &Rejected) -> Result<(), ImportError> {
        use std::io::Write;
        if self.out.is_none() {
            let file = File::create(&self.path).map_err(|e| self.io_err(e))?;
            self.out = Some(if header.is_empty() {
                RejectsOut::Lines(std::io::BufWriter::new(file))
            } else {
                let mut w = csv::WriterBuilder::new().flexible(true).from_writer(file);
                w.write_record(header).map_err(|e| self.io_err(e.into()))?;
                RejectsOut::Csv(Box::new(w))
            });
        }
        let result: std::io::Result<()> = match self.out.as_mut().expect("just created") {
            RejectsOut::Csv(w) => rejected
                .raw_rows
                .iter()
                .try_for_each(|row| w.write_record(row).map_err(Into::into)),
            RejectsOut::Lines(w) => rejected
                .raw_rows
                .iter()
                .flatten()
                .try_for_each(|line| writeln!(w, "{line}")),
        };
        result.map_err(|e| self.io_err(e))
    }

    fn finish(mut self) -> Result<Option<String>, ImportError> {
        use std::io::Write;
        let result = match self.out.as_mut() {
            Some(RejectsOut::Csv(w)) => w.flush(),
            Some(RejectsOut::Lines(w)) => w.flush(),
            None => return Ok(None),
        };
        result.map_err(|e| self.io_err(e))?;
        Ok(Some(self.path.display().to_string()))
    }
}

fn rejects_path(base: &Path, input: &Path, several: bool) -> PathBuf {
    if !several {
        return base.to_path_buf();
    }
    let stem = base
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "rejects".into());
    let name = input
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    base.with_file_name(format!("{stem}-{name}"))
}

fn tally(ops: &[IdentityOp], stats: &mut IdentityStats, shared: &mut Vec<String>) {
    for op in ops {
        match op {
            IdentityOp::NewMember { .. } => stats.members_created += 1,
            IdentityOp::NewIdentifier { .. } => stats.identifiers_created += 1,
            IdentityOp::Merge { .. } => stats.merges += 1,
            IdentityOp::Split { .. } => stats.splits += 1,
            IdentityOp::MarkShared { .. } => stats.shared_marked += 1,
            IdentityOp::Event(e) => {
                if e.kind == EventKind::Link {
                    stats.links += 1;
                }
                if e.kind == EventKind::Shared {
                    shared.push(format!("{} {}", e.identifier.kind(), e.identifier.value()));
                }
            }
            _ => {}
        }
    }
}

/// Import order files into the store. Stops at the first file that is not in
/// the format (before importing anything: every file's header is checked
/// first) or on a store failure; bad rows are reported and skipped.
pub async fn import_files(
    store: &Store,
    paths: &[PathBuf],
    options: &ImportOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<ImportReport, ImportError> {
    // Every header first, so a wrong file fails before anything is written.
    for p in paths {
        let o = options.clone();
        let p2 = p.clone();
        tokio::task::spawn_blocking(move || open_reader(&p2, &o).map(|_| ()))
            .await
            .map_err(|e| StoreError::Corrupt(format!("reader thread failed: {e}")))??;
    }
    let mut report = ImportReport {
        format: options.format,
        files: Vec::new(),
        orders: OrderCounts::default(),
        lines: LineCounts::default(),
        identity: IdentityStats::default(),
        shared_identifiers: Vec::new(),
        strict_aborted: false,
    };

    if options.strict {
        let mut any = false;
        for p in paths {
            let fr = check_file(p, options).await?;
            any |= fr.orders.rejected > 0;
            report.orders.rejected += fr.orders.rejected;
            report.lines.rejected += fr.lines.rejected;
            report.files.push(fr);
        }
        if any {
            report.strict_aborted = true;
            return Ok(report);
        }
        report.files.clear();
        report.orders = OrderCounts::default();
        report.lines = LineCounts::default();
    }

    let mut writer = Writer::new(options.identity);
    for path in paths {
        let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        progress(Progress::File {
            path: path.display().to_string(),
            bytes,
        });
        let read = Arc::new(AtomicU64::new(0));
        let (mut rx, handle) = spawn_reader(path.clone(), options.clone(), read.clone());
        let mut fr = FileReport {
            path: path.display().to_string(),
            orders: OrderCounts::default(),
            lines: LineCounts::default(),
            rejected: Vec::new(),
            rejects_file: None,
        };
        let mut rejects = options.rejects.as_ref().map(|base| RejectsWriter {
            path: rejects_path(base, path, paths.len() > 1),
            out: None,
        });
        while let Some(msg) = rx.recv().await {
            let (header, chunk) = msg?;
            let mut good = Vec::with_capacity(chunk.len());
            for item in chunk {
                match item {
                    Ok(r) => good.push(r),
                    Err(rej) => {
                        fr.orders.rejected += 1;
                        fr.lines.rejected += rej.raw_rows.len() as u64;
                        if let Some(w) = rejects.as_mut() {
                            w.write(&header, &rej)?;
                        }
                        fr.rejected.push(RejectedOrder {
                            order_id: rej.order_id,
                            errors: rej.errors,
                        });
                    }
                }
            }
            let batch = writer.write_orders(store, &good).await?;
            fr.orders.add(batch.orders);
            fr.lines.add(batch.lines);
            progress(Progress::Read(read.load(Ordering::Relaxed)));
        }
        let _ = handle.join();
        if let Some(w) = rejects {
            fr.rejects_file = w.finish()?;
        }
        report.orders.inserted += fr.orders.inserted;
        report.orders.updated += fr.orders.updated;
        report.orders.unchanged += fr.orders.unchanged;
        report.orders.rejected += fr.orders.rejected;
        report.lines.inserted += fr.lines.inserted;
        report.lines.updated += fr.lines.updated;
        report.lines.unchanged += fr.lines.unchanged;
        report.lines.rejected += fr.lines.rejected;
        report.files.push(fr);
    }
    report.identity = writer.stats().clone();
    report.shared_identifiers = writer.shared_marked().to_vec();
    // The analytics model is current already (kept by every chunk); write a
    // new snapshot of it so that the next report loads it in one read.
    if options.refresh_analytics {
        store.compact_facts().await?;
    }
    Ok(report)
}

/// Parse a whole file without writing, for `--strict`.
async fn check_file(path: &Path, options: &ImportOptions) -> Result<FileReport, ImportError> {
    let p = path.to_path_buf();
    let o = options.clone();
    tokio::task::spawn_blocking(move || {
        let reader = open_reader(&p, &o)?;
        let mut fr = FileReport {
            path: p.display().to_string(),
            orders: OrderCounts::default(),
            lines: LineCounts::default(),
            rejected: Vec::new(),
            rejects_file: None,
        };
        for item in reader {
            if let Err(rej) = item {
                fr.orders.rejected += 1;
                fr.lines.rejected += rej.raw_rows.len() as u64;
                fr.rejected.push(RejectedOrder {
                    order_id: rej.order_id,
                    errors: rej.errors,
                });
            }
        }
        Ok(fr)
    })
    .await
    .map_err(|e| StoreError::Corrupt(format!("reader thread failed: {e}")))?
}

/// What writing a batch of orders did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct BatchResult {
    /// Orders inserted / updated / unchanged.
    pub orders: WriteCounts,
    /// Lines inserted / updated / unchanged.
    pub lines: WriteCounts,
    /// The member each order belongs to, in input order (`None` for an order
    /// without identifiers, which is not written).
    pub members: Vec<Option<MemberId>>,
    /// Orders inserted or changed, as stored (for in-transaction handlers of
    /// the caller).
    #[serde(skip)]
    pub changes: Vec<OrderChange>,
}

/// One `identify` call for [`Writer::identify_in`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identify {
    /// The record (the event's source and messageId).
    pub record: RecordRef,
    /// The identifiers it joins.
    pub identifiers: Vec<Identifier>,
    /// What its traits change in the member's profile.
    pub profile: Option<crate::profiles::ProfileChange>,
    /// The invite code of its `referral_code` trait, with the event's time
    /// (UTC ms): the member is attributed to it in the same unit of work.
    pub referral: Option<(String, i64)>,
}

/// The identity-aware writer behind every path that adds orders or identities
/// (file imports, the HTTP API, tracking events): it keeps the identity index
/// in memory, reloads it when another writer changed identities, and writes
/// into a [`UnitOfWork`] the rows, the identity changes, the consequences that
/// must commit with them (the analytics model; see [`Writer::write_orders_in`])
/// and their domain events. Share one per process (behind a mutex); several
/// processes are safe too, because each unit of work takes the identity lock
/// and checks the identity version first.
#[derive(Debug)]
pub struct Writer {
    config: IdentityConfig,
    graph: Option<(IdentityGraph, i64)>,
    tried_profiles: HashSet<(MemberId, u8)>,
    stats: IdentityStats,
    shared: Vec<String>,
}

impl Writer {
    /// A writer; the identity index is loaded on first use.
    pub fn new(config: IdentityConfig) -> Self {
        Self {
            config,
            graph: None,
            tried_profiles: HashSet::new(),
            stats: IdentityStats::default(),
            shared: Vec::new(),
        }
    }

    /// Identity changes made through this writer so far.
    pub fn stats(&self) -> &IdentityStats {
        &self.stats
    }

    /// Identifiers marked shared through this writer so far, as `kind value`.
    pub fn shared_marked(&self) -> &[String] {
        &self.shared
    }

    /// Take the identity lock in `uow` (once) with an up-to-date index.
    async fn lock(&mut self, uow: &mut UnitOfWork) -> Result<(), StoreError> {
        if uow.identity_version.is_some() {
            if self.graph.is_none() {
                let g = writes::load_identity(&mut uow.conn(), self.config).await?;
                self.graph = Some((g, uow.identity_version.unwrap_or(0)));
            }
            return Ok(());
        }
        let version = writes::lock_identity(&mut uow.conn()).await?;
        if !matches!(&self.graph, Some((_, v)) if *v == version) {
            let g = writes::load_identity(&mut uow.conn(), self.config).await?;
            self.graph = Some((g, version));
        }
        uow.identity_version = Some(version);
        Ok(())
    }

    /// Persist what the index did since the last call, inside `uow`, with
    /// the analytics facts of orders that moved between members and the
    /// identity events. Returns whether anything changed.
    async fn flush_identity(&mut self, uow: &mut UnitOfWork) -> Result<bool, StoreError> {
        let (g, _) = self.graph.as_mut().expect("locked");
        let ops = g.take_ops();
        if ops.is_empty() {
            return Ok(false);
        }
        tally(&ops, &mut self.stats, &mut self.shared);
        let (events, moved) = identity_consequences(&ops);
        let merges: Vec<(i64, i64)> = ops
            .iter()
            .filter_map(|o| match o {
                IdentityOp::Merge { kept, absorbed } => Some((kept.get(), absorbed.get())),
                _ => None,
            })
            .collect();
        let now = uow.now();
        uow.new_identifiers
            .extend(ops.iter().filter_map(|o| match o {
                IdentityOp::NewIdentifier { id, .. } => Some(*id),
                _ => None,
            }));
        writes::apply_identity_ops(&mut uow.conn(), ops, now).await?;
        crate::loyalty::on_merges(uow, &merges).await?;
        // A new random version: a writer whose unit of work is rolled back
        // (its index ran ahead) can never match what another writer commits.
        let version: i64 = rand::random::<i64>() & i64::MAX;
        writes::set_identity_version(&mut uow.conn(), version).await?;
        uow.identity_version = Some(version);
        if let Some((_, v)) = self.graph.as_mut() {
            *v = version;
        }
        crate::facts::refresh_members(uow, &moved).await?;
        for e in events {
            uow.emit(e);
        }
        Ok(true)
    }

    /// Run `f` and forget the index if it fails (it may have run ahead of
    /// what the unit of work holds).
    fn guard<T>(&mut self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        if r.is_err() {
            self.graph = None;
        }
        r
    }

    /// Resolve records that carry identifiers but no order (tracking
    /// `identify` calls, aliases) and persist the identity changes, in one
    /// unit of work of its own. Returns each record's member (`None` when it
    /// has no identifiers).
    pub async fn resolve(
        &mut self,
        store: &Store,
        records: &[(RecordRef, Vec<Identifier>)],
    ) -> Result<Vec<Option<MemberId>>, StoreError> {
        let mut uow = store.unit_of_work().await?;
        let members = self.resolve_in(&mut uow, records).await?;
        let r = uow.commit().await.map(|_| members);
        self.guard(r)
    }

    /// [`Writer::resolve`] inside the caller's unit of work.
    pub async fn resolve_in(
        &mut self,
        uow: &mut UnitOfWork,
        records: &[(RecordRef, Vec<Identifier>)],
    ) -> Result<Vec<Option<MemberId>>, StoreError> {
        let r = self.resolve_inner(uow, records).await;
        self.guard(r)
    }

    /// `identify` calls: resolve each record's identifiers (as
    /// [`Writer::resolve_in`]) and apply the profile change its traits make
    /// to the member it resolved to, through the profile door
    /// ([`crate::profiles::apply_in`]), in the caller's unit of work. So the
    /// identity change and the profile change commit together. Returns each
    /// record's member.
    pub async fn identify_in(
        &mut self,
        uow: &mut UnitOfWork,
        records: &[Identify],
    ) -> Result<Vec<Option<MemberId>>, StoreError> {
        let pairs: Vec<(RecordRef, Vec<Identifier>)> = records
            .iter()
            .map(|r| (r.record.clone(), r.identifiers.clone()))
            .collect();
        let members = self.resolve_in(uow, &pairs).await?;
        for (r, m) in records.iter().zip(&members) {
            if let (Some(change), Some(m)) = (&r.profile, m) {
                let done = crate::profiles::apply_in(uow, *m, change).await;
                self.guard(done)?;
            }
            if let (Some((code, at)), Some(m)) = (&r.referral, m) {
                let done =
                    crate::referrals::attribute_carried_in(uow, m.get(), code, "identify", *at)
                        .await;
                self.guard(done)?;
            }
        }
        Ok(members)
    }

    async fn resolve_inner(
        &mut self,
        uow: &mut UnitOfWork,
        records: &[(RecordRef, Vec<Identifier>)],
    ) -> Result<Vec<Option<MemberId>>, StoreError> {
        self.lock(uow).await?;
        let (g, _) = self.graph.as_mut().expect("locked");
        let nodes: Vec<Vec<NodeId>> = records
            .iter()
            .map(|(r, ids)| g.resolve(r, ids).map(|x| x.nodes).unwrap_or_default())
            .collect();
        self.flush_identity(uow).await?;
        let (g, _) = self.graph.as_ref().expect("locked");
        Ok(nodes.iter().map(|n| g.member_of_nodes(n)).collect())
    }

    /// Resolve and write a batch of orders in one unit of work of its own.
    pub async fn write_orders(
        &mut self,
        store: &Store,
        orders: &[OrderRecord],
    ) -> Result<BatchResult, StoreError> {
        if orders.is_empty() {
            return Ok(BatchResult::default());
        }
        let mut uow = store.unit_of_work().await?;
        let result = self.write_orders_in(&mut uow, orders).await?;
        let r = uow.commit().await.map(|_| result);
        self.guard(r)
    }

    /// Resolve and write a batch of orders inside the caller's unit of work:
    /// identities, orders, lines and products; then, in the same
    /// transaction, the consequences that must hold with them (the analytics
    /// facts of every order written or moved) and the domain events
    /// (`order_placed`, `order_changed`, `order_refunded`, identity events).
    /// The caller may add its own consequences from
    /// [`BatchResult::changes`] before committing.
    pub async fn write_orders_in(
        &mut self,
        uow: &mut UnitOfWork,
        orders: &[OrderRecord],
    ) -> Result<BatchResult, StoreError> {
        let r = self.write_orders_inner(uow, orders).await;
        self.guard(r)
    }

    async fn write_orders_inner(
        &mut self,
        uow: &mut UnitOfWork,
        orders: &[OrderRecord],
    ) -> Result<BatchResult, StoreError> {
        if orders.is_empty() {
            return Ok(BatchResult::default());
        }
        self.lock(uow).await?;
        let records: Vec<(RecordRef, Vec<Identifier>)> = orders
            .iter()
            .map(|r| {
                (
                    RecordRef {
                        channel: r.channel.as_str().to_string(),
                        record_id: r.order_id.clone(),
                    },
                    r.customer.identifiers.clone(),
                )
            })
            .collect();
        let (g, _) = self.graph.as_mut().expect("locked");
        let nodes: Vec<Vec<NodeId>> = records
            .iter()
            .map(|(r, ids)| g.resolve(r, ids).map(|x| x.nodes).unwrap_or_default())
            .collect();
        let (g, _) = self.graph.as_ref().expect("locked");
        let members: Vec<Option<MemberId>> = nodes.iter().map(|n| g.member_of_nodes(n)).collect();
        let prepared: Vec<PreparedOrder<'_>> = orders
            .iter()
            .zip(&nodes)
            .zip(&members)
            .filter_map(|((r, n), m)| {
                Some(PreparedOrder {
                    record: r,
                    member: (*m)?,
                    nodes: n,
                })
            })
            .collect();
        // Identity rows go in before the orders that name them.
        self.flush_identity(uow).await?;
        let now = uow.now();
        let written = writes::write_orders(&mut uow.conn(), &prepared, now).await?;
        writes::fill_profiles(&mut uow.conn(), &prepared, &mut self.tried_profiles).await?;
        // In-transaction consequences: the analytics model.
        crate::facts::upsert(uow, written.facts).await?;
        if !written.changed_skus.is_empty() {
            crate::facts::refresh_skus(uow, &written.changed_skus).await?;
        }
        crate::loyalty::on_orders(uow, &written.changes).await?;
        crate::coupons::on_orders(uow, &written.changes).await?;
        crate::referrals::on_orders(uow, &written.changes).await?;
        for c in &written.changes {
            uow.emit(order_event(c));
        }
        Ok(BatchResult {
            orders: written.orders,
            lines: written.lines,
            members,
            changes: written.changes,
        })
    }
}

/// The domain event of one order write.
fn order_event(c: &OrderChange) -> DomainEvent {
    let r = &c.record;
    let channel = r.channel.as_str().to_string();
    let order_id = r.order_id.clone();
    let gross = r.gross_amount().minor();
    match &c.previous {
        None => DomainEvent::OrderPlaced {
            channel,
            order_id,
            member_id: c.member_id,
            status: r.status.as_str().to_string(),
            net_amount: gross - r.refunded.minor(),
            currency: r.currency.as_str().to_string(),
            ordered_at: r.ordered_at.timestamp_millis(),
        },
        Some(p) if r.refunded.minor() > p.refunded => DomainEvent::OrderRefunded {
            channel,
            order_id,
            member_id: c.member_id,
            previous_refunded: p.refunded,
            refunded: r.refunded.minor(),
            gross_amount: gross,
            status: r.status.as_str().to_string(),
        },
        Some(p) => DomainEvent::OrderChanged {
            channel,
            order_id,
            member_id: c.member_id,
            previous_status: p.status.as_str().to_string(),
            status: r.status.as_str().to_string(),
            net_amount: gross - r.refunded.minor(),
        },
    }
}

/// The domain events of identity operations, and the members whose orders
/// may have moved (merged or split).
fn identity_consequences(ops: &[IdentityOp]) -> (Vec<DomainEvent>, HashSet<i64>) {
    let mut events = Vec::new();
    let mut moved = HashSet::new();
    let mut new_members: Vec<MemberId> = Vec::new();
    for op in ops {
        match op {
            IdentityOp::NewMember { id } => new_members.push(*id),
            IdentityOp::NewIdentifier {
                member, first_seen, ..
            } => {
                if let Some(i) = new_members.iter().position(|m| m == member) {
                    new_members.swap_remove(i);
                    events.push(DomainEvent::MemberCreated {
                        member_id: member.get(),
                        channel: first_seen.channel.clone(),
                    });
                }
            }
            IdentityOp::Merge { kept, absorbed } => {
                moved.insert(kept.get());
                moved.insert(absorbed.get());
            }
            IdentityOp::Split {
                from, assignments, ..
            } => {
                moved.insert(from.get());
                let mut into: Vec<i64> = assignments.iter().map(|(_, m)| m.get()).collect();
                into.sort_unstable();
                into.dedup();
                moved.extend(into.iter().copied());
                events.push(DomainEvent::MemberSplit {
                    from: from.get(),
                    into,
                });
            }
            IdentityOp::Event(e) => match e.kind {
                EventKind::Merge => events.push(DomainEvent::MemberMerged {
                    kept: e.member.get(),
                    absorbed: e.other_member.map_or(0, |m| m.get()),
                    identifier: format!("{} {}", e.identifier.kind(), e.identifier.value()),
                }),
                EventKind::Shared => events.push(DomainEvent::IdentifierShared {
                    identifier: format!("{} {}", e.identifier.kind(), e.identifier.value()),
                }),
                EventKind::Link | EventKind::Split => {}
            },
            _ => {}
        }
    }
    // Members created by a split carry no identifier of their own yet.
    for m in new_members {
        events.push(DomainEvent::MemberCreated {
            member_id: m.get(),
            channel: String::new(),
        });
    }
    (events, moved)
}
