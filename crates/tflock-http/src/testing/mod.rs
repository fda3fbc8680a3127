//! Test support, not part of the tool (feature `testing`): servers that behave like the
//! real ones, on loopback ports, for the conformance suite and the end-to-end tests.
//!
//! - [`GitLabFake`]: GitLab's Terraform state API and the part of its GraphQL API that
//!   lists states, written from GitLab's sources (`lib/api/terraform/state.rb`,
//!   `app/services/terraform/remote_state_handler.rb`, `app/graphql/types/terraform/*`,
//!   `app/controllers/graphql_controller.rb`), not from what tflock sends.
//! - [`ReferenceServer`]: Terraform's own test server for the http backend
//!   (`internal/backend/remote-state/http/server_test.go`): `LOCK` answers 423 with the
//!   holder's LockInfo, `UNLOCK` compares the ID in the body (optionally not, to stand
//!   for servers that do not).
//!
//! Both run on a thread of their own and record every request.

mod gitlab;
mod graphql;
mod reference;
mod server;

pub use gitlab::{Access, FakeLock, GitLabFake};
pub use reference::ReferenceServer;
pub use server::Request;
