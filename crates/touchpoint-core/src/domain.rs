//! Domain events: what a committed change did, as the write path records it.
//!
//! Every unit of work in the store collects these while it writes and inserts
//! them into the outbox table in the same transaction, so an event exists if
//! and only if its change was committed. Consumers that talk to the outside
//! world (webhooks, e-mail, campaigns) read the outbox after commit, at least
//! once, and deduplicate by the event's outbox id. See docs/ARCHITECTURE.md.
//!
//! The serialised form (`{"type": "order_placed", ...}`) is the payload stored
//! in the outbox and sent to webhooks: add fields, never rename them.

use serde::{Deserialize, Serialize};

/// Something that happened, recorded with the change that caused it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DomainEvent {
    /// A new order was written.
    OrderPlaced {
        /// Channel of the order.
        channel: String,
        /// Order id within the channel.
        order_id: String,
        /// The member who owns it.
        member_id: i64,
        /// Status as stored.
        status: String,
        /// Gross amount less refunds, minor units.
        net_amount: i64,
        /// Currency code.
        currency: String,
        /// When it was placed, UTC milliseconds.
        ordered_at: i64,
    },
    /// An existing order changed (status, lines, amounts) other than by a
    /// refund (a refund is [`DomainEvent::OrderRefunded`]).
    OrderChanged {
        /// Channel of the order.
        channel: String,
        /// Order id within the channel.
        order_id: String,
        /// The member who owns it.
        member_id: i64,
        /// Status before the change.
        previous_status: String,
        /// Status after it.
        status: String,
        /// Gross amount less refunds after the change, minor units.
        net_amount: i64,
    },
    /// The refunded amount of an order grew.
    OrderRefunded {
        /// Channel of the order.
        channel: String,
        /// Order id within the channel.
        order_id: String,
        /// The member who owns it.
        member_id: i64,
        /// Refunded before, minor units.
        previous_refunded: i64,
        /// Refunded now, minor units.
        refunded: i64,
        /// Gross amount of the order, minor units.
        gross_amount: i64,
        /// Status after the refund.
        status: String,
    },
    /// A member id was created.
    MemberCreated {
        /// The new member.
        member_id: i64,
        /// The channel of the record that created it.
        channel: String,
    },
    /// Two members were found to be one person; the older id was kept.
    MemberMerged {
        /// The id kept.
        kept: i64,
        /// The id retired into it.
        absorbed: i64,
        /// `kind value` of the identifier that joined them.
        identifier: String,
    },
    /// A member joined through a shared identifier was split back.
    MemberSplit {
        /// The member that was split.
        from: i64,
        /// The members it became (including `from` when it kept some records).
        into: Vec<i64>,
    },
    /// An identifier was seen with too many people and stopped joining records.
    IdentifierShared {
        /// `kind value` of the identifier.
        identifier: String,
    },
    /// A tracking event was accepted.
    EventTracked {
        /// Source (the ingest key's source).
        source: String,
        /// The client's messageId.
        message_id: String,
        /// `track`, `identify`, `page`, ...
        event_type: String,
        /// The event name of a `track` call.
        name: Option<String>,
        /// The member it was attributed to when written, if known.
        member_id: Option<i64>,
    },
    /// Points were credited (a purchase, a code, an adjustment up).
    PointsEarned {
        /// The member.
        member_id: i64,
        /// Points.
        points: i64,
        /// The ledger entry.
        entry_id: i64,
        /// `purchase`, `code`, `adjust`, `backfill`.
        reason: String,
        /// What it came from (`order tmall 123`, `batch 4`, `admin KEYID`).
        source: String,
        /// Spendable from, UTC ms.
        available_from: i64,
        /// Expires at, UTC ms.
        expires_at: Option<i64>,
    },
    /// Points were spent (or adjusted down).
    PointsSpent {
        /// The member.
        member_id: i64,
        /// Points (positive).
        points: i64,
        /// The ledger entry.
        entry_id: i64,
        /// Why.
        reason: String,
        /// The caller's reference.
        reference: Option<String>,
    },
    /// A lot's rest expired.
    PointsExpired {
        /// The member.
        member_id: i64,
        /// Points (positive).
        points: i64,
        /// The lot.
        lot_id: i64,
    },
    /// A refund took points back.
    PointsReversed {
        /// The member.
        member_id: i64,
        /// Points taken back (positive).
        points: i64,
        /// Points the balance could not cover (forgiven under
        /// `within_balance`, owed under `allow_negative`).
        uncovered: i64,
        /// `channel order_id`.
        order: String,
    },
    /// A packaging code was claimed.
    CodeClaimed {
        /// The member.
        member_id: i64,
        /// The batch.
        batch_id: i64,
        /// Points credited.
        points: i64,
    },
    /// A member's tier changed.
    TierChanged {
        /// The member.
        member_id: i64,
        /// Before (None: no tier).
        from: Option<String>,
        /// After.
        to: Option<String>,
        /// Why.
        reason: String,
    },
    /// A lot expires soon (for reminders).
    PointsExpiringSoon {
        /// The member.
        member_id: i64,
        /// Points that will expire.
        points: i64,
        /// The lot.
        lot_id: i64,
        /// When, UTC ms.
        expires_at: i64,
    },
    /// Points of a released or lapsed mall hold went back to their lots.
    PointsReturned {
        /// The member.
        member_id: i64,
        /// Points returned.
        points: i64,
        /// What was released (`reward hold N`).
        reference: String,
    },
    /// A points-mall reward was held, captured, redeemed or released.
    RewardRedemption {
        /// The member.
        member_id: i64,
        /// The reward.
        reward_id: i64,
        /// The redemption.
        redemption_id: i64,
        /// held, captured, released, lapsed.
        state: String,
        /// Points it cost.
        points: i64,
    },
    /// A coupon was issued to a member.
    CouponIssued {
        /// The member.
        member_id: i64,
        /// The coupon.
        coupon_id: i64,
        /// Its definition.
        definition_id: i64,
    },
    /// A coupon was redeemed on an order (or given back on its refund).
    CouponRedeemed {
        /// The member.
        member_id: i64,
        /// The coupon.
        coupon_id: i64,
        /// The order.
        order_reference: String,
        /// The discount, minor units.
        discount: i64,
        /// True when a refund gave the coupon back.
        returned: bool,
    },
    /// A day's marketing spend on a channel and campaign was recorded or
    /// changed (`touchpoint import spend`, `POST /api/spend`).
    SpendRecorded {
        /// The day, `YYYY-MM-DD` in the business time zone.
        date: String,
        /// The channel.
        channel: String,
        /// The campaign (empty: the channel as a whole).
        campaign: String,
        /// The spend now, minor units.
        spend: i64,
        /// The spend before, minor units (None: a new row).
        previous_spend: Option<i64>,
    },
    /// A member's profile changed: attributes, tags or consent (one door for
    /// every surface: identify traits, the API, the CLI, a CSV of tags, the
    /// unsubscribe link, a rule tag's refresh).
    ProfileChanged {
        /// The member.
        member_id: i64,
        /// `identify`, `api`, `cli`, `csv`, `unsubscribe`, `rule`.
        source: String,
        /// Attributes that changed (`city`, `language`, ...).
        attributes: Vec<String>,
        /// Tags added.
        tags_added: Vec<String>,
        /// Tags removed.
        tags_removed: Vec<String>,
        /// Consent changes: (channel, topic, granted).
        consent: Vec<(String, String, bool)>,
    },
}

impl DomainEvent {
    /// The event's type name as stored in the outbox `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            DomainEvent::OrderPlaced { .. } => "order_placed",
            DomainEvent::OrderChanged { .. } => "order_changed",
            DomainEvent::OrderRefunded { .. } => "order_refunded",
            DomainEvent::MemberCreated { .. } => "member_created",
            DomainEvent::MemberMerged { .. } => "member_merged",
            DomainEvent::MemberSplit { .. } => "member_split",
            DomainEvent::IdentifierShared { .. } => "identifier_shared",
            DomainEvent::EventTracked { .. } => "event_tracked",
            DomainEvent::PointsEarned { .. } => "points_earned",
            DomainEvent::PointsSpent { .. } => "points_spent",
            DomainEvent::PointsExpired { .. } => "points_expired",
            DomainEvent::PointsReversed { .. } => "points_reversed",
            DomainEvent::CodeClaimed { .. } => "code_claimed",
            DomainEvent::TierChanged { .. } => "tier_changed",
            DomainEvent::PointsExpiringSoon { .. } => "points_expiring_soon",
            DomainEvent::PointsReturned { .. } => "points_returned",
            DomainEvent::RewardRedemption { .. } => "reward_redemption",
            DomainEvent::CouponIssued { .. } => "coupon_issued",
            DomainEvent::CouponRedeemed { .. } => "coupon_redeemed",
            DomainEvent::SpendRecorded { .. } => "spend_recorded",
            DomainEvent::ProfileChanged { .. } => "profile_changed",
        }
    }

    /// The member the event is about, if one (for per-member consumers).
    pub fn member_id(&self) -> Option<i64> {
        match self {
            DomainEvent::OrderPlaced { member_id, .. }
            | DomainEvent::OrderChanged { member_id, .. }
            | DomainEvent::OrderRefunded { member_id, .. }
            | DomainEvent::MemberCreated { member_id, .. }
            | DomainEvent::PointsEarned { member_id, .. }
            | DomainEvent::PointsSpent { member_id, .. }
            | DomainEvent::PointsExpired { member_id, .. }
            | DomainEvent::PointsReversed { member_id, .. }
            | DomainEvent::CodeClaimed { member_id, .. }
            | DomainEvent::TierChanged { member_id, .. }
            | DomainEvent::PointsExpiringSoon { member_id, .. }
            | DomainEvent::PointsReturned { member_id, .. }
            | DomainEvent::RewardRedemption { member_id, .. }
            | DomainEvent::CouponIssued { member_id, .. }
            | DomainEvent::CouponRedeemed { member_id, .. }
            | DomainEvent::ProfileChanged { member_id, .. } => Some(*member_id),
            DomainEvent::MemberMerged { kept, .. } => Some(*kept),
            DomainEvent::MemberSplit { from, .. } => Some(*from),
            DomainEvent::IdentifierShared { .. } => None,
            DomainEvent::SpendRecorded { .. } => None,
            DomainEvent::EventTracked { member_id, .. } => *member_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_with_its_kind_as_type() {
        let e = DomainEvent::MemberMerged {
            kept: 1,
            absorbed: 2,
            identifier: "phone +8613800000001".into(),
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], e.kind());
        let back: DomainEvent = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }
}
