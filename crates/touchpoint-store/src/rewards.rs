//! The points mall: a catalogue of rewards bought with points, redeemed in
//! one step or in two (a hold, then a capture or a release). See
//! docs/rewards.md.
//!
//! **Points.** A hold is a spend through the ledger's one door
//! ([`crate::loyalty::spend_in`], entry key `spend:reward:KEY`) in the same
//! unit of work as the stock; a capture moves no points; a release (or a
//! lapse) writes one `release` entry through
//! [`crate::loyalty::return_spend_in`] that puts the points back into the
//! lots they came from. The ledger's invariants hold throughout: the sum of
//! a member's entries is the balance, every lot's remaining is its amount
//! less its draws.
//!
//! **Stock.** Taken by one conditional statement (`UPDATE rewards SET
//! stock_left = stock_left - 1 WHERE id = .. AND stock_left > 0`) and given
//! back by a release: stock - stock_left = held + captured redemptions.
//!
//! **Locks.** A hold locks the reward's row, then the member's points
//! account; a release the redemption's row, then the reward's, then the
//! account. Lapsed holds are released each in a unit of work of their own,
//! so no transaction holds two accounts.
//!
//! **Lapse.** A hold past its time is released lazily, by the next hold,
//! capture or release that touches its reward or it, and by
//! [`Store::rewards_sweep`], which `touchpoint serve` runs every minute.

use serde::Serialize;
use touchpoint_core::coupons::{reward_available, RewardKind, DEFAULT_HOLD_MS};
use touchpoint_core::domain::DomainEvent;

use crate::coupons::Coupon;
use crate::db::RowRef;
use crate::unit_of_work::UnitOfWork;
use crate::{Store, StoreError};

/// A reward to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReward {
    /// Unique name.
    pub name: String,
    /// Coupon, gift or partner voucher.
    pub kind: RewardKind,
    /// Points it costs (> 0).
    pub points_cost: i64,
    /// Cash paid with the points, minor units (collected by the channel).
    pub cash_part: i64,
    /// Units in stock.
    pub stock: i64,
    /// Redemptions per member (None: no limit).
    pub per_member_limit: Option<i64>,
    /// Redeemable from, UTC ms.
    pub valid_from: Option<i64>,
    /// Redeemable until (exclusive), UTC ms.
    pub valid_until: Option<i64>,
    /// Channels where it can be redeemed (empty: all).
    pub channels: Vec<String>,
    /// A coupon reward: the definition whose coupon it issues.
    pub coupon_definition_id: Option<i64>,
    /// A partner voucher: the partner.
    pub partner: Option<String>,
}

/// A reward of the catalogue.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Reward {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// `coupon`, `gift`, `partner_voucher`.
    pub kind: String,
    /// Points.
    pub points_cost: i64,
    /// Cash part, minor units.
    pub cash_part: i64,
    /// Units in stock at creation (plus restocks).
    pub stock: i64,
    /// Units not held or captured.
    pub stock_left: i64,
    /// Per member.
    pub per_member_limit: Option<i64>,
    /// From, UTC ms.
    pub valid_from: Option<i64>,
    /// Until, UTC ms.
    pub valid_until: Option<i64>,
    /// Channels (empty: all).
    pub channels: Vec<String>,
    /// The coupon definition of a coupon reward.
    pub coupon_definition_id: Option<i64>,
    /// The partner of a voucher.
    pub partner: Option<String>,
}

/// A redemption of a reward.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RewardRedemption {
    /// Id.
    pub id: i64,
    /// The reward.
    pub reward_id: i64,
    /// The member.
    pub member_id: i64,
    /// `held`, `captured`, `released`, `lapsed`.
    pub state: String,
    /// Points spent.
    pub points: i64,
    /// Cash part, minor units.
    pub cash_part: i64,
    /// Channel.
    pub channel: Option<String>,
    /// When, UTC ms.
    pub created_at: i64,
    /// A hold's end, UTC ms.
    pub expires_at: Option<i64>,
    /// Captured, released or lapsed at, UTC ms.
    pub settled_at: Option<i64>,
    /// The coupon a coupon reward issued.
    pub coupon: Option<Coupon>,
    /// False when the idempotency key found an earlier redemption.
    pub created: bool,
}

const REWARD_COLS: &str = "id, name, kind, points_cost, cash_part, stock, stock_left, per_member_limit, valid_from, valid_until, channels, coupon_definition_id, partner";

fn reward_of(r: RowRef<'_>) -> Result<Reward, StoreError> {
    Ok(Reward {
        id: r.i64(0)?,
        name: r.text(1)?,
        kind: r.text(2)?,
        points_cost: r.i64(3)?,
        cash_part: r.i64(4)?,
        stock: r.i64(5)?,
        stock_left: r.i64(6)?,
        per_member_limit: r.opt_i64(7)?,
        valid_from: r.opt_i64(8)?,
        valid_until: r.opt_i64(9)?,
        channels: r
            .text(10)?
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        coupon_definition_id: r.opt_i64(11)?,
        partner: r.opt_text(12)?,
    })
}

const REDEMPTION_COLS: &str = "id, reward_id, member_id, state, points, cash_part, channel, created_at, expires_at, settled_at, coupon_id, idempotency_key";

/// A redemption row and its key and coupon id.
struct Row {
    r: RewardRedemption,
    coupon_id: Option<i64>,
    key: String,
}

fn row_of(r: RowRef<'_>) -> Result<Row, StoreError> {
    Ok(Row {
        r: RewardRedemption {
            id: r.i64(0)?,
            reward_id: r.i64(1)?,
            member_id: r.i64(2)?,
            state: r.text(3)?,
            points: r.i64(4)?,
            cash_part: r.i64(5)?,
            channel: r.opt_text(6)?,
            created_at: r.i64(7)?,
            expires_at: r.opt_i64(8)?,
            settled_at: r.opt_i64(9)?,
            coupon: None,
            created: false,
        },
        coupon_id: r.opt_i64(10)?,
        key: r.text(11)?,
    })
}

async fn reward_in(uow: &mut UnitOfWork, id: i64) -> Result<Reward, StoreError> {
    uow.conn()
        .fetch_opt(
            &format!("SELECT {REWARD_COLS} FROM rewards WHERE id = $1"),
            &[id.into()],
            reward_of,
        )
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no reward {id}")))
}

async fn row_in(uow: &mut UnitOfWork, id: i64) -> Result<Row, StoreError> {
    uow.conn()
        .fetch_opt(
            &format!("SELECT {REDEMPTION_COLS} FROM reward_redemptions WHERE id = $1"),
            &[id.into()],
            row_of,
        )
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no reward redemption {id}")))
}

async fn with_coupon(uow: &mut UnitOfWork, row: Row) -> Result<RewardRedemption, StoreError> {
    let mut r = row.r;
    if let Some(c) = row.coupon_id {
        let now = uow.now();
        r.coupon = Some(crate::coupons::coupon_by_id(&mut uow.conn(), c, now).await?);
    }
    Ok(r)
}

/// Issue the coupon of a coupon reward for a captured redemption.
async fn issue_reward_coupon(
    uow: &mut UnitOfWork,
    reward: &Reward,
    redemption: i64,
    member: i64,
) -> Result<Option<i64>, StoreError> {
    let Some(def) = reward.coupon_definition_id else {
        return Ok(None);
    };
    let c = crate::coupons::issue_in(
        uow,
        def,
        member,
        &format!("mall reward {}", reward.id),
        &format!("reward-redemption:{redemption}"),
    )
    .await?;
    uow.conn()
        .exec(
            "UPDATE reward_redemptions SET coupon_id = $2 WHERE id = $1",
            &[redemption.into(), c.id.into()],
        )
        .await?;
    Ok(Some(c.id))
}

/// Release a held redemption (state `released`, or `lapsed` for a hold past
/// its time) in the caller's unit of work: the unit back in stock, the
/// points back to their lots. False when it was not held.
async fn release_in(uow: &mut UnitOfWork, id: i64, state: &str) -> Result<bool, StoreError> {
    let now = uow.now();
    let n = uow
        .conn()
        .exec(
            "UPDATE reward_redemptions SET state = $2, settled_at = $3 WHERE id = $1 AND state = 'held'",
            &[id.into(), state.into(), now.into()],
        )
        .await?;
    if n != 1 {
        return Ok(false);
    }
    let row = row_in(uow, id).await?;
    uow.conn()
        .exec(
            "UPDATE rewards SET stock_left = stock_left + 1 WHERE id = $1",
            &[row.r.reward_id.into()],
        )
        .await?;
    crate::loyalty::return_spend_in(
        uow,
        row.r.member_id,
        &format!("reward:{}", row.key),
        &format!("reward hold {id}"),
    )
    .await?;
    uow.emit(DomainEvent::RewardRedemption {
        member_id: row.r.member_id,
        reward_id: row.r.reward_id,
        redemption_id: id,
        state: state.to_string(),
        points: row.r.points,
    });
    Ok(true)
}

impl Store {
    /// Add a reward to the catalogue.
    pub async fn reward_create(&self, r: &NewReward) -> Result<Reward, StoreError> {
        if r.name.trim().is_empty() {
            return Err(StoreError::InvalidInput(
                "name: expected a reward name".into(),
            ));
        }
        if r.points_cost <= 0 {
            return Err(StoreError::InvalidInput(format!(
                "points_cost {}: expected a positive number of points",
                r.points_cost
            )));
        }
        if r.cash_part < 0 || r.stock < 0 || r.per_member_limit.is_some_and(|l| l <= 0) {
            return Err(StoreError::InvalidInput(
                "cash_part and stock: expected 0 or more; per_member_limit: expected a positive number".into(),
            ));
        }
        match (r.kind, r.coupon_definition_id) {
            (RewardKind::Coupon, None) => {
                return Err(StoreError::InvalidInput(
                    "coupon_definition: a coupon reward names the coupon definition it issues"
                        .into(),
                ))
            }
            (RewardKind::Coupon, Some(d)) => {
                self.coupon_definition(&d.to_string()).await?;
            }
            (_, Some(_)) => {
                return Err(StoreError::InvalidInput(
                    "coupon_definition: only a coupon reward issues coupons".into(),
                ))
            }
            _ => {}
        }
        let mut uow = self.unit_of_work().await?;
        let now = uow.now();
        let id = uow
            .conn()
            .fetch_opt(
                "INSERT INTO rewards (name, kind, points_cost, cash_part, stock, stock_left, per_member_limit, valid_from, valid_until, channels, coupon_definition_id, partner, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (name) DO NOTHING RETURNING id",
                &[
                    r.name.clone().into(),
                    r.kind.as_str().into(),
                    r.points_cost.into(),
                    r.cash_part.into(),
                    r.stock.into(),
                    r.per_member_limit.into(),
                    r.valid_from.into(),
                    r.valid_until.into(),
                    r.channels.join(",").into(),
                    r.coupon_definition_id.into(),
                    r.partner.clone().into(),
                    now.into(),
                ],
                |x| x.i64(0),
            )
            .await?
            .ok_or_else(|| StoreError::InvalidInput(format!("a reward named {:?} exists", r.name)))?;
        let out = reward_in(&mut uow, id).await?;
        uow.commit().await?;
        Ok(out)
    }

    /// The catalogue.
    pub async fn rewards(&self) -> Result<Vec<Reward>, StoreError> {
        let mut h = self.acquire().await?;
        h.conn()
            .fetch(
                &format!("SELECT {REWARD_COLS} FROM rewards ORDER BY id"),
                &[],
                reward_of,
            )
            .await
    }

    /// One reward (its lapsed holds released first).
    pub async fn reward(&self, id: i64) -> Result<Reward, StoreError> {
        self.release_lapsed(Some(id)).await?;
        let mut h = self.acquire().await?;
        h.conn()
            .fetch_opt(
                &format!("SELECT {REWARD_COLS} FROM rewards WHERE id = $1"),
                &[id.into()],
                reward_of,
            )
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no reward {id}")))
    }

    /// Release holds past their time (of one reward, or all), each in its own
    /// unit of work; the number released.
    pub async fn release_lapsed(&self, reward: Option<i64>) -> Result<u64, StoreError> {
        let mut n = 0;
        loop {
            let now = crate::now_ms();
            let ids = {
                let mut h = self.acquire().await?;
                h.conn()
                    .fetch(
                        "SELECT id FROM reward_redemptions WHERE state = 'held' AND expires_at <= $1 \
                         AND ($2 < 0 OR reward_id = $2) ORDER BY id LIMIT 500",
                        &[now.into(), reward.unwrap_or(-1).into()],
                        |r| r.i64(0),
                    )
                    .await?
            };
            if ids.is_empty() {
                return Ok(n);
            }
            for id in ids {
                let mut uow = self.unit_of_work().await?;
                if release_in(&mut uow, id, "lapsed").await? {
                    n += 1;
                }
                uow.commit().await?;
            }
        }
    }

    /// Release every lapsed hold: what `touchpoint serve` runs every minute.
    pub async fn rewards_sweep(&self) -> Result<u64, StoreError> {
        self.release_lapsed(None).await
    }

    /// Hold a reward for a member: the points are spent and one unit is
    /// reserved until the hold's time (`hold_ms`, default 15 minutes) ends;
    /// capture or release it before. `key` makes it happen once.
    pub async fn reward_hold(
        &self,
        reward: i64,
        member: i64,
        channel: Option<&str>,
        hold_ms: Option<i64>,
        key: &str,
    ) -> Result<RewardRedemption, StoreError> {
        let hold = hold_ms.unwrap_or(DEFAULT_HOLD_MS);
        if hold <= 0 || hold > 7 * 86_400_000 {
            return Err(StoreError::InvalidInput(
                "hold time: expected 1 ms to 7 days".into(),
            ));
        }
        self.take(reward, member, channel, Some(hold), key).await
    }

    /// Redeem a reward in one step (held and captured at once).
    pub async fn reward_redeem(
        &self,
        reward: i64,
        member: i64,
        channel: Option<&str>,
        key: &str,
    ) -> Result<RewardRedemption, StoreError> {
        self.take(reward, member, channel, None, key).await
    }

    async fn take(
        &self,
        reward_id: i64,
        member: i64,
        channel: Option<&str>,
        hold: Option<i64>,
        key: &str,
    ) -> Result<RewardRedemption, StoreError> {
        if key.is_empty() {
            return Err(StoreError::InvalidInput("an empty idempotency key".into()));
        }
        if let Some(r) = self.redemption_by_key(key).await? {
            return Ok(r);
        }
        self.release_lapsed(Some(reward_id)).await?;
        let mut uow = self.unit_of_work().await?;
        let now = uow.now();
        let reward = reward_in(&mut uow, reward_id).await?;
        reward_available(
            &reward.channels,
            reward.valid_from,
            reward.valid_until,
            channel,
            now,
        )
        .map_err(StoreError::RewardUnavailable)?;
        let n = uow
            .conn()
            .exec(
                "UPDATE rewards SET stock_left = stock_left - 1 WHERE id = $1 AND stock_left > 0",
                &[reward_id.into()],
            )
            .await?;
        if n != 1 {
            return Err(StoreError::OutOfStock);
        }
        let spend_key = format!("reward:{key}");
        let w = crate::loyalty::spend_in(
            &mut uow,
            member,
            reward.points_cost,
            "reward",
            Some(&format!("reward {reward_id}")),
            &format!("mall reward {reward_id}"),
            &spend_key,
        )
        .await?;
        if !w.created {
            // The same key raced this call and won: its redemption stands.
            uow.rollback().await?;
            return self
                .redemption_by_key(key)
                .await?
                .ok_or_else(|| StoreError::Corrupt(format!("redemption {key} is missing")));
        }
        if let Some(limit) = reward.per_member_limit {
            let had = uow
                .conn()
                .fetch_opt(
                    "SELECT CAST(COUNT(*) AS BIGINT) FROM reward_redemptions WHERE member_id = $1 AND reward_id = $2 \
                     AND state IN ('held', 'captured')",
                    &[member.into(), reward_id.into()],
                    |r| r.i64(0),
                )
                .await?
                .unwrap_or(0);
            if had >= limit {
                return Err(StoreError::RewardLimitReached { limit });
            }
        }
        let (state, expires_at, settled_at) = match hold {
            Some(h) => ("held", Some(now + h), None),
            None => ("captured", None, Some(now)),
        };
        let id = uow
            .conn()
            .fetch_opt(
                "INSERT INTO reward_redemptions (reward_id, member_id, state, points, cash_part, channel, created_at, expires_at, settled_at, idempotency_key) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
                &[
                    reward_id.into(),
                    member.into(),
                    state.into(),
                    reward.points_cost.into(),
                    reward.cash_part.into(),
                    channel.map(str::to_string).into(),
                    now.into(),
                    expires_at.into(),
                    settled_at.into(),
                    key.into(),
                ],
                |r| r.i64(0),
            )
            .await?
            .ok_or_else(|| StoreError::Corrupt("redemption insert returned no id".into()))?;
        if hold.is_none() {
            issue_reward_coupon(&mut uow, &reward, id, member).await?;
        }
        uow.emit(DomainEvent::RewardRedemption {
            member_id: member,
            reward_id,
            redemption_id: id,
            state: state.to_string(),
            points: reward.points_cost,
        });
        let row = row_in(&mut uow, id).await?;
        let mut out = with_coupon(&mut uow, row).await?;
        out.created = true;
        uow.commit().await?;
        Ok(out)
    }

    async fn redemption_by_key(&self, key: &str) -> Result<Option<RewardRedemption>, StoreError> {
        let mut uow = self.unit_of_work().await?;
        let row = uow
            .conn()
            .fetch_opt(
                &format!(
                    "SELECT {REDEMPTION_COLS} FROM reward_redemptions WHERE idempotency_key = $1"
                ),
                &[key.into()],
                row_of,
            )
            .await?;
        let out = match row {
            Some(r) => Some(with_coupon(&mut uow, r).await?),
            None => None,
        };
        uow.rollback().await?;
        Ok(out)
    }

    /// A redemption.
    pub async fn reward_redemption(&self, id: i64) -> Result<RewardRedemption, StoreError> {
        let mut uow = self.unit_of_work().await?;
        let row = row_in(&mut uow, id).await?;
        let out = with_coupon(&mut uow, row).await?;
        uow.rollback().await?;
        Ok(out)
    }

    /// Capture a hold: the reward is the member's (a coupon reward issues its
    /// coupon). Capturing a captured hold returns it; a released or lapsed
    /// one is refused (a hold past its time lapses here).
    pub async fn reward_capture(&self, id: i64) -> Result<RewardRedemption, StoreError> {
        let mut uow = self.unit_of_work().await?;
        let now = uow.now();
        let n = uow
            .conn()
            .exec(
                "UPDATE reward_redemptions SET state = 'captured', settled_at = $2 WHERE id = $1 AND state = 'held' AND expires_at > $2",
                &[id.into(), now.into()],
            )
            .await?;
        let row = row_in(&mut uow, id).await?;
        if n == 1 {
            let reward = reward_in(&mut uow, row.r.reward_id).await?;
            issue_reward_coupon(&mut uow, &reward, id, row.r.member_id).await?;
            uow.emit(DomainEvent::RewardRedemption {
                member_id: row.r.member_id,
                reward_id: row.r.reward_id,
                redemption_id: id,
                state: "captured".into(),
                points: row.r.points,
            });
            let row = row_in(&mut uow, id).await?;
            let mut out = with_coupon(&mut uow, row).await?;
            out.created = true;
            uow.commit().await?;
            return Ok(out);
        }
        match row.r.state.as_str() {
            "captured" => {
                let out = with_coupon(&mut uow, row).await?;
                uow.rollback().await?;
                Ok(out)
            }
            "held" => {
                // Past its time: it lapses now.
                let at = row.r.expires_at.unwrap_or(now);
                release_in(&mut uow, id, "lapsed").await?;
                uow.commit().await?;
                Err(StoreError::HoldNotActive(format!(
                    "hold {id} lapsed at {at} (UTC ms); its points and stock were released"
                )))
            }
            s => Err(StoreError::HoldNotActive(format!(
                "hold {id} was {s} already; hold the reward again"
            ))),
        }
    }

    /// Release a hold: the unit back in stock, the points back to the
    /// member. Releasing a released or lapsed hold returns it; a captured
    /// one is refused.
    pub async fn reward_release(&self, id: i64) -> Result<RewardRedemption, StoreError> {
        let mut uow = self.unit_of_work().await?;
        let released = release_in(&mut uow, id, "released").await?;
        let row = row_in(&mut uow, id).await?;
        if !released && row.r.state == "captured" {
            return Err(StoreError::HoldNotActive(format!(
                "redemption {id} was captured; it cannot be released"
            )));
        }
        let mut out = with_coupon(&mut uow, row).await?;
        out.created = released;
        uow.commit().await?;
        Ok(out)
    }

    /// A member's redemptions, newest first.
    pub async fn member_redemptions(
        &self,
        member: i64,
    ) -> Result<Vec<RewardRedemption>, StoreError> {
        let mut h = self.acquire().await?;
        let rows = h
            .conn()
            .fetch(
                &format!("SELECT {REDEMPTION_COLS} FROM reward_redemptions WHERE member_id = $1 ORDER BY id DESC LIMIT 200"),
                &[member.into()],
                row_of,
            )
            .await?;
        Ok(rows.into_iter().map(|r| r.r).collect())
    }
}
