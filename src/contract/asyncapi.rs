//! The AsyncAPI 3.0 document of the WebSocket API, generated from the published frame
//! schemas, so the two cannot drift apart (`fixtures/asyncapi.json` is this document,
//! checked by a test).

use serde_json::Value;

use super::frame::FrameType;
use super::schema::FRAMES_SCHEMA;
use super::{FRAMES_SCHEMA_VERSION, SUBPROTOCOL};

/// The AsyncAPI 3.0 document of the WebSocket API, generated from the published
/// frame schemas (`fixtures/asyncapi.json` is this, checked by a drift test).
pub fn asyncapi() -> Result<Value, serde_json::Error> {
    let frames: Value = serde_json::from_str(FRAMES_SCHEMA)?;
    // The schemas' local references point into components.schemas once moved there.
    let defs_text = frames["$defs"]
        .to_string()
        .replace("#/$defs/", "#/components/schemas/");
    let mut schemas: serde_json::Map<String, Value> = serde_json::from_str(&defs_text)?;
    schemas.insert(
        "ping".into(),
        serde_json::json!({"type": "object", "required": ["type", "id"], "properties": {"type": {"const": "ping"}, "id": {"description": "echoed in the pong"}}}),
    );
    let server_types: Vec<&str> = FrameType::ALL.iter().map(|t| t.as_str()).collect();
    let mut messages = serde_json::Map::new();
    let mut channel_messages = serde_json::Map::new();
    for name in server_types.iter().copied().chain(["ping"]) {
        let description = if name == "ping" {
            "client to server: answered with a pong"
        } else {
            "server to client"
        };
        messages.insert(name.into(), serde_json::json!({"name": name, "contentType": "application/json", "summary": description, "payload": {"$ref": format!("#/components/schemas/{name}")}}));
        channel_messages.insert(
            name.into(),
            serde_json::json!({"$ref": format!("#/components/messages/{name}")}),
        );
    }
    let receive: Vec<Value> = server_types
        .iter()
        .map(|n| serde_json::json!({"$ref": format!("#/channels/live/messages/{n}")}))
        .collect();
    Ok(serde_json::json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "livegames live stream",
            "version": FRAMES_SCHEMA_VERSION,
            "description": "One JSON object per text frame. Every frame has type, game_id, seq (data-bearing update/status/final frames add exactly 1; others repeat the latest) and ts (Unix microseconds when the server wrote it). ?since=SEQ replays every data-bearing frame after SEQ, then a snapshot; with &epoch=E (1.1.0, from a snapshot or GET /api/live/games) a SEQ from another run of the server gets an epoch_changed error and a fresh snapshot instead. Close codes: 1000 answer to a client's close, 1001 shutdown, 1008 client frames over the rate limit (after one rate_limited error), 1009 frame over 64 KiB, 4008 slow consumer, 4404 unknown game. Generated from fixtures/schemas/frames.schema.json by `livegames contract asyncapi`."
        },
        "servers": {"local": {"host": "127.0.0.1:8000", "protocol": "ws", "description": format!("livegames serve. WebSocket subprotocol {SUBPROTOCOL}: chosen when the client offers it; a client that offers none gets none")}},
        "channels": {"live": {
            "address": "/ws/live/{game_id}",
            "parameters": {"game_id": {"description": "a game id from GET /api/live/games"}},
            "messages": channel_messages,
            "bindings": {"ws": {
                "bindingVersion": "0.1.0",
                "query": {"type": "object", "properties": {
                    "since": {"type": "string", "pattern": "^[0-9]+$", "description": "resume after this seq: the data-bearing frames after it are replayed before the snapshot"},
                    "epoch": {"type": "string", "maxLength": 64, "description": "1.1.0: the epoch `since` belongs to; another epoch gets epoch_changed and a fresh snapshot"}
                }},
                "headers": {"type": "object", "properties": {
                    "Sec-WebSocket-Protocol": {"type": "string", "examples": [SUBPROTOCOL], "description": format!("optional; offer {SUBPROTOCOL} to have it chosen")}
                }}
            }}
        }},
        "operations": {
            "receiveFrames": {"action": "receive", "channel": {"$ref": "#/channels/live"}, "messages": receive},
            "sendPing": {"action": "send", "channel": {"$ref": "#/channels/live"}, "messages": [{"$ref": "#/channels/live/messages/ping"}]}
        },
        "components": {"messages": messages, "schemas": schemas}
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_asyncapi_document_matches_the_schemas() {
        let generated = serde_json::to_string_pretty(&asyncapi().unwrap()).unwrap() + "\n";
        let committed = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/asyncapi.json"
        ));
        assert!(
            generated == committed,
            "fixtures/asyncapi.json is out of date: run `cargo run -- contract asyncapi > fixtures/asyncapi.json`"
        );
        assert!(
            !generated.contains("#/$defs/"),
            "every reference points into components"
        );
    }
}
