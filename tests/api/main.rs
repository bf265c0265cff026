//! The API tests: one binary, a server on port 0 per test, a fresh database per test, every
//! storage test on SQLite and on PostgreSQL (from a migrated template database).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod broker;
mod helpers;

mod admin;
mod adversarial;
mod apps;
mod auth;
mod brake;
mod bulk;
mod cli;
mod console;
mod contracts;
mod discovery;
mod errors;
mod exact;
mod extensions;
mod fairness;
mod groups;
mod hardening;
mod health;
mod isolation;
mod journal;
mod lifecycle;
mod longpoll;
mod openapi;
mod operators;
mod outbox;
mod pages;
mod patch;
mod plans;
mod pull;
mod query;
mod query_props;
mod races;
mod relay;
mod schema_jobs;
mod search;
mod sets;
mod sets_group_poll;
mod sets_push;
mod setup_links;
mod users;
