//! Prompts by CLI (issue 16): audio made at test time by espeak-ng and sox in every
//! format an admin brings (a 44.1 kHz stereo MP3, FLAC, Ogg Vorbis, a 16-bit WAV)
//! becomes an 8 kHz mono prompt of the right length and loudness; garbage, a truncated
//! FLAC and an empty file are refused with nothing written; a running server plays a
//! re-imported prompt to the next caller (the bytes on the wire are the new prompt's).

mod common;
use common::phone::Phone;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A prompt directory of its own (a copy of prompts/en), and a configuration using it.
fn prompt_tree(work: &Path) -> (PathBuf, String) {
    let dir = work.join("prompts");
    std::fs::create_dir_all(dir.join("en")).unwrap();
    for e in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/prompts/en")).unwrap().flatten() {
        std::fs::copy(e.path(), dir.join("en").join(e.file_name())).unwrap();
    }
    let extra = format!("[prompts]\ndir = \"{}\"\n", dir.display());
    (dir, extra)
}

/// Runs sox, which must succeed.
fn sox(args: &[&str]) {
    let out = Command::new("sox").args(args).output().expect("sox");
    assert!(out.status.success(), "sox {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// 1 s of silence, 2 s of espeak-ng speech at 44.1 kHz stereo, 1 s of silence: `out`.
fn studio_recording(work: &Path, out: &Path) {
    let speech = work.join("speech.wav");
    let st = Command::new("espeak-ng")
        .args(["-v", "en-us", "-w"])
        .arg(&speech)
        .arg("Thank you for calling voxbridge")
        .status()
        .unwrap();
    assert!(st.success());
    let s = speech.to_str().unwrap();
    // Quiet (gain -12 dB), padded with a second of silence each side, 44.1 kHz stereo.
    sox(&[s, "-r", "44100", "-c", "2", "-b", "16", out.to_str().unwrap(), "gain", "-12", "pad", "1", "1"]);
}

fn speech_secs(work: &Path) -> f64 {
    let out = Command::new("soxi").arg("-D").arg(work.join("speech.wav")).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn every_format_becomes_an_8k_mono_prompt_of_the_right_length_and_loudness() {
    let work = tempfile::tempdir().unwrap();
    let (dir, extra) = prompt_tree(work.path());
    let server = Server::configure(&extra);
    let wav = work.path().join("studio.wav");
    studio_recording(work.path(), &wav);
    let secs = speech_secs(work.path());
    let w = wav.to_str().unwrap();
    let mut files: Vec<PathBuf> = ["mp3", "flac", "ogg", "wav"]
        .iter()
        .map(|ext| {
            let f = work.path().join(format!("studio-import.{ext}"));
            sox(&[w, f.to_str().unwrap()]);
            f
        })
        .collect();
    // WAV's other encodings: µ-law, A-law, IMA and Microsoft ADPCM.
    for enc in ["u-law", "a-law", "ima-adpcm", "ms-adpcm"] {
        let f = work.path().join(format!("studio-{enc}.wav"));
        sox(&[w, "-e", enc, f.to_str().unwrap()]);
        files.push(f);
    }
    // AAC in an M4A container, as phones and Macs record (Debian's ffmpeg encodes it).
    need("ffmpeg");
    let m4a = work.path().join("studio.m4a");
    let out = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-i", w, "-c:a", "aac", "-b:a", "128k"])
        .arg(&m4a)
        .output()
        .unwrap();
    assert!(out.status.success(), "ffmpeg: {}", String::from_utf8_lossy(&out.stderr));
    files.push(m4a);
    for f in &files {
        let said = server.cli_ok(&["prompts", "import", f.to_str().unwrap(), "--id", "vm-goodbye"]);
        assert!(said.contains("from 44100 Hz, 2 channel(s)"), "{}: {said}", f.display());
        let target = dir.join("en/vm-goodbye.wav");
        let r = hound::WavReader::open(&target).unwrap();
        assert_eq!((r.spec().sample_rate, r.spec().channels), (8000, 1), "{}", f.display());
        let pcm = voxbridge::media::wav::read_8k_mono(&target).unwrap();
        let got = pcm.len() as f64 / 8000.0;
        // The speech and its 50 ms margins; espeak-ng's own lead-in and tail are silence too.
        assert!(got > secs - 0.6 && got < secs + 0.2, "{}: {got:.2} s of a {secs:.2} s speech", f.display());
        let lufs = voxbridge::media::prompt_import::loudness(&pcm).unwrap().unwrap();
        assert!((lufs - -20.0).abs() < 1.0, "{}: {lufs:.1} LUFS", f.display());
    }
    // Listed as recorded; verify is happy.
    let list: serde_json::Value = serde_json::from_str(&server.cli_ok(&["prompts", "list", "--json"])).unwrap();
    let row = list.as_array().unwrap().iter().find(|r| r["id"] == "vm-goodbye").unwrap().clone();
    assert_eq!(row["source"], "recorded", "{row}");
    // Who plays what, from the dialplan: the deposit's words, the menu's, the digits both.
    let used = |id: &str| list.as_array().unwrap().iter().find(|r| r["id"] == id).unwrap()["used_by"].clone();
    assert_eq!(used("vm-saved"), serde_json::json!([{ "app": "deposit", "routes": ["_X."] }]));
    assert_eq!(used("vm-main-menu"), serde_json::json!([{ "app": "menu", "routes": ["*98", "8500"] }]));
    assert_eq!(used("digit-7").as_array().unwrap().len(), 2, "{}", used("digit-7"));
    let text = server.cli_ok(&["prompts", "list"]);
    let line = text.lines().find(|l| l.starts_with("vm-main-menu ")).unwrap();
    assert!(line.contains("menu (*98 8500)"), "{line}");

    // Refused, nothing written: garbage, a truncated FLAC, an empty file, an unknown id.
    let before = std::fs::read(dir.join("en/vm-goodbye.wav")).unwrap();
    let garbage = work.path().join("garbage.mp3");
    std::fs::write(&garbage, b"this is not audio ".repeat(100)).unwrap();
    let flac = std::fs::read(&files[1]).unwrap();
    let cut = work.path().join("cut.flac");
    std::fs::write(&cut, &flac[..flac.len().min(300)]).unwrap();
    let empty = work.path().join("empty.wav");
    std::fs::write(&empty, b"").unwrap();
    for bad in [&garbage, &cut, &empty] {
        let out = server.cli(&["prompts", "import", bad.to_str().unwrap(), "--id", "vm-goodbye"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("cannot be a prompt"), "{}: {err}", bad.display());
    }
    let out = server.cli(&["prompts", "import", w, "--id", "../../etc/passwd"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("not a prompt id"));
    let out = server.cli(&["prompts", "import", w, "--id", "vm-no-such"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no prompt \"vm-no-such\""));
    assert_eq!(std::fs::read(dir.join("en/vm-goodbye.wav")).unwrap(), before, "nothing half-written");
    assert!(std::fs::read_dir(dir.join("en"))
        .unwrap()
        .flatten()
        .all(|e| !e.file_name().to_string_lossy().contains(".tmp")));

    // Every prompt generated or recorded: verify is content; then a broken recording
    // dropped in by hand: verify names it and exits 65.
    server.cli_ok(&["prompts", "generate", "--missing"]);
    assert!(server.cli_ok(&["prompts", "verify"]).contains("are fine"));
    std::fs::write(dir.join("en/vm-saved.wav"), b"RIFF....WAVEjunk").unwrap();
    let out = server.cli(&["prompts", "verify"]);
    assert_eq!(out.status.code(), Some(65), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("vm-saved"), "{out:?}");

    // A prompt the menu plays taken out of prompts.toml: verify and dialplan check both
    // name it and the route (at its line) that would play nothing there.
    std::fs::remove_file(dir.join("en/vm-saved.wav")).unwrap();
    let toml = std::fs::read_to_string(dir.join("en/prompts.toml")).unwrap();
    let without: String = toml.lines().filter(|l| !l.starts_with("vm-main-menu ")).map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.join("en/prompts.toml"), without).unwrap();
    let out = server.cli(&["prompts", "verify"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(65), "{out:?}");
    assert!(said.contains("vm-main-menu: no such prompt") && said.contains("route \"*98\""), "{said}");
    let out = server.cli(&["dialplan", "check"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(65), "{out:?}");
    assert!(said.contains("default.toml:7: error: route \"*98\" plays prompt \"vm-main-menu\""), "{said}");
}

#[test]
fn a_running_server_plays_a_reimported_prompt_to_the_next_caller() {
    let work = tempfile::tempdir().unwrap();
    let (dir, extra) = prompt_tree(work.path());
    let server = Server::start(&extra);
    server.cli_ok(&["mailbox", "add", "1001", "--pin", "1234"]);
    // A caller in the default greeting ("The person at extension…") while it is replaced.
    let during = Phone::call(server.sip_port, "5550100", "1001");
    let tone = work.path().join("tone.wav");
    sox(&["-n", "-r", "16000", "-c", "2", tone.to_str().unwrap(), "synth", "1.5", "sine", "700", "gain", "-6"]);
    server.cli_ok(&["prompts", "import", tone.to_str().unwrap(), "--id", "vm-intro-person"]);
    let want = voxbridge::media::g711::encode(
        voxbridge::sdp::Codec::Pcmu,
        &voxbridge::media::wav::read_8k_mono(&dir.join("en/vm-intro-person.wav")).unwrap(),
    );
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while !server.log().contains("prompts reloaded") {
        assert!(std::time::Instant::now() < until, "no reload:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let t = std::time::Instant::now();
    let next = Phone::call(server.sip_port, "5550101", "1001");
    let heard = next.audio_after(t, want.len() / 160, Duration::from_secs(10));
    assert_eq!(
        &heard[..want.len() / 160 * 160],
        &want[..want.len() / 160 * 160],
        "the next caller hears the new prompt"
    );
    next.hang_up();
    during.hang_up();
}

#[test]
fn a_mailbox_in_another_language_plays_that_languages_prompts() {
    let work = tempfile::tempdir().unwrap();
    let (dir, extra) = prompt_tree(work.path());
    // A partial German translation: one prompt, recorded (a tone stands for the words).
    std::fs::create_dir_all(dir.join("de")).unwrap();
    std::fs::write(
        dir.join("de/prompts.toml"),
        "vm-intro-person = \"Die Person mit der Durchwahl\"\nvm-goodbye = \"Auf Wiederhören.\"\n",
    )
    .unwrap();
    let tone = work.path().join("tone.wav");
    sox(&["-n", "-r", "16000", tone.to_str().unwrap(), "synth", "1.2", "sine", "900", "gain", "-6"]);
    let server = Server::start(&extra);
    server.cli_ok(&["prompts", "import", tone.to_str().unwrap(), "--id", "vm-intro-person", "--lang", "de"]);
    // The unrecorded one is generated with the German voice: again on request, not
    // with --missing (the server made it at start-up).
    let said = server.cli_ok(&["prompts", "generate", "--lang", "de"]);
    assert!(said.starts_with("1 prompt(s)") && said.contains("voice de"), "{said}");
    assert!(server.cli_ok(&["prompts", "generate", "--lang", "de", "--missing"]).starts_with("0 prompt(s)"));
    server.cli_ok(&["mailbox", "add", "1001", "--pin", "1234", "--language", "de"]);
    server.cli_ok(&["mailbox", "add", "1002", "--pin", "1234"]);
    let out = server.cli(&["mailbox", "add", "1003", "--pin", "1234", "--language", "fr"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("no prompts for language \"fr\"") && err.contains("en, de"), "{err}");
    let shown: serde_json::Value =
        serde_json::from_str(&server.cli_ok(&["mailbox", "show", "1001", "--json"])).unwrap();
    assert_eq!(shown["language"], "de");
    let frames = |path: &Path| {
        let pcm = voxbridge::media::wav::read_8k_mono(path).unwrap();
        voxbridge::media::g711::encode(voxbridge::sdp::Codec::Pcmu, &pcm)
    };
    // The server loaded German at start-up before the import; it picks the recording up.
    wait_until(Duration::from_secs(10), "German prompts reloaded", || {
        server.log().matches("prompts reloaded").count() >= 1
    });
    let de = frames(&dir.join("de/vm-intro-person.wav"));
    let n = de.len() / 160 * 160;
    let t = std::time::Instant::now();
    let caller = Phone::call(server.sip_port, "5550100", "1001");
    let heard = caller.audio_after(t, n / 160, Duration::from_secs(10));
    assert_eq!(&heard[..n], &de[..n], "a caller to the German mailbox hears the German prompt");
    caller.hang_up();
    // The default language's mailbox: the English prompt, as before.
    let en = frames(&prompt_cache_clip(&server, "vm-intro-person"));
    let t = std::time::Instant::now();
    let caller = Phone::call(server.sip_port, "5550100", "1002");
    let heard = caller.audio_after(t, 25, Duration::from_secs(10));
    assert_eq!(&heard[..25 * 160], &en[..25 * 160], "a caller to 1002 hears English");
    caller.hang_up();
    // Set back to the default: English for 1001 too, from the next call.
    assert!(server.cli_ok(&["mailbox", "set", "1001", "--language", ""]).contains("prompts in en"));
    let t = std::time::Instant::now();
    let caller = Phone::call(server.sip_port, "5550100", "1001");
    let heard = caller.audio_after(t, 25, Duration::from_secs(10));
    assert_eq!(&heard[..25 * 160], &en[..25 * 160], "1001 is English again");
    caller.hang_up();
}

/// The audio of a generated English prompt as `prompts play` writes it.
fn prompt_cache_clip(server: &Server, id: &str) -> PathBuf {
    let out = server.dir.path().join(format!("{id}.wav"));
    server.cli_ok(&["prompts", "play", id, "--out", out.to_str().unwrap()]);
    out
}
