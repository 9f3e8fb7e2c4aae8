//! Configuration: TOML, every key with a default, so `voxbridge serve` needs no file.
//!
//! Unknown keys are rejected (`deny_unknown_fields`) so a typo is an error at start-up
//! that names the key, never a setting silently ignored.

use serde::Deserialize;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize, serde::Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub sip: SipConfig,
    pub rtp: RtpConfig,
    pub store: StoreConfig,
    pub deposit: DepositConfig,
    pub menu: MenuConfig,
    pub mwi: MwiConfig,
    pub delivery: DeliveryConfig,
    pub prompts: PromptsConfig,
    pub dialplan: DialplanConfig,
    pub sync: SyncConfig,
    pub mailbox: MailboxConfig,
    pub fax: FaxConfig,
    pub smdi: SmdiConfig,
    pub metrics: MetricsConfig,
    pub mail: MailConfig,
}

/// How voxbridge talks TLS to mail servers (`[mail]`): IMAP, POP3 and SMTP alike.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    /// Refuse to log in or send over a connection that is not encrypted: `imap://`,
    /// `pop3://` and `smtp://` must then upgrade by STARTTLS (or use `imaps://` …).
    /// Without it, a server that offers STARTTLS is still always upgraded.
    pub require_tls: bool,
    /// A PEM file of CA certificates trusted besides the system's (a company CA, a
    /// test CA).
    pub ca_file: Option<PathBuf>,
    /// Check servers' certificates and names. `false` only by explicit choice, for a
    /// server whose certificate cannot be fixed; logged as a warning at start.
    pub tls_verify: bool,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig { require_tls: false, ca_file: None, tls_verify: true }
    }
}

/// The metrics endpoint (`[metrics]`): Prometheus/OpenMetrics text at `GET /metrics`.
#[derive(Debug, Clone, Deserialize, serde::Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// `"127.0.0.1:9477"`; unset: no endpoint. Anyone who reaches it sees call counts and
    /// rates (no numbers, no names): keep it on loopback or a management network.
    pub listen: Option<SocketAddr>,
}

/// The SMDI link to a PBX (`[smdi]`): call details in, message lamps out. Off unless
/// `link` is set.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmdiConfig {
    /// `"serial:/dev/ttyS0"` (or just the device path) or `"tcp:HOST:PORT"` (a
    /// serial-over-IP server in front of the PBX's port). Unset: no SMDI.
    pub link: Option<String>,
    /// Serial line settings (the usual SMDI line is 1200 or 9600 baud, 7E1). Over TCP the
    /// baud rate still paces the lamps: the far side feeds a serial line.
    pub baud: u32,
    pub data_bits: u8,
    /// `"even"`, `"odd"` or `"none"`.
    pub parity: String,
    pub stop_bits: u8,
    /// Leading digits the switch puts before station numbers, stripped from call
    /// details (Asterisk's `msdstrip`).
    pub strip_digits: usize,
    /// Dialled numbers the PBX sends SMDI calls to (the voice-mail pilots): calls to
    /// them wait for their call detail. Calls with a terminal known from `terminal_header`
    /// or `[[smdi.terminal]]` wait too.
    pub pilots: Vec<String>,
    /// An INVITE header whose value is the call's SMDI terminal (e.g. `"X-SMDI-Terminal"`).
    pub terminal_header: Option<String>,
    pub terminal: Vec<SmdiTerminal>,
    /// How long a call waits for its call detail before it is routed without one.
    pub md_wait_ms: u64,
    /// How long a call detail waits for its call before it is dropped (logged).
    pub md_expire_secs: f64,
    /// A call whose terminal is unknown is matched by calling number to a call detail
    /// that arrived at most this far from it.
    pub match_window_secs: f64,
    /// Which decides when a call has both a call detail and a SIP diversion header:
    /// `"smdi"` or `"sip"`.
    pub prefer: String,
    /// Drive the PBX's message lamps (`OP:MWI` / `RMV:MWI`).
    pub lamps: bool,
    /// A refused lamp command is sent again after this, doubling up to
    /// `lamp_retry_max_secs`, at most `lamp_attempts` times.
    pub lamp_retry_secs: f64,
    pub lamp_retry_max_secs: f64,
    pub lamp_attempts: u32,
    /// Every lamp is sent again this often, from the store (0: only at start-up and
    /// after the link comes back). Changes made by `voxbridge` commands in another
    /// process are noticed within 2 s regardless.
    pub audit_secs: f64,
    /// Longest wait between reconnection attempts (from 1 s, doubling).
    pub reconnect_max_secs: f64,
}

/// `[[smdi.terminal]]`: the SMDI terminal (logical port) of calls that match.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmdiTerminal {
    /// The terminal as the call details give it (4 digits, "0001").
    pub terminal: String,
    /// Calls whose To user is this.
    pub to_user: Option<String>,
    /// Calls whose Request-URI user (the number dialled) is this.
    pub dialled: Option<String>,
    /// Calls from this `[[sip.trunk]]`.
    pub trunk: Option<String>,
}

/// Where the SMDI link is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmdiLink {
    Serial(PathBuf),
    Tcp(String),
}

impl SmdiConfig {
    /// The link, if SMDI is on.
    pub fn link(&self) -> Result<Option<SmdiLink>, String> {
        let Some(l) = self.link.as_deref() else { return Ok(None) };
        if let Some(addr) = l.strip_prefix("tcp:") {
            let ok = addr.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            return if ok {
                Ok(Some(SmdiLink::Tcp(addr.to_string())))
            } else {
                Err(format!("smdi.link {l:?}: expected \"tcp:HOST:PORT\""))
            };
        }
        let path = l.strip_prefix("serial:").unwrap_or(l);
        if !path.starts_with('/') {
            return Err(format!(
                "smdi.link {l:?}: expected \"serial:/dev/ttyS0\", a device path, or \"tcp:HOST:PORT\""
            ));
        }
        Ok(Some(SmdiLink::Serial(PathBuf::from(path))))
    }

    /// The terminal `[[smdi.terminal]]` or `terminal_header` gives a call.
    pub fn terminal_of(
        &self,
        header: Option<&str>,
        to_user: Option<&str>,
        dialled: &str,
        trunk: Option<&str>,
    ) -> Option<String> {
        if let Some(h) =
            header.map(str::trim).filter(|h| !h.is_empty() && h.len() <= 4 && h.bytes().all(|b| b.is_ascii_digit()))
        {
            return Some(format!("{h:0>4}"));
        }
        self.terminal
            .iter()
            .find(|t| {
                t.to_user.as_deref().is_some_and(|u| Some(u) == to_user)
                    || t.dialled.as_deref() == Some(dialled)
                    || t.trunk.as_deref().is_some_and(|n| Some(n) == trunk)
            })
            .map(|t| t.terminal.clone())
    }

    fn validate(&self) -> Result<(), String> {
        self.link()?;
        if !(300..=115_200).contains(&self.baud) {
            return Err(format!("smdi.baud {}: expected 300 to 115200 (SMDI lines run at 1200 or 9600)", self.baud));
        }
        if !(5..=8).contains(&self.data_bits) || !(1..=2).contains(&self.stop_bits) {
            return Err("smdi.data_bits must be 5 to 8 and smdi.stop_bits 1 or 2".into());
        }
        if !["even", "odd", "none"].contains(&self.parity.as_str()) {
            return Err(format!("smdi.parity {:?}: expected \"even\", \"odd\" or \"none\"", self.parity));
        }
        if !["smdi", "sip"].contains(&self.prefer.as_str()) {
            return Err(format!("smdi.prefer {:?}: expected \"smdi\" or \"sip\"", self.prefer));
        }
        for t in &self.terminal {
            if t.terminal.len() != 4 || !t.terminal.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("smdi.terminal {:?}: a terminal is 4 digits, as call details give it", t.terminal));
            }
            if t.to_user.is_none() && t.dialled.is_none() && t.trunk.is_none() {
                return Err(format!(
                    "smdi.terminal {:?}: say which calls are on it (to_user, dialled or trunk)",
                    t.terminal
                ));
            }
        }
        let secs = [
            ("md_expire_secs", self.md_expire_secs),
            ("match_window_secs", self.match_window_secs),
            ("lamp_retry_secs", self.lamp_retry_secs),
            ("reconnect_max_secs", self.reconnect_max_secs),
        ];
        for (name, v) in secs {
            if !(v > 0.0 && v <= 86_400.0) {
                return Err(format!("smdi.{name} must be above 0 and at most 86400"));
            }
        }
        if !(self.lamp_retry_max_secs >= self.lamp_retry_secs && self.lamp_retry_max_secs <= 86_400.0) {
            return Err("smdi.lamp_retry_max_secs must be at least smdi.lamp_retry_secs and at most 86400".into());
        }
        if !(0.0..=604_800.0).contains(&self.audit_secs) || (self.audit_secs > 0.0 && self.audit_secs < 10.0) {
            return Err("smdi.audit_secs must be 0 (off) or 10 to 604800".into());
        }
        if self.md_wait_ms > 60_000 || self.lamp_attempts == 0 {
            return Err("smdi.md_wait_ms must be at most 60000 and smdi.lamp_attempts at least 1".into());
        }
        Ok(())
    }
}

impl Default for SmdiConfig {
    fn default() -> Self {
        SmdiConfig {
            link: None,
            baud: 9600,
            data_bits: 7,
            parity: "even".into(),
            stop_bits: 1,
            strip_digits: 0,
            pilots: vec![],
            terminal_header: None,
            terminal: vec![],
            md_wait_ms: 2000,
            md_expire_secs: 30.0,
            match_window_secs: 10.0,
            prefer: "smdi".into(),
            lamps: true,
            lamp_retry_secs: 5.0,
            lamp_retry_max_secs: 300.0,
            lamp_attempts: 5,
            audit_secs: 3600.0,
            reconnect_max_secs: 60.0,
        }
    }
}

/// Fax reception (`[fax]`).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaxConfig {
    /// Our ident (CSI) sent to the far machine: up to 20 printable characters.
    pub ident: String,
    /// Longest fax call before it is given up (a machine that never starts or ends).
    pub max_call_secs: u64,
    /// Whether a fax heard on an audio call (its tone, or a fax number answered with
    /// audio) is first offered T.38 by our re-INVITE; G.711 fax follows a refusal or no
    /// answer within `t38_wait_secs`. Off by default: a trunk that mishandles T.38
    /// re-INVITEs would cost every fax those seconds.
    pub t38_reinvite: bool,
    pub t38_wait_secs: f64,
    /// `voxbridge fax send`: attempts after the first when the line is busy, nobody
    /// answers or no page went through, and the wait before each.
    pub send_retries: u32,
    pub send_retry_secs: f64,
    /// The number faxes are sent from (the From user; a trunk may want its own).
    pub send_from: String,
    /// The paper text and e-mails are set onto when sent as a fax.
    pub paper: crate::fax::pages::Paper,
    /// `HOST[:PORT]` a fax number typed in the mailbox menu is called at (the trunk):
    /// the menu offers to send a fax on to a fax machine only when this is set.
    pub send_via: Option<String>,
}

impl Default for FaxConfig {
    fn default() -> Self {
        FaxConfig {
            ident: "voxbridge".into(),
            max_call_secs: 1200,
            t38_reinvite: false,
            t38_wait_secs: 5.0,
            send_retries: 2,
            send_retry_secs: 60.0,
            send_from: "voxbridge".into(),
            send_via: None,
            paper: crate::fax::pages::Paper::A4,
        }
    }
}

/// Defaults for mailboxes.
#[derive(Debug, Clone, Deserialize, serde::Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct MailboxConfig {
    /// IANA time zone ("Europe/Berlin") for the dates and times the menu speaks, for
    /// mailboxes without their own (`voxbridge mailbox set N --timezone`); default: the
    /// system's.
    pub timezone: Option<String>,
}

impl MailboxConfig {
    /// The server's time zone for mailboxes without their own.
    pub fn time_zone(&self) -> jiff::tz::TimeZone {
        self.timezone
            .as_deref()
            .and_then(|n| jiff::tz::TimeZone::get(n).ok())
            .unwrap_or_else(jiff::tz::TimeZone::system)
    }
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncConfig {
    /// Each IMAP account is synchronized at least this often.
    pub poll_secs: f64,
    /// After a failed pass (server down, login refused) the account waits this long,
    /// doubling per failure up to `backoff_max_secs`.
    pub backoff_initial_secs: f64,
    pub backoff_max_secs: f64,
    /// Keep an IMAP IDLE connection per IMAP mailbox, so that a mail client's change
    /// starts a pass within a second or two instead of at the next poll.
    pub idle: bool,
    /// The event log of passes (`voxbridge sync-log`) keeps this many days; the server
    /// prunes older entries at start and hourly.
    pub log_keep_days: f64,
    /// The safety brake: a pass that finds more than this share of a mailbox's messages
    /// gone from the mail server…
    pub max_gone_fraction: f64,
    /// …and more than this many at once removes none of them: the account shows "needs
    /// confirmation" in `voxbridge sync-log` until `voxbridge sync NUMBER
    /// --confirm-removals`, or until a pass finds them gone still
    /// `confirm_removals_after_secs` after the first.
    pub max_gone_rows: usize,
    pub confirm_removals_after_secs: f64,
}

impl SyncConfig {
    /// The safety brake these settings describe.
    pub fn brake(&self) -> crate::sync::brake::Brake {
        crate::sync::brake::Brake {
            max_gone_fraction: self.max_gone_fraction,
            max_gone_rows: self.max_gone_rows,
            confirm_after_secs: self.confirm_removals_after_secs as i64,
        }
    }
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            poll_secs: 60.0,
            backoff_initial_secs: 5.0,
            backoff_max_secs: 600.0,
            idle: true,
            log_keep_days: 14.0,
            max_gone_fraction: 0.5,
            max_gone_rows: 10,
            confirm_removals_after_secs: 3600.0,
        }
    }
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    /// Address for both UDP and TCP.
    pub listen: SocketAddr,
    /// Address written into SDP and Contact; defaults to the listen address.
    pub public_ip: Option<std::net::IpAddr>,
    /// Value of the User-Agent / Server header.
    pub user_agent: String,
    /// How long a call rings (180 Ringing) before it is answered, in milliseconds.
    pub ring_ms: u64,
    /// Requests per second one source address may send (token bucket); 0: no limit.
    pub rate_limit: f64,
    /// How many requests above the rate a source may send at once.
    pub rate_burst: f64,
    /// What a source over its limit gets: `"drop"` (silence) or `"503"` (503 with
    /// Retry-After, which well-behaved clients honour).
    pub rate_limit_action: RateLimitAction,
    pub tcp: SipTcpConfig,
    /// Digest realm of our challenges; SIP passwords are stored for it (set them again
    /// after changing it).
    pub realm: String,
    /// How long a digest nonce is good for.
    pub nonce_secs: u64,
    /// Digest algorithms offered, in order of preference (RFC 8760): `["SHA-256",
    /// "MD5"]`; `["MD5"]` for phones that take only the first challenge and know only MD5.
    pub digest_algorithms: Vec<String>,
    /// `"any"`: calls from any source (a public voice-mail number; the PIN guards the
    /// menu); `"trunks"`: only from `[[sip.trunk]]` networks.
    pub calls_from: CallsFrom,
    /// Headers that name the subscriber a PBX diverted a call from, believed for calls
    /// from any source that is not a trunk (a trunk may say otherwise), in order of
    /// preference: `["diversion", "history-info"]`; `[]`: the number dialled decides.
    pub redirection: Vec<String>,
    /// Several diversions in one call: `"latest"` (the last party that did not take the
    /// call) or `"original"` (the first one diverted).
    pub redirection_pick: String,
    pub trunk: Vec<TrunkConfig>,
    /// SIP over TLS (RFC 3261 §26, RFC 5630): the address of its listener; unset, none.
    /// TLS 1.2 and 1.3 (rustls). Needs `tls_cert` and `tls_key`.
    pub tls_listen: Option<SocketAddr>,
    /// The server's certificate chain (PEM, the server's first), read again on reload.
    pub tls_cert: Option<std::path::PathBuf>,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub tls_key: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
pub enum CallsFrom {
    #[serde(rename = "any")]
    Any,
    #[serde(rename = "trunks")]
    Trunks,
}

/// Which transports are encrypted ([`Config::encryption`]).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Encryption {
    pub sip: String,
    pub media: String,
    pub mail: String,
    pub mail_certificates: String,
}

/// `[[sip.trunk]]`: a PBX, carrier or SBC this server works with.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkConfig {
    pub name: String,
    /// Source addresses or networks, `["10.0.0.0/8", "192.0.2.7"]`.
    pub networks: Vec<String>,
    /// Digest user name its calls must authenticate with (with `password_file`).
    pub username: Option<String>,
    /// File holding that password (first line).
    pub password_file: Option<std::path::PathBuf>,
    /// Requests about mailboxes from it (SUBSCRIBE) need no digest of their own.
    #[serde(default)]
    pub trusted: bool,
    /// `[sip] redirection` for this trunk's calls (unset: the `[sip]` value).
    pub redirection: Option<Vec<String>>,
    /// `[sip] redirection_pick` for this trunk's calls.
    pub redirection_pick: Option<String>,
    /// Mutual TLS: a SIP-over-TLS connection from this trunk's networks must present a
    /// certificate signed by a CA of this PEM file, or it is closed in the handshake.
    pub tls_client_ca: Option<std::path::PathBuf>,
    /// SRTP for this trunk's calls: "required" (SRTP over TLS only, anything else
    /// refused), "optional" or "off"; unset: `[rtp] srtp`.
    #[serde(default, deserialize_with = "opt_from_name", serialize_with = "opt_by_name")]
    pub srtp: Option<crate::srtp::Policy>,
    /// How calls we place to this trunk (fax sending) travel when their URI does not
    /// say (`sips:` or `;transport=`): "udp" (the default), "tcp" or "tls".
    #[serde(default, deserialize_with = "opt_from_name", serialize_with = "opt_by_name")]
    pub transport: Option<PlacedTransport>,
    /// The CAs (PEM) the trunk's certificate must be signed by when we connect to it
    /// over TLS; unset: the system's (`/etc/ssl/certs/ca-certificates.crt`).
    pub tls_ca: Option<std::path::PathBuf>,
    /// The name the trunk's certificate must carry; unset: the host of the URI called.
    pub tls_server_name: Option<String>,
}

/// The transport of a call voxbridge places.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlacedTransport {
    Udp,
    Tcp,
    Tls,
}

impl PlacedTransport {
    pub fn name(self) -> &'static str {
        match self {
            PlacedTransport::Udp => "udp",
            PlacedTransport::Tcp => "tcp",
            PlacedTransport::Tls => "tls",
        }
    }
}

impl std::str::FromStr for PlacedTransport {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "udp" => Ok(PlacedTransport::Udp),
            "tcp" => Ok(PlacedTransport::Tcp),
            "tls" => Ok(PlacedTransport::Tls),
            _ => Err(format!("transport {s:?}: expected \"udp\", \"tcp\" or \"tls\"")),
        }
    }
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            listen: "127.0.0.1:5060".parse().expect("literal address"),
            public_ip: None,
            user_agent: format!("voxbridge/{}", env!("CARGO_PKG_VERSION")),
            ring_ms: 0,
            rate_limit: 500.0,
            rate_burst: 1000.0,
            rate_limit_action: RateLimitAction::Drop,
            tcp: SipTcpConfig::default(),
            realm: "voxbridge".into(),
            nonce_secs: 300,
            digest_algorithms: vec!["SHA-256".into(), "MD5".into()],
            calls_from: CallsFrom::Any,
            redirection: vec!["diversion".into(), "history-info".into()],
            redirection_pick: "latest".into(),
            trunk: vec![],
            tls_listen: None,
            tls_cert: None,
            tls_key: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
pub enum RateLimitAction {
    #[serde(rename = "drop")]
    Drop,
    #[serde(rename = "503")]
    Refuse,
}

/// Limits of SIP over TCP: what one peer (or many) can hold of the server.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipTcpConfig {
    /// Connections open at once, in all; more are closed at accept.
    pub max_connections: usize,
    /// Connections open at once from one address.
    pub max_per_source: usize,
    /// A connection that carries nothing (not even a keep-alive) this long is closed.
    pub idle_secs: u64,
    /// A message must arrive whole within this long of its first byte (slow-loris).
    pub message_secs: u64,
    /// Bytes of incomplete messages held for all connections together, in MiB; the
    /// connection that would go over it is closed.
    pub buffer_mib: usize,
}

impl Default for SipTcpConfig {
    fn default() -> Self {
        SipTcpConfig { max_connections: 1024, max_per_source: 32, idle_secs: 600, message_secs: 10, buffer_mib: 32 }
    }
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RtpConfig {
    /// Even ports are used for RTP, as RFC 3550 recommends; `"20000-20999"`.
    pub port_range: PortRange,
    /// Playout delay of the receive jitter buffer, in 20 ms frames.
    pub jitter_frames: usize,
    /// A call whose caller sent neither RTP nor RTCP this long is ended (0: never).
    pub timeout_secs: u64,
    /// Which SDP addresses are sent to before the caller's own RTP proves them:
    /// "unicast", "public" or "learned" (see [`crate::rtp::address::RemotePolicy`]).
    #[serde(deserialize_with = "from_name", serialize_with = "by_name")]
    pub sdp_addresses: crate::rtp::address::RemotePolicy,
    /// SRTP (SDES keys, over TLS only) for calls from sources that are no trunk or whose
    /// trunk does not say: "required", "optional" (SRTP when offered over TLS) or "off".
    #[serde(deserialize_with = "from_name", serialize_with = "by_name")]
    pub srtp: crate::srtp::Policy,
}

impl Default for RtpConfig {
    fn default() -> Self {
        RtpConfig {
            port_range: PortRange(20000..=20999),
            jitter_frames: 3,
            timeout_secs: 60,
            sdp_addresses: crate::rtp::address::RemotePolicy::Unicast,
            srtp: crate::srtp::Policy::Optional,
        }
    }
}

/// A setting stored by name (`"unicast"`, `"required"`…): parsed with its `FromStr`,
/// written back with its name, so `config show` reads back as a configuration.
trait Named: std::str::FromStr<Err = String> {
    fn name_of(&self) -> &'static str;
}

impl Named for crate::rtp::address::RemotePolicy {
    fn name_of(&self) -> &'static str {
        self.name()
    }
}

impl Named for PlacedTransport {
    fn name_of(&self) -> &'static str {
        self.name()
    }
}

impl Named for crate::srtp::Policy {
    fn name_of(&self) -> &'static str {
        self.name()
    }
}

fn by_name<S: serde::Serializer, T: Named>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v.name_of())
}

fn from_name<'de, D: serde::Deserializer<'de>, T: Named>(d: D) -> Result<T, D::Error> {
    String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
}

fn opt_by_name<S: serde::Serializer, T: Named>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_str(v.name_of()),
        None => s.serialize_none(),
    }
}

fn opt_from_name<'de, D: serde::Deserializer<'de>, T: Named>(d: D) -> Result<Option<T>, D::Error> {
    Option::<String>::deserialize(d)?.map(|s| s.parse().map_err(serde::de::Error::custom)).transpose()
}

/// An inclusive port range written as `"LOW-HIGH"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRange(pub RangeInclusive<u16>);

impl serde::Serialize for PortRange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}-{}", self.0.start(), self.0.end()))
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for PortRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (lo, hi) = s.split_once('-').ok_or_else(|| format!("port range {s:?} must look like \"20000-20999\""))?;
        let lo: u16 = lo.trim().parse().map_err(|_| format!("bad low port in {s:?}"))?;
        let hi: u16 = hi.trim().parse().map_err(|_| format!("bad high port in {s:?}"))?;
        if lo == 0 || lo >= hi {
            return Err(format!("port range {s:?} must be LOW-HIGH with 0 < LOW < HIGH"));
        }
        Ok(PortRange(lo..=hi))
    }
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Directory holding `voxbridge.db`, `recordings/`, `faxes/` and `trash/`.
    pub path: PathBuf,
    /// Removed voice and fax messages stay restorable (`voxbridge messages restore`) this
    /// many days; the server purges older ones at start and hourly.
    pub trash_days: f64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { path: PathBuf::from("var"), trash_days: 7.0 }
    }
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DepositConfig {
    /// Messages shorter than this are discarded.
    pub min_secs: f64,
    /// Recording stops at this length.
    pub max_secs: f64,
    /// Recording stops after this much continuous silence.
    pub silence_secs: f64,
    /// Mean absolute sample level (16-bit PCM) below which a frame counts as silence.
    pub silence_level: u16,
    /// Where `0` sends the caller (a SIP URI), if anywhere.
    pub operator: Option<String>,
    /// A fax machine's calling tone (CNG), or a T.38 re-INVITE, during the greeting or
    /// the recording hands the call to fax reception into the same mailbox (off: the
    /// tone is recorded, a T.38 offer refused with 488).
    pub fax_detect: bool,
}

impl Default for DepositConfig {
    fn default() -> Self {
        DepositConfig {
            min_secs: 1.0,
            max_secs: 300.0,
            silence_secs: 10.0,
            silence_level: 200,
            operator: None,
            fax_detect: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MenuConfig {
    /// Wrong PINs in one call before it ends, and within `lockout_window_secs` (across
    /// calls) before the mailbox is locked.
    pub max_login_attempts: u32,
    pub lockout_window_secs: u64,
    /// How long a locked mailbox stays locked.
    pub lockout_secs: u64,
    /// Silence after a prompt before typed digits count as entered (or the prompt repeats).
    pub digit_timeout_secs: f64,
    /// Rewind / fast-forward step during a message (* and #).
    pub skip_secs: f64,
    /// Shortest PIN a subscriber may set by phone.
    pub min_pin_length: usize,
    /// Longest greeting, forward comment or reply recorded by phone.
    pub max_recording_secs: f64,
    /// Silence that ends such a recording.
    pub silence_secs: f64,
    /// Distribution lists: forwarding a message to a list's number delivers it to
    /// every member mailbox. Imported into the store once (server start or any `list`
    /// command); from then on `voxbridge list` manages them and the store's copy is
    /// the one in use.
    pub list: Vec<DistributionList>,
    /// Messages deleted by phone are purged (D, expunged) when the call ends; false
    /// leaves them marked for deletion (M, `\Deleted`) for the mail client to expunge.
    pub purge_on_hangup: bool,
    /// E-mails rendered to speech are kept in the store for the next listen, up to this
    /// many MiB in all (least recently heard dropped first); 0 keeps none.
    pub speech_cache_mb: u64,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct DistributionList {
    pub number: String,
    pub members: Vec<String>,
}

impl Default for MenuConfig {
    fn default() -> Self {
        MenuConfig {
            max_login_attempts: 3,
            lockout_window_secs: 900,
            lockout_secs: 900,
            digit_timeout_secs: 5.0,
            skip_secs: 3.0,
            min_pin_length: 4,
            max_recording_secs: 120.0,
            silence_secs: 5.0,
            list: Vec::new(),
            purge_on_hangup: true,
            speech_cache_mb: 256,
        }
    }
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MwiConfig {
    /// Phones that get unsolicited NOTIFYs (no SUBSCRIBE) for a mailbox.
    pub phone: Vec<MwiPhone>,
    /// How often the counts of watched mailboxes are re-read even without a change signal.
    pub recheck_secs: f64,
}

impl Default for MwiConfig {
    fn default() -> Self {
        MwiConfig { phone: Vec::new(), recheck_secs: 60.0 }
    }
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct MwiPhone {
    pub mailbox: String,
    /// `sip:user@IP[:port]` — sent over UDP to that address; `sips:user@IP[:port]` (or
    /// `;transport=tls`) — over the phone's own TLS connection that allows reuse.
    pub uri: String,
}

impl MwiPhone {
    /// The address NOTIFYs go to: the URI's host (an IP address) and port (5060 if none,
    /// 5061 for TLS).
    pub fn addr(&self) -> Result<SocketAddr, String> {
        let tls = self.over_tls();
        let rest = self
            .uri
            .strip_prefix("sip:")
            .or_else(|| self.uri.strip_prefix("sips:"))
            .ok_or_else(|| format!("mwi.phone uri must start with sip: or sips:, got {:?}", self.uri))?;
        let host = rest.rsplit('@').next().unwrap_or(rest).split(';').next().unwrap_or("");
        let default_port = if tls { 5061 } else { 5060 };
        let with_port = match host.rsplit_once(':') {
            Some(_) if !host.ends_with(']') => host.to_string(),
            _ => format!("{host}:{default_port}"),
        };
        with_port.parse().map_err(|_| format!("mwi.phone uri must name an IP address (and port), got {:?}", self.uri))
    }

    /// Whether the phone is to be reached over TLS only (`sips:`, `;transport=tls`).
    pub fn over_tls(&self) -> bool {
        self.uri.starts_with("sips:") || self.uri.to_ascii_lowercase().contains(";transport=tls")
    }
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// First retry delay after a failed delivery; doubles up to `retry_max_secs`.
    pub retry_initial_secs: f64,
    pub retry_max_secs: f64,
    /// How often the outbox is scanned even without a new message.
    pub scan_secs: f64,
    /// Envelope sender / From domain for SMTP deliveries.
    pub from_domain: String,
    /// SMTP server (smtp[s]://[user:password@]host:port) for voice replies by phone to
    /// e-mail senders, when the subscriber's mailbox has no `--smtp` of its own.
    pub smtp_url: Option<String>,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            retry_initial_secs: 1.0,
            retry_max_secs: 300.0,
            scan_secs: 5.0,
            from_domain: "voxbridge.invalid".into(),
            smtp_url: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PromptsConfig {
    /// Directory holding one sub-directory per language.
    pub dir: PathBuf,
    pub language: String,
    /// espeak-ng voice used to generate missing prompt audio.
    pub voice: String,
    /// Where generated prompt audio is cached; default `<store.path>/prompt-cache`.
    pub cache: Option<PathBuf>,
    /// espeak-ng voice per language for e-mails written in another language than
    /// `language` (detected per mail; a language is read when `<dir>/<lang>/
    /// substitutions.toml` exists).
    pub voices: std::collections::BTreeMap<String, String>,
    /// Speaking rate of e-mails read out, in words per minute, per language (espeak-ng
    /// takes 80–450); a language not named is read at 150.
    pub rates: std::collections::BTreeMap<String, u32>,
    /// The loudness `voxbridge prompts import` brings every prompt to (EBU R128
    /// integrated loudness, LUFS; -40 to -6).
    pub loudness_lufs: f64,
}

impl PromptsConfig {
    /// Words per minute for e-mails read in `lang`.
    pub fn rate(&self, lang: &str) -> u32 {
        speech_rate(&self.rates, lang)
    }
}

/// The rate `rates` (`[prompts] rates`) gives `lang`, else espeak-ng's default.
pub fn speech_rate(rates: &std::collections::BTreeMap<String, u32>, lang: &str) -> u32 {
    rates.get(lang).copied().unwrap_or(DEFAULT_SPEECH_RATE)
}

/// espeak-ng's own default rate, words per minute.
pub const DEFAULT_SPEECH_RATE: u32 = 150;

impl Default for PromptsConfig {
    fn default() -> Self {
        PromptsConfig {
            dir: PathBuf::from("prompts"),
            language: "en".into(),
            voice: "en-us".into(),
            cache: None,
            voices: [("de".to_string(), "de".to_string()), ("en".to_string(), "en-us".to_string())].into(),
            rates: Default::default(),
            loudness_lufs: crate::media::prompt_import::DEFAULT_TARGET_LUFS,
        }
    }
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DialplanConfig {
    pub file: PathBuf,
}

impl Default for DialplanConfig {
    fn default() -> Self {
        DialplanConfig { file: PathBuf::from("dialplans/default.toml") }
    }
}

/// A finite number above zero (NaN and infinity are refused too).
fn positive(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

impl Config {
    /// Parses TOML text. Errors name the offending key and line.
    pub fn parse(text: &str) -> Result<Config, String> {
        let cfg: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Loads `path`, or the embedded defaults when `path` is `None`.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        match path {
            None => Ok(Config::default()),
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| anyhow::anyhow!("cannot read config file {}: {e}", p.display()))?;
                Config::parse(&text).map_err(|e| anyhow::anyhow!("invalid config file {}: {e}", p.display()))
            }
        }
    }

    /// What a reload (`SIGHUP`, `voxbridge reload`) takes from `new`: the sections that
    /// apply call by call — `[deposit]`, `[menu]`, `[mailbox]`, `[dialplan]` — from the
    /// next call on; the configuration the server runs with then, the sections taken
    /// (changed ones only), and the changed sections that need a restart (sockets, the
    /// store, tasks started once).
    pub fn reloaded(&self, new: &Config) -> (Config, Vec<&'static str>, Vec<&'static str>) {
        fn differs<T: serde::Serialize>(a: &T, b: &T) -> bool {
            serde_json::to_value(a).ok() != serde_json::to_value(b).ok()
        }
        // Every section is one or the other: a new one fails to compile here until it is
        // put in a list below.
        let Config {
            sip: _,
            rtp: _,
            store: _,
            deposit: _,
            menu: _,
            mwi: _,
            delivery: _,
            prompts: _,
            dialplan: _,
            sync: _,
            mailbox: _,
            fax: _,
            smdi: _,
            metrics: _,
            mail: _,
        } = new;
        let mut taken = Vec::new();
        let mut restart = Vec::new();
        let mut live = self.clone();
        macro_rules! take {
            ($($f:ident),*) => {$(
                if differs(&self.$f, &new.$f) {
                    taken.push(stringify!($f));
                    live.$f = new.$f.clone();
                }
            )*};
        }
        macro_rules! needs_restart {
            ($($f:ident),*) => {$(
                if differs(&self.$f, &new.$f) {
                    restart.push(stringify!($f));
                }
            )*};
        }
        take!(deposit, menu, mailbox, dialplan);
        needs_restart!(sip, rtp, store, mwi, delivery, prompts, sync, fax, smdi, metrics, mail);
        (live, taken, restart)
    }

    fn validate(&self) -> Result<(), String> {
        if self.sip.tls_listen.is_some() && (self.sip.tls_cert.is_none() || self.sip.tls_key.is_none()) {
            return Err("sip.tls_listen needs sip.tls_cert and sip.tls_key (PEM files)".into());
        }
        self.smdi.validate()?;
        for t in &self.smdi.terminal {
            if let Some(name) = &t.trunk {
                if !self.sip.trunk.iter().any(|k| &k.name == name) {
                    return Err(format!("smdi.terminal {:?}: no [[sip.trunk]] named {name:?}", t.terminal));
                }
            }
        }
        for p in &self.mwi.phone {
            p.addr()?;
        }
        if self.mwi.recheck_secs.is_nan() || self.mwi.recheck_secs <= 0.0 {
            return Err("mwi.recheck_secs must be positive".into());
        }
        if !(-40.0..=-6.0).contains(&self.prompts.loudness_lufs) {
            return Err("prompts.loudness_lufs must be between -40 and -6 (LUFS; -20 suits telephone prompts)".into());
        }
        for (lang, rate) in &self.prompts.rates {
            if !(80..=450).contains(rate) {
                return Err(format!("prompts.rates.{lang} = {rate}: a speaking rate is 80 to 450 words per minute"));
            }
        }
        let m = &self.menu;
        for l in &m.list {
            if l.number.is_empty() || l.members.is_empty() {
                return Err(format!("menu.list {:?} needs a number and at least one member", l.number));
            }
        }
        if m.max_login_attempts == 0 {
            return Err("menu.max_login_attempts must be at least 1".into());
        }
        if m.digit_timeout_secs.is_nan() || m.digit_timeout_secs <= 0.0 || m.skip_secs.is_nan() || m.skip_secs <= 0.0 {
            return Err("menu.digit_timeout_secs and menu.skip_secs must be positive".into());
        }
        let d = &self.deposit;
        if let Some(via) = &self.fax.send_via {
            let port_ok = match via.rsplit_once(':') {
                Some((_, port)) if !via.ends_with(']') => port.parse::<u16>().is_ok(),
                _ => true,
            };
            if via.is_empty() || via.contains(['@', '/', ' ']) || !port_ok {
                return Err(format!(
                    "fax.send_via {via:?}: expected HOST or HOST:PORT (the trunk fax numbers are called at)"
                ));
            }
        }
        if !(0.0..=86_400.0).contains(&self.fax.send_retry_secs) {
            return Err("fax.send_retry_secs must be between 0 and 86400".into());
        }
        if !(0.5..=60.0).contains(&self.fax.t38_wait_secs) {
            return Err("fax.t38_wait_secs must be between 0.5 and 60 (seconds to wait for the T.38 answer)".into());
        }
        if !positive(d.max_secs) {
            return Err("deposit.max_secs must be positive".into());
        }
        if d.min_secs < 0.0 || d.min_secs >= d.max_secs {
            return Err("deposit.min_secs must be at least 0 and below deposit.max_secs".into());
        }
        if !positive(d.silence_secs) {
            return Err("deposit.silence_secs must be positive".into());
        }
        if self.rtp.jitter_frames == 0 || self.rtp.jitter_frames > 50 {
            return Err("rtp.jitter_frames must be between 1 and 50".into());
        }
        if !(self.sip.rate_limit >= 0.0 && self.sip.rate_limit.is_finite()) {
            return Err("sip.rate_limit must be a number of requests per second, 0 for no limit".into());
        }
        if self.sip.rate_limit > 0.0 && !(self.sip.rate_burst >= 1.0 && self.sip.rate_burst.is_finite()) {
            return Err("sip.rate_burst must be at least 1".into());
        }
        let t = &self.sip.tcp;
        if t.max_connections == 0
            || t.max_per_source == 0
            || t.idle_secs == 0
            || t.message_secs == 0
            || t.buffer_mib == 0
        {
            return Err("sip.tcp limits must all be positive".into());
        }
        if self.sip.realm.is_empty() || self.sip.realm.contains('"') {
            return Err("sip.realm must be a non-empty name without quotes".into());
        }
        if self.sip.nonce_secs < 10 {
            return Err("sip.nonce_secs must be at least 10".into());
        }
        self.sip_access()?;
        if self.rtp.timeout_secs > 86_400 {
            return Err("rtp.timeout_secs must be at most 86400 (a day); 0 turns the timeout off".into());
        }
        let dl = &self.delivery;
        if !positive(dl.retry_initial_secs) || dl.retry_max_secs < dl.retry_initial_secs {
            return Err("delivery.retry_initial_secs must be positive and not above delivery.retry_max_secs".into());
        }
        if let Some(tz) = &self.mailbox.timezone {
            if let Err(e) = jiff::tz::TimeZone::get(tz) {
                return Err(format!(
                    "mailbox.timezone: {tz:?} is not a time zone ({e}); use an IANA name like \"Europe/Berlin\""
                ));
            }
        }
        let sy = &self.sync;
        if !positive(sy.poll_secs) {
            return Err("sync.poll_secs must be positive".into());
        }
        if !positive(sy.log_keep_days) {
            return Err("sync.log_keep_days must be positive".into());
        }
        if !(sy.max_gone_fraction > 0.0 && sy.max_gone_fraction <= 1.0) {
            return Err("sync.max_gone_fraction must be above 0 and at most 1".into());
        }
        if sy.confirm_removals_after_secs.is_nan() || sy.confirm_removals_after_secs < 0.0 {
            return Err("sync.confirm_removals_after_secs must not be negative".into());
        }
        if self.store.trash_days.is_nan() || self.store.trash_days < 0.0 {
            return Err("store.trash_days must not be negative".into());
        }
        if !positive(sy.backoff_initial_secs) || sy.backoff_max_secs < sy.backoff_initial_secs {
            return Err("sync.backoff_initial_secs must be positive and not above sync.backoff_max_secs".into());
        }
        if !positive(dl.scan_secs) {
            return Err("delivery.scan_secs must be positive".into());
        }
        if let Some(op) = &d.operator {
            if !(op.starts_with("sip:") || op.starts_with("sips:")) {
                return Err(format!("deposit.operator must be a SIP URI (sip:...), got {op:?}"));
            }
        }
        Ok(())
    }

    /// The address that goes into SDP `c=` lines and Contact headers.
    /// `[sip]`'s access rules for the endpoint; reads the trunks' password files.
    pub fn sip_access(&self) -> Result<crate::sip::access::AccessPolicy, String> {
        use crate::sip::access::{AccessPolicy, Network, Trunk};
        let mut trunks = Vec::new();
        for t in &self.sip.trunk {
            let networks = t
                .networks
                .iter()
                .map(|n| n.parse::<Network>().map_err(|e| format!("sip.trunk {:?}: {e}", t.name)))
                .collect::<Result<Vec<_>, _>>()?;
            if networks.is_empty() {
                return Err(format!("sip.trunk {:?}: networks must name at least one address", t.name));
            }
            let credentials = match (&t.username, &t.password_file) {
                (None, None) => None,
                (Some(user), Some(file)) => {
                    let text = std::fs::read_to_string(file).map_err(|e| {
                        format!("sip.trunk {:?}: cannot read password_file {}: {e}", t.name, file.display())
                    })?;
                    let password = text.lines().next().unwrap_or("").to_string();
                    if password.is_empty() {
                        return Err(format!("sip.trunk {:?}: password_file {} is empty", t.name, file.display()));
                    }
                    Some((user.clone(), crate::sip::digest::Ha1::new(user, &self.sip.realm, &password)))
                }
                _ => return Err(format!("sip.trunk {:?}: username and password_file go together", t.name)),
            };
            let redirection = match (&t.redirection, &t.redirection_pick) {
                (None, None) => None,
                (trust, pick) => Some(
                    redirection_policy(
                        trust.as_ref().unwrap_or(&self.sip.redirection),
                        pick.as_ref().unwrap_or(&self.sip.redirection_pick),
                    )
                    .map_err(|e| format!("sip.trunk {:?}: {e}", t.name))?,
                ),
            };
            trunks.push(Trunk { name: t.name.clone(), networks, credentials, trusted: t.trusted, redirection });
        }
        let algorithms = self
            .sip
            .digest_algorithms
            .iter()
            .map(|a| a.parse().map_err(|e| format!("sip.digest_algorithms: {e}")))
            .collect::<Result<Vec<crate::sip::digest::Algorithm>, String>>()?;
        if algorithms.is_empty() {
            return Err("sip.digest_algorithms must name at least one of \"SHA-256\", \"MD5\"".into());
        }
        Ok(AccessPolicy {
            realm: self.sip.realm.clone(),
            algorithms,
            nonce_secs: self.sip.nonce_secs,
            calls_from_trunks_only: self.sip.calls_from == CallsFrom::Trunks,
            redirection: redirection_policy(&self.sip.redirection, &self.sip.redirection_pick)
                .map_err(|e| format!("sip: {e}"))?,
            trunks,
        })
    }

    pub fn media_ip(&self) -> std::net::IpAddr {
        self.sip.public_ip.unwrap_or(self.sip.listen.ip())
    }

    /// Which transports are encrypted, in words, for `status` and `config show`.
    pub fn encryption(&self) -> Encryption {
        let m = &self.mail;
        let mail = if m.require_tls {
            "TLS required (implicit or STARTTLS)"
        } else {
            "TLS when offered (implicit for imaps/pop3s/smtps, STARTTLS otherwise; SMTP AUTH only over TLS)"
        };
        let mut sip = match self.sip.tls_listen {
            Some(a) => format!("TLS on {a}; UDP and TCP on {} in clear", self.sip.listen),
            None => format!("UDP and TCP on {} in clear (no [sip] tls_listen)", self.sip.listen),
        };
        for t in &self.sip.trunk {
            let how = match t.transport {
                Some(PlacedTransport::Tls) => "TLS",
                Some(PlacedTransport::Tcp) => "TCP in clear",
                _ => continue,
            };
            sip.push_str(&format!("; calls placed to trunk {}: {how}", t.name));
        }
        let mut media = match self.rtp.srtp {
            crate::srtp::Policy::Required => "SRTP required (SDES keys, calls over TLS only)".to_string(),
            crate::srtp::Policy::Optional => "SRTP when offered over TLS, else RTP in clear".to_string(),
            crate::srtp::Policy::Off => "RTP in clear (SRTP off)".to_string(),
        };
        for t in &self.sip.trunk {
            if let Some(p) = t.srtp.filter(|p| *p != self.rtp.srtp) {
                media.push_str(&format!("; trunk {}: SRTP {}", t.name, p.name()));
            }
        }
        media.push_str("; T.38 (UDPTL) in clear");
        Encryption {
            sip,
            media,
            mail: mail.into(),
            mail_certificates: if m.tls_verify { "verified" } else { "NOT verified ([mail] tls_verify = false)" }
                .into(),
        }
    }

    /// The SRTP policy of a call from `trunk` (its own, else `[rtp] srtp`).
    pub fn srtp_policy(&self, trunk: Option<&str>) -> crate::srtp::Policy {
        trunk
            .and_then(|name| self.sip.trunk.iter().find(|t| t.name == name))
            .and_then(|t| t.srtp)
            .unwrap_or(self.rtp.srtp)
    }

    /// Directory of generated prompt audio for the configured language.
    pub fn prompt_cache(&self) -> PathBuf {
        self.prompt_cache_for(&self.prompts.language)
    }

    /// Where the generated prompt audio of `lang` is cached.
    pub fn prompt_cache_for(&self, lang: &str) -> PathBuf {
        self.prompts.cache.clone().unwrap_or_else(|| self.store.path.join("prompt-cache")).join(lang)
    }

    /// The espeak-ng voice the prompts of `lang` are generated with: `[prompts] voice`
    /// for the default language, `[prompts] voices` (else the language's own name, which
    /// is an espeak-ng voice for every language it speaks) for the others.
    pub fn prompt_voice(&self, lang: &str) -> String {
        if lang == self.prompts.language {
            return self.prompts.voice.clone();
        }
        self.prompts.voices.get(lang).cloned().unwrap_or_else(|| lang.to_string())
    }

    /// The prompt directory of `lang`: a plain name (letters, digits, - and _, no path)
    /// with a `prompts.toml` there.
    pub fn language_dir(&self, lang: &str) -> Result<PathBuf, String> {
        if lang.is_empty() || !lang.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(format!("{lang:?} is not a language name (like en or de)"));
        }
        let dir = self.prompts.dir.join(lang);
        if !dir.join("prompts.toml").is_file() {
            return Err(format!(
                "no prompts for language {lang:?}: {} does not exist (languages with prompts: {})",
                dir.join("prompts.toml").display(),
                self.prompt_languages().join(", ")
            ));
        }
        Ok(dir)
    }

    /// Every language with prompts (a `prompts/<lang>/prompts.toml`), the default first.
    pub fn prompt_languages(&self) -> Vec<String> {
        let mut langs: Vec<String> = std::fs::read_dir(&self.prompts.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("prompts.toml").is_file())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|l| *l != self.prompts.language)
            .collect();
        langs.sort();
        langs.insert(0, self.prompts.language.clone());
        langs
    }

    pub fn db_path(&self) -> PathBuf {
        self.store.path.join("voxbridge.db")
    }
}

/// `redirection` and `redirection_pick` as a policy, or what is wrong with them.
fn redirection_policy(trust: &[String], pick: &str) -> Result<crate::sip::redirection::Policy, String> {
    let trust = trust
        .iter()
        .map(|s| s.parse().map_err(|e| format!("redirection: {e}")))
        .collect::<Result<Vec<crate::sip::redirection::Source>, String>>()?;
    let pick = pick.parse().map_err(|e| format!("redirection_pick: {e}"))?;
    Ok(crate::sip::redirection::Policy { trust, pick })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mwi_phone_addresses_have_their_transports_default_port() {
        let addr = |uri: &str| MwiPhone { mailbox: "1".into(), uri: uri.into() }.addr();
        assert_eq!(addr("sip:1@192.0.2.1"), Ok("192.0.2.1:5060".parse().unwrap()));
        assert_eq!(addr("sips:1@192.0.2.1"), Ok("192.0.2.1:5061".parse().unwrap()));
        assert_eq!(addr("sip:1@192.0.2.1;transport=TLS"), Ok("192.0.2.1:5061".parse().unwrap()));
        assert_eq!(addr("sip:1@[2001:db8::1]"), Ok("[2001:db8::1]:5060".parse().unwrap()));
        assert_eq!(addr("sips:1@[2001:db8::1]:5071"), Ok("[2001:db8::1]:5071".parse().unwrap()));
        assert!(addr("tel:1").is_err() && addr("sip:1@phone.example").is_err());
    }

    #[test]
    fn a_reload_takes_the_per_call_sections_and_names_the_others() {
        let old = Config::parse("[deposit]\nmax_secs = 60.0\n").unwrap();
        let new = Config::parse("[deposit]\nmax_secs = 90.0\n[sip]\nlisten = \"127.0.0.1:5070\"\n").unwrap();
        let (live, taken, restart) = old.reloaded(&new);
        assert_eq!((taken, restart), (vec!["deposit"], vec!["sip"]));
        assert_eq!(live.deposit.max_secs, 90.0);
        assert_eq!(live.sip.listen.port(), 5060, "the socket stays until a restart");
        let (_, taken, restart) = old.reloaded(&old.clone());
        assert!(taken.is_empty() && restart.is_empty());
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.sip.listen.port(), 5060);
        assert_eq!(c.rtp.port_range, PortRange(20000..=20999));
        assert_eq!(c.store.path, PathBuf::from("var"));
    }

    #[test]
    fn unknown_key_is_named() {
        let e = Config::parse("[sip]\nlisten = \"127.0.0.1:5070\"\nlistne = 1\n").unwrap_err();
        assert!(e.contains("listne"), "{e}");
        let e = Config::parse("[bogus]\n").unwrap_err();
        assert!(e.contains("bogus"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        let e = Config::parse("[rtp]\nport_range = \"30000-20000\"\n").unwrap_err();
        assert!(e.contains("port_range") || e.contains("port range"), "{e}");
        let e = Config::parse("[sip]\nlisten = \"nonsense\"\n").unwrap_err();
        assert!(e.contains("listen"), "{e}");
        let e = Config::parse("[deposit]\nmin_secs = 500.0\n").unwrap_err();
        assert!(e.contains("min_secs"), "{e}");
        for bad in ["max_gone_fraction = 0.0", "max_gone_fraction = 1.5", "confirm_removals_after_secs = -1.0"] {
            let e = Config::parse(&format!("[sync]\n{bad}\n")).unwrap_err();
            assert!(e.contains(bad.split(' ').next().unwrap()), "{e}");
        }
        let e = Config::parse("[store]\ntrash_days = -2.0\n").unwrap_err();
        assert!(e.contains("trash_days"), "{e}");
        let e = Config::parse("[prompts.rates]\nde = 1000\n").unwrap_err();
        assert!(e.contains("prompts.rates.de"), "{e}");
        let c = Config::parse("[prompts.rates]\nde = 130\n").unwrap();
        assert_eq!((c.prompts.rate("de"), c.prompts.rate("en")), (130, DEFAULT_SPEECH_RATE));
    }

    #[test]
    fn the_safety_brake_comes_from_sync() {
        let c =
            Config::parse("[sync]\nmax_gone_fraction = 0.25\nmax_gone_rows = 3\nconfirm_removals_after_secs = 90\n")
                .unwrap();
        let b = c.sync.brake();
        assert_eq!((b.max_gone_fraction, b.max_gone_rows, b.confirm_after_secs), (0.25, 3, 90));
        assert_eq!(Config::parse("").unwrap().sync.brake(), crate::sync::brake::Brake::default());
        assert_eq!(Config::parse("").unwrap().store.trash_days, 7.0);
    }
}
