//! Where to write: an InfluxDB 1.x database or an InfluxDB 2.x bucket, from one URL.
//!
//! - 1.x: `http://host:8086/DB` (a path prefix before `DB` is kept, for a proxy);
//!   user and password from the URL (`http://user:pass@host:8086/DB`) or from
//!   `LIVEGAMES_INFLUXDB_USER` / `LIVEGAMES_INFLUXDB_PASSWORD`.
//! - 2.x: `http://host:8086?org=ORG&bucket=BUCKET`, the token from
//!   `LIVEGAMES_INFLUXDB_TOKEN` (never in the URL, so it stays out of process lists).

use url::Url;

pub const ENV_USER: &str = "LIVEGAMES_INFLUXDB_USER";
pub const ENV_PASSWORD: &str = "LIVEGAMES_INFLUXDB_PASSWORD";
pub const ENV_TOKEN: &str = "LIVEGAMES_INFLUXDB_TOKEN";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    Basic { user: String, password: String },
    Token(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    /// 1.x, with the database to create if it is missing.
    V1 { database: String },
    /// 2.x.
    V2 { org: String, bucket: String },
}

/// A parsed `--influxdb` / `--out influxdb=` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfluxTarget {
    pub version: Version,
    /// Where batches are POSTed (nanosecond precision).
    pub write_url: Url,
    /// 1.x: where `CREATE DATABASE` is POSTed.
    pub query_url: Option<Url>,
    pub auth: Auth,
    /// The URL without credentials, for logs, `/health` and errors.
    pub display: String,
}

impl InfluxTarget {
    /// A request to this InfluxDB with its credentials and a deadline.
    pub fn request(
        &self,
        http: &reqwest::Client,
        method: reqwest::Method,
        url: Url,
        timeout: std::time::Duration,
    ) -> reqwest::RequestBuilder {
        let request = http.request(method, url).timeout(timeout);
        match &self.auth {
            Auth::None => request,
            Auth::Basic { user, password } => request.basic_auth(user, Some(password)),
            Auth::Token(token) => request.header("Authorization", format!("Token {token}")),
        }
    }
}

/// The innermost cause of a request's failure, which says what went wrong (a
/// refused connection, a timeout) where the outer ones only say "error sending".
pub(super) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Parses `raw`; `env` looks up the credential variables (the real environment in
/// the CLI, a map in tests).
pub fn parse(raw: &str, env: impl Fn(&str) -> Option<String>) -> Result<InfluxTarget, String> {
    let url = Url::parse(raw).map_err(|e| format!("InfluxDB URL {raw:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "InfluxDB URL must be http:// or https://, got {}://",
            url.scheme()
        ));
    }
    if url.host_str().is_none() {
        return Err("InfluxDB URL has no host".into());
    }
    let query = |key: &str| {
        url.query_pairs()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    };
    let mut base = url.clone();
    base.set_query(None);
    base.set_fragment(None);
    let _ = base.set_username("");
    let _ = base.set_password(None);
    let display = base.to_string();
    match (query("org"), query("bucket")) {
        (Some(org), Some(bucket)) if !org.is_empty() && !bucket.is_empty() => {
            v2(&base, org, bucket, display, env)
        }
        (None, None) => v1(&url, base, display, env),
        _ => Err(format!(
            "InfluxDB 2 URL needs both ?org= and ?bucket= (got {raw:?} without one)"
        )),
    }
}

fn v2(
    base: &Url,
    org: String,
    bucket: String,
    display: String,
    env: impl Fn(&str) -> Option<String>,
) -> Result<InfluxTarget, String> {
    let token = env(ENV_TOKEN)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| format!("InfluxDB 2 needs a token: set {ENV_TOKEN}"))?;
    let mut write_url = joined(base, "api/v2/write");
    write_url
        .query_pairs_mut()
        .append_pair("org", &org)
        .append_pair("bucket", &bucket)
        .append_pair("precision", "ns");
    Ok(InfluxTarget {
        display: format!("{display}?org={org}&bucket={bucket}"),
        version: Version::V2 { org, bucket },
        write_url,
        query_url: None,
        auth: Auth::Token(token),
    })
}

fn v1(
    url: &Url,
    mut base: Url,
    display: String,
    env: impl Fn(&str) -> Option<String>,
) -> Result<InfluxTarget, String> {
    let mut segments: Vec<String> = url
        .path_segments()
        .map(|s| s.filter(|p| !p.is_empty()).map(decode).collect())
        .unwrap_or_default();
    let database = segments.pop().ok_or_else(|| {
        format!(
            "InfluxDB URL names no database: use http://host:8086/DB (1.x) or http://host:8086?org=ORG&bucket=BUCKET (2.x), got {display}"
        )
    })?;
    base.set_path(&segments.join("/"));
    let mut write_url = joined(&base, "write");
    write_url
        .query_pairs_mut()
        .append_pair("db", &database)
        .append_pair("precision", "ns");
    let user = Some(decode(url.username()))
        .filter(|u| !u.is_empty())
        .or_else(|| env(ENV_USER));
    let password = url.password().map(decode).or_else(|| env(ENV_PASSWORD));
    let auth = match (user, password) {
        (Some(user), password) => Auth::Basic {
            user,
            password: password.unwrap_or_default(),
        },
        (None, Some(_)) => return Err(format!("{ENV_PASSWORD} is set without a user")),
        (None, None) => Auth::None,
    };
    Ok(InfluxTarget {
        version: Version::V1 { database },
        write_url,
        query_url: Some(joined(&base, "query")),
        auth,
        display,
    })
}

/// `base` with `path` appended to its path.
fn joined(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let prefix = base.path().trim_end_matches('/');
    url.set_path(&format!("{prefix}/{path}"));
    url
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn v1_database_with_credentials_in_the_url_kept_out_of_the_display() {
        let t = parse("http://writer:s%40cret@127.0.0.1:8086/livegames", no_env).unwrap();
        assert_eq!(
            t.version,
            Version::V1 {
                database: "livegames".into()
            }
        );
        assert_eq!(
            t.write_url.as_str(),
            "http://127.0.0.1:8086/write?db=livegames&precision=ns"
        );
        assert_eq!(t.query_url.unwrap().as_str(), "http://127.0.0.1:8086/query");
        assert_eq!(
            t.auth,
            Auth::Basic {
                user: "writer".into(),
                password: "s@cret".into()
            }
        );
        assert!(!t.display.contains("cret") && !t.display.contains("writer"));
    }

    #[test]
    fn v1_behind_a_proxy_prefix_with_credentials_from_the_environment() {
        let env = |k: &str| match k {
            ENV_USER => Some("u".to_owned()),
            ENV_PASSWORD => Some("p".to_owned()),
            _ => None,
        };
        let t = parse("https://metrics.example/influx/games", env).unwrap();
        assert_eq!(
            t.write_url.as_str(),
            "https://metrics.example/influx/write?db=games&precision=ns"
        );
        assert_eq!(
            t.auth,
            Auth::Basic {
                user: "u".into(),
                password: "p".into()
            }
        );
    }

    #[test]
    fn v2_bucket_with_a_token_from_the_environment() {
        let env = |k: &str| (k == ENV_TOKEN).then(|| "tok".to_owned());
        let t = parse("http://127.0.0.1:8086?org=acme&bucket=live", env).unwrap();
        assert_eq!(
            t.write_url.as_str(),
            "http://127.0.0.1:8086/api/v2/write?org=acme&bucket=live&precision=ns"
        );
        assert_eq!(t.auth, Auth::Token("tok".into()));
        assert_eq!(t.query_url, None);
    }

    #[test]
    fn bad_urls_say_what_is_missing() {
        let err = |raw: &str| parse(raw, no_env).unwrap_err();
        assert!(err("http://127.0.0.1:8086").contains("names no database"));
        assert!(err("http://127.0.0.1:8086/").contains("names no database"));
        assert!(err("udp://127.0.0.1:8089/db").contains("http:// or https://"));
        assert!(err("http://h:8086?org=acme").contains("both ?org= and ?bucket="));
        assert!(err("http://h:8086?org=a&bucket=b").contains(ENV_TOKEN));
        assert!(err("not a url").contains("InfluxDB URL"));
    }
}
