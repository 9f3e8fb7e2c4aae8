//! The control socket's protocol: how `voxbridge status`, `calls`, `hangup`, `reload`
//! and `shutdown` ask the running server (`driver::control_io`) — one JSON request line,
//! one JSON answer line, then the connection closes. A Unix socket in the store
//! directory, readable and writable by the server's user only (as `doveadm` and
//! `asterisk -rx` talk to theirs).

use serde::{Deserialize, Serialize};

/// The socket's file name in the store directory.
pub const SOCKET: &str = "control.sock";
/// Longest request line taken.
pub const MAX_REQUEST: usize = 4096;

/// What is asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "lowercase", deny_unknown_fields)]
pub enum Request {
    Status,
    Calls,
    /// End a call: its id (as `calls` lists it) or its SIP Call-ID.
    Hangup {
        call: String,
    },
    /// Read the dialplan again (as SIGHUP does).
    Reload,
    /// Stop the server: `graceful` waits for calls in progress to end (new ones get 503,
    /// at most `wait_secs`); otherwise calls are ended now (a recording is saved).
    Shutdown {
        graceful: bool,
        wait_secs: Option<u64>,
    },
}

impl Request {
    /// One request line, or why it is none.
    pub fn parse(line: &[u8]) -> Result<Request, String> {
        if line.len() > MAX_REQUEST {
            return Err(format!("request longer than {MAX_REQUEST} bytes"));
        }
        serde_json::from_slice(line).map_err(|e| format!("not a request: {e}"))
    }

    pub fn line(&self) -> String {
        let mut s = serde_json::to_string(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// One call in progress, as `voxbridge calls` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallInfo {
    pub id: u64,
    pub call_id: String,
    pub from: String,
    pub to: String,
    /// deposit, menu, fax, or routing while it is being routed and answered.
    pub app: String,
    pub secs: u64,
    /// PCMU, PCMA or T.38 once answered.
    pub codec: String,
}

/// The answer: `{"ok": true, "result": …}` or `{"ok": false, "error": "…"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Answer {
    pub fn ok(result: serde_json::Value) -> Answer {
        Answer { ok: true, result: Some(result), error: None }
    }

    pub fn error(e: impl Into<String>) -> Answer {
        Answer { ok: false, result: None, error: Some(e.into()) }
    }

    pub fn line(&self) -> String {
        let mut s = serde_json::to_string(self).unwrap_or_else(|_| "{\"ok\":false}".into());
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_garbage_is_an_error() {
        for r in [
            Request::Status,
            Request::Calls,
            Request::Hangup { call: "7".into() },
            Request::Reload,
            Request::Shutdown { graceful: true, wait_secs: Some(30) },
        ] {
            assert_eq!(Request::parse(r.line().trim_end().as_bytes()).unwrap(), r);
        }
        assert_eq!(Request::parse(br#"{"command":"status"}"#).unwrap(), Request::Status);
        for bad in [&b"status"[..], br#"{"command":"reboot"}"#, br#"{"command":"hangup"}"#, b"\xff", b""] {
            assert!(Request::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Request::parse(&vec![b' '; MAX_REQUEST + 1]).unwrap_err().contains("longer"));
        let a: Answer = serde_json::from_str(Answer::error("no such call").line().trim_end()).unwrap();
        assert_eq!((a.ok, a.error.as_deref()), (false, Some("no such call")));
    }
}
