//! Profiles: attributes, tags and consent, written through one door.
//!
//! Every surface (identify traits, the API, the CLI, a CSV of tags, the
//! unsubscribe link, the refresh of a rule tag) builds a [`ProfileChange`]
//! and calls [`apply_in`] inside a unit of work (or [`Store::update_profile`],
//! which opens one): attributes, tags and consent change together with one
//! `profile_changed` domain event, or not at all.
//!
//! Consent is opt-in: a member may receive marketing on a channel about a
//! topic only when the latest change for that pair (by the time the person
//! made it) granted it. Every change is kept in `consent_events`; `consent`
//! holds the current state. Details: docs/campaigns.md.

use chrono::NaiveDate;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use touchpoint_core::domain::DomainEvent;
use touchpoint_core::segments::{CONSENT_CHANNELS, CONSENT_TOPICS};
use touchpoint_core::MemberId;

use crate::db::{Conn, Val};
use crate::{Store, StoreError, UnitOfWork};

/// Where a profile change came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProfileSource {
    /// A tracking `identify` call's traits.
    Identify,
    /// The HTTP API.
    Api,
    /// The command line.
    Cli,
    /// A CSV file of member,tag rows.
    Csv,
    /// The unsubscribe link.
    Unsubscribe,
    /// The refresh of a rule tag.
    Rule,
}

impl ProfileSource {
    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            ProfileSource::Identify => "identify",
            ProfileSource::Api => "api",
            ProfileSource::Cli => "cli",
            ProfileSource::Csv => "csv",
            ProfileSource::Unsubscribe => "unsubscribe",
            ProfileSource::Rule => "rule",
        }
    }

    fn tag_source(self) -> &'static str {
        if self == ProfileSource::Rule {
            "rule"
        } else {
            "manual"
        }
    }
}

/// Attributes to set (`None`: leave as is).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Attributes {
    /// Name.
    pub name: Option<String>,
    /// Gender.
    pub gender: Option<String>,
    /// Birthday.
    pub birthday: Option<NaiveDate>,
    /// Region (province, state).
    pub region: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Preferred language.
    pub language: Option<String>,
}

impl Attributes {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == Attributes::default()
    }
}

/// A consent choice: granted or withdrawn, on a channel, for one topic or
/// (`topic: None`) every topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsentChoice {
    /// `email`, `sms`, `wechat`, `webhook`.
    pub channel: String,
    /// `newsletter`, `promotions`; `None` for every topic.
    pub topic: Option<String>,
    /// Granted (true) or withdrawn.
    pub granted: bool,
}

/// One change of one member's profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileChange {
    /// Where it came from.
    pub source: ProfileSource,
    /// What caused it (a message id, an API key id, `page` / `one-click`).
    pub detail: Option<String>,
    /// When the person made the choice, UTC ms (default: the unit of work's time).
    pub at: Option<i64>,
    /// Makes a retried consent write happen once.
    pub idempotency_key: Option<String>,
    /// Attributes to set.
    pub attributes: Attributes,
    /// Tags to add.
    pub add_tags: Vec<String>,
    /// Tags to remove.
    pub remove_tags: Vec<String>,
    /// Consent choices.
    pub consent: Vec<ConsentChoice>,
}

impl ProfileChange {
    /// An empty change from `source`.
    pub fn new(source: ProfileSource) -> Self {
        ProfileChange {
            source,
            detail: None,
            at: None,
            idempotency_key: None,
            attributes: Attributes::default(),
            add_tags: Vec::new(),
            remove_tags: Vec::new(),
            consent: Vec::new(),
        }
    }
}

/// What a change did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProfileOutcome {
    /// The member changed (the current id of the one asked for).
    pub member_id: i64,
    /// Attributes that changed.
    pub attributes: Vec<String>,
    /// Tags added.
    pub tags_added: Vec<String>,
    /// Tags removed.
    pub tags_removed: Vec<String>,
    /// Consent rows recorded: (channel, topic, granted).
    pub consent: Vec<(String, String, bool)>,
}

impl ProfileOutcome {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.attributes.is_empty()
            && self.tags_added.is_empty()
            && self.tags_removed.is_empty()
            && self.consent.is_empty()
    }
}

/// A tag as stored: trimmed, lower case, 1 to 64 characters of letters,
/// digits, `-`, `_`, `:`, `.` or spaces (the core's rule,
/// [`touchpoint_core::segments::normalise_tag`]).
pub fn normalise_tag(tag: &str) -> Result<String, StoreError> {
    touchpoint_core::segments::normalise_tag(tag)
        .map_err(|form| StoreError::InvalidInput(format!("tag {tag:?}: {form}")))
}

fn check_choice(c: &ConsentChoice) -> Result<Vec<(String, String)>, StoreError> {
    let ch = c.channel.trim().to_lowercase();
    if !CONSENT_CHANNELS.contains(&ch.as_str()) {
        return Err(StoreError::InvalidInput(format!(
            "consent channel {:?}: expected one of {}",
            c.channel,
            CONSENT_CHANNELS.join(", ")
        )));
    }
    match &c.topic {
        None => Ok(CONSENT_TOPICS
            .iter()
            .map(|t| (ch.clone(), (*t).to_string()))
            .collect()),
        Some(t) => {
            let t = t.trim().to_lowercase();
            if !CONSENT_TOPICS.contains(&t.as_str()) {
                return Err(StoreError::InvalidInput(format!(
                    "consent topic {t:?}: expected one of {}",
                    CONSENT_TOPICS.join(", ")
                )));
            }
            Ok(vec![(ch, t)])
        }
    }
}

/// The current id of a member, inside a transaction.
pub async fn current_member(conn: &mut Conn<'_>, id: MemberId) -> Result<MemberId, StoreError> {
    let row = conn
        .fetch_opt(
            "SELECT id, merged_into FROM members WHERE id = $1",
            &[id.get().into()],
            |r| Ok((r.i64(0)?, r.opt_i64(1)?)),
        )
        .await?;
    match row {
        Some((id, into)) => Ok(MemberId::from_i64(into.unwrap_or(id))),
        None => Err(StoreError::NotFound(format!("no member {id}"))),
    }
}

/// The current id of a member (following a merge); `NotFound` for an unknown id.
pub async fn current_member_id(store: &Store, id: MemberId) -> Result<MemberId, StoreError> {
    let mut h = store.acquire().await?;
    current_member(&mut h.conn(), id).await
}

/// The one door: apply a profile change inside the caller's unit of work,
/// with a `profile_changed` event when anything changed.
pub async fn apply_in(
    uow: &mut UnitOfWork,
    member: MemberId,
    change: &ProfileChange,
) -> Result<ProfileOutcome, StoreError> {
    // Validate everything before writing anything.
    let add: Vec<String> = change
        .add_tags
        .iter()
        .map(|t| normalise_tag(t))
        .collect::<Result<_, _>>()?;
    let remove: Vec<String> = change
        .remove_tags
        .iter()
        .map(|t| normalise_tag(t))
        .collect::<Result<_, _>>()?;
    let mut pairs = Vec::new();
    for c in &change.consent {
        for (ch, t) in check_choice(c)? {
            pairs.push((ch, t, c.granted));
        }
    }
    let now = uow.now();
    let at = change.at.unwrap_or(now);
    let mut c = uow.conn();
    let member = current_member(&mut c, member).await?;
    let id = member.get();
    let mut out = ProfileOutcome {
        member_id: id,
        ..ProfileOutcome::default()
    };

    if !change.attributes.is_empty() {
        let a = &change.attributes;
        let cur = c
            .fetch_opt(
                "SELECT name, gender, birthday, region, city, language FROM members WHERE id = $1",
                &[id.into()],
                |r| {
                    Ok([
                        r.opt_text(0)?,
                        r.opt_text(1)?,
                        r.opt_text(2)?,
                        r.opt_text(3)?,
                        r.opt_text(4)?,
                        r.opt_text(5)?,
                    ])
                },
            )
            .await?
            .unwrap_or_default();
        let want = [
            a.name.clone(),
            a.gender.clone(),
            a.birthday.map(|d| d.to_string()),
            a.region.clone(),
            a.city.clone(),
            a.language.clone(),
        ];
        let names = ["name", "gender", "birthday", "region", "city", "language"];
        let mut vals: Vec<Val> = vec![id.into()];
        let mut sets = Vec::new();
        for i in 0..6 {
            if let Some(v) = &want[i] {
                if cur[i].as_deref() != Some(v.as_str()) {
                    vals.push(v.clone().into());
                    sets.push(format!("{} = ${}", names[i], vals.len()));
                    out.attributes.push(names[i].to_string());
                }
            }
        }
        if !sets.is_empty() {
            c.exec(
                &format!("UPDATE members SET {} WHERE id = $1", sets.join(", ")),
                &vals,
            )
            .await?;
        }
    }

    let tag_source = change.source.tag_source();
    for t in add {
        let n = c
            .exec(
                "INSERT INTO member_tags (member_id, tag, source, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (member_id, tag, source) DO NOTHING",
                &[id.into(), t.as_str().into(), tag_source.into(), now.into()],
            )
            .await?;
        if n > 0 && !out.tags_added.contains(&t) {
            out.tags_added.push(t);
        }
    }
    for t in remove {
        let n = c
            .exec(
                "DELETE FROM member_tags WHERE member_id = $1 AND tag = $2 AND source = $3",
                &[id.into(), t.as_str().into(), tag_source.into()],
            )
            .await?;
        if n > 0 && !out.tags_removed.contains(&t) {
            out.tags_removed.push(t);
        }
    }

    for (ch, topic, granted) in pairs {
        let key = change
            .idempotency_key
            .as_ref()
            .map(|k| format!("{k}:{id}:{ch}:{topic}"));
        let n = c
            .exec(
                "INSERT INTO consent_events (member_id, channel, topic, granted, at, recorded_at, source, detail, idempotency_key) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (idempotency_key) DO NOTHING",
                &[
                    id.into(),
                    ch.as_str().into(),
                    topic.as_str().into(),
                    i64::from(granted).into(),
                    at.into(),
                    now.into(),
                    change.source.name().into(),
                    change.detail.clone().into(),
                    key.into(),
                ],
            )
            .await?;
        if n == 0 {
            continue;
        }
        c.exec(
            "INSERT INTO consent (member_id, channel, topic, granted, at, source) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (member_id, channel, topic) DO UPDATE SET granted = excluded.granted, at = excluded.at, \
             source = excluded.source WHERE consent.at <= excluded.at",
            &[
                id.into(),
                ch.as_str().into(),
                topic.as_str().into(),
                i64::from(granted).into(),
                at.into(),
                change.source.name().into(),
            ],
        )
        .await?;
        out.consent.push((ch, topic, granted));
    }

    if !out.is_empty() {
        uow.emit(DomainEvent::ProfileChanged {
            member_id: id,
            source: change.source.name().to_string(),
            attributes: out.attributes.clone(),
            tags_added: out.tags_added.clone(),
            tags_removed: out.tags_removed.clone(),
            consent: out.consent.clone(),
        });
    }
    Ok(out)
}

/// A member's profile: attributes, tags, current consent.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Profile {
    /// The member (current id).
    pub member_id: i64,
    /// Attributes.
    pub attributes: Attributes,
    /// Tags: (tag, source `manual` or `rule`), by tag.
    pub tags: Vec<(String, String)>,
    /// Current consent per channel and topic (pairs never recorded are absent
    /// and mean no consent).
    pub consent: Vec<ConsentState>,
}

/// The current consent of one channel and topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsentState {
    /// Channel.
    pub channel: String,
    /// Topic.
    pub topic: String,
    /// Granted.
    pub granted: bool,
    /// When the choice was made, UTC ms.
    pub at: i64,
    /// Where it came from.
    pub source: String,
}

/// One recorded consent change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsentEvent {
    /// Channel.
    pub channel: String,
    /// Topic.
    pub topic: String,
    /// Granted.
    pub granted: bool,
    /// When the choice was made, UTC ms.
    pub at: i64,
    /// When it was recorded, UTC ms.
    pub recorded_at: i64,
    /// Where it came from.
    pub source: String,
    /// What caused it.
    pub detail: Option<String>,
}

const UNSUBSCRIBE_SECRET: &str = "unsubscribe";

type HmacSha256 = Hmac<Sha256>;

impl Store {
    /// Apply a profile change in a unit of work of its own (see [`apply_in`]).
    pub async fn update_profile(
        &self,
        member: MemberId,
        change: &ProfileChange,
    ) -> Result<ProfileOutcome, StoreError> {
        let mut uow = self.unit_of_work().await?;
        let out = apply_in(&mut uow, member, change).await?;
        uow.commit().await?;
        Ok(out)
    }

    /// A member's profile.
    pub async fn profile(&self, member: MemberId) -> Result<Profile, StoreError> {
        let mut h = self.acquire().await?;
        let mut c = h.conn();
        let id = current_member(&mut c, member).await?.get();
        let attributes = c
            .fetch_opt(
                "SELECT name, gender, birthday, region, city, language FROM members WHERE id = $1",
                &[id.into()],
                |r| {
                    Ok(Attributes {
                        name: r.opt_text(0)?,
                        gender: r.opt_text(1)?,
                        birthday: r
                            .opt_text(2)?
                            .and_then(|s| NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok()),
                        region: r.opt_text(3)?,
                        city: r.opt_text(4)?,
                        language: r.opt_text(5)?,
                    })
                },
            )
            .await?
            .unwrap_or_default();
        let tags = c
            .fetch(
                "SELECT tag, source FROM member_tags WHERE member_id = $1 ORDER BY tag, source",
                &[id.into()],
                |r| Ok((r.text(0)?, r.text(1)?)),
            )
            .await?;
        let consent = c
            .fetch(
                "SELECT channel, topic, granted, at, source FROM consent WHERE member_id = $1 ORDER BY channel, topic",
                &[id.into()],
                |r| {
                    Ok(ConsentState {
                        channel: r.text(0)?,
                        topic: r.text(1)?,
                        granted: r.i64(2)? != 0,
                        at: r.i64(3)?,
                        source: r.text(4)?,
                    })
                },
            )
            .await?;
        Ok(Profile {
            member_id: id,
            attributes,
            tags,
            consent,
        })
    }

    /// The consent history of a member, oldest first.
    pub async fn consent_history(&self, member: MemberId) -> Result<Vec<ConsentEvent>, StoreError> {
        let mut h = self.acquire().await?;
        let mut c = h.conn();
        let id = current_member(&mut c, member).await?.get();
        c.fetch(
            "SELECT channel, topic, granted, at, recorded_at, source, detail FROM consent_events \
             WHERE member_id = $1 ORDER BY id",
            &[id.into()],
            |r| {
                Ok(ConsentEvent {
                    channel: r.text(0)?,
                    topic: r.text(1)?,
                    granted: r.i64(2)? != 0,
                    at: r.i64(3)?,
                    recorded_at: r.i64(4)?,
                    source: r.text(5)?,
                    detail: r.opt_text(6)?,
                })
            },
        )
        .await
    }

    /// May we send marketing to the member on `channel` about `topic`? Only
    /// when the latest choice for the pair granted it (opt-in).
    pub async fn may_send_marketing(
        &self,
        member: MemberId,
        channel: &str,
        topic: &str,
    ) -> Result<bool, StoreError> {
        let mut h = self.acquire().await?;
        let mut c = h.conn();
        let id = current_member(&mut c, member).await?.get();
        Ok(c.fetch_opt(
            "SELECT granted FROM consent WHERE member_id = $1 AND channel = $2 AND topic = $3",
            &[id.into(), channel.into(), topic.into()],
            |r| r.i64(0),
        )
        .await?
            == Some(1))
    }

    async fn secret(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        let mut h = self.acquire().await?;
        let mut c = h.conn();
        if let Some(v) = c
            .fetch_opt(
                "SELECT value FROM store_secrets WHERE name = $1",
                &[name.into()],
                |r| r.bytes(0),
            )
            .await?
        {
            return Ok(v);
        }
        let fresh: [u8; 32] = rand::random();
        c.exec(
            "INSERT INTO store_secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
            &[name.into(), fresh.to_vec().into(), crate::now_ms().into()],
        )
        .await?;
        // Another process may have created it first: read what was kept.
        c.fetch_opt(
            "SELECT value FROM store_secrets WHERE name = $1",
            &[name.into()],
            |r| r.bytes(0),
        )
        .await?
        .ok_or_else(|| StoreError::Corrupt("store secret missing after insert".into()))
    }

    /// The member's unsubscribe token: `ID-MAC`, where MAC is the first 16
    /// bytes of HMAC-SHA256 over `unsubscribe:ID` with the store's secret
    /// (created on first use, kept in the database), in hex.
    pub async fn unsubscribe_token(&self, member: MemberId) -> Result<String, StoreError> {
        let secret = self.secret(UNSUBSCRIBE_SECRET).await?;
        Ok(format!(
            "{}-{}",
            member.get(),
            crate::keys::hex(&mac(&secret, member.get())[..16])
        ))
    }

    /// The member a token was made for, or `None` when it is not a valid token.
    pub async fn verify_unsubscribe_token(
        &self,
        token: &str,
    ) -> Result<Option<MemberId>, StoreError> {
        let Some((id, mac_hex)) = token.split_once('-') else {
            return Ok(None);
        };
        let (Ok(id), Some(given)) = (id.parse::<i64>(), unhex(mac_hex)) else {
            return Ok(None);
        };
        if given.len() != 16 {
            return Ok(None);
        }
        let secret = self.secret(UNSUBSCRIBE_SECRET).await?;
        let mut m = HmacSha256::new_from_slice(&secret)
            .map_err(|e| StoreError::Corrupt(format!("unsubscribe secret: {e}")))?;
        m.update(format!("unsubscribe:{id}").as_bytes());
        Ok(m.verify_truncated_left(&given)
            .is_ok()
            .then(|| MemberId::from_i64(id)))
    }

    /// The `List-Unsubscribe` and `List-Unsubscribe-Post` header values
    /// (RFC 8058) of an e-mail to the member; `base_url` is where
    /// `touchpoint serve` is reached (`https://crm.example.com`).
    pub async fn list_unsubscribe_headers(
        &self,
        member: MemberId,
        base_url: &str,
    ) -> Result<(String, String), StoreError> {
        let token = self.unsubscribe_token(member).await?;
        Ok(list_unsubscribe_values(base_url, &token))
    }

    /// Withdraw e-mail consent for every topic through the unsubscribe link.
    /// `how` is `page` (the confirmation page's button) or `one-click`
    /// (RFC 8058 POST). Returns `None` for an invalid token.
    pub async fn unsubscribe(
        &self,
        token: &str,
        how: &str,
    ) -> Result<Option<ProfileOutcome>, StoreError> {
        let Some(member) = self.verify_unsubscribe_token(token).await? else {
            return Ok(None);
        };
        let mut uow = self.unit_of_work().await?;
        let id = current_member(&mut uow.conn(), member).await?;
        // Withdraw only what is not withdrawn already, so the link used
        // again (a second click, a mail client retrying the POST) records
        // nothing more.
        let withdrawn: Vec<String> = uow
            .conn()
            .fetch(
                "SELECT topic FROM consent WHERE member_id = $1 AND channel = 'email' AND granted = 0",
                &[id.get().into()],
                |r| r.text(0),
            )
            .await?;
        let mut change = ProfileChange::new(ProfileSource::Unsubscribe);
        change.detail = Some(how.to_string());
        for topic in CONSENT_TOPICS {
            if !withdrawn.iter().any(|t| t == topic) {
                change.consent.push(ConsentChoice {
                    channel: "email".into(),
                    topic: Some(topic.to_string()),
                    granted: false,
                });
            }
        }
        let out = apply_in(&mut uow, id, &change).await?;
        uow.commit().await?;
        Ok(Some(out))
    }

    /// Import a tag CSV (`member,tag[,action]`, see
    /// [`touchpoint_core::ingest::tags`]): bad rows are listed with their
    /// line, column, value and the accepted form, as is a row naming an
    /// unknown member; the good rows are applied through [`apply_in`] in
    /// units of work of [`TAG_CHUNK`] rows.
    pub async fn import_tags(
        &self,
        bytes: Vec<u8>,
        encoding: Option<touchpoint_core::ingest::Encoding>,
    ) -> Result<TagImport, TagImportError> {
        use touchpoint_core::ingest::tags::{self, TagAction};
        let reader = tags::open(Box::new(std::io::Cursor::new(bytes)), encoding)?;
        let mut out = TagImport::default();
        let mut good = Vec::new();
        for r in reader {
            out.rows += 1;
            match r {
                Ok(row) => good.push(row),
                Err(rej) => {
                    out.rejected += 1;
                    out.errors.extend(rej.errors);
                }
            }
        }
        for chunk in good.chunks(TAG_CHUNK) {
            let mut uow = self.unit_of_work().await?;
            for row in chunk {
                let mut change = ProfileChange::new(ProfileSource::Csv);
                change.detail = Some(format!("line {}", row.source_line));
                match row.action {
                    TagAction::Add => change.add_tags.push(row.tag.clone()),
                    TagAction::Remove => change.remove_tags.push(row.tag.clone()),
                }
                match apply_in(&mut uow, row.member, &change).await {
                    Ok(o) if !o.tags_added.is_empty() => out.added += 1,
                    Ok(o) if !o.tags_removed.is_empty() => out.removed += 1,
                    Ok(_) => out.unchanged += 1,
                    Err(StoreError::NotFound(_)) => {
                        out.rejected += 1;
                        out.errors.push(touchpoint_core::ingest::RowError {
                            line: row.source_line,
                            column: Some("member".into()),
                            value: Some(row.member.to_string()),
                            message: "no member has this id; expected the id of a stored member (touchpoint members list)".into(),
                        });
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            uow.commit().await?;
        }
        out.errors.sort_by_key(|e| e.line);
        Ok(out)
    }
}

/// Rows applied per unit of work by [`Store::import_tags`].
pub const TAG_CHUNK: usize = 1_000;

/// What a tag import did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TagImport {
    /// Rows read (good and bad; blank rows are skipped).
    pub rows: u64,
    /// Rows that added a tag.
    pub added: u64,
    /// Rows that removed a tag.
    pub removed: u64,
    /// Rows that changed nothing (the tag was there already, or was not there to remove).
    pub unchanged: u64,
    /// Rows rejected.
    pub rejected: u64,
    /// One entry per problem, with line, column, value and the accepted form.
    pub errors: Vec<touchpoint_core::ingest::RowError>,
}

/// Errors of a tag import.
#[derive(Debug, thiserror::Error)]
pub enum TagImportError {
    /// The file is not a tag file (missing columns, empty, undecodable header).
    #[error("{0}")]
    File(#[from] touchpoint_core::ingest::FileError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The header values for an unsubscribe token: `<BASE/unsubscribe/TOKEN>`
/// and `List-Unsubscribe=One-Click`.
pub fn list_unsubscribe_values(base_url: &str, token: &str) -> (String, String) {
    (
        format!("<{}/unsubscribe/{token}>", base_url.trim_end_matches('/')),
        "List-Unsubscribe=One-Click".to_string(),
    )
}

fn mac(secret: &[u8], id: i64) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(format!("unsubscribe:{id}").as_bytes());
    m.finalize().into_bytes().to_vec()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}
