//! baresip (Debian's baresip-core), a real softphone: it dials once from a config of its
//! own — the test CA, its microphone a WAV file of a tone, what it hears to a file — and
//! hangs up when the file ends (or the test kills it).

use super::greeting_ms;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct Baresip {
    pub dir: PathBuf,
}

impl Baresip {
    /// A phone in `dir` trusting `ca`; `account` is what follows the account's address
    /// (`;mediaenc=srtp-mand`, …); its microphone says the greeting's length of tone for
    /// `number` and `speak_secs` more.
    pub fn new(dir: &Path, ca: &Path, account: &str, number: &str, speak_secs: f64) -> Baresip {
        super::need("baresip");
        std::fs::create_dir_all(dir).unwrap();
        let mic = dir.join("mic.wav");
        let secs = (greeting_ms(number) as f64 / 1000.0 + speak_secs).to_string();
        let st = std::process::Command::new("sox")
            .args(["-n", "-r", "8000", "-c", "1", "-b", "16"])
            .arg(&mic)
            .args(["synth", &secs, "sine", "440", "gain", "-6"])
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::write(
            dir.join("config"),
            format!(
                "poll_method epoll\nsip_listen 127.0.0.1:0\nsip_cafile {}\nmodule_path /usr/lib/baresip/modules\n\
                 module stdio.so\nmodule g711.so\nmodule aufile.so\nmodule srtp.so\nmodule account.so\nmodule menu.so\n\
                 audio_player aufile,{}\naudio_source aufile,{}\naudio_alert aufile,{}\n",
                ca.display(),
                dir.join("heard.wav").display(),
                mic.display(),
                dir.join("alert.wav").display()
            ),
        )
        .unwrap();
        std::fs::write(dir.join("accounts"), format!("<sip:5550100@127.0.0.1>;regint=0;audio_codecs=PCMU{account}\n"))
            .unwrap();
        Baresip { dir: dir.to_path_buf() }
    }

    /// Dials `uri` and waits until `done` holds or `limit` passes; what baresip printed.
    pub fn dial(&self, uri: &str, limit: Duration, mut done: impl FnMut(&str) -> bool) -> String {
        let log = self.dir.join("baresip.log");
        let mut phone = std::process::Command::new("baresip")
            .arg("-f")
            .arg(&self.dir)
            .args(["-e", &format!("/dial {uri}"), "-t", &limit.as_secs().max(1).to_string()])
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // (The srtp module is loaded before the accounts: an account's mediaenc must exist.)
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if done(&std::fs::read_to_string(&log).unwrap_or_default()) {
                break;
            }
            if let Ok(Some(_)) = phone.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = phone.kill();
        let _ = phone.wait();
        std::fs::read_to_string(&log).unwrap_or_default()
    }
}
