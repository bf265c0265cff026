//! Test and bench support, in one place: a private PostgreSQL cluster (`initdb`/`pg_ctl`),
//! scratch and template databases on a PostgreSQL server, a RabbitMQ consumer, a TCP proxy
//! a test cuts, a security event token push receiver, and latency statistics. Used by tests/api, tests/faults, the side-by-side
//! benchmark (`sidebyside/`) and the in-process cargo benches (`inprocess/`).

pub mod amqp;
pub mod cluster;
pub mod database;
pub mod proxy;
pub mod set_receiver;
pub mod stats;
