//! Touchpoint core: domain types and pure logic.
//!
//! This crate computes; it does no network or database I/O (no tokio, sqlx or
//! axum). Readers and writers it takes are plain `std::io` traits.
#![warn(missing_docs)]

pub mod analytics;
pub mod calendar;
pub mod campaigns;
pub mod clv;
pub mod coupons;
pub mod demo;
pub mod domain;
pub mod identity;
pub mod ingest;
pub mod loyalty;
pub mod promotions;
pub mod referrals;
pub mod segments;
pub mod types;

pub use types::*;
