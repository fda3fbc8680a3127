//! GitLab's GraphQL API, the only place that lists a project's states and tells which
//! are locked (by whom, since when; never the lock ID). Queries go as GET, which GitLab
//! accepts for queries and refuses for mutations: a listing can never change anything.

use crate::client::{Auth, Client};
use crate::error::Service;
use crate::naming::graphql_url;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use tflock_core::error::one_line;
use tflock_core::Error;
use url::Url;

/// A listing stops here: 100,000 states, or a server that never ends its pages.
const MAX_PAGES: usize = 1000;

/// 100 a page: GitLab's largest (`max_page_size`).
const STATES: &str = "query tflockStates($fullPath: ID!, $after: String) {
  project(fullPath: $fullPath) {
    terraformStates(first: 100, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { name lockedAt lockedByUser { username } }
    }
  }
}";

const STATE: &str = "query tflockState($fullPath: ID!, $name: String!) {
  project(fullPath: $fullPath) {
    terraformState(name: $name) { name lockedAt lockedByUser { username } }
  }
}";

/// One state as GraphQL shows it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StateNode {
    pub name: String,
    /// Whole seconds (`Types::TimeType`); null when not locked.
    pub locked_at: Option<String>,
    /// Null when not locked, or when the user who locked it was deleted since.
    pub locked_by_user: Option<UserNode>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct UserNode {
    pub username: String,
}

impl StateNode {
    pub fn locked(&self) -> bool {
        self.locked_at.is_some()
    }
    pub fn locked_at(&self) -> Option<DateTime<Utc>> {
        self.locked_at
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    }
    pub fn locked_by(&self) -> Option<&str> {
        self.locked_by_user.as_ref().map(|u| u.username.as_str())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

#[derive(Deserialize)]
struct Connection {
    #[serde(rename = "pageInfo")]
    page_info: PageInfo,
    nodes: Vec<Option<StateNode>>,
}

/// The GraphQL side of one project.
pub(crate) struct Project<'a> {
    pub client: &'a Client,
    pub base: &'a Url,
    /// `group/sub/project`.
    pub full_path: &'a str,
}

impl Project<'_> {
    fn place(&self) -> String {
        format!(
            "project {} on {}",
            self.full_path,
            crate::client::origin(self.base)
        )
    }

    /// Runs `query` and returns `data.project`, or an error naming the project.
    async fn project_data(
        &self,
        what: &str,
        query: &str,
        variables: Value,
    ) -> Result<Value, Error> {
        let mut url = graphql_url(self.base);
        url.query_pairs_mut()
            .append_pair("query", query)
            .append_pair("variables", &variables.to_string());
        let reply = self.client.read(what, &url, Auth::Bearer).await?;
        let target = &self.client.target;
        if !reply.ok() {
            let err = self
                .client
                .status_error(what, &reply, Service::GitLab, &self.place());
            if reply.status == 401 && self.client.creds().is_job_token() {
                return Err(err.with_hint("a CI job token (gitlab-ci-token) cannot list states through GraphQL: set GITLAB_TOKEN to a personal, project or group access token"));
            }
            return Err(err);
        }
        let v: Value = serde_json::from_slice(&reply.body).map_err(|e| {
            Error::backend(
                target,
                format!("{what} failed: the GraphQL answer is not JSON ({e})"),
            )
            .with_hint(format!(
                "is {} a GitLab server?",
                crate::client::origin(self.base)
            ))
        })?;
        if let Some(msg) = v.pointer("/errors/0/message").and_then(Value::as_str) {
            return Err(Error::backend(
                target,
                format!(
                    "{what} failed: GitLab said: {}",
                    self.client.hide(&one_line(msg))
                ),
            )
            .with_hint("check the GitLab version (13.0 or later) and the token's read_api scope"));
        }
        match v.pointer("/data/project") {
            Some(Value::Null) | None => Err(Error::backend(
                target,
                format!(
                    "{what} failed: {} does not exist, or the token cannot see it",
                    self.place()
                ),
            )
            .with_hint(if self.client.creds().has_secret() {
                "check the project path and that the token's user is a member (Developer or higher)"
            } else {
                "no token was given: set GITLAB_TOKEN (a token with the api scope)"
            })),
            Some(p) => Ok(p.clone()),
        }
    }

    /// Every state of the project, all pages.
    pub async fn states(&self) -> Result<Vec<StateNode>, Error> {
        let what = format!("listing the Terraform states of {}", self.place());
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let vars = json!({ "fullPath": self.full_path, "after": after });
            let project = self.project_data(&what, STATES, vars).await?;
            let conn: Connection = serde_json::from_value(project["terraformStates"].clone())
                .map_err(|e| {
                    Error::backend(
                        &self.client.target,
                        format!("{what} failed: unexpected GraphQL answer ({e})"),
                    )
                })?;
            out.extend(conn.nodes.into_iter().flatten());
            match conn.page_info.end_cursor {
                Some(c) if conn.page_info.has_next_page && after.as_ref() != Some(&c) => {
                    after = Some(c)
                }
                _ => return Ok(out),
            }
        }
        Err(Error::backend(
            &self.client.target,
            format!("{what} failed: more than {MAX_PAGES} pages"),
        ))
    }

    /// One state, or `None` when it does not exist.
    pub async fn state(&self, name: &str) -> Result<Option<StateNode>, Error> {
        let what = format!("reading Terraform state {name} of {}", self.place());
        let vars = json!({ "fullPath": self.full_path, "name": name });
        let project = self.project_data(&what, STATE, vars).await?;
        match &project["terraformState"] {
            Value::Null => Ok(None),
            node => serde_json::from_value(node.clone()).map(Some).map_err(|e| {
                Error::backend(
                    &self.client.target,
                    format!("{what} failed: unexpected GraphQL answer ({e})"),
                )
            }),
        }
    }
}
