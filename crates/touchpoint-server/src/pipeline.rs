//! The ingest pipeline: one task writes every accepted request's events, many
//! requests per transaction (group commit), and answers each request only
//! after its events are committed.
//!
//! Each group is one unit of work: it (1) claims the (source, messageId) keys
//! and stores the events and rejected events, (2) applies the identity and
//! order effects of the events it claimed first through the shared
//! [`Writer`], with their consequences and domain events, and (3) commits. So
//! an event and its effects are stored together or not at all; a retried
//! batch adds nothing; an `Order Completed` re-sent after a refund does not
//! undo the refund (refunds only grow, in the store's write path).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, Mutex};
use touchpoint_core::identity::RecordRef;
use touchpoint_core::ingest::OrderRecord;
use touchpoint_core::{Money, OrderStatus};
use touchpoint_store::events::{
    write_events_in, EventWriteCounts, NewRejected, DEDUP_RETENTION_MS,
};
use touchpoint_store::import::{Identify, Writer};
use touchpoint_store::{now_ms, Store, StoreError, UnitOfWork};

use crate::metrics::Metrics;
use crate::segment::{Action, Prepared};

/// Events of one request.
pub struct Job {
    /// Accepted events.
    pub events: Vec<Prepared>,
    /// Rejected events.
    pub rejected: Vec<NewRejected>,
    /// Where to answer.
    pub reply: oneshot::Sender<Result<EventWriteCounts, String>>,
}

/// Most events written in one transaction.
const GROUP_EVENTS: usize = 5_000;

/// Start the writer tasks: one on SQLite (one writer at a time is what it
/// allows), three on PostgreSQL (concurrent transactions overlap their
/// round trips and commits; the unique key on (source, messageId) keeps them
/// from storing an event twice). They end when every sender is dropped and
/// the queue is drained.
pub fn start(
    store: Store,
    writer: Arc<Mutex<Writer>>,
    metrics: Arc<Metrics>,
) -> (mpsc::Sender<Job>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel::<Job>(4_096);
    let rx = Arc::new(Mutex::new(rx));
    let workers = match store.backend() {
        touchpoint_store::Backend::Sqlite => 1,
        touchpoint_store::Backend::Postgres => 3,
    };
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            tokio::spawn(run(
                store.clone(),
                writer.clone(),
                metrics.clone(),
                rx.clone(),
            ))
        })
        .collect();
    let handle = tokio::spawn(async move {
        for h in handles {
            if let Err(e) = h.await {
                tracing::error!(error = %e, "an ingest writer task failed");
            }
        }
    });
    (tx, handle)
}

/// The next group of jobs: wait for one, then take what is queued, up to
/// [`GROUP_EVENTS`] events. `None` when the queue is closed and empty.
async fn next_group(rx: &Mutex<mpsc::Receiver<Job>>) -> Option<Vec<Job>> {
    let mut rx = rx.lock().await;
    let first = rx.recv().await?;
    let mut n = first.events.len() + first.rejected.len();
    let mut jobs = vec![first];
    while n < GROUP_EVENTS {
        match rx.try_recv() {
            Ok(j) => {
                n += j.events.len() + j.rejected.len();
                jobs.push(j);
            }
            Err(_) => break,
        }
    }
    Some(jobs)
}

async fn run(
    store: Store,
    writer: Arc<Mutex<Writer>>,
    metrics: Arc<Metrics>,
    rx: Arc<Mutex<mpsc::Receiver<Job>>>,
) {
    let mut last_prune: Option<Instant> = None;
    while let Some(jobs) = next_group(&rx).await {
        match write_group(&store, &writer, &metrics, &jobs).await {
            Ok(per_job) => {
                for (job, counts) in jobs.into_iter().zip(per_job) {
                    metrics
                        .events_accepted
                        .fetch_add(counts.accepted, Ordering::Relaxed);
                    metrics
                        .events_deduplicated
                        .fetch_add(counts.duplicates, Ordering::Relaxed);
                    metrics
                        .events_rejected
                        .fetch_add(counts.rejected, Ordering::Relaxed);
                    let _ = job.reply.send(Ok(counts));
                }
            }
            Err(e) => {
                let msg = chain(&e);
                tracing::error!(error = %msg, "writing events failed");
                for job in jobs {
                    let _ = job.reply.send(Err(msg.clone()));
                }
            }
        }
        if last_prune.is_none_or(|t| t.elapsed() > Duration::from_secs(3600)) {
            last_prune = Some(Instant::now());
            match store.prune_event_ids(now_ms() - DEDUP_RETENTION_MS).await {
                Ok(n) if n > 0 => tracing::info!(pruned = n, "forgot old event deduplication keys"),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %chain(&e), "pruning event deduplication keys failed")
                }
            }
        }
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

async fn write_group(
    store: &Store,
    writer: &Mutex<Writer>,
    metrics: &Metrics,
    jobs: &[Job],
) -> Result<Vec<EventWriteCounts>, StoreError> {
    let all: Vec<&Prepared> = jobs.iter().flat_map(|j| j.events.iter()).collect();
    // Groups with identity or order effects hold the writer until they commit,
    // so effects apply in one order and once (several writer tasks run on
    // PostgreSQL); groups of behaviour events only never wait for it.
    let mut guard = if all.iter().any(|p| p.action != Action::None) {
        Some(writer.lock().await)
    } else {
        None
    };
    let events: Vec<_> = all.iter().map(|p| p.event.clone()).collect();
    let rejected: Vec<NewRejected> = jobs
        .iter()
        .flat_map(|j| j.rejected.iter().cloned())
        .collect();
    let started = Instant::now();
    let mut uow = store.unit_of_work().await?;
    let (fresh, _) = write_events_in(&mut uow, &events, &rejected).await?;
    metrics.time("store_event_write", started.elapsed());
    if let Some(w) = guard.as_mut() {
        // Effects of the events this unit of work claimed, in arrival order.
        let todo: Vec<&Prepared> = all
            .iter()
            .zip(&fresh)
            .filter(|(p, f)| **f && p.action != Action::None)
            .map(|(p, _)| *p)
            .collect();
        apply_effects(&mut uow, w, metrics, &todo).await?;
    }
    uow.commit().await?;
    drop(guard);
    let mut out = Vec::with_capacity(jobs.len());
    let mut i = 0;
    for j in jobs {
        let mut c = EventWriteCounts {
            rejected: j.rejected.len() as u64,
            ..Default::default()
        };
        for _ in &j.events {
            if fresh[i] {
                c.accepted += 1;
            } else {
                c.duplicates += 1;
            }
            i += 1;
        }
        out.push(c);
    }
    Ok(out)
}

/// Identity and order effects, in order; consecutive ones of a kind are written together.
async fn apply_effects(
    uow: &mut UnitOfWork,
    w: &mut Writer,
    metrics: &Metrics,
    todo: &[&Prepared],
) -> Result<(), StoreError> {
    if todo.is_empty() {
        return Ok(());
    }
    let mut ids: Vec<Identify> = Vec::new();
    let mut orders: Vec<OrderRecord> = Vec::new();
    for p in todo {
        match &p.action {
            Action::None => {}
            Action::Identify(list, profile, referral) => {
                flush_orders(uow, w, metrics, &mut orders).await?;
                if !list.is_empty() {
                    ids.push(Identify {
                        record: RecordRef {
                            channel: p.event.source.clone(),
                            record_id: p.event.message_id.clone(),
                        },
                        identifiers: list.clone(),
                        profile: profile.as_deref().cloned(),
                        referral: referral.as_ref().map(|c| (c.clone(), p.event.occurred_at)),
                    });
                }
            }
            Action::OrderCompleted(r) => {
                flush_ids(uow, w, metrics, &mut ids).await?;
                orders.push((**r).clone());
            }
            Action::OrderRefunded { order_id, amount } => {
                flush_ids(uow, w, metrics, &mut ids).await?;
                flush_orders(uow, w, metrics, &mut orders).await?;
                match uow.order_record(&p.event.source, order_id).await? {
                    Some(mut r) => {
                        let gross = r.gross_amount().minor();
                        let refunded = amount
                            .map(|a| a.minor())
                            .unwrap_or(gross)
                            .clamp(0, gross.max(0));
                        r.refunded = Money::from_minor(refunded);
                        r.status = if refunded >= gross {
                            OrderStatus::Refunded
                        } else {
                            OrderStatus::PartiallyRefunded
                        };
                        orders.push(r);
                        flush_orders(uow, w, metrics, &mut orders).await?;
                    }
                    None => tracing::warn!(
                        source = %p.event.source,
                        order_id,
                        "Order Refunded for an order not stored; kept as an event only"
                    ),
                }
            }
        }
    }
    flush_ids(uow, w, metrics, &mut ids).await?;
    flush_orders(uow, w, metrics, &mut orders).await?;
    Ok(())
}

async fn flush_ids(
    uow: &mut UnitOfWork,
    w: &mut Writer,
    metrics: &Metrics,
    ids: &mut Vec<Identify>,
) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let started = Instant::now();
    // Identities and the profile traits of identify calls, in this unit of work.
    w.identify_in(uow, ids).await?;
    metrics.time("identity_write", started.elapsed());
    ids.clear();
    Ok(())
}

async fn flush_orders(
    uow: &mut UnitOfWork,
    w: &mut Writer,
    metrics: &Metrics,
    orders: &mut Vec<OrderRecord>,
) -> Result<(), StoreError> {
    if orders.is_empty() {
        return Ok(());
    }
    let started = Instant::now();
    w.write_orders_in(uow, orders).await?;
    metrics.time("order_write", started.elapsed());
    orders.clear();
    Ok(())
}
