//! Identity resolution: one member id per person across every channel.
//!
//! # Model
//!
//! Every strong identifier (phone, e-mail, member number, WeChat unionid,
//! platform buyer id on a channel, anonymous id) is a node. Identifiers seen
//! together on one record (an order, an `identify` call) are linked, and the
//! first record that linked them is kept as evidence. A member is a connected
//! component of that graph, where links through a *shared* identifier do not
//! count. Names and addresses are never nodes, so they never join anyone.
//!
//! Each record also names an *account*: the channel plus the record's
//! best identifier (platform id, then member number, unionid, e-mail, phone).
//! That is the person as the channel's own customer list knows them.
//!
//! # What is logged
//!
//! - `link`: a channel account seen for the first time joined an existing
//!   member through an identifier that member already had ("pos order P-77
//!   joined M-1 because phone +86138... appeared in tmall order T-1").
//! - `merge`: one record connected two existing members; the younger member id
//!   is retired into the older one.
//! - `shared`: a phone or e-mail was seen with more than
//!   [`IdentityConfig::shared_limit`] distinct identifiers of one kind (a shop
//!   counter's phone typed in for every walk-in customer). It stops joining.
//! - `split`: the member that a shared identifier had joined is split back
//!   along the remaining links; ids retired by earlier merges are revived
//!   where a part contains the identifier that first created them.
//!
//! # Shared identifiers belong to no member
//!
//! A shared identifier stands for no one person, so the split does not make
//! it a member of its own: it is *released* (its owner becomes
//! [`NO_MEMBER_ID`]) and member counts count people only. The one exception is
//! a shared identifier that is the key of a channel account, i.e. records
//! that carried no other identifier (a walk-in who only gave the counter
//! phone): those records need an owner, so such an identifier keeps (or, when
//! such a record arrives after it was released, gets) a member that owns
//! exactly those records.
//!
//! The engine is deterministic: the same records in the same order give the
//! same members, ids and log. It holds the identity index in memory and emits
//! [`IdentityOp`]s that the store applies in the same transaction as the
//! records that caused them.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::types::{Identifier, IdentifierKind, MemberId};

/// Settings of the resolver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentityConfig {
    /// A phone or e-mail seen with more than this many distinct identifiers of
    /// one kind is marked shared (default 5).
    pub shared_limit: u32,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self { shared_limit: 5 }
    }
}

/// Where an identifier or link was seen: a record of a channel.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct RecordRef {
    /// Channel (or tracking source) name.
    pub channel: String,
    /// The order id or message id.
    pub record_id: String,
}

/// Database id of an identifier node.
pub type NodeId = i64;

/// The owner recorded for an identifier that belongs to no member: a shared
/// identifier released by a split. No member has this id (ids start at 1).
pub const NO_MEMBER_ID: i64 = 0;

fn no_member() -> MemberId {
    MemberId::from_i64(NO_MEMBER_ID)
}

/// A change to persist, in the order the engine made it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum IdentityOp {
    /// A new member id.
    NewMember {
        /// The id.
        id: MemberId,
    },
    /// A new identifier node, owned by `member`.
    NewIdentifier {
        /// Node id.
        id: NodeId,
        /// The identifier.
        identifier: Identifier,
        /// Owner.
        member: MemberId,
        /// Where it was first seen.
        first_seen: RecordRef,
    },
    /// Two identifiers seen together for the first time.
    NewLink {
        /// Lower node id.
        a: NodeId,
        /// Higher node id.
        b: NodeId,
        /// The record that linked them.
        evidence: RecordRef,
    },
    /// A channel account seen for the first time.
    NewAccount {
        /// Channel.
        channel: String,
        /// Its key identifier.
        identifier: NodeId,
        /// Owner.
        member: MemberId,
    },
    /// Everything of `absorbed` (identifiers, accounts, orders, events) now belongs
    /// to `kept`; `absorbed` is retired (`merged_into = kept`).
    Merge {
        /// The older id, kept.
        kept: MemberId,
        /// The younger id, retired.
        absorbed: MemberId,
    },
    /// An identifier no longer joins records.
    MarkShared {
        /// Node id.
        id: NodeId,
    },
    /// `from` was split: each listed identifier now belongs to the given member.
    /// Members in `revived` were retired and are active again; new ids were
    /// announced by [`IdentityOp::NewMember`] before. Accounts and records of
    /// `from` follow their identifiers.
    Split {
        /// The member that was split.
        from: MemberId,
        /// New owner of every identifier of `from` that still belongs to a member.
        assignments: Vec<(NodeId, MemberId)>,
        /// Retired ids made active again.
        revived: Vec<MemberId>,
        /// Shared identifiers of `from` that now belong to no member (stored
        /// with owner [`NO_MEMBER_ID`]).
        released: Vec<NodeId>,
    },
    /// A shared identifier that belonged to no member now belongs to `member`:
    /// a record carried no other identifier, so it needs an owner.
    Claim {
        /// Node id.
        id: NodeId,
        /// The new owner.
        member: MemberId,
    },
    /// An entry for the audit log.
    Event(IdentityEvent),
}

/// What happened, for the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A new channel account joined an existing member.
    Link,
    /// Two members became one.
    Merge,
    /// An identifier was marked shared.
    Shared,
    /// A member was split after an identifier was marked shared.
    Split,
}

impl EventKind {
    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Link => "link",
            EventKind::Merge => "merge",
            EventKind::Shared => "shared",
            EventKind::Split => "split",
        }
    }
}

/// One audit-log entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IdentityEvent {
    /// What happened.
    pub kind: EventKind,
    /// The member it happened to (the kept one for merges).
    pub member: MemberId,
    /// The other member (absorbed by a merge; for a split, one of the parts).
    pub other_member: Option<MemberId>,
    /// The identifier that caused it.
    pub identifier: Identifier,
    /// The record being processed when it happened.
    pub record: RecordRef,
    /// Where the identifier had been seen before (for links and merges).
    pub prior: Option<RecordRef>,
    /// A sentence that explains it.
    pub detail: String,
}

/// A stored identifier, to rebuild the engine.
#[derive(Debug, Clone)]
pub struct StoredIdentifier {
    /// Node id.
    pub id: NodeId,
    /// The identifier.
    pub identifier: Identifier,
    /// Current owner.
    pub member: MemberId,
    /// The member id it created or first joined.
    pub origin_member: MemberId,
    /// Marked shared.
    pub shared: bool,
    /// Where first seen.
    pub first_seen: RecordRef,
}

/// Counters of what the engine did, for import reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IdentityStats {
    /// Members created.
    pub members_created: u64,
    /// Identifiers created.
    pub identifiers_created: u64,
    /// Accounts joined to an existing member.
    pub links: u64,
    /// Members merged into older ones.
    pub merges: u64,
    /// Identifiers marked shared.
    pub shared_marked: u64,
    /// Members split.
    pub splits: u64,
}

#[derive(Debug, Clone)]
struct Node {
    id: NodeId,
    identifier: Identifier,
    member: MemberId,
    origin: MemberId,
    shared: bool,
    first_seen: RecordRef,
    /// Distinct linked identifiers per kind (only kept for kinds that can be shared).
    co_counts: [u32; 6],
}

fn kind_index(k: IdentifierKind) -> usize {
    IdentifierKind::ALL
        .iter()
        .position(|x| *x == k)
        .unwrap_or(0)
}

/// The in-memory identity resolver.
#[derive(Debug, Clone)]
pub struct IdentityGraph {
    config: IdentityConfig,
    nodes: Vec<Node>,
    by_identifier: HashMap<Identifier, usize>,
    by_id: HashMap<NodeId, usize>,
    /// Neighbours of each node (indices into `nodes`).
    adjacency: Vec<Vec<usize>>,
    links: HashSet<(usize, usize)>,
    accounts: HashSet<(String, usize)>,
    /// Nodes of each active member.
    member_nodes: HashMap<MemberId, Vec<usize>>,
    /// Retired member ids (merged away) that may be revived by a split.
    retired: HashSet<MemberId>,
    next_member: i64,
    next_node: NodeId,
    ops: Vec<IdentityOp>,
    stats: IdentityStats,
}

/// The outcome of resolving one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// The member the record belongs to now (later records may merge it further;
    /// use [`IdentityGraph::member_of_nodes`] at write time).
    pub member: MemberId,
    /// The record's identifier nodes, in the order given.
    pub nodes: Vec<NodeId>,
}

impl IdentityGraph {
    /// An empty graph; new member and node ids start at 1.
    pub fn new(config: IdentityConfig) -> Self {
        Self {
            config,
            nodes: Vec::new(),
            by_identifier: HashMap::new(),
            by_id: HashMap::new(),
            adjacency: Vec::new(),
            links: HashSet::new(),
            accounts: HashSet::new(),
            member_nodes: HashMap::new(),
            retired: HashSet::new(),
            next_member: 1,
            next_node: 1,
            ops: Vec::new(),
            stats: IdentityStats::default(),
        }
    }

    /// Rebuild from the store: identifiers, links between node ids, accounts,
    /// retired member ids, and the highest member id ever issued.
    pub fn load(
        config: IdentityConfig,
        identifiers: Vec<StoredIdentifier>,
        links: impl IntoIterator<Item = (NodeId, NodeId)>,
        accounts: impl IntoIterator<Item = (String, NodeId)>,
        retired: impl IntoIterator<Item = MemberId>,
        max_member_id: i64,
    ) -> Self {
        let mut g = Self::new(config);
        for s in identifiers {
            let idx = g.nodes.len();
            g.next_node = g.next_node.max(s.id + 1);
            g.by_identifier.insert(s.identifier.clone(), idx);
            g.by_id.insert(s.id, idx);
            if s.member.get() != NO_MEMBER_ID {
                g.member_nodes.entry(s.member).or_default().push(idx);
            }
            g.nodes.push(Node {
                id: s.id,
                identifier: s.identifier,
                member: s.member,
                origin: s.origin_member,
                shared: s.shared,
                first_seen: s.first_seen,
                co_counts: [0; 6],
            });
            g.adjacency.push(Vec::new());
        }
        for (a, b) in links {
            if let (Some(&ia), Some(&ib)) = (g.by_id.get(&a), g.by_id.get(&b)) {
                g.add_link_index(ia, ib);
            }
        }
        for (channel, node) in accounts {
            if let Some(&i) = g.by_id.get(&node) {
                g.accounts.insert((channel, i));
            }
        }
        g.retired = retired.into_iter().collect();
        g.next_member = max_member_id + 1;
        g
    }

    /// Number of identifier nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Take the operations made since the last call, to persist them.
    pub fn take_ops(&mut self) -> Vec<IdentityOp> {
        std::mem::take(&mut self.ops)
    }

    /// Counters since creation.
    pub fn stats(&self) -> &IdentityStats {
        &self.stats
    }

    /// The current member of an identifier, if known and owned (a shared
    /// identifier released by a split belongs to no member).
    pub fn member_of(&self, identifier: &Identifier) -> Option<MemberId> {
        self.by_identifier
            .get(identifier)
            .map(|&i| self.nodes[i].member)
            .filter(|m| m.get() != NO_MEMBER_ID)
    }

    /// Whether an identifier is marked shared.
    pub fn is_shared(&self, identifier: &Identifier) -> bool {
        self.by_identifier
            .get(identifier)
            .is_some_and(|&i| self.nodes[i].shared)
    }

    /// The member a record with these identifier nodes belongs to now: the owner
    /// of its first non-shared identifier, else of its first owned identifier.
    pub fn member_of_nodes(&self, nodes: &[NodeId]) -> Option<MemberId> {
        let idx: Vec<usize> = nodes
            .iter()
            .filter_map(|n| self.by_id.get(n).copied())
            .filter(|&i| self.nodes[i].member.get() != NO_MEMBER_ID)
            .collect();
        idx.iter()
            .find(|&&i| !self.nodes[i].shared)
            .or(idx.first())
            .map(|&i| self.nodes[i].member)
    }

    fn add_link_index(&mut self, a: usize, b: usize) -> bool {
        let key = if a < b { (a, b) } else { (b, a) };
        if a == b || !self.links.insert(key) {
            return false;
        }
        self.adjacency[a].push(b);
        self.adjacency[b].push(a);
        let (ka, kb) = (
            self.nodes[a].identifier.kind(),
            self.nodes[b].identifier.kind(),
        );
        self.nodes[a].co_counts[kind_index(kb)] += 1;
        self.nodes[b].co_counts[kind_index(ka)] += 1;
        true
    }

    fn new_member(&mut self) -> MemberId {
        let id = MemberId::from_i64(self.next_member);
        self.next_member += 1;
        self.ops.push(IdentityOp::NewMember { id });
        self.stats.members_created += 1;
        id
    }

    /// Resolve one record: its channel, its id, and its strong identifiers.
    ///
    /// Returns `None` when the record has no identifiers.
    pub fn resolve(
        &mut self,
        record: &RecordRef,
        identifiers: &[Identifier],
    ) -> Option<Resolution> {
        if identifiers.is_empty() {
            return None;
        }
        // 1. Nodes, creating the new ones without an owner yet.
        let mut idx: Vec<usize> = Vec::with_capacity(identifiers.len());
        let mut fresh: Vec<usize> = Vec::new();
        for ident in identifiers {
            let i = match self.by_identifier.get(ident) {
                Some(&i) => i,
                None => {
                    let i = self.nodes.len();
                    let id = self.next_node;
                    self.next_node += 1;
                    self.nodes.push(Node {
                        id,
                        identifier: ident.clone(),
                        member: MemberId::from_i64(0),
                        origin: MemberId::from_i64(0),
                        shared: false,
                        first_seen: record.clone(),
                        co_counts: [0; 6],
                    });
                    self.adjacency.push(Vec::new());
                    self.by_identifier.insert(ident.clone(), i);
                    self.by_id.insert(id, i);
                    fresh.push(i);
                    i
                }
            };
            if !idx.contains(&i) {
                idx.push(i);
            }
        }

        // 2. Links; a phone or e-mail that now has too many distinct partners of one
        //    kind becomes shared before it can join anyone.
        let mut new_links = Vec::new();
        for x in 0..idx.len() {
            for y in (x + 1)..idx.len() {
                if self.add_link_index(idx[x], idx[y]) {
                    new_links.push((idx[x], idx[y]));
                }
            }
        }
        let mut to_share = Vec::new();
        for &i in &idx {
            let n = &self.nodes[i];
            if !n.shared
                && n.identifier.kind().can_be_shared()
                && n.co_counts.iter().any(|&c| c > self.config.shared_limit)
            {
                to_share.push(i);
            }
        }

        // New nodes get an owner now, so links can be recorded by id: temporarily
        // owned by no one (0); resolved below.
        for &i in &to_share {
            self.nodes[i].shared = true;
        }

        // 3. Which members does the record touch through non-shared identifiers?
        let mut touched: Vec<MemberId> = Vec::new();
        for &i in &idx {
            let n = &self.nodes[i];
            if !n.shared && n.member.get() != 0 && !touched.contains(&n.member) {
                touched.push(n.member);
            }
        }
        touched.sort();

        let all_shared = idx.iter().all(|&i| self.nodes[i].shared);
        let member = if all_shared {
            // Only shared identifiers (never fresh ones: fresh nodes have no links
            // beyond this record, and one record cannot pass the limit). The record
            // stands for whoever used them: it goes to the member that owns the
            // first of them, and shared identifiers that belong to no member
            // (released by a split) are claimed by it, so the record has an owner.
            let owned = idx
                .iter()
                .map(|&i| self.nodes[i].member)
                .find(|m| m.get() != NO_MEMBER_ID);
            let m = match owned {
                Some(m) => m,
                None => self.new_member(),
            };
            for &i in &idx {
                if self.nodes[i].member.get() == NO_MEMBER_ID {
                    self.claim(i, m);
                }
            }
            m
        } else if let Some(&kept) = touched.first() {
            kept
        } else {
            self.new_member()
        };

        // Fresh non-shared nodes join the member (fresh shared nodes cannot exist).
        for &i in &fresh {
            if self.nodes[i].member.get() == 0 {
                self.assign_fresh(i, member);
            }
        }
        for &(a, b) in &new_links {
            let (a, b) = (
                self.nodes[a].id.min(self.nodes[b].id),
                self.nodes[a].id.max(self.nodes[b].id),
            );
            self.ops.push(IdentityOp::NewLink {
                a,
                b,
                evidence: record.clone(),
            });
        }

        // 4. Shared identifiers: log, then split the members they had joined.
        for &i in &to_share {
            self.mark_shared(i, record);
        }

        // 5. Merges of the other touched members into the oldest.
        if !all_shared {
            let kept = self.nodes[*idx
                .iter()
                .find(|&&i| !self.nodes[i].shared)
                .unwrap_or(&idx[0])]
            .member;
            let mut others: Vec<MemberId> = Vec::new();
            for &i in &idx {
                let n = &self.nodes[i];
                if !n.shared && n.member != kept && !others.contains(&n.member) {
                    others.push(n.member);
                }
            }
            others.sort();
            let mut kept = kept;
            for other in others {
                let (k, absorbed) = if other < kept {
                    (other, kept)
                } else {
                    (kept, other)
                };
                // The identifier of this record that belonged to the absorbed member.
                let via = *idx
                    .iter()
                    .find(|&&i| self.nodes[i].member == absorbed && !self.nodes[i].shared)
                    .unwrap_or(&idx[0]);
                self.merge(k, absorbed, via, record);
                kept = k;
            }
        }

        // 6. The account: channel + the record's best identifier.
        let best = *idx
            .iter()
            .min_by_key(|&&i| {
                let n = &self.nodes[i];
                (n.shared, n.identifier.kind().account_rank(), n.id)
            })
            .unwrap_or(&idx[0]);
        if self.nodes[best].member.get() == NO_MEMBER_ID {
            // Only shared identifiers, released by the split this very record
            // caused: the record still needs an owner.
            let m = self.new_member();
            self.claim(best, m);
        }
        let member_now = self.nodes[best].member;
        let key = (record.channel.clone(), best);
        if !self.accounts.contains(&key) {
            // Joined an existing member if some identifier of the record was known
            // before this record and belongs to the member.
            let via = idx
                .iter()
                .copied()
                .filter(|&i| {
                    !fresh.contains(&i)
                        && !self.nodes[i].shared
                        && self.nodes[i].member == member_now
                })
                .min_by_key(|&i| {
                    (
                        self.nodes[i].identifier.kind().account_rank(),
                        self.nodes[i].id,
                    )
                });
            if let Some(v) = via {
                let n = &self.nodes[v];
                let detail = format!(
                    "{} order {} joined {} because {} appeared in {} order {}",
                    record.channel,
                    record.record_id,
                    member_now,
                    n.identifier,
                    n.first_seen.channel,
                    n.first_seen.record_id
                );
                self.ops.push(IdentityOp::Event(IdentityEvent {
                    kind: EventKind::Link,
                    member: member_now,
                    other_member: None,
                    identifier: n.identifier.clone(),
                    record: record.clone(),
                    prior: Some(n.first_seen.clone()),
                    detail,
                }));
                self.stats.links += 1;
            }
            self.ops.push(IdentityOp::NewAccount {
                channel: record.channel.clone(),
                identifier: self.nodes[best].id,
                member: member_now,
            });
            self.accounts.insert(key);
        }

        let nodes: Vec<NodeId> = idx.iter().map(|&i| self.nodes[i].id).collect();
        let member = self.member_of_nodes(&nodes).unwrap_or(member_now);
        Some(Resolution { member, nodes })
    }

    /// Give a shared identifier that belongs to no member an owner.
    fn claim(&mut self, i: usize, m: MemberId) {
        self.nodes[i].member = m;
        self.member_nodes.entry(m).or_default().push(i);
        self.ops.push(IdentityOp::Claim {
            id: self.nodes[i].id,
            member: m,
        });
    }

    /// Whether a node is the key identifier of some channel account (records
    /// whose identifiers were all this one, or all shared).
    fn is_account_key(&self, i: usize) -> bool {
        self.accounts.iter().any(|(_, n)| *n == i)
    }

    fn assign_fresh(&mut self, i: usize, m: MemberId) {
        let n = &mut self.nodes[i];
        n.member = m;
        n.origin = m;
        self.member_nodes.entry(m).or_default().push(i);
        self.stats.identifiers_created += 1;
        self.ops.push(IdentityOp::NewIdentifier {
            id: n.id,
            identifier: n.identifier.clone(),
            member: m,
            first_seen: n.first_seen.clone(),
        });
    }

    fn merge(&mut self, kept: MemberId, absorbed: MemberId, via: usize, record: &RecordRef) {
        let moved = self.member_nodes.remove(&absorbed).unwrap_or_default();
        for &i in &moved {
            self.nodes[i].member = kept;
        }
        self.member_nodes.entry(kept).or_default().extend(moved);
        self.retired.insert(absorbed);
        self.ops.push(IdentityOp::Merge { kept, absorbed });
        let n = &self.nodes[via];
        let detail = format!(
            "{absorbed} merged into {kept} because {} appeared in {} order {} and {} order {}",
            n.identifier,
            n.first_seen.channel,
            n.first_seen.record_id,
            record.channel,
            record.record_id
        );
        self.ops.push(IdentityOp::Event(IdentityEvent {
            kind: EventKind::Merge,
            member: kept,
            other_member: Some(absorbed),
            identifier: n.identifier.clone(),
            record: record.clone(),
            prior: Some(n.first_seen.clone()),
            detail,
        }));
        self.stats.merges += 1;
    }

    fn mark_shared(&mut self, i: usize, record: &RecordRef) {
        self.nodes[i].shared = true;
        let id = self.nodes[i].id;
        self.ops.push(IdentityOp::MarkShared { id });
        self.stats.shared_marked += 1;
        let n = &self.nodes[i];
        let (kind_i, count) = n
            .co_counts
            .iter()
            .enumerate()
            .max_by_key(|(_, c)| **c)
            .map(|(k, c)| (k, *c))
            .unwrap_or((0, 0));
        let member = n.member;
        let detail = format!(
            "{} marked shared: seen with {count} distinct {} identifiers (limit {}); it no longer joins records",
            n.identifier,
            IdentifierKind::ALL[kind_i],
            self.config.shared_limit
        );
        self.ops.push(IdentityOp::Event(IdentityEvent {
            kind: EventKind::Shared,
            member,
            other_member: None,
            identifier: n.identifier.clone(),
            record: record.clone(),
            prior: None,
            detail,
        }));
        self.split(member, i, record);
    }

    /// Split `member` into the connected components of its nodes, where shared
    /// nodes neither connect nor belong to a larger component. A shared node
    /// that is no account's key stands for nobody: it is released (belongs to
    /// no member) instead of becoming a member of its own.
    fn split(&mut self, member: MemberId, cause: usize, record: &RecordRef) {
        let Some(nodes) = self.member_nodes.remove(&member) else {
            return;
        };
        let in_member: HashSet<usize> = nodes.iter().copied().collect();
        let mut seen: HashSet<usize> = HashSet::new();
        let mut parts: Vec<Vec<usize>> = Vec::new();
        let mut released: Vec<usize> = Vec::new();
        let mut sorted = nodes.clone();
        sorted.sort_by_key(|&i| self.nodes[i].id);
        for &start in &sorted {
            if !seen.insert(start) {
                continue;
            }
            if self.nodes[start].shared {
                if self.is_account_key(start) {
                    parts.push(vec![start]);
                } else {
                    released.push(start);
                }
                continue;
            }
            let mut part = vec![start];
            let mut stack = vec![start];
            while let Some(x) = stack.pop() {
                for &y in &self.adjacency[x] {
                    if in_member.contains(&y) && !self.nodes[y].shared && seen.insert(y) {
                        part.push(y);
                        stack.push(y);
                    }
                }
            }
            part.sort_by_key(|&i| self.nodes[i].id);
            parts.push(part);
        }
        if parts.len() <= 1 && released.is_empty() {
            self.member_nodes.insert(member, nodes);
            return;
        }
        // Parts in order of their oldest node; each takes the origin id of its oldest
        // node when that id is free, else the split member's id if still free, else a new id.
        let mut taken: HashSet<MemberId> = HashSet::new();
        let mut assignments = Vec::new();
        let mut revived = Vec::new();
        let mut ids = Vec::new();
        for part in &parts {
            let origins: Vec<MemberId> = part.iter().map(|&i| self.nodes[i].origin).collect();
            let id = origins
                .iter()
                .copied()
                .find(|o| !taken.contains(o) && (*o == member || self.retired.contains(o)))
                .or_else(|| (!taken.contains(&member)).then_some(member));
            let id = match id {
                Some(id) => id,
                None => self.new_member(),
            };
            if id != member && self.retired.remove(&id) {
                revived.push(id);
            }
            taken.insert(id);
            ids.push(id);
            for &i in part {
                self.nodes[i].member = id;
                assignments.push((self.nodes[i].id, id));
            }
            self.member_nodes.insert(id, part.clone());
        }
        for &i in &released {
            self.nodes[i].member = no_member();
        }
        if !taken.contains(&member) {
            self.retired.insert(member);
        }
        let released_ids: Vec<NodeId> = released.iter().map(|&i| self.nodes[i].id).collect();
        self.ops.push(IdentityOp::Split {
            from: member,
            assignments,
            revived,
            released: released_ids,
        });
        self.stats.splits += 1;
        let names: Vec<String> = ids.iter().map(|m| m.to_string()).collect();
        let cause_id = &self.nodes[cause].identifier;
        let mut detail = if ids.len() > 1 {
            format!(
                "{member} split into {} because {cause_id} was marked shared",
                names.join(", ")
            )
        } else {
            format!("{member} was split because {cause_id} was marked shared")
        };
        if !released.is_empty() {
            let gone: Vec<String> = released
                .iter()
                .map(|&i| self.nodes[i].identifier.to_string())
                .collect();
            detail.push_str(&format!(
                "; {} belongs to no member now and joins nobody",
                gone.join(", ")
            ));
        }
        let logged_on = if ids.is_empty() { vec![member] } else { ids };
        for id in logged_on {
            self.ops.push(IdentityOp::Event(IdentityEvent {
                kind: EventKind::Split,
                member: id,
                other_member: Some(member).filter(|m| *m != id),
                identifier: self.nodes[cause].identifier.clone(),
                record: record.clone(),
                prior: None,
                detail: detail.clone(),
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ChannelName, Email, Phone};

    fn phone(s: &str) -> Identifier {
        Identifier::phone(&Phone::parse(s, "86").unwrap())
    }
    fn email(s: &str) -> Identifier {
        Identifier::email(&Email::parse(s).unwrap())
    }
    fn nick(ch: &str, s: &str) -> Identifier {
        Identifier::platform_user_id(&ChannelName::parse(ch).unwrap(), s).unwrap()
    }
    fn rec(ch: &str, id: &str) -> RecordRef {
        RecordRef {
            channel: ch.into(),
            record_id: id.into(),
        }
    }
    fn events(ops: &[IdentityOp]) -> Vec<&IdentityEvent> {
        ops.iter()
            .filter_map(|o| match o {
                IdentityOp::Event(e) => Some(e),
                _ => None,
            })
            .collect()
    }

    /// The acceptance scenario, in all six import orders: Taobao with a phone, the
    /// store with the same phone and an e-mail, the web shop with that e-mail.
    #[test]
    fn three_channels_one_member_two_logged_joins_in_any_order() {
        let t = (
            rec("tmall", "T1"),
            vec![nick("tmall", "lixm"), phone("13800000001")],
        );
        let p = (
            rec("pos", "P-77"),
            vec![phone("13800000001"), email("li@example.com")],
        );
        let w = (rec("shopify", "#1001"), vec![email("li@example.com")]);
        let all = [t, p, w];
        for perm in [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ] {
            let mut g = IdentityGraph::new(IdentityConfig::default());
            let mut members = Vec::new();
            for &k in &perm {
                let (r, ids) = &all[k];
                members.push(g.resolve(r, ids).unwrap());
            }
            let final_members: HashSet<MemberId> = members
                .iter()
                .map(|r| g.member_of_nodes(&r.nodes).unwrap())
                .collect();
            assert_eq!(final_members.len(), 1, "order {perm:?}");
            assert_eq!(*final_members.iter().next().unwrap(), MemberId::from_i64(1));
            let ops = g.take_ops();
            let ev = events(&ops);
            assert_eq!(ev.len(), 2, "order {perm:?}: {ev:#?}");
            assert!(ev
                .iter()
                .all(|e| matches!(e.kind, EventKind::Link | EventKind::Merge)));
        }
    }

    #[test]
    fn link_explains_itself() {
        let mut g = IdentityGraph::new(IdentityConfig::default());
        g.resolve(
            &rec("tmall", "T1"),
            &[nick("tmall", "a"), phone("13800000001")],
        );
        g.take_ops();
        g.resolve(&rec("pos", "P-77"), &[phone("13800000001")]);
        let ops = g.take_ops();
        let ev = events(&ops);
        assert_eq!(ev.len(), 1);
        assert_eq!(
            ev[0].detail,
            "pos order P-77 joined M-1 because phone +8613800000001 appeared in tmall order T1"
        );
    }

    #[test]
    fn names_never_join_and_repeat_records_change_nothing() {
        let mut g = IdentityGraph::new(IdentityConfig::default());
        let a = g.resolve(&rec("jd", "1"), &[phone("13800000001")]).unwrap();
        let b = g.resolve(&rec("jd", "2"), &[phone("13900000002")]).unwrap();
        assert_ne!(a.member, b.member);
        g.take_ops();
        let again = g.resolve(&rec("jd", "1"), &[phone("13800000001")]).unwrap();
        assert_eq!(again.member, a.member);
        assert!(g.take_ops().is_empty());
    }

    #[test]
    fn merge_keeps_the_older_id() {
        let mut g = IdentityGraph::new(IdentityConfig::default());
        let a = g.resolve(&rec("jd", "1"), &[phone("13800000001")]).unwrap();
        let b = g
            .resolve(&rec("shopify", "#1"), &[email("x@y.com")])
            .unwrap();
        assert_eq!((a.member.get(), b.member.get()), (1, 2));
        let c = g
            .resolve(&rec("pos", "9"), &[email("x@y.com"), phone("13800000001")])
            .unwrap();
        assert_eq!(c.member.get(), 1);
        let ops = g.take_ops();
        assert!(ops.contains(&IdentityOp::Merge {
            kept: MemberId::from_i64(1),
            absorbed: MemberId::from_i64(2)
        }));
        assert_eq!(g.member_of(&email("x@y.com")), Some(MemberId::from_i64(1)));
    }

    /// A shop counter phone typed in for every walk-in customer: after the sixth
    /// distinct e-mail it is marked shared, and the five people it had joined get
    /// their own member ids back.
    #[test]
    fn shared_counter_phone_stops_joining_and_splits_back() {
        let mut g = IdentityGraph::new(IdentityConfig::default());
        let counter = phone("02150001234");
        let mut firsts = Vec::new();
        for k in 0..5 {
            // Each customer first bought online with their e-mail...
            let r = g
                .resolve(
                    &rec("shopify", &format!("#{k}")),
                    &[email(&format!("c{k}@x.com"))],
                )
                .unwrap();
            firsts.push(r.member);
        }
        for k in 0..5 {
            // ...then at the till where the counter phone was typed in.
            g.resolve(
                &rec("pos", &format!("P{k}")),
                &[counter.clone(), email(&format!("c{k}@x.com"))],
            );
        }
        // Before the limit is passed, the phone joined them all into one member.
        let joined: HashSet<_> = (0..5)
            .map(|k| g.member_of(&email(&format!("c{k}@x.com"))).unwrap())
            .collect();
        assert_eq!(joined.len(), 1);
        assert!(!g.is_shared(&counter));
        g.take_ops();
        // The sixth customer with their own e-mail.
        let six = g
            .resolve(&rec("pos", "P5"), &[counter.clone(), email("c5@x.com")])
            .unwrap();
        assert!(g.is_shared(&counter));
        let ops = g.take_ops();
        assert!(ops.iter().any(|o| matches!(o, IdentityOp::Split { .. })));
        // Split back: each customer has their original member id again.
        for (k, first) in firsts.iter().enumerate() {
            assert_eq!(g.member_of(&email(&format!("c{k}@x.com"))), Some(*first));
        }
        // The sixth is on their own, not with anybody else.
        assert!(!firsts.contains(&six.member));
        // And the phone belongs to nobody.
        assert_eq!(g.member_of(&counter), None);
        // Further records with the phone do not join people.
        let r = g
            .resolve(&rec("pos", "P6"), &[counter.clone(), email("c0@x.com")])
            .unwrap();
        assert_eq!(r.member, firsts[0]);
    }

    /// Five customers joined by a counter phone, then a sixth: the split gives
    /// the people their ids back and leaves the phone with no member, so that
    /// the member count is the number of people (and the log says so).
    #[test]
    fn shared_phone_split_back_leaves_no_member_of_its_own() {
        let mut g = IdentityGraph::new(IdentityConfig::default());
        let counter = phone("02150001234");
        for k in 0..6 {
            g.resolve(
                &rec("pos", &format!("P{k}")),
                &[counter.clone(), email(&format!("c{k}@x.com"))],
            );
        }
        let ops = g.take_ops();
        let (assignments, released) = ops
            .iter()
            .find_map(|o| match o {
                IdentityOp::Split {
                    assignments,
                    released,
                    ..
                } => Some((assignments.clone(), released.clone())),
                _ => None,
            })
            .expect("a split");
        let phone_node = ops
            .iter()
            .find_map(|o| match o {
                IdentityOp::NewIdentifier { id, identifier, .. } if *identifier == counter => {
                    Some(*id)
                }
                _ => None,
            })
            .unwrap();
        assert_eq!(released, vec![phone_node]);
        assert!(assignments.iter().all(|(n, _)| *n != phone_node));
        assert_eq!(g.member_of(&counter), None);
        // Six people, six members: one per e-mail, none for the phone.
        let members: HashSet<MemberId> = (0..6)
            .map(|k| g.member_of(&email(&format!("c{k}@x.com"))).unwrap())
            .collect();
        assert_eq!(members.len(), 6);
        let created = ops
            .iter()
            .filter(|o| matches!(o, IdentityOp::NewMember { .. }))
            .count();
        // M-1 (first customer, kept), M-2 (the sixth customer), four split off.
        assert_eq!(created, 6);
        let split = events(&ops)
            .into_iter()
            .find(|e| e.kind == EventKind::Split)
            .unwrap();
        assert!(
            split
                .detail
                .contains("phone +862150001234 belongs to no member"),
            "{}",
            split.detail
        );
        // Later records with the phone still join nobody.
        let r = g
            .resolve(&rec("pos", "P9"), &[counter.clone(), email("c3@x.com")])
            .unwrap();
        assert_eq!(Some(r.member), g.member_of(&email("c3@x.com")));
    }

    /// A walk-in who only gave the counter phone: before it was shared the record
    /// makes the phone an account key, so the split keeps a member for such
    /// records; after, a record with only the phone claims it for a member.
    #[test]
    fn records_with_only_a_shared_phone_still_have_an_owner() {
        let counter = phone("02150001234");
        // Before: a phone-only record, then six customers.
        let mut g = IdentityGraph::new(IdentityConfig::default());
        let walk_in = g
            .resolve(&rec("pos", "W1"), std::slice::from_ref(&counter))
            .unwrap();
        for k in 0..6 {
            g.resolve(
                &rec("pos", &format!("P{k}")),
                &[counter.clone(), email(&format!("c{k}@x.com"))],
            );
        }
        assert!(g.is_shared(&counter));
        assert_eq!(g.member_of_nodes(&walk_in.nodes), g.member_of(&counter));
        assert!(g.member_of(&counter).is_some());
        // After: six customers first, then a phone-only record.
        let mut g = IdentityGraph::new(IdentityConfig::default());
        for k in 0..6 {
            g.resolve(
                &rec("pos", &format!("P{k}")),
                &[counter.clone(), email(&format!("c{k}@x.com"))],
            );
        }
        assert_eq!(g.member_of(&counter), None);
        g.take_ops();
        let w = g
            .resolve(&rec("pos", "W1"), std::slice::from_ref(&counter))
            .unwrap();
        let m = g.member_of_nodes(&w.nodes).unwrap();
        assert_eq!(g.member_of(&counter), Some(m));
        let ops = g.take_ops();
        assert!(ops.contains(&IdentityOp::Claim {
            id: w.nodes[0],
            member: m
        }));
        // The same record again changes nothing.
        g.resolve(&rec("pos", "W1"), std::slice::from_ref(&counter))
            .unwrap();
        assert!(g.take_ops().is_empty());
    }

    #[test]
    fn load_round_trips_state() {
        let mut g = IdentityGraph::new(IdentityConfig::default());
        g.resolve(
            &rec("tmall", "T1"),
            &[nick("tmall", "a"), phone("13800000001")],
        );
        g.resolve(&rec("shopify", "#1"), &[email("x@y.com")]);
        let ops = g.take_ops();
        let mut stored = Vec::new();
        let mut links = Vec::new();
        let mut accounts = Vec::new();
        for op in ops {
            match op {
                IdentityOp::NewIdentifier {
                    id,
                    identifier,
                    member,
                    first_seen,
                } => stored.push(StoredIdentifier {
                    id,
                    identifier,
                    member,
                    origin_member: member,
                    shared: false,
                    first_seen,
                }),
                IdentityOp::NewLink { a, b, .. } => links.push((a, b)),
                IdentityOp::NewAccount {
                    channel,
                    identifier,
                    ..
                } => accounts.push((channel, identifier)),
                _ => {}
            }
        }
        let mut h = IdentityGraph::load(IdentityConfig::default(), stored, links, accounts, [], 2);
        let r = h
            .resolve(&rec("pos", "P1"), &[phone("13800000001"), email("x@y.com")])
            .unwrap();
        assert_eq!(r.member.get(), 1);
        let ops = h.take_ops();
        assert!(ops.contains(&IdentityOp::Merge {
            kept: MemberId::from_i64(1),
            absorbed: MemberId::from_i64(2)
        }));
        assert!(!ops
            .iter()
            .any(|o| matches!(o, IdentityOp::NewMember { .. })));
    }
}
