use super::*;

/// Every prompt of the shipped list as a 10-frame clip whose source names it.
fn say() -> Say {
    let mut p = crate::media::prompts::Prompts::default();
    let texts = crate::media::prompts::read_texts(std::path::Path::new("prompts/en")).unwrap();
    for id in texts.keys() {
        p.insert(id, Clip::from_pcm(vec![0; 10 * FRAME_SAMPLES], id.clone()));
    }
    p.insert("beep", Clip::from_pcm(vec![0; 5 * FRAME_SAMPLES], "beep"));
    Say(Arc::new(p))
}

fn params() -> MenuParams {
    MenuParams {
        max_login_attempts: 3,
        digit_timeout_frames: 250,
        skip_samples: 3 * RATE,
        time_zone: jiff::tz::TimeZone::UTC,
        now_unix: 1_795_514_700,
        min_pin_len: 4,
        max_record_frames: 3000,
        silence_frames: 150,
        silence_level: 200,
        keys: crate::ivr::keys::MenuKeys::default(),
        purge_on_hangup: true,
        fax_sending: false,
    }
}

fn drain(m: &mut Menu) -> Vec<Action> {
    std::iter::from_fn(|| m.poll_action()).collect()
}

/// The prompt ids of the Play actions.
fn said(acts: &[Action]) -> Vec<String> {
    acts.iter()
        .filter_map(|a| match a {
            Action::Play(c) => Some(c.iter().map(|c| c.source.clone()).collect::<Vec<_>>()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn keys(m: &mut Menu, k: &str) {
    k.chars().for_each(|c| m.handle_dtmf(c));
}

fn msg(id: i64, state: State, at: i64) -> MenuMessage {
    MenuMessage {
        id,
        kind: crate::model::MessageKind::Voice,
        state,
        caller: Some("5551".into()),
        received_at: at,
        duration_ms: Some(4000),
        pages: None,
    }
}

/// A menu logged in to mailbox 1000 with `list`, main menu prompt done.
fn logged_in(list: Vec<MenuMessage>) -> Menu {
    logged_in_with(params(), list)
}

fn logged_in_with(params: MenuParams, list: Vec<MenuMessage>) -> Menu {
    let mut m = Menu::new(params, say(), Some("1000".into()));
    drain(&mut m);
    keys(&mut m, "1234#");
    let acts = drain(&mut m);
    assert!(
        matches!(&acts[..], [Action::StopPlayback, Action::CheckPin { mailbox, pin }] if mailbox == "1000" && pin == "1234")
    );
    m.handle_login(LoginResult::Ok);
    assert!(matches!(&drain(&mut m)[..], [Action::LoadMessages { mailbox }] if mailbox == "1000"));
    m.handle_messages(list);
    drain(&mut m);
    m.handle_playback_done();
    m
}

/// Logged in with one new message `id`, `1` pressed: its envelope playing, its audio
/// asked for.
fn listening_to(id: i64) -> Menu {
    let mut m = logged_in(vec![msg(id, State::U, params().now_unix)]);
    m.handle_dtmf('1');
    drain(&mut m);
    m
}

/// A part of rendered speech, `frames` long.
fn part(frames: usize) -> Arc<Clip> {
    Arc::new(Clip::from_pcm(vec![7; frames * FRAME_SAMPLES], "speech"))
}

fn audio(len_secs: usize) -> Arc<Clip> {
    Arc::new(Clip::from_pcm(vec![100; len_secs * RATE], "message audio"))
}

#[test]
fn caller_id_skips_the_number_but_never_the_pin() {
    let mut m = Menu::new(params(), say(), Some("1000".into()));
    assert_eq!(said(&drain(&mut m)), ["vm-password"]);
    let mut m = Menu::new(params(), say(), None);
    assert_eq!(said(&drain(&mut m)), ["vm-login"]);
    keys(&mut m, "1000#");
    let acts = drain(&mut m);
    assert!(matches!(acts[0], Action::StopPlayback), "typing cuts the prompt: {acts:?}");
    assert_eq!(said(&acts), ["vm-password"]);
    keys(&mut m, "99#");
    let acts = drain(&mut m);
    assert!(
        matches!(&acts[..], [Action::StopPlayback, Action::CheckPin { mailbox, pin }] if mailbox == "1000" && pin == "99")
    );
}

#[test]
fn wrong_pins_end_the_call_after_the_limit_and_lockout_is_announced() {
    let mut m = Menu::new(params(), say(), Some("1000".into()));
    drain(&mut m);
    for attempt in 1..=3 {
        keys(&mut m, "1000#"); // (the mailbox number again after the first failure)
        if attempt == 1 {
            // The first "1000#" was the PIN.
        } else {
            keys(&mut m, "0000#");
        }
        let acts = drain(&mut m);
        assert!(acts.iter().any(|a| matches!(a, Action::CheckPin { .. })), "attempt {attempt}: {acts:?}");
        m.handle_login(LoginResult::Wrong);
        let acts = drain(&mut m);
        if attempt < 3 {
            assert_eq!(said(&acts), ["vm-incorrect", "vm-login"]);
        } else {
            assert_eq!(said(&acts), ["vm-incorrect", "vm-goodbye"]);
        }
    }
    m.handle_playback_done();
    assert!(matches!(&drain(&mut m)[..], [Action::Hangup]));

    let mut m = Menu::new(params(), say(), Some("1000".into()));
    drain(&mut m);
    keys(&mut m, "1234#");
    drain(&mut m);
    m.handle_login(LoginResult::Locked);
    assert_eq!(said(&drain(&mut m)), ["vm-locked", "vm-goodbye"]);
}

#[test]
fn counts_then_new_messages_first_and_listening_marks_read() {
    let t = params().now_unix;
    let mut m = Menu::new(params(), say(), Some("1000".into()));
    drain(&mut m);
    keys(&mut m, "1234#");
    drain(&mut m);
    m.handle_login(LoginResult::Ok);
    drain(&mut m);
    m.handle_messages(vec![msg(1, State::R, t - 100), msg(2, State::U, t - 50), msg(3, State::M, t - 10)]);
    let s = said(&drain(&mut m));
    assert_eq!(s[..5], ["vm-you-have", "num-1", "vm-new-voice-message", "vm-and", "num-1"]);
    assert_eq!(s.last().unwrap(), "vm-main-menu");
    assert_eq!(m.messages().iter().map(|x| x.id).collect::<Vec<_>>(), [2, 1], "new first; M left out");
    m.handle_playback_done();
    m.handle_dtmf('1');
    let acts = drain(&mut m);
    assert!(acts.iter().any(|a| matches!(a, Action::LoadAudio { id: 2 })));
    assert_eq!(said(&acts)[..3], ["vm-message", "num-1", "vm-received"]);
    m.handle_audio(2, Some(audio(2)));
    assert!(drain(&mut m).is_empty(), "the audio waits for the envelope");
    m.handle_playback_done();
    let acts = drain(&mut m);
    assert!(matches!(&acts[0], Action::PlayFrom(c, 0) if c.source == "message audio"), "{acts:?}");
    assert!(matches!(acts[1], Action::SetState { id: 2, state: State::R }));
    m.handle_playback_done();
    assert_eq!(said(&drain(&mut m)), ["vm-message-options"]);
    m.handle_dtmf('6');
    let acts = drain(&mut m);
    assert!(acts.iter().any(|a| matches!(a, Action::LoadAudio { id: 1 })));
    m.handle_audio(1, Some(audio(2)));
    m.handle_playback_done();
    let acts = drain(&mut m);
    assert!(!acts.iter().any(|a| matches!(a, Action::SetState { .. })), "already read: {acts:?}");
}

#[test]
fn rewind_and_fast_forward_move_three_seconds_from_the_position() {
    let mut m = listening_to(5);
    m.handle_audio(5, Some(audio(20)));
    m.handle_playback_done();
    drain(&mut m);
    for _ in 0..250 {
        m.handle_frame(&[0; FRAME_SAMPLES]); // 5 s into the message
    }
    m.handle_dtmf('*');
    let acts = drain(&mut m);
    assert!(matches!(acts[0], Action::StopPlayback));
    assert!(matches!(&acts[1], Action::PlayFrom(_, o) if *o == 2 * RATE), "{acts:?}");
    m.handle_dtmf('#');
    let acts = drain(&mut m);
    assert!(matches!(&acts[1], Action::PlayFrom(_, o) if *o == 5 * RATE), "{acts:?}");
    m.handle_dtmf('*');
    m.handle_dtmf('*');
    let acts = drain(&mut m);
    assert!(matches!(&acts.last().unwrap(), Action::PlayFrom(_, 0)), "never before the start: {acts:?}");
}

#[test]
fn delete_is_undoable_in_the_call_and_purged_at_hangup() {
    let t = params().now_unix;
    let mut m = logged_in(vec![msg(1, State::U, t), msg(2, State::R, t + 1)]);
    m.handle_dtmf('1');
    drain(&mut m);
    m.handle_dtmf('7');
    let acts = drain(&mut m);
    assert!(acts.iter().any(|a| matches!(a, Action::SetState { id: 1, state: State::M })));
    assert_eq!(said(&acts)[0], "vm-deleted");
    assert!(acts.iter().any(|a| matches!(a, Action::LoadAudio { id: 2 })), "moves on to the next");
    m.handle_dtmf('4');
    drain(&mut m);
    m.handle_dtmf('7');
    let acts = drain(&mut m);
    assert!(acts.iter().any(|a| matches!(a, Action::SetState { id: 1, state: State::R })), "{acts:?}");
    assert_eq!(said(&acts)[0], "vm-undeleted");
    m.handle_dtmf('6');
    m.handle_dtmf('7');
    drain(&mut m);
    m.handle_hangup();
    assert!(matches!(&drain(&mut m)[..], [Action::Purge { ids }] if ids == &[2]));
    assert!(m.is_done());
}

#[test]
fn silence_reprompts_then_says_goodbye() {
    let mut m = logged_in(vec![]);
    let mut prompts = 0;
    for _ in 0..2000 {
        m.handle_frame(&[0; FRAME_SAMPLES]);
        let acts = drain(&mut m);
        let s = said(&acts);
        if s == ["vm-goodbye"] {
            assert_eq!(prompts, 2, "two reprompts first");
            m.handle_playback_done();
            assert!(matches!(&drain(&mut m)[..], [Action::Hangup]));
            return;
        }
        if !s.is_empty() {
            prompts += 1;
            m.handle_playback_done();
        }
    }
    panic!("no goodbye");
}

#[test]
fn keys_typed_while_the_store_answers_are_kept() {
    let mut m = Menu::new(params(), say(), Some("1000".into()));
    drain(&mut m);
    keys(&mut m, "9#");
    drain(&mut m);
    keys(&mut m, "1000#12"); // typed before the "incorrect" verdict arrives
    m.handle_login(LoginResult::Wrong);
    keys(&mut m, "34#");
    let acts = drain(&mut m);
    assert!(
        matches!(acts.last(), Some(Action::CheckPin { mailbox, pin }) if mailbox == "1000" && pin == "1234"),
        "{acts:?}"
    );
    m.handle_login(LoginResult::Ok);
    m.handle_dtmf('1'); // "listen", before the list is loaded
    drain(&mut m);
    m.handle_messages(vec![msg(3, State::U, 0)]);
    assert!(drain(&mut m).iter().any(|a| matches!(a, Action::LoadAudio { id: 3 })));
}

const LOUD: [i16; FRAME_SAMPLES] = [3000; FRAME_SAMPLES];
const QUIET: [i16; FRAME_SAMPLES] = [0; FRAME_SAMPLES];

#[test]
fn a_greeting_is_recorded_reviewed_and_saved_only_when_accepted() {
    let mut m = logged_in(vec![]);
    m.handle_dtmf('0');
    assert_eq!(said(&drain(&mut m)), ["vm-setup-menu"]);
    m.handle_dtmf('4');
    assert_eq!(said(&drain(&mut m)), ["vm-record-greeting", "beep"]);
    for _ in 0..10 {
        m.handle_frame(&LOUD); // during the prompt: not recorded
    }
    m.handle_playback_done();
    for _ in 0..100 {
        m.handle_frame(&LOUD);
    }
    for _ in 0..20 {
        m.handle_frame(&QUIET);
    }
    m.handle_dtmf('#');
    assert_eq!(said(&drain(&mut m)), ["vm-review"]);
    m.handle_dtmf('2');
    let acts = drain(&mut m);
    assert!(
        matches!(&acts[..], [Action::StopPlayback, Action::Play(c)] if c[0].pcm.len() == 100 * FRAME_SAMPLES),
        "the recording, trailing silence cut: {acts:?}"
    );
    m.handle_dtmf('1');
    let acts = drain(&mut m);
    let Some(Action::SaveGreeting { kind: GreetingKind::Temporary, pcm }) = acts.last() else { panic!("{acts:?}") };
    assert_eq!(pcm.len(), 100 * FRAME_SAMPLES);
    assert!(said(&acts).is_empty(), "nothing said before the save is durable");
    m.handle_done(true);
    assert_eq!(said(&drain(&mut m)), ["vm-greeting-saved", "vm-setup-menu"]);
}

#[test]
fn pin_change_needs_length_and_confirmation() {
    let mut m = logged_in(vec![]);
    keys(&mut m, "05");
    drain(&mut m);
    keys(&mut m, "12#");
    assert_eq!(said(&drain(&mut m)), ["vm-pin-too-short", "vm-new-pin"]);
    keys(&mut m, "4321#");
    assert_eq!(said(&drain(&mut m)), ["vm-reenter-pin"]);
    keys(&mut m, "4322#");
    assert_eq!(said(&drain(&mut m)), ["vm-pin-mismatch", "vm-new-pin"]);
    keys(&mut m, "4321#4321#");
    let acts = drain(&mut m);
    assert!(matches!(acts.last(), Some(Action::ChangePin { pin }) if pin == "4321"), "{acts:?}");
    m.handle_done(true);
    assert_eq!(said(&drain(&mut m)), ["vm-setup-done", "vm-setup-menu"]);
}

#[test]
fn forward_checks_the_target_then_sends_with_a_comment() {
    let t = params().now_unix;
    let mut m = logged_in(vec![msg(7, State::R, t)]);
    m.handle_dtmf('1');
    drain(&mut m);
    keys(&mut m, "8");
    assert_eq!(said(&drain(&mut m)).last().unwrap(), "vm-forward-to");
    keys(&mut m, "99#");
    assert!(matches!(drain(&mut m).last(), Some(Action::LookupTarget { number }) if number == "99"));
    m.handle_target(false);
    assert_eq!(said(&drain(&mut m)), ["vm-no-such-mailbox", "vm-forward-to"]);
    keys(&mut m, "2000#");
    drain(&mut m);
    m.handle_target(true);
    assert_eq!(said(&drain(&mut m)), ["vm-record-comment", "beep"]);
    m.handle_playback_done();
    for _ in 0..50 {
        m.handle_frame(&LOUD);
    }
    m.handle_dtmf('#');
    let acts = drain(&mut m);
    assert!(
        matches!(acts.last(), Some(Action::Forward { id: 7, to, comment }) if to == "2000" && comment.len() == 50 * FRAME_SAMPLES),
        "{acts:?}"
    );
    m.handle_done(true);
    assert_eq!(said(&drain(&mut m)), ["vm-forwarded", "vm-message-options"]);
    // Reply: recorded and sent; a message without a sender cannot be replied to.
    m.handle_dtmf('3');
    assert_eq!(said(&drain(&mut m)), ["vm-record-reply", "beep"]);
    m.handle_playback_done();
    for _ in 0..30 {
        m.handle_frame(&LOUD);
    }
    m.handle_dtmf('#');
    assert!(
        matches!(drain(&mut m).last(), Some(Action::Reply { id: 7, pcm, all: false }) if pcm.len() == 30 * FRAME_SAMPLES)
    );
    m.handle_done(false);
    assert_eq!(said(&drain(&mut m)), ["vm-reply-failed", "vm-message-options"]);
}

#[test]
fn keys_come_from_the_dialplan() {
    let t = params().now_unix;
    let remapped = crate::ivr::keys::MenuKeys { listen: '2', save: '1', replay_also: '2', ..Default::default() };
    assert_eq!(remapped.validate(), Ok(()));
    let mut m = Menu::new(MenuParams { keys: remapped, ..params() }, say(), Some("1000".into()));
    drain(&mut m);
    keys(&mut m, "1234#");
    drain(&mut m);
    m.handle_login(LoginResult::Ok);
    drain(&mut m);
    m.handle_messages(vec![msg(1, State::U, t), msg(2, State::U, t + 1)]);
    drain(&mut m);
    m.handle_dtmf('1');
    assert_eq!(said(&drain(&mut m))[..2], ["vm-invalid", "vm-main-menu"], "1 no longer listens");
    m.handle_dtmf('2');
    assert!(drain(&mut m).iter().any(|a| matches!(a, Action::LoadAudio { id: 1 })));
    m.handle_dtmf('1');
    let acts = drain(&mut m);
    assert!(acts.iter().any(|a| matches!(a, Action::SetState { id: 1, state: State::R })), "1 saves");
}

#[test]
fn without_purge_on_hangup_deleted_messages_stay_marked() {
    let t = params().now_unix;
    let mut m = Menu::new(MenuParams { purge_on_hangup: false, ..params() }, say(), Some("1000".into()));
    drain(&mut m);
    keys(&mut m, "1234#");
    m.handle_login(LoginResult::Ok);
    m.handle_messages(vec![msg(1, State::U, t)]);
    keys(&mut m, "17");
    assert!(drain(&mut m).iter().any(|a| matches!(a, Action::SetState { id: 1, state: State::M })));
    m.handle_hangup();
    assert!(drain(&mut m).is_empty(), "no purge");
    // And 1 replays, like 5.
    let mut m = logged_in(vec![msg(2, State::R, t)]);
    m.handle_dtmf('1');
    drain(&mut m);
    m.handle_dtmf('1');
    let acts = drain(&mut m);
    assert_eq!(said(&acts)[..2], ["vm-message", "num-1"], "the envelope again: {acts:?}");
}

#[test]
fn a_login_the_store_could_not_check_asks_to_try_again_later_not_wrong_pin() {
    let mut m = Menu::new(params(), say(), Some("1000".into()));
    drain(&mut m);
    keys(&mut m, "1234#");
    assert!(drain(&mut m).iter().any(|a| matches!(a, Action::CheckPin { .. })));
    m.handle_login(LoginResult::Unavailable);
    assert_eq!(said(&drain(&mut m)), ["vm-failed", "vm-goodbye"], "not \"incorrect\": the PIN may have been right");
    m.handle_playback_done();
    assert!(matches!(&drain(&mut m)[..], [Action::Hangup]));
}

#[test]
fn speech_that_is_still_rendering_plays_on_seamlessly_part_after_part() {
    let mut m = listening_to(5);
    // The first sentence arrives during the envelope and plays after it.
    m.handle_audio_part(5, Some(part(10)), false);
    m.handle_playback_done();
    let acts = drain(&mut m);
    assert!(matches!(&acts[0], Action::PlayFrom(c, 0) if c.pcm.len() == 10 * FRAME_SAMPLES), "{acts:?}");
    // A longer part while the first plays: nothing changes now…
    m.handle_audio_part(5, Some(part(30)), false);
    assert!(drain(&mut m).is_empty());
    // …and when the first ends, playback goes on exactly where it stopped.
    m.handle_playback_done();
    let acts = drain(&mut m);
    assert!(
        matches!(&acts[..], [Action::PlayFrom(c, o)] if c.pcm.len() == 30 * FRAME_SAMPLES && *o == 10 * FRAME_SAMPLES),
        "{acts:?}"
    );
    // Played past what is rendered: it waits (no options prompt) and resumes with the next.
    m.handle_playback_done();
    assert!(drain(&mut m).is_empty(), "waiting for the rest");
    m.handle_audio_part(5, Some(part(50)), true);
    let acts = drain(&mut m);
    assert!(
        matches!(&acts[..], [Action::PlayFrom(c, o)] if c.pcm.len() == 50 * FRAME_SAMPLES && *o == 30 * FRAME_SAMPLES),
        "{acts:?}"
    );
    // The last part ended: now the message options.
    m.handle_playback_done();
    assert_eq!(said(&drain(&mut m)), ["vm-message-options"]);
}

#[test]
fn the_last_part_arriving_while_the_first_plays_is_played_on_to_its_end() {
    let mut m = listening_to(5);
    m.handle_audio_part(5, Some(part(10)), false);
    m.handle_playback_done(); // the envelope
    drain(&mut m);
    // A short mail: all of it is rendered while its first sentence plays.
    m.handle_audio_part(5, Some(part(30)), true);
    m.handle_playback_done();
    let acts = drain(&mut m);
    assert!(
        matches!(&acts[..], [Action::PlayFrom(c, o)] if c.pcm.len() == 30 * FRAME_SAMPLES && *o == 10 * FRAME_SAMPLES),
        "the rest, not the options: {acts:?}"
    );
    m.handle_playback_done();
    assert_eq!(said(&drain(&mut m)), ["vm-message-options"]);
}

#[test]
fn in_spoken_e_mail_the_skip_keys_go_by_sentence() {
    let mut m = listening_to(5);
    // Three sentences: at 0, 2 s and 5 s of a 9 s rendering.
    m.set_marks(5, SpeechMarks { sentences: vec![0, 2 * RATE, 5 * RATE], paragraphs: vec![0] });
    m.handle_audio_part(5, Some(audio(9)), true);
    m.handle_playback_done();
    drain(&mut m);
    for _ in 0..150 {
        m.handle_frame(&[0; FRAME_SAMPLES]); // 3 s in: the second sentence
    }
    m.handle_dtmf('#');
    let acts = drain(&mut m);
    assert!(matches!(&acts[1], Action::PlayFrom(_, o) if *o == 5 * RATE), "the next sentence: {acts:?}");
    for _ in 0..100 {
        m.handle_frame(&[0; FRAME_SAMPLES]); // 2 s into the third
    }
    m.handle_dtmf('*');
    let acts = drain(&mut m);
    assert!(matches!(&acts[1], Action::PlayFrom(_, o) if *o == 5 * RATE), "back to this sentence's start: {acts:?}");
    m.handle_dtmf('*');
    let acts = drain(&mut m);
    assert!(matches!(&acts[1], Action::PlayFrom(_, o) if *o == 2 * RATE), "just begun: the one before: {acts:?}");
    m.handle_dtmf('#');
    m.handle_dtmf('#');
    let acts = drain(&mut m);
    assert_eq!(said(&acts), ["vm-message-options"], "past the last sentence: {acts:?}");
}

/// A spoken e-mail of four paragraphs (at 0, 4, 8 and 12 s of 16 s), playing from its start.
fn reading_paragraphs() -> Menu {
    let mut m = listening_to(5);
    let sentences = (0..8).map(|i| i * 2 * RATE).collect();
    m.set_marks(5, SpeechMarks { sentences, paragraphs: vec![0, 4 * RATE, 8 * RATE, 12 * RATE] });
    m.handle_audio_part(5, Some(audio(16)), true);
    m.handle_playback_done();
    drain(&mut m);
    m
}

fn frames(m: &mut Menu, n: usize) {
    for _ in 0..n {
        m.handle_frame(&[0; FRAME_SAMPLES]);
    }
}

fn played_from(acts: &[Action]) -> Option<usize> {
    acts.iter().find_map(|a| match a {
        Action::PlayFrom(_, o) => Some(*o),
        _ => None,
    })
}

#[test]
fn in_spoken_e_mail_1_and_3_go_by_paragraph_and_mean_replay_and_reply_otherwise() {
    let mut m = reading_paragraphs();
    frames(&mut m, 50); // 1 s in: the first paragraph
    m.handle_dtmf('3');
    assert_eq!(played_from(&drain(&mut m)), Some(4 * RATE), "the next paragraph");
    m.handle_dtmf('3');
    assert_eq!(played_from(&drain(&mut m)), Some(8 * RATE), "and the one after");
    frames(&mut m, 150); // 3 s into the third paragraph
    m.handle_dtmf('1');
    assert_eq!(played_from(&drain(&mut m)), Some(8 * RATE), "back to its start");
    m.handle_dtmf('1');
    assert_eq!(played_from(&drain(&mut m)), Some(4 * RATE), "just begun: the one before");
    m.handle_dtmf('#');
    assert_eq!(played_from(&drain(&mut m)), Some(6 * RATE), "# still goes by sentence");
    // A recording has no paragraphs: 3 is reply, as always.
    let t = params().now_unix;
    let mut v = logged_in(vec![msg(6, State::U, t)]);
    v.handle_dtmf('1');
    v.handle_audio(6, Some(audio(10)));
    v.handle_playback_done();
    drain(&mut v);
    v.handle_dtmf('3');
    assert_eq!(played_from(&drain(&mut v)), None, "a voice message is not skipped by 3");
}

#[test]
fn pause_holds_the_place_and_the_message_keys_work_while_paused() {
    let mut m = reading_paragraphs();
    frames(&mut m, 125); // 2.5 s in
    m.handle_dtmf('2');
    let acts = drain(&mut m);
    assert!(matches!(&acts[..], [Action::StopPlayback]), "paused: {acts:?}");
    frames(&mut m, 2000); // 40 s of thinking: no time-out, no prompt
    assert!(drain(&mut m).is_empty());
    m.handle_dtmf('2');
    assert_eq!(played_from(&drain(&mut m)), Some(125 * FRAME_SAMPLES), "on where it stopped");
    // Paused again, 3 is reply (not the next paragraph): the reply prompt plays.
    m.handle_dtmf('2');
    drain(&mut m);
    m.handle_dtmf('3');
    let acts = drain(&mut m);
    assert_eq!(played_from(&acts), None, "{acts:?}");
    assert!(!said(&acts).is_empty(), "the reply is asked for: {acts:?}");
}

#[test]
fn fast_forward_during_the_envelope_goes_straight_to_the_message() {
    let mut m = listening_to(5);
    // Pressed before the first part is rendered: it plays as soon as it comes.
    m.handle_dtmf('#');
    let acts = drain(&mut m);
    assert!(matches!(&acts[..], [Action::StopPlayback]), "the envelope is cut: {acts:?}");
    m.handle_audio_part(5, Some(audio(3)), false);
    assert_eq!(played_from(&drain(&mut m)), Some(0), "the message, without the rest of the envelope");
    // Once rendered, # in the envelope plays the message at once.
    let mut m = listening_to(5);
    m.handle_audio_part(5, Some(audio(3)), true);
    drain(&mut m);
    m.handle_dtmf('#');
    assert_eq!(played_from(&drain(&mut m)), Some(0));
}

#[test]
fn an_e_mail_is_replied_to_the_sender_or_to_all_as_the_caller_chooses() {
    let t = params().now_unix;
    let mail = |id| MenuMessage {
        kind: crate::model::MessageKind::Email,
        caller: Some("ann@example.com".into()),
        ..msg(id, State::U, t)
    };
    let mut m = logged_in(vec![mail(8)]);
    m.handle_dtmf('1');
    drain(&mut m);
    m.handle_dtmf('3');
    assert_eq!(said(&drain(&mut m)), ["vm-reply-choice"]);
    m.handle_dtmf('5');
    assert_eq!(said(&drain(&mut m)), ["vm-invalid", "vm-reply-choice"], "only 1, 2 or star");
    m.handle_dtmf('*');
    assert_eq!(said(&drain(&mut m)), ["vm-message-options"], "cancelled");
    for (key, all) in [('1', false), ('2', true)] {
        m.handle_dtmf('3');
        drain(&mut m);
        m.handle_dtmf(key);
        assert_eq!(said(&drain(&mut m)), ["vm-record-reply", "beep"]);
        m.handle_playback_done();
        for _ in 0..30 {
            m.handle_frame(&LOUD);
        }
        m.handle_dtmf('#');
        let acts = drain(&mut m);
        assert!(matches!(acts.last(), Some(Action::Reply { id: 8, all: a, .. }) if *a == all), "{acts:?}");
        m.handle_done(true);
        assert_eq!(said(&drain(&mut m)), ["vm-reply-sent", "vm-message-options"]);
    }
}

#[test]
fn a_heard_message_is_marked_new_again_with_0() {
    let t = params().now_unix;
    let mut m = logged_in(vec![msg(9, State::U, t)]);
    m.handle_dtmf('1');
    m.handle_audio(9, Some(audio(2)));
    m.handle_playback_done();
    let acts = drain(&mut m);
    assert!(acts.iter().any(|a| matches!(a, Action::SetState { id: 9, state: State::R })), "listening reads it");
    m.handle_dtmf('0');
    let acts = drain(&mut m);
    assert!(acts.iter().any(|a| matches!(a, Action::SetState { id: 9, state: State::U })), "{acts:?}");
    assert_eq!(said(&acts), ["vm-marked-new", "vm-message-options"]);
    assert_eq!(m.messages()[0].state, State::U);
}

#[test]
fn a_fax_is_forwarded_to_a_mailbox_or_sent_to_a_fax_number() {
    let t = params().now_unix;
    let fax = MenuMessage { kind: crate::model::MessageKind::Fax, pages: Some(2), ..msg(9, State::R, t) };
    let mut m = logged_in_with(MenuParams { fax_sending: true, ..params() }, vec![fax.clone()]);
    m.handle_dtmf('1');
    drain(&mut m);
    keys(&mut m, "8");
    assert_eq!(said(&drain(&mut m)).last().unwrap(), "vm-fax-forward-choice");
    keys(&mut m, "1");
    assert_eq!(said(&drain(&mut m)).last().unwrap(), "vm-forward-to", "1: a mailbox, as for any message");
    keys(&mut m, "*");
    drain(&mut m);
    keys(&mut m, "82");
    assert_eq!(said(&drain(&mut m)).last().unwrap(), "vm-fax-number");
    keys(&mut m, "5551234#");
    assert!(matches!(drain(&mut m).last(), Some(Action::SendFax { id: 9, number }) if number == "5551234"));
    m.handle_done(true);
    assert_eq!(said(&drain(&mut m)), ["vm-fax-queued", "vm-message-options"]);
    keys(&mut m, "82#");
    let acts = drain(&mut m);
    assert!(!acts.iter().any(|a| matches!(a, Action::SendFax { .. })), "no number: nothing queued");
    assert_eq!(said(&acts).last().unwrap(), "vm-message-options");
    keys(&mut m, "82123#");
    drain(&mut m);
    m.handle_done(false);
    assert_eq!(said(&drain(&mut m)), ["vm-failed", "vm-message-options"]);
    // Without a trunk for faxes, forward is the mailbox forward only.
    let mut m = logged_in(vec![fax]);
    m.handle_dtmf('1');
    drain(&mut m);
    keys(&mut m, "8");
    assert_eq!(said(&drain(&mut m)).last().unwrap(), "vm-forward-to");
}

#[test]
fn after_login_the_subscriber_hears_their_mailboxs_language() {
    let mut m = Menu::new(params(), say(), Some("1000".into()));
    let first = said(&drain(&mut m));
    assert!(first.iter().all(|s| !s.starts_with("de:")), "before login, the default language: {first:?}");
    keys(&mut m, "1234#");
    drain(&mut m);
    m.handle_login(LoginResult::Ok);
    drain(&mut m);
    // The mailbox's language: its own clips, marked by their source.
    let mut de = crate::media::prompts::Prompts::default();
    for id in ["vm-you-have", "vm-no-messages", "vm-main-menu"] {
        de.insert(id, Clip::from_pcm(vec![0; 10 * FRAME_SAMPLES], format!("de:{id}")));
    }
    let de = Say(Arc::new(de.with_fallback(say().0.as_ref().clone())));
    crate::session::app::Application::on_reply(&mut m, Reply::Messages(vec![], jiff::tz::TimeZone::UTC, Some(de)));
    let heard = said(&drain(&mut m));
    assert!(heard.contains(&"de:vm-main-menu".to_string()), "{heard:?}");
    // A prompt the language lacks plays in the default one.
    m.handle_playback_done();
    keys(&mut m, "0");
    let options = said(&drain(&mut m));
    assert_eq!(options, vec!["vm-setup-menu".to_string()], "{options:?}");
}
