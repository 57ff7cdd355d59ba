//! Scenario files (`scenarios/*.toml`): stages run one after another, each with its
//! own connections, duration, ramp, rates and budgets, plus budgets for every stage.
//!
//! ```toml
//! name = "ramp 10 to 100"
//! budgets = ["p99<250ms", "lost=0"]      # checked on every stage
//! send_rate = 1                           # defaults for every stage
//!
//! [[stages]]
//! name = "10 connections"
//! conns = 10
//! duration = "10s"
//! ramp = "2s"
//! rate = 10                               # embedded server's frames/s per game
//! budgets = ["conns>=10"]                 # this stage only
//! ```
//!
//! Every key has a `livegames load` flag of the same name (with dashes). Mistakes are
//! reported with the line and column and what was expected.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use std::path::PathBuf;

use reqwest::header::{HeaderName, HeaderValue};

use crate::client::Target;
use crate::client::target::parse_header;
use crate::client::template::Template;
use crate::load::plan::budget::Budget;
use crate::load::plan::{DEFAULT_RAMP, StagePlan};
use crate::load::session::frame::TsUnit;
use crate::load::session::script::{DEFAULT_WAIT, Match, Reply, Step};
use crate::units::parse_bytes;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default)]
    pub name: Option<String>,
    /// Target URL; none: the embedded server.
    #[serde(default, deserialize_with = "opt_target")]
    pub url: Option<Target>,
    #[serde(default)]
    pub games: Vec<String>,
    #[serde(default, deserialize_with = "budgets")]
    pub budgets: Vec<Budget>,
    #[serde(default, deserialize_with = "opt_positive")]
    pub send_rate: Option<f64>,
    #[serde(default, deserialize_with = "opt_positive")]
    pub rate: Option<f64>,
    #[serde(default)]
    pub reconnect: bool,
    #[serde(default, deserialize_with = "opt_duration")]
    pub churn: Option<Duration>,
    /// How to connect and read, as the flags of the same names (flags win, headers add up).
    #[serde(default, deserialize_with = "headers")]
    pub headers: Vec<(HeaderName, HeaderValue)>,
    #[serde(default)]
    pub subprotocols: Vec<String>,
    #[serde(default)]
    pub cacert: Option<PathBuf>,
    #[serde(default)]
    pub insecure: bool,
    #[serde(default, deserialize_with = "opt_size")]
    pub max_message: Option<usize>,
    /// How frames are decoded (`"stomp"`, `"msgpack"`, ...), as `--decode`.
    #[serde(default)]
    pub decode: Option<crate::load::session::frame::Decode>,
    /// permessage-deflate offered (`"on"`, `"no-context"`).
    #[serde(default)]
    pub compress: Option<crate::wire::Offer>,
    #[serde(default)]
    pub subscribe: Option<String>,
    #[serde(default)]
    pub send_template: Option<PathBuf>,
    #[serde(default)]
    pub ts_field: Option<String>,
    #[serde(default)]
    pub ts_unit: Option<TsUnit>,
    #[serde(default)]
    pub seq_field: Option<String>,
    #[serde(default)]
    pub pong_match: Option<String>,
    /// What each connection says and waits for before it measures, in order
    /// (`[[session]]` tables: `send = "..."`, or `wait_for = "/pointer"` with an
    /// optional `equals` and `timeout`).
    #[serde(default, deserialize_with = "session")]
    pub session: Vec<Step>,
    /// Frames answered while measuring (`[[reply]]`: `when = "/pointer"`, optional
    /// `equals`, `send = "..."`).
    #[serde(default, deserialize_with = "replies")]
    pub reply: Vec<Reply>,
    pub stages: Vec<Stage>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(deserialize_with = "conns")]
    pub conns: usize,
    #[serde(deserialize_with = "duration")]
    pub duration: Duration,
    #[serde(default, deserialize_with = "opt_duration")]
    pub ramp: Option<Duration>,
    /// Embedded server's frames per second per live game.
    #[serde(default, deserialize_with = "opt_positive")]
    pub rate: Option<f64>,
    #[serde(default, deserialize_with = "opt_positive")]
    pub send_rate: Option<f64>,
    #[serde(default)]
    pub reconnect: Option<bool>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub churn: Option<Duration>,
    /// An HTTP stage: `conns` users GET `paths` in turn (goose).
    #[serde(default)]
    pub http: bool,
    #[serde(default)]
    pub paths: Option<Vec<String>>,
    #[serde(default, deserialize_with = "budgets")]
    pub budgets: Vec<Budget>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ScenarioError {
    pub file: String,
    pub message: String,
}

/// Parses a scenario; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
    let scenario: Scenario = toml::from_str(text).map_err(|e| ScenarioError {
        file: file.to_owned(),
        message: e.to_string().trim_end().to_owned(),
    })?;
    if scenario.stages.is_empty() {
        return Err(ScenarioError {
            file: file.to_owned(),
            message: "no stages: add at least one [[stages]] table with conns and duration".into(),
        });
    }
    Ok(scenario)
}

/// What the command line gives every stage of a scenario. A target on the command
/// line wins over the file's; the file's rates win over the flags' defaults; budgets
/// add up (the file's, the stage's, the flags').
#[derive(Debug, Clone)]
pub struct FlagDefaults {
    pub target: Option<Target>,
    /// The embedded server's rate when neither the stage nor the file sets one.
    pub rate: f64,
    /// The paths of HTTP stages that list none.
    pub paths: Vec<String>,
    pub budgets: Vec<Budget>,
}

impl Scenario {
    /// The stages to run: this file merged with the command line.
    pub fn stages(&self, flags: &FlagDefaults) -> Vec<StagePlan> {
        self.stages
            .iter()
            .enumerate()
            .map(|(i, stage)| StagePlan {
                label: stage.label(i),
                target: flags.target.clone().or_else(|| self.url.clone()),
                games: self.games.clone(),
                conns: stage.conns,
                duration: stage.duration,
                ramp: stage.ramp.unwrap_or(DEFAULT_RAMP),
                rate: stage.rate.or(self.rate).unwrap_or(flags.rate),
                send_rate: stage.send_rate.or(self.send_rate),
                reconnect: stage.reconnect.unwrap_or(self.reconnect),
                churn: stage.churn.or(self.churn),
                http: stage
                    .http
                    .then(|| stage.paths.clone().unwrap_or_else(|| flags.paths.clone())),
                budgets: self
                    .budgets
                    .iter()
                    .chain(&stage.budgets)
                    .chain(&flags.budgets)
                    .cloned()
                    .collect(),
            })
            .collect()
    }
}

impl Stage {
    pub fn label(&self, index: usize) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("stage {} ({} connections)", index + 1, self.conns))
    }
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "{text:?} is not a duration like \"10s\" or \"500ms\": {e}"
        ))
    })
}

fn opt_target<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Target>, D::Error> {
    let text = String::deserialize(d)?;
    Target::parse(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn headers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(HeaderName, HeaderValue)>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|h| parse_header(h).map_err(serde::de::Error::custom))
        .collect()
}

fn opt_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    let text = String::deserialize(d)?;
    parse_bytes(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepSpec {
    #[serde(default)]
    send: Option<String>,
    /// Sent as it is, not JSON (STOMP frames, line protocols).
    #[serde(default)]
    send_text: Option<String>,
    #[serde(default)]
    wait_for: Option<String>,
    #[serde(default)]
    equals: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "opt_duration")]
    timeout: Option<Duration>,
}

fn session<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Step>, D::Error> {
    let specs = Vec::<StepSpec>::deserialize(d)?;
    specs
        .into_iter()
        .enumerate()
        .map(|(i, spec)| step(spec).map_err(|e| format!("session step {}: {e}", i + 1)))
        .collect::<Result<_, _>>()
        .map_err(serde::de::Error::custom)
}

fn step(spec: StepSpec) -> Result<Step, String> {
    let send = match (spec.send, spec.send_text) {
        (Some(json), None) => Some(Template::parse(&json).map_err(|e| e.to_string())?),
        (None, Some(text)) => Some(Template::parse_text(&text).map_err(|e| e.to_string())?),
        (None, None) => None,
        (Some(_), Some(_)) => return Err("give `send` (JSON) or `send_text`, not both".into()),
    };
    match (send, spec.wait_for) {
        (Some(send), None) if spec.equals.is_none() && spec.timeout.is_none() => {
            Ok(Step::Send(send))
        }
        (None, Some(pointer)) => Ok(Step::Wait {
            want: frame_match(pointer, spec.equals)?,
            timeout: spec.timeout.unwrap_or(DEFAULT_WAIT),
        }),
        (Some(_), None) => Err("`equals` and `timeout` go with `wait_for`, not `send`".into()),
        _ => Err("expected exactly one of `send = \"...\"` or `wait_for = \"/pointer\"`".into()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplySpec {
    when: String,
    #[serde(default)]
    equals: Option<serde_json::Value>,
    send: String,
}

fn replies<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Reply>, D::Error> {
    let specs = Vec::<ReplySpec>::deserialize(d)?;
    specs
        .into_iter()
        .enumerate()
        .map(|(i, spec)| {
            let reply = frame_match(spec.when, spec.equals).and_then(|when| {
                let send = Template::parse(&spec.send).map_err(|e| e.to_string())?;
                Ok(Reply { when, send })
            });
            reply.map_err(|e| format!("reply {}: {e}", i + 1))
        })
        .collect::<Result<_, _>>()
        .map_err(serde::de::Error::custom)
}

fn frame_match(pointer: String, equals: Option<serde_json::Value>) -> Result<Match, String> {
    if !pointer.starts_with('/') {
        return Err(format!(
            "{pointer:?} is not a JSON pointer (it must start with '/')"
        ));
    }
    Ok(Match { pointer, equals })
}

fn conns<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let n = i64::deserialize(d)?;
    if !(1..=100_000).contains(&n) {
        return Err(serde::de::Error::custom(format!(
            "conns must be 1..=100000, got {n}"
        )));
    }
    Ok(n as usize)
}

fn opt_positive<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let v = f64::deserialize(d)?;
    if !(v.is_finite() && v > 0.0) {
        return Err(serde::de::Error::custom(format!(
            "must be a positive number, got {v}"
        )));
    }
    Ok(Some(v))
}

fn budgets<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Budget>, D::Error> {
    let texts = Vec::<String>::deserialize(d)?;
    texts
        .iter()
        .map(|t| t.parse::<Budget>().map_err(serde::de::Error::custom))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_and_replies_are_read_with_their_mistakes_named() {
        let text = "[[session]]\nsend = '{\"id\":1,\"connect\":{\"token\":\"{user}\"}}'\n[[session]]\nwait_for = \"/connect/client\"\ntimeout = \"2s\"\n[[session]]\nwait_for = \"/type\"\nequals = \"ok\"\n[[reply]]\nwhen = \"/type\"\nequals = \"ping\"\nsend = '{\"type\":\"pong\"}'\n[[stages]]\nconns = 1\nduration = \"1s\"\n";
        let s = parse("s.toml", text).unwrap();
        assert_eq!(s.session.len(), 3);
        assert!(
            matches!(&s.session[1], Step::Wait { want, timeout } if want.pointer == "/connect/client" && *timeout == Duration::from_secs(2))
        );
        assert!(
            matches!(&s.session[2], Step::Wait { want, .. } if want.equals == Some(serde_json::json!("ok")))
        );
        assert_eq!(s.reply[0].when.describe(), "/type = \"ping\"");
        // Text frames (STOMP) go out as written, NUL included; `decode` names a decoder.
        let stomp: Scenario =
            toml::from_str("decode = \"stomp\"\n[[session]]\nsend_text = \"CONNECT\\n\\n\\u0000\"\n[[stages]]\nconns = 1\nduration = \"1s\"\n").unwrap();
        assert_eq!(
            stomp.decode,
            Some(crate::load::session::frame::Decode::Stomp)
        );
        assert!(matches!(&stomp.session[0], Step::Send(t) if t.source() == "CONNECT\n\n\0"));
        for (bad, said) in [
            (
                "[[session]]\nsend = '{\"a\":\"{nope}\"}'\n",
                "session step 1: unknown placeholder {nope}",
            ),
            (
                "[[session]]\nwait_for = \"type\"\n",
                "\"type\" is not a JSON pointer",
            ),
            (
                "[[session]]\nsend = '{}'\nwait_for = \"/a\"\n",
                "exactly one of",
            ),
            ("[[reply]]\nwhen = \"/t\"\n", "missing field `send`"),
            (
                "[[session]]\nsend = \"CONNECT\\n\\n\"\n",
                "not JSON once its placeholders are filled in",
            ),
            ("[[session]]\nsend = '{}'\nsend_text = 'x'\n", "not both"),
            ("decode = \"yaml\"\n", "unknown variant `yaml`"),
        ] {
            let e = parse(
                "s.toml",
                &format!("{bad}[[stages]]\nconns = 1\nduration = \"1s\"\n"),
            )
            .unwrap_err();
            assert!(e.to_string().contains(said), "{e}");
        }
    }

    #[test]
    fn a_scenario_with_defaults_and_stages_parses() {
        let s = parse("t.toml", "budgets = [\"p99<250ms\"]\nsend_rate = 1\n[[stages]]\nconns = 10\nduration = \"5s\"\nramp = \"1s\"\n[[stages]]\nname = \"big\"\nconns = 25\nduration = \"5s\"\nrate = 50\n").unwrap();
        assert_eq!(s.stages.len(), 2);
        assert_eq!(s.stages[0].ramp, Some(Duration::from_secs(1)));
        assert_eq!(s.stages[1].rate, Some(50.0));
        assert_eq!(s.budgets[0].text, "p99<250ms");
        assert_eq!(s.stages[1].label(1), "big");
    }

    #[test]
    fn every_shipped_scenario_parses() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path).unwrap();
                parse(&path.display().to_string(), &text).unwrap_or_else(|e| panic!("{e}"));
                n += 1;
            }
        }
        assert!(n >= 5, "ramp, two rates, reconnect and the CI gate");
    }

    #[test]
    fn mistakes_name_the_line_and_what_was_expected() {
        let e = parse("t.toml", "[[stages]]\nconns = 10\nduration = \"soon\"\n").unwrap_err();
        assert!(
            e.message.contains("line 3") && e.message.contains("duration like"),
            "{e}"
        );
        let e = parse("t.toml", "[[stages]]\nconns = 0\nduration = \"1s\"\n").unwrap_err();
        assert!(
            e.message.contains("line 2") && e.message.contains("1..=100000"),
            "{e}"
        );
        let e = parse("t.toml", "[[stages]]\nconn = 10\nduration = \"1s\"\n").unwrap_err();
        assert!(
            e.message.contains("unknown field") && e.message.contains("conns"),
            "{e}"
        );
        let e = parse(
            "t.toml",
            "budgets = [\"p99<<1s\"]\n[[stages]]\nconns = 1\nduration = \"1s\"\n",
        )
        .unwrap_err();
        assert!(
            e.message.contains("line 1") && e.message.contains("p99<<1s"),
            "{e}"
        );
        let e = parse("t.toml", "stages = []\n").unwrap_err();
        assert!(e.message.contains("no stages"), "{e}");
        let e = parse("t.toml", "[[stages]\n").unwrap_err();
        assert!(e.message.contains("line 1"), "{e}");
    }

    #[test]
    fn stages_merge_the_file_with_the_flags() {
        let s = parse(
            "t.toml",
            "url = \"ws://h:1\"\nrate = 5\nbudgets = [\"lost=0\"]\n[[stages]]\nconns = 2\nduration = \"1s\"\nbudgets = [\"p99<1s\"]\n[[stages]]\nconns = 3\nduration = \"2s\"\nrate = 7\nhttp = true\n",
        )
        .unwrap();
        let flags = FlagDefaults {
            target: None,
            rate: 10.0,
            paths: vec!["/health".into()],
            budgets: vec!["conns>=1".parse().unwrap()],
        };
        let stages = s.stages(&flags);
        assert_eq!(stages[0].target.as_ref().unwrap().to_string(), "ws://h:1/");
        assert_eq!((stages[0].rate, stages[1].rate), (5.0, 7.0));
        assert_eq!(stages[0].ramp, DEFAULT_RAMP);
        let budgets: Vec<&str> = stages[0].budgets.iter().map(|b| b.text.as_str()).collect();
        assert_eq!(budgets, ["lost=0", "p99<1s", "conns>=1"]);
        assert_eq!(stages[1].http.as_deref(), Some(&["/health".to_owned()][..]));
        let on_the_command_line = FlagDefaults {
            target: Some(Target::parse("ws://other:2").unwrap()),
            ..flags
        };
        assert_eq!(
            s.stages(&on_the_command_line)[0]
                .target
                .as_ref()
                .unwrap()
                .to_string(),
            "ws://other:2/"
        );
        let e = parse(
            "t.toml",
            "url = \"ftp://x\"\n[[stages]]\nconns = 1\nduration = \"1s\"\n",
        )
        .unwrap_err();
        assert!(
            e.message.contains("line 1") && e.message.contains("scheme"),
            "{e}"
        );
    }

    #[test]
    fn connection_and_frame_keys_parse_and_are_checked() {
        let s = parse(
            "t.toml",
            "headers = [\"Authorization: Bearer x\"]\nsubprotocols = [\"feed.v2\"]\ninsecure = true\nmax_message = \"64KiB\"\nsubscribe = '{\"op\":\"sub\",\"game\":\"{game_id}\"}'\nseq_field = \"/n\"\nts_field = \"/t\"\nts_unit = \"ms\"\npong_match = \"/ref\"\n[[stages]]\nconns = 1\nduration = \"1s\"\n",
        )
        .unwrap();
        assert_eq!(s.headers[0].0.as_str(), "authorization");
        assert_eq!(s.max_message, Some(64 << 10));
        assert_eq!(s.ts_unit, Some(TsUnit::Ms));
        let e = parse(
            "t.toml",
            "headers = [\"nocolon\"]\n[[stages]]\nconns = 1\nduration = \"1s\"\n",
        )
        .unwrap_err();
        assert!(
            e.message.contains("line 1") && e.message.contains("Name: value"),
            "{e}"
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Any text is a scenario or a specific error, never a panic.
            #[test]
            fn any_text_parses_or_is_refused(text in "[ -~\n]{0,200}") {
                let _ = parse("fuzz.toml", &text);
            }

            /// Scenario-shaped text with hostile values: the same.
            #[test]
            fn scenario_shaped_text_parses_or_is_refused(
                conns in prop_oneof!["[0-9]{1,25}", Just("-1".to_owned()), Just("1.5".to_owned())],
                duration in prop::sample::select(vec!["1s", "0s", "", "18446744073709551615s", "9999999999999d", "x"]),
                rate in prop::sample::select(vec!["1", "0", "-1", "1e400", "nan", "inf"]),
            ) {
                let text = format!(
                    "send_rate = {rate}\n[[stages]]\nconns = {conns}\nduration = \"{duration}\"\n"
                );
                let _ = parse("fuzz.toml", &text);
            }
        }
    }
}
