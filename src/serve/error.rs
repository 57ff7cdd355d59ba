//! The errors of `serve`: why it could not start or stopped ([`ServeError`]), and the
//! errors of its HTTP API, answered as JSON `{"error": code, "message": text}`
//! ([`ApiError`]).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Why the server could not start, or stopped running.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot load the mock recordings: {0}")]
    Recordings(#[from] crate::mocks::recordings::RecordingError),
    #[error("cannot read the games map {path}: {source}")]
    GamesMapRead {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Catalog(#[from] crate::feeds::catalog::CatalogError),
    #[error(transparent)]
    KalshiKey(#[from] crate::feeds::kalshi::auth::KeyError),
    #[error(transparent)]
    Teams(#[from] crate::feeds::discovery::TeamsError),
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(String),
    #[error("server failed: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    /// The service cannot answer now; `retry_after_s` goes into `Retry-After`.
    #[error("{message}")]
    Unavailable {
        code: &'static str,
        message: String,
        retry_after_s: Option<u64>,
    },
    #[error("{0}")]
    BadGateway(String),
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Unavailable { code, .. } => (StatusCode::SERVICE_UNAVAILABLE, code),
            ApiError::BadGateway(_) => (StatusCode::BAD_GATEWAY, "upstream_error"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        // Client mistakes are the client's business; upstream trouble is logged once.
        if let ApiError::BadGateway(m) = &self {
            tracing::warn!(error = %m, "upstream error answered with 502");
        }
        let message = without_urls(&self.to_string());
        let mut response = (
            status,
            Json(serde_json::json!({"error": code, "message": message})),
        )
            .into_response();
        if let ApiError::Unavailable {
            retry_after_s: Some(s),
            ..
        } = self
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// `text` with every URL in it replaced by `<upstream>`: upstream errors name the
/// URL they failed on (hosts, paths, sometimes keys in a query), which belongs in
/// the log and behind the admin token, not in public answers.
pub fn without_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let scheme_len = rest[..at]
            .bytes()
            .rev()
            .take_while(|b| b.is_ascii_alphanumeric() || b"+.-".contains(b))
            .count();
        let start = at - scheme_len;
        let end = rest[at + 3..]
            .find(|c: char| c.is_whitespace() || "()<>\"'`,;".contains(c))
            .map_or(rest.len(), |n| at + 3 + n);
        out.push_str(&rest[..start]);
        out.push_str("<upstream>");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// A query string read into `T`, refused as an [`ApiError::BadRequest`] (the JSON
/// body every error of the API has) when it does not fit: a repeated or unknown
/// parameter, a value of the wrong type.
pub struct Params<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Params<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(params)) => Ok(Params(params)),
            Err(e) => Err(ApiError::BadRequest(crate::text::cut(&e.body_text(), 300))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::without_urls;

    #[test]
    fn urls_are_cut_out_of_public_text() {
        assert_eq!(
            without_urls(
                "could not connect: error sending request for url (http://10.1.2.3:9000/apis/site/v2/scoreboard?key=s3cret): connection refused"
            ),
            "could not connect: error sending request for url (<upstream>): connection refused"
        );
        assert_eq!(
            without_urls("wss://api.example/ws and https://b.example"),
            "<upstream> and <upstream>"
        );
        assert_eq!(without_urls("answered HTTP 503"), "answered HTTP 503");
        assert_eq!(without_urls("odd :// here"), "odd <upstream> here");
    }
}
