//! Integration tests: each test starts the real server on a random loopback port with a fresh
//! SQLite database and talks to it over HTTP.

// Tests fail loudly on purpose.
#![allow(clippy::unwrap_used)]

mod alerts;
mod amqp;
mod audit;
mod auth;
mod compat;
mod deploy;
mod helpers;
mod influx;
mod influxql;
mod ingest;
mod malformed;
mod matrix;
mod measures;
mod metrics;
mod oidc;
mod prometheus;
mod scale_out;
mod sources;
mod stats;
mod users;
mod web;
