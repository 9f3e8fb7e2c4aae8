//! The mailbox menu's keys, configurable per dialplan route (`[route.keys]`). The
//! defaults are the ones Asterisk and FreeSWITCH users know. Prompts name the default
//! keys: whoever remaps keys records matching prompts (prompts/<lang>/<id>.wav).

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MenuKeys {
    // Main menu.
    pub listen: char,
    pub options: char,
    pub help: char,
    pub exit: char,
    // After (or during) a message; replay has two keys (5, and 1 as in Asterisk).
    pub replay: char,
    pub replay_also: char,
    pub previous: char,
    pub next: char,
    pub delete: char,
    pub save: char,
    pub forward: char,
    pub reply: char,
    pub mark_unread: char,
    pub main_menu: char,
    // While a message plays (fast-forward also skips the envelope).
    pub rewind: char,
    pub fast_forward: char,
    pub pause: char,
    // While an e-mail is read out: whole paragraphs. They take the keys of replay_also
    // and reply only then; paused, those keys mean what they always do.
    pub paragraph_back: char,
    pub paragraph_forward: char,
}

impl Default for MenuKeys {
    fn default() -> Self {
        MenuKeys {
            listen: '1',
            options: '0',
            help: '*',
            exit: '#',
            replay: '5',
            replay_also: '1',
            previous: '4',
            next: '6',
            delete: '7',
            save: '9',
            forward: '8',
            reply: '3',
            mark_unread: '0',
            main_menu: '#',
            rewind: '*',
            fast_forward: '#',
            pause: '2',
            paragraph_back: '1',
            paragraph_forward: '3',
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MainKey {
    Listen,
    Options,
    Help,
    Exit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKey {
    Replay,
    Previous,
    Next,
    Delete,
    Save,
    Forward,
    Reply,
    MarkUnread,
    MainMenu,
    Rewind,
    FastForward,
    Pause,
    ParagraphBack,
    ParagraphForward,
}

impl MenuKeys {
    pub fn main(&self, key: char) -> Option<MainKey> {
        [
            (self.listen, MainKey::Listen),
            (self.options, MainKey::Options),
            (self.help, MainKey::Help),
            (self.exit, MainKey::Exit),
        ]
        .into_iter()
        .find(|(k, _)| *k == key)
        .map(|(_, a)| a)
    }

    /// While the audio plays, the playback keys come first, and while speech with
    /// paragraphs plays (an e-mail), the paragraph keys before those.
    pub fn message(&self, key: char, in_audio: bool, in_paragraphs: bool) -> Option<MessageKey> {
        if in_paragraphs {
            if key == self.paragraph_back {
                return Some(MessageKey::ParagraphBack);
            }
            if key == self.paragraph_forward {
                return Some(MessageKey::ParagraphForward);
            }
        }
        if in_audio {
            for (k, action) in [
                (self.rewind, MessageKey::Rewind),
                (self.fast_forward, MessageKey::FastForward),
                (self.pause, MessageKey::Pause),
            ] {
                if key == k {
                    return Some(action);
                }
            }
        }
        [
            (self.replay, MessageKey::Replay),
            (self.replay_also, MessageKey::Replay),
            (self.previous, MessageKey::Previous),
            (self.next, MessageKey::Next),
            (self.delete, MessageKey::Delete),
            (self.save, MessageKey::Save),
            (self.forward, MessageKey::Forward),
            (self.reply, MessageKey::Reply),
            (self.mark_unread, MessageKey::MarkUnread),
            (self.main_menu, MessageKey::MainMenu),
        ]
        .into_iter()
        .find(|(k, _)| *k == key)
        .map(|(_, a)| a)
    }

    /// Every key a DTMF key, and no key with two meanings in one menu.
    pub fn validate(&self) -> Result<(), String> {
        let groups: [(&str, Vec<char>); 3] = [
            ("main menu", vec![self.listen, self.options, self.help, self.exit]),
            (
                "message options",
                vec![
                    self.replay,
                    self.replay_also,
                    self.previous,
                    self.next,
                    self.delete,
                    self.save,
                    self.forward,
                    self.reply,
                    self.mark_unread,
                    self.main_menu,
                ],
            ),
            ("playback", vec![self.rewind, self.fast_forward, self.pause, self.paragraph_back, self.paragraph_forward]),
        ];
        for (name, keys) in groups {
            for (i, k) in keys.iter().enumerate() {
                if !matches!(k, '0'..='9' | '*' | '#' | 'A'..='D') {
                    return Err(format!("menu key {k:?} is not a telephone key (0-9, *, #, A-D)"));
                }
                if keys[..i].contains(k) {
                    return Err(format!("menu key {k:?} has two meanings in the {name}"));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_conflicts() {
        let k = MenuKeys::default();
        assert_eq!(k.validate(), Ok(()));
        assert_eq!(k.main('1'), Some(MainKey::Listen));
        assert_eq!(k.message('#', true, false), Some(MessageKey::FastForward));
        assert_eq!(k.message('#', false, false), Some(MessageKey::MainMenu));
        // 1 and 3 skip paragraphs only while an e-mail is read; else replay and reply.
        assert_eq!(k.message('3', true, true), Some(MessageKey::ParagraphForward));
        assert_eq!(k.message('3', true, false), Some(MessageKey::Reply));
        assert_eq!(k.message('1', true, true), Some(MessageKey::ParagraphBack));
        assert_eq!(k.message('1', false, false), Some(MessageKey::Replay));
        assert_eq!(k.message('2', true, false), Some(MessageKey::Pause));
        assert_eq!(k.message('2', false, false), None);
        let bad = MenuKeys { pause: '#', ..MenuKeys::default() };
        assert!(bad.validate().unwrap_err().contains("two meanings in the playback"));
        let bad = MenuKeys { save: '7', ..MenuKeys::default() };
        assert!(bad.validate().unwrap_err().contains("two meanings in the message options"));
        let bad = MenuKeys { help: 'x', ..MenuKeys::default() };
        assert!(bad.validate().is_err());
    }
}
