//! The core conformance suite against a real PostgreSQL (`TFLOCK_TEST_PG`, started by
//! scripts/emulators/postgres.sh), locks taken as terraform's pg backend takes them: a
//! held session doing `pg_try_advisory_lock(states.id)`. Plus the network cases every
//! remote backend passes (bad targets, closed port, silent endpoint, missing database).

mod support;
use support::*;

tflock_core::conformance_suite!(fixture(); network);
