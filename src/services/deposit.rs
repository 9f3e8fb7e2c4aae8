//! Leaving a voice message: the recording written durably and described as a new
//! message, ready to be committed with its delivery.

use crate::mail::compose::{new_message_id, voice_subject};
use crate::store::api::Messages;
use crate::store::{now_secs, NewVoiceMessage};
use anyhow::Result;

/// Writes `pcm` durably as a new recording of `mailbox` and describes it as a new voice
/// message (state U, a fresh Message-ID of `domain`, the subject its mail will carry),
/// not yet committed: [`Messages::insert_voice_messages`] commits it with its delivery.
pub fn new_voice_message(
    store: &dyn Messages,
    domain: &str,
    mailbox: &str,
    caller: Option<String>,
    caller_name: Option<String>,
    pcm: &[i16],
) -> Result<NewVoiceMessage> {
    let (media_path, bytes) = store.write_recording(mailbox, "", pcm)?;
    let recorded = Recorded { media_path, bytes, duration_ms: (pcm.len() / 8) as i64 };
    Ok(voice_message(domain, mailbox, caller, caller_name, recorded))
}

/// A recording already on disk (written while it was made): where, how big, how long.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub media_path: String,
    pub bytes: u64,
    pub duration_ms: i64,
}

/// Describes a recording on disk as a new voice message of `mailbox`, not yet committed.
pub fn voice_message(
    domain: &str,
    mailbox: &str,
    caller: Option<String>,
    caller_name: Option<String>,
    r: Recorded,
) -> NewVoiceMessage {
    NewVoiceMessage {
        subject: voice_subject(caller.as_deref(), r.duration_ms),
        mailbox: mailbox.to_string(),
        caller,
        caller_name,
        received_at: now_secs(),
        duration_ms: r.duration_ms,
        media_path: r.media_path,
        media_bytes: r.bytes as i64,
        message_id: new_message_id(domain),
    }
}
