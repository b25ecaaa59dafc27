//! Calls made with a person's own user token: who they are, and which repositories of an
//! installation they may read.

use serde::{Deserialize, Serialize};

use super::{GitHub, GitHubError, GitHubUser, UserBody, error};

/// GitHub's largest page.
const REPOS_PER_PAGE: u32 = 100;
/// The most pages of one installation's repositories read for one person: 1,000 repositories.
/// Beyond it, the rest count as unreadable until GitHub lists fewer.
pub const INSTALLATION_REPOS_PAGES_MAX: u32 = 10;

/// A repository a person may read through an installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadableRepo {
    pub full_name: String,
    pub private: bool,
}

#[derive(Serialize)]
struct Page {
    per_page: u32,
    page: u32,
}

#[derive(Deserialize)]
struct ReposPage {
    total_count: u64,
    repositories: Vec<RepoBody>,
}

#[derive(Deserialize)]
struct RepoBody {
    full_name: String,
    private: bool,
}

impl GitHub {
    /// `GET /user` with the person's token: who it belongs to. A token GitHub refuses is
    /// `Unauthorized`.
    pub async fn token_user(&self, token: &str) -> Result<GitHubUser, GitHubError> {
        let client = self.api.user_access_token(token.to_owned()).map_err(error::from_octocrab)?;
        let user: UserBody = self.bounded(client.get("/user", None::<&()>)).await?;
        Ok(GitHubUser { id: user.id, login: user.login })
    }

    /// `GET /user/installations/{id}/repositories` with the person's token, page after page
    /// (at most [`INSTALLATION_REPOS_PAGES_MAX`]): the installation's repositories they may
    /// read. An installation they cannot see (404) has none for them.
    pub async fn installation_repos_of(
        &self,
        token: &str,
        installation_id: i64,
    ) -> Result<Vec<ReadableRepo>, GitHubError> {
        let client = self.api.user_access_token(token.to_owned()).map_err(error::from_octocrab)?;
        let route = format!("/user/installations/{installation_id}/repositories");
        let mut repos = Vec::new();
        for page in 1..=INSTALLATION_REPOS_PAGES_MAX {
            let query = Page { per_page: REPOS_PER_PAGE, page };
            let answer: ReposPage = match self.bounded(client.get(&route, Some(&query))).await {
                Ok(answer) => answer,
                Err(GitHubError::NotFound) => return Ok(Vec::new()),
                Err(other) => return Err(other),
            };
            let last = answer.repositories.len() < REPOS_PER_PAGE as usize;
            repos.extend(
                answer
                    .repositories
                    .into_iter()
                    .map(|r| ReadableRepo { full_name: r.full_name, private: r.private }),
            );
            if last || repos.len() as u64 >= answer.total_count {
                break;
            }
        }
        Ok(repos)
    }
}
