//! `voxbridge tts preview|say`: what a text will be read as, and how it sounds.

use crate::config::Config;
use crate::services::reading;
use anyhow::{bail, Context, Result};
use clap::Subcommand;
use std::io::Read;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum TtsCmd {
    /// Print exactly the text that will be spoken, one sentence a line, paragraphs
    /// apart: after the substitution rules and the written-form families (money,
    /// dates, phone numbers, links…).
    ///
    /// Example: voxbridge tts preview --text "Call (555) 123-4567 by 5 p.m. re: the $20 bill"
    Preview {
        /// A stored message: the mailbox number…
        #[arg(requires = "id")]
        number: Option<String>,
        /// …and the message id (`voxbridge messages list NUMBER`): exactly what the phone
        /// says for it, with that mailbox's substitutions and the mail's language.
        id: Option<i64>,
        /// The text; `-` reads standard input.
        #[arg(long, required_unless_present_any = ["file", "mail", "id"])]
        text: Option<String>,
        /// Read the text from this file instead.
        #[arg(long, conflicts_with_all = ["text", "mail"])]
        file: Option<PathBuf>,
        /// A whole e-mail (an .eml file, RFC 5322): read as the menu reads it — sender and
        /// subject, what the sender wrote (no quoted history, signature, disclaimer or list
        /// footer), the attachments by kind and name.
        #[arg(long, conflicts_with_all = ["text", "file"])]
        mail: Option<PathBuf>,
        /// Language of the rules (default: [prompts] language).
        #[arg(long)]
        lang: Option<String>,
    },
    /// Speak a text (after the same rules) into an 8 kHz mono WAV file.
    ///
    /// Example: voxbridge tts say "Your meeting is at 10:30 a.m." --out meeting.wav
    Say {
        /// The text to speak.
        #[arg(required_unless_present = "mail")]
        text: Option<String>,
        /// A whole e-mail (.eml) instead, spoken as the menu speaks it.
        #[arg(long, conflicts_with = "text")]
        mail: Option<PathBuf>,
        /// Where to write the WAV file.
        #[arg(long)]
        out: PathBuf,
        /// Language of the rules (default: [prompts] language).
        #[arg(long)]
        lang: Option<String>,
        /// espeak-ng voice (default: [prompts] voice).
        #[arg(long)]
        voice: Option<String>,
        /// Also print where each sentence starts in the audio (sample at 8 kHz, seconds,
        /// ¶ for a paragraph's first), as the phone's skip keys see it.
        #[arg(long)]
        timings: bool,
    },
}

fn input(text: Option<String>, file: Option<PathBuf>) -> Result<String> {
    match (text.as_deref(), file) {
        (Some("-"), _) => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).context("reading standard input")?;
            Ok(s)
        }
        (Some(t), _) => Ok(t.to_string()),
        (None, Some(f)) => std::fs::read_to_string(&f).with_context(|| format!("cannot read {}", f.display())),
        (None, None) => bail!("give --text or --file"),
    }
}

/// A mail file as the menu reads it: its paragraphs, in `lang` when given, else in its
/// own language when there is a reader for it (the menu's one choice,
/// `reading::for_mail`); with that language's code and voice.
fn read_mail(cfg: &Config, path: &std::path::Path, lang: Option<&str>) -> Result<(Vec<Vec<String>>, String, String)> {
    let raw = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if let Some(l) = lang {
        let voice = cfg.prompts.voices.get(l).cloned().unwrap_or_else(|| cfg.prompts.voice.clone());
        return Ok((reading::reader(cfg, l)?.mail(&raw), l.to_string(), voice));
    }
    let (main, others) = (reading::reader(cfg, &cfg.prompts.language)?, reading::other_readers(cfg)?);
    let main = (cfg.prompts.language.as_str(), &main, cfg.prompts.voice.as_str());
    let (code, reader, voice) = reading::for_mail(&raw, main, &others);
    Ok((reader.mail(&raw), code.to_string(), voice.to_string()))
}

pub fn run(cfg: &Config, cmd: TtsCmd) -> Result<()> {
    match cmd {
        TtsCmd::Preview { number: Some(number), id: Some(id), .. } => {
            let store = crate::store::Store::open(&cfg.store.path)?;
            match store.message(id)? {
                Some(m) if m.mailbox == number => {}
                _ => bail!("mailbox {number} has no message {id}"),
            }
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let svc = crate::services::messages::Messages::standalone(store, cfg);
            match rt.block_on(svc.message_speech(id))? {
                crate::services::messages::Speech::Text { paragraphs, .. } => {
                    let blocks: Vec<String> = paragraphs.iter().map(|p| p.join("\n")).collect();
                    println!("{}", blocks.join("\n\n"))
                }
                crate::services::messages::Speech::Pcm(pcm) => {
                    println!("(a recording: {:.1} s of audio)", pcm.len() as f64 / 8000.0)
                }
            }
            Ok(())
        }
        TtsCmd::Preview { text, file, mail, lang, .. } => {
            let paragraphs = match mail {
                Some(path) => read_mail(cfg, &path, lang.as_deref())?.0,
                None => {
                    let reader = reading::reader(cfg, lang.as_deref().unwrap_or(&cfg.prompts.language))?;
                    reading::preview(&reader, &input(text, file)?)
                }
            };
            let blocks: Vec<String> = paragraphs.iter().map(|p| p.join("\n")).collect();
            println!("{}", blocks.join("\n\n"));
            Ok(())
        }
        TtsCmd::Say { text, mail, out, lang, voice, timings } => {
            let (spoken, code, mail_voice) = match (text, mail) {
                (_, Some(path)) => read_mail(cfg, &path, lang.as_deref())?,
                (Some(text), None) => {
                    let code = lang.unwrap_or_else(|| cfg.prompts.language.clone());
                    (reading::preview(&reading::reader(cfg, &code)?, &text), code, cfg.prompts.voice.clone())
                }
                (None, None) => bail!("give a text or --mail"),
            };
            if spoken.is_empty() {
                bail!("nothing to say: the text has no words");
            }
            // Sentence by sentence, as the phone renders it: the same audio.
            let (mut pcm, mut marks) = (Vec::new(), crate::model::SpeechMarks::default());
            let voice = voice.unwrap_or(mail_voice);
            let (voice, rate) = (voice.as_str(), cfg.prompts.rate(&code));
            crate::services::messages::render_in_parts(
                &spoken,
                voice,
                rate,
                || true,
                |all, m, _| {
                    pcm = all.to_vec();
                    marks = m.clone();
                    true
                },
            )?;
            crate::media::wav::write_durable(&out, &pcm).with_context(|| format!("cannot write {}", out.display()))?;
            println!("{} ({:.1} s of audio)", out.display(), pcm.len() as f64 / 8000.0);
            if timings {
                for (start, sentence) in marks.sentences.iter().zip(spoken.iter().flatten()) {
                    let para = if marks.paragraphs.contains(start) { "¶" } else { " " };
                    println!("{start}\t{:.2}\t{para} {sentence}", *start as f64 / 8000.0);
                }
            }
            Ok(())
        }
    }
}
