//! Integration tests of the HTTP server: the real server, built by the same
//! function as `touchpoint serve`, on port 0 with a fresh database, driven
//! over HTTP (and by the real Segment and RudderStack libraries in `clients`).
//! One test binary for the whole crate.

mod acquisition;
mod api;
mod campaigns;
mod clients;
mod dashboard;
mod doors;
mod errors;
mod helpers;
mod ingest;
mod loyalty;
mod openapi;
mod promotions;
mod referrals;
mod reports;
mod rewards;
mod segments;
mod shutdown;
