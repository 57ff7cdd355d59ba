//! How a connection ends, in a kind the report counts and a sentence it shows.

use tokio_tungstenite::tungstenite;

/// How much of an error message an error kind keeps.
const ERROR_KIND_CHARS: usize = 60;

/// How a connection ended.
pub(in crate::load::session) enum End {
    /// The run is over.
    Stopped,
    /// The server or the network ended it; `kind` names why (`close_4008`, `reset`,
    /// ...), `said` in a sentence (the close's reason, the I/O error).
    Lost { kind: String, said: String },
    /// This user closed it on purpose (`churn`), to come back with `?since=`.
    Churned,
}

pub(super) fn lost(kind: &str, said: String) -> End {
    End::Lost {
        kind: kind.into(),
        said,
    }
}

pub(super) fn send_failed(e: tungstenite::Error) -> End {
    End::Lost {
        kind: format!(
            "send_failed: {}",
            crate::text::cut(&e.to_string(), ERROR_KIND_CHARS)
        ),
        said: format!("sending failed: {}", read_failed(&e)),
    }
}

/// A failed read or write in a sentence: what the peer did, where it can be told.
pub(super) fn read_failed(e: &tungstenite::Error) -> String {
    use tungstenite::Error;
    use tungstenite::error::ProtocolError;
    match e {
        Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionReset => {
            "the connection was reset by the peer".into()
        }
        Error::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the connection ended mid-frame (for TLS: no close_notify)".into()
        }
        Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            "the server closed the connection without a close frame".into()
        }
        other => crate::text::printable(&other.to_string()).into_owned(),
    }
}

pub(super) fn io_kind(e: &tungstenite::Error) -> String {
    use tungstenite::Error;
    match e {
        Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionReset => "reset".into(),
        Error::Io(io)
            if io
                .get_ref()
                .is_some_and(|e| e.is::<crate::wire::deflate::InflateError>()) =>
        {
            "bad_deflate".into()
        }
        Error::Protocol(_) => "protocol_error".into(),
        Error::Capacity(_) => "message_too_large".into(),
        Error::Io(_) => "io".into(),
        _ => "connection_error".into(),
    }
}
