//! How long InfluxDB keeps what is written: `--influxdb-retention`.
//!
//! 1.x: the database's default retention policy is set to the wish (`ALTER RETENTION
//! POLICY ... DEFAULT`, with InfluxDB's own shard-group duration for that length),
//! unless it already says so. 2.x: a bucket's retention belongs to whoever made the
//! bucket, so it is read and compared, never changed. Either way `/health` shows the
//! outcome; a policy that cannot be set is said there and in the log, and writing goes
//! on (keeping data longer than wished is not an outage).

use std::time::Duration;

use serde_json::Value;

use super::target::{InfluxTarget, Version};

/// InfluxDB 1.x refuses retention policies shorter than an hour.
pub const MIN_RETENTION: Duration = Duration::from_secs(3600);
/// A live point every tick fills a disk over a season: keep one season by default.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(200 * 86_400);

/// What the operator asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Retention {
    /// Leave the database as it is (`load --out`: the user's database, not ours).
    #[default]
    Leave,
    /// Keep everything (`--influxdb-retention 0`).
    Forever,
    /// Keep this long.
    For(Duration),
}

impl Retention {
    /// From `--influxdb-retention`: zero means forever.
    pub fn from_flag(duration: Duration) -> Retention {
        if duration.is_zero() {
            Retention::Forever
        } else {
            Retention::For(duration)
        }
    }

    /// How long, in whole seconds; 0 = forever (InfluxDB's own convention).
    fn seconds(self) -> Option<u64> {
        match self {
            Retention::Leave => None,
            Retention::Forever => Some(0),
            Retention::For(d) => Some(d.as_secs()),
        }
    }
}

/// What became of the wish, for `/health`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetentionState {
    /// Not looked at yet (InfluxDB not reached so far).
    Pending,
    /// The policy already kept data this long.
    Matched { policy: String },
    /// The policy was changed to the wish.
    Applied { policy: String, was: String },
    /// 2.x: the bucket keeps data for another length; it is left as it is.
    Differs { policy: String, actual: String },
    /// InfluxDB refused or answered something unreadable.
    Failed(String),
}

/// The wish and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionStatus {
    /// `200d`, `36h`, or `forever`.
    pub wanted: String,
    pub state: RetentionState,
}

impl RetentionStatus {
    pub fn pending(wish: Retention) -> Option<RetentionStatus> {
        let seconds = wish.seconds()?;
        Some(RetentionStatus {
            wanted: show_seconds(seconds),
            state: RetentionState::Pending,
        })
    }
}

/// `200d`, `36h`, `90m`, `45s`; 0 is `forever`.
pub fn show_seconds(seconds: u64) -> String {
    match seconds {
        0 => "forever".into(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Reads a duration as InfluxDB 1.x prints it (`4800h0m0s`, `168h0m0s`, `0s`) into
/// seconds.
pub fn parse_go_duration(text: &str) -> Option<u64> {
    let mut seconds = 0u64;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number.parse().ok()?;
        number.clear();
        let unit = match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
        seconds = seconds.checked_add(n.checked_mul(unit)?)?;
    }
    number.is_empty().then_some(seconds)
}

/// InfluxDB 1.x's own shard-group duration for a retention (what `CREATE RETENTION
/// POLICY` picks when none is given): under 2 days 1 h, up to 6 months 1 day,
/// longer or forever 7 days.
pub fn shard_group_seconds(retention_seconds: u64) -> u64 {
    const DAY: u64 = 86_400;
    match retention_seconds {
        0 => 7 * DAY,
        s if s < 2 * DAY => 3600,
        s if s <= 182 * DAY => DAY,
        _ => 7 * DAY,
    }
}

/// A name or database in an InfluxQL statement: double-quoted, quotes escaped.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The statement that makes `policy` the default and keeps data `seconds` (0 = INF).
pub fn alter_statement(policy: &str, database: &str, seconds: u64) -> String {
    let duration = if seconds == 0 {
        "INF".to_owned()
    } else {
        format!("{seconds}s")
    };
    format!(
        "ALTER RETENTION POLICY {} ON {} DURATION {duration} SHARD DURATION {}s DEFAULT",
        quoted(policy),
        quoted(database),
        shard_group_seconds(seconds)
    )
}

/// The default policy in the answer to `SHOW RETENTION POLICIES`: its name and how
/// long it keeps data (seconds, 0 = forever).
pub fn default_policy(answer: &Value) -> Result<(String, u64), String> {
    let result = &answer["results"][0];
    if let Some(error) = result["error"].as_str() {
        return Err(peer_text(error));
    }
    let series = &result["series"][0];
    let columns = series["columns"].as_array().ok_or("no policies listed")?;
    let column = |name: &str| columns.iter().position(|c| c == name);
    let (Some(name), Some(duration), Some(default)) =
        (column("name"), column("duration"), column("default"))
    else {
        return Err("the policy list lacks name, duration or default".into());
    };
    let rows = series["values"].as_array().ok_or("no policies listed")?;
    let row = rows
        .iter()
        .find(|row| row[default] == true)
        .ok_or("the database has no default retention policy")?;
    let policy = row[name].as_str().ok_or("a policy without a name")?;
    let text = row[duration].as_str().unwrap_or_default();
    let seconds = parse_go_duration(text).ok_or_else(|| format!("unreadable duration {text:?}"))?;
    Ok((policy.to_owned(), seconds))
}

/// How long a 2.x bucket keeps data, from `GET /api/v2/buckets?name=`: its
/// name and seconds (0 or no expire rule = forever).
pub fn bucket_retention(answer: &Value, bucket: &str) -> Result<u64, String> {
    let found = answer["buckets"]
        .as_array()
        .and_then(|all| all.iter().find(|b| b["name"] == bucket))
        .ok_or_else(|| format!("no bucket named {bucket:?} is visible to this token"))?;
    let seconds = found["retentionRules"]
        .as_array()
        .and_then(|rules| rules.iter().find(|r| r["type"] == "expire"))
        .and_then(|rule| rule["everySeconds"].as_u64())
        .unwrap_or(0);
    Ok(seconds)
}

/// Looks at the target's retention and, on 1.x, sets it to the wish.
pub async fn apply(
    http: &reqwest::Client,
    target: &InfluxTarget,
    wish: Retention,
    timeout: Duration,
) -> RetentionState {
    let Some(wanted) = wish.seconds() else {
        return RetentionState::Pending;
    };
    let outcome = match &target.version {
        Version::V1 { database } => apply_v1(http, target, database, wanted, timeout).await,
        Version::V2 { org, bucket } => check_v2(http, target, org, bucket, wanted, timeout).await,
    };
    outcome.unwrap_or_else(RetentionState::Failed)
}

async fn apply_v1(
    http: &reqwest::Client,
    target: &InfluxTarget,
    database: &str,
    wanted: u64,
    timeout: Duration,
) -> Result<RetentionState, String> {
    let show = format!("SHOW RETENTION POLICIES ON {}", quoted(database));
    let (policy, actual) = default_policy(&query(http, target, &show, timeout).await?)?;
    if actual == wanted {
        return Ok(RetentionState::Matched { policy });
    }
    let alter = alter_statement(&policy, database, wanted);
    let answer = query(http, target, &alter, timeout).await?;
    if let Some(error) = answer["results"][0]["error"].as_str() {
        return Err(peer_text(error));
    }
    Ok(RetentionState::Applied {
        policy,
        was: show_seconds(actual),
    })
}

async fn check_v2(
    http: &reqwest::Client,
    target: &InfluxTarget,
    org: &str,
    bucket: &str,
    wanted: u64,
    timeout: Duration,
) -> Result<RetentionState, String> {
    // Beside the write endpoint, so a proxy's path prefix is kept.
    let mut url = target.write_url.clone();
    let buckets = format!("{}buckets", url.path().trim_end_matches("write"));
    url.set_path(&buckets);
    url.query_pairs_mut()
        .clear()
        .append_pair("org", org)
        .append_pair("name", bucket);
    let request = target.request(http, reqwest::Method::GET, url, timeout);
    let answer = json_answer(request).await?;
    let actual = bucket_retention(&answer, bucket)?;
    let policy = format!("bucket {bucket}");
    Ok(if actual == wanted {
        RetentionState::Matched { policy }
    } else {
        RetentionState::Differs {
            policy,
            actual: show_seconds(actual),
        }
    })
}

/// One InfluxQL statement through 1.x's `/query`.
async fn query(
    http: &reqwest::Client,
    target: &InfluxTarget,
    statement: &str,
    timeout: Duration,
) -> Result<Value, String> {
    let url = target.query_url.clone().ok_or("no query endpoint")?;
    let request = target
        .request(http, reqwest::Method::POST, url, timeout)
        .form(&[("q", statement)]);
    json_answer(request).await
}

/// What InfluxDB said, cut and made safe to print.
fn peer_text(text: &str) -> String {
    crate::text::printable(&crate::text::cut(text, 200)).into_owned()
}

/// Longest answer read from a retention query.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

async fn json_answer(request: reqwest::RequestBuilder) -> Result<Value, String> {
    let mut response = request
        .send()
        .await
        .map_err(|e| format!("could not ask InfluxDB: {}", super::target::root_cause(&e)))?;
    let status = response.status();
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_ANSWER_BYTES {
            return Err(format!("answer over {MAX_ANSWER_BYTES} bytes"));
        }
    }
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body);
        return Err(format!(
            "HTTP {}: {}",
            status.as_u16(),
            peer_text(text.trim())
        ));
    }
    serde_json::from_slice(&body).map_err(|e| format!("unreadable answer: {e}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn durations_as_influxdb_prints_them() {
        assert_eq!(parse_go_duration("4800h0m0s"), Some(4800 * 3600));
        assert_eq!(parse_go_duration("0s"), Some(0));
        assert_eq!(parse_go_duration("1h30m15s"), Some(5415));
        assert_eq!(parse_go_duration("12x"), None);
        assert_eq!(parse_go_duration("12"), None);
        assert_eq!(parse_go_duration("99999999999999999999h"), None);
    }

    #[test]
    fn shard_groups_follow_influxdbs_own_rule() {
        assert_eq!(shard_group_seconds(0), 7 * 86_400);
        assert_eq!(shard_group_seconds(3600), 3600);
        assert_eq!(shard_group_seconds(30 * 86_400), 86_400);
        assert_eq!(shard_group_seconds(200 * 86_400), 7 * 86_400);
    }

    #[test]
    fn the_statement_quotes_names_and_says_inf_for_forever() {
        assert_eq!(
            alter_statement("autogen", "live\"games", 200 * 86_400),
            "ALTER RETENTION POLICY \"autogen\" ON \"live\\\"games\" DURATION 17280000s SHARD DURATION 604800s DEFAULT"
        );
        assert!(alter_statement("p", "d", 0).contains("DURATION INF SHARD DURATION 604800s"));
    }

    #[test]
    fn the_default_policy_is_read_from_show_retention_policies() {
        let answer = json!({"results":[{"statement_id":0,"series":[{"columns":
            ["name","duration","shardGroupDuration","replicaN","default"],
            "values":[["old","24h0m0s","1h0m0s",1,false],["autogen","0s","168h0m0s",1,true]]}]}]});
        assert_eq!(default_policy(&answer), Ok(("autogen".into(), 0)));
        let refused = json!({"results":[{"error":"database not found: x"}]});
        assert_eq!(
            default_policy(&refused),
            Err("database not found: x".into())
        );
        let none = json!({"results":[{"series":[{"columns":["name","duration","default"],
            "values":[["a","1h0m0s",false]]}]}]});
        assert!(default_policy(&none).unwrap_err().contains("no default"));
    }

    #[test]
    fn a_buckets_expire_rule_is_its_retention() {
        let answer = json!({"buckets":[{"name":"live","retentionRules":
            [{"type":"expire","everySeconds":86400}]}]});
        assert_eq!(bucket_retention(&answer, "live"), Ok(86_400));
        let forever = json!({"buckets":[{"name":"live","retentionRules":[]}]});
        assert_eq!(bucket_retention(&forever, "live"), Ok(0));
        assert!(bucket_retention(&answer, "other").is_err());
    }

    /// A stand-in InfluxDB 2.x that lists one bucket (to the right token) and fails
    /// anything else, so a retention check that tried to change it would fail.
    async fn influxdb2(keeps_seconds: u64) -> String {
        use axum::http::{HeaderMap, StatusCode};
        let app = axum::Router::new()
            .route(
                "/proxy/api/v2/buckets",
                axum::routing::get(
                    move |headers: HeaderMap, query: axum::extract::RawQuery| async move {
                        let token = headers.get("authorization").and_then(|v| v.to_str().ok());
                        if token != Some("Token secret")
                            || query.0.as_deref() != Some("org=o&name=live")
                        {
                            return Err(StatusCode::UNAUTHORIZED);
                        }
                        Ok(axum::Json(json!({"buckets": [{"name": "live",
                        "retentionRules": [{"type": "expire", "everySeconds": keeps_seconds}]}]})))
                    },
                ),
            )
            .fallback(|| async { StatusCode::INTERNAL_SERVER_ERROR });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/proxy/?org=o&bucket=live")
    }

    #[tokio::test]
    async fn a_2x_bucket_is_read_and_compared_never_changed() {
        let url = influxdb2(86_400).await;
        let target = crate::influx::parse(&url, |_| Some("secret".into())).unwrap();
        let http = reqwest::Client::new();
        let timeout = Duration::from_secs(5);
        let season = Retention::For(DEFAULT_RETENTION);
        assert_eq!(
            apply(&http, &target, season, timeout).await,
            RetentionState::Differs {
                policy: "bucket live".into(),
                actual: "1d".into()
            }
        );
        let day = Retention::For(Duration::from_secs(86_400));
        assert_eq!(
            apply(&http, &target, day, timeout).await,
            RetentionState::Matched {
                policy: "bucket live".into()
            }
        );
        let wrong = crate::influx::parse(&url, |_| Some("wrong".into())).unwrap();
        let RetentionState::Failed(why) = apply(&http, &wrong, day, timeout).await else {
            panic!("a refused token is a failure");
        };
        assert!(why.contains("HTTP 401"), "{why}");
    }

    #[test]
    fn shown_in_the_largest_whole_unit() {
        assert_eq!(show_seconds(200 * 86_400), "200d");
        assert_eq!(show_seconds(36 * 3600), "36h");
        assert_eq!(show_seconds(0), "forever");
        assert_eq!(show_seconds(61), "61s");
    }
}
