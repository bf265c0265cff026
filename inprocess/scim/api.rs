//! The HTTP side: a client of the bench's `Application`, each reply timed.

use super::*;

pub(crate) struct Api {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) token: String,
}

pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) elapsed: Duration,
    pub(crate) body: String,
}

impl Api {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends, reads the whole body; the time covers both.
    pub(crate) async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Reply> {
        let start = Instant::now();
        let response = request.bearer_auth(&self.token).send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        Ok(Reply {
            status,
            elapsed: start.elapsed(),
            body: text,
        })
    }

    pub(crate) async fn get(&self, path: &str, query: &[(&str, &str)]) -> anyhow::Result<Reply> {
        let reply = self
            .send(self.http.get(self.url(path)).query(query))
            .await?;
        ensure!(
            reply.status == 200,
            "GET {path} {query:?}: {} {}",
            reply.status,
            reply.body.chars().take(300).collect::<String>()
        );
        Ok(reply)
    }

    pub(crate) async fn write(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
        timeout: Duration,
    ) -> anyhow::Result<Reply> {
        let reply = self
            .send(
                self.http
                    .request(method.clone(), self.url(path))
                    .timeout(timeout)
                    .header("Content-Type", "application/scim+json")
                    .body(body.to_string()),
            )
            .await?;
        ensure!(
            (200..300).contains(&reply.status),
            "{method} {path}: {} {}",
            reply.status,
            reply.body.chars().take(300).collect::<String>()
        );
        Ok(reply)
    }
}

pub(crate) async fn token(ctx: &Context, tenant: &str) -> anyhow::Result<String> {
    let (_, secret) = tenants::issue_token(
        ctx,
        &Actor::system(),
        tenant,
        TokenRequest {
            name: "bench".to_owned(),
            scopes: vec![Scope::Scim],
            expires_at: None,
        },
    )
    .await?;
    Ok(secret.expose_secret().to_owned())
}
