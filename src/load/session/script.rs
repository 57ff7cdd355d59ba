//! Scripted sessions: what a connection says and waits for before it measures
//! (connect, wait for the ack, subscribe, wait for that ack: Centrifugo, STOMP, most
//! in-house protocols), and the server's own pings it answers while it measures.
//! Frames a step waits through and frames a reply answers are protocol, not data:
//! they keep the link alive and are not measured.

use std::time::Duration;

use serde_json::Value;

use crate::client::template::Template;

/// One step of a session.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Send this message (placeholders filled).
    Send(Template),
    /// Wait until a frame matches; none within `timeout` ends the connection as
    /// `session_timeout`, naming what was awaited.
    Wait { want: Match, timeout: Duration },
}

/// Answer frames that match with a message of ours (a server's application ping).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub when: Match,
    pub send: Template,
}

/// A frame with a value at a JSON pointer (and, if given, that value exactly).
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    pub pointer: String,
    pub equals: Option<Value>,
}

impl Match {
    /// Whether `frame` (JSON text) matches; text that is not JSON matches nothing.
    pub fn matches(&self, frame: &str) -> bool {
        let Ok(value) = serde_json::from_str::<Value>(frame) else {
            return false;
        };
        match (value.pointer(&self.pointer), &self.equals) {
            (Some(found), Some(wanted)) => found == wanted,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// How people read it: `/connect`, `/type = "ping"`.
    pub fn describe(&self) -> String {
        match &self.equals {
            Some(value) => format!("{} = {value}", self.pointer),
            None => self.pointer.clone(),
        }
    }
}

/// How long a step waits when the scenario does not say.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_match_by_pointer_and_value() {
        let ack = Match {
            pointer: "/connect/client".into(),
            equals: None,
        };
        assert!(ack.matches(r#"{"id":1,"connect":{"client":"c1"}}"#));
        assert!(!ack.matches(r#"{"id":1,"error":{"code":101}}"#));
        assert!(!ack.matches("CONNECTED\n\n"));
        let ping = Match {
            pointer: "/type".into(),
            equals: Some(Value::from("ping")),
        };
        assert!(ping.matches(r#"{"type":"ping"}"#));
        assert!(!ping.matches(r#"{"type":"update"}"#));
        assert_eq!(ping.describe(), "/type = \"ping\"");
    }
}
