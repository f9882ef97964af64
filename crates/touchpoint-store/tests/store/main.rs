//! Store integration tests: one binary, run on SQLite always and on PostgreSQL
//! when `TOUCHPOINT_TEST_POSTGRES_URL` is set (each test gets a fresh database).

mod acquisition;
mod analytics;
mod bad_input;
mod campaign_triggers;
mod campaigns;
mod clv;
mod common;
mod import;
mod loyalty;
mod members;
mod referrals;
mod rewards;
mod segments;
mod tiers;
mod write_path;
