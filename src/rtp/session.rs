//! One call's RTP session, sans-IO.
//!
//! Run loop: feed datagrams with [`RtpSession::handle_input`] (RTCP too, with rtcp-mux)
//! and [`RtpSession::handle_rtcp`]; at each 20 ms tick call [`RtpSession::handle_tick`],
//! which plays out one received frame and sends one frame; drain
//! [`RtpSession::poll_output`]. The tick *is* the session's clock, so recordings are
//! exactly as long as the call's wall time; arrival times are given only to measure
//! jitter for RTCP.
//!
//! On a hostile network (RFC 3550 §8.2, Asterisk's `strictrtp`):
//! - **Strict source.** The caller's stream is learned once — at once from the address
//!   its SDP named, or after [`PROBATION`] in-sequence packets from one source with one
//!   SSRC and our payload types (a caller behind NAT) — and everything from any other
//!   source is dropped and counted. Nobody else's audio is recorded, nobody else's keys
//!   obeyed, and our audio goes only to the caller.
//! - **No reflection.** Nothing is sent before the call is confirmed (the ACK) unless the
//!   caller's own RTP proved its address, and never to an SDP address
//!   [`address::check`] refuses (multicast, broadcast, … or what `[rtp] sdp_addresses`
//!   excludes).
//! - **Alive both ways.** While the direction allows it, a frame goes out every tick —
//!   silence when nothing is queued — so phones that hang up after seconds without RTP
//!   stay up while the caller records; RTCP reports every ~5 s; a stream silent for
//!   `timeout_ticks` is reported once as [`Output::MediaTimeout`].

use super::address::{self, RemotePolicy};
use super::dtmf::DtmfReceiver;
use super::jitter::{JitterBuffer, JitterStats, Playout};
use super::rtcp::{self, LastSr, ReceiverStats, Report, SenderInfo};
use super::{classify, Datagram, SeqExtender, TsExtender, FRAME, FRAME_SAMPLES};
use crate::media::g711;
use crate::sdp::crypto::Agreed;
use crate::sdp::{Codec, Direction, Negotiated};
use crate::srtp::{Keying, Srtp, SrtpError};
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Instant, SystemTime};

/// In-sequence packets from one source before a caller behind NAT is believed.
pub const PROBATION: u8 = 4;

/// While nothing is queued, a silence frame goes out every this many ticks (1 s), the
/// first a second after playback ran dry: enough for phones that hang up after seconds
/// without RTP and for NAT bindings, a fiftieth of a full stream's packets — and never
/// in the short pauses between a key press and the prompt that answers it.
pub const IDLE_EVERY: u64 = 50;

#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    Transmit {
        to: SocketAddr,
        bytes: Vec<u8>,
    },
    /// An RTCP compound packet: from the RTP port when `muxed` (RFC 5761), else from
    /// the RTCP port (RTP port + 1).
    Rtcp {
        to: SocketAddr,
        bytes: Vec<u8>,
        muxed: bool,
    },
    /// The caller's key press (RFC 4733).
    Dtmf(char),
    /// The playback queue ran empty.
    PlaybackDone,
    /// Neither RTP nor RTCP from the caller for the configured timeout.
    MediaTimeout,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SessionStats {
    pub jitter: JitterStats,
    /// RTP packets sent (audio and silence).
    pub sent: u64,
    pub invalid: u64,
    pub foreign_pt: u64,
    pub dtmf_packets: u64,
    /// Packets from a source other than the caller's, dropped.
    pub foreign_source: u64,
    /// Ticks on which nothing was sent because the call was not confirmed, the address
    /// not proven, or the direction (hold) said not to.
    pub withheld: u64,
    pub rtcp_sent: u64,
    pub rtcp_received: u64,
    /// SRTP/SRTCP packets refused: a tag that did not verify (a stranger, or altered),
    /// a replay, or plain RTP on an SRTP call.
    pub srtp_rejected: u64,
}

/// How a session is set up, beyond what SDP negotiated.
#[derive(Debug, Clone)]
pub struct SessionParams {
    /// Playout delay of the jitter buffer, in frames.
    pub jitter_frames: usize,
    /// Ticks without RTP or RTCP from the caller before [`Output::MediaTimeout`]; 0: never.
    pub timeout_ticks: u32,
    pub policy: RemotePolicy,
    /// RTCP CNAME (RFC 3550 §6.5.1).
    pub cname: String,
    /// The wall time of the first tick, for the NTP time in sender reports.
    pub wallclock: SystemTime,
    /// Whether the call is confirmed already (our offer was answered in the ACK).
    pub confirmed: bool,
    /// The host the call's signalling came from. Behind NAT the caller's media comes
    /// from there (or from the SDP's host on another port); a third host is a stranger
    /// racing the caller's first packet, and passing probation does not make it the
    /// caller — unless `policy` is `Learned`. `None`: any host (tests, fuzzing).
    pub signalling: Option<IpAddr>,
    /// What the call's media keying may do (SRTP policy, TLS signalling); the session
    /// layer decides with it, the RTP session applies what was agreed.
    pub keying: Keying,
}

impl SessionParams {
    pub fn new(jitter_frames: usize) -> SessionParams {
        SessionParams {
            jitter_frames,
            timeout_ticks: 0,
            policy: RemotePolicy::Unicast,
            cname: "voxbridge".into(),
            wallclock: SystemTime::UNIX_EPOCH,
            confirmed: true,
            signalling: None,
            keying: Keying::default(),
        }
    }
}

/// A call's SRTP contexts: the far end's key for what it sends, ours for what we send.
struct Protection {
    agreed: Agreed,
    inbound: Srtp,
    outbound: Srtp,
    /// Where incoming packets are decrypted, reused from packet to packet.
    scratch: Vec<u8>,
}

impl Protection {
    fn new(agreed: &Agreed) -> Result<Protection, SrtpError> {
        Ok(Protection {
            inbound: Srtp::inbound(agreed.suite, &agreed.theirs)?,
            outbound: Srtp::outbound(agreed.suite, &agreed.ours)?,
            agreed: agreed.clone(),
            scratch: Vec::with_capacity(1500),
        })
    }
}

/// How the call's packets are protected.
enum Cipher {
    Plain,
    Srtp(Box<Protection>),
    /// SRTP was agreed but its contexts could not be made: nothing is sent and nothing
    /// taken, rather than audio in clear.
    Broken,
}

impl Cipher {
    fn new(n: &Negotiated) -> Cipher {
        match &n.srtp {
            None => Cipher::Plain,
            Some(a) => match Protection::new(a) {
                Ok(p) => Cipher::Srtp(Box::new(p)),
                Err(e) => {
                    tracing::error!(error = %e, "SRTP was agreed but cannot be set up; the call carries no audio");
                    Cipher::Broken
                }
            },
        }
    }

    fn agreed(&self) -> Option<&Agreed> {
        match self {
            Cipher::Srtp(p) => Some(&p.agreed),
            Cipher::Plain | Cipher::Broken => None,
        }
    }
}

/// Where the caller's stream comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// Not known yet: a packet from the SDP address is believed at once; another
    /// source must pass probation.
    Learning(Option<Probation>),
    Latched(SocketAddr),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Probation {
    from: SocketAddr,
    ssrc: u32,
    seq: u16,
    count: u8,
}

pub struct RtpSession {
    codec: Codec,
    dtmf_pt: Option<u8>,
    /// The address the SDP named.
    expected: SocketAddr,
    /// Why the SDP address may not be sent to before it is proven, if it may not.
    expected_refused: Option<&'static str>,
    source: Source,
    direction: Direction,
    rtcp_mux: bool,
    confirmed: bool,
    policy: RemotePolicy,
    signalling: Option<IpAddr>,
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    playback: VecDeque<u8>,
    talking: bool,
    /// Ticks since playback last ran dry (the silence frames' cadence).
    idle_ticks: u64,
    jitter: JitterBuffer,
    seq_ext: SeqExtender,
    ts_ext: TsExtender,
    audio_ssrc: Option<u32>,
    dtmf: DtmfReceiver,
    out: VecDeque<Output>,
    stats: SessionStats,
    // Liveness and RTCP.
    ticks: u64,
    silent_ticks: u32,
    timeout_ticks: u32,
    timed_out: bool,
    epoch: Option<Instant>,
    receiver: ReceiverStats,
    rtcp_from: Option<SocketAddr>,
    last_sr: Option<(LastSr, u64)>,
    rtcp_due: u32,
    sent_since_report: bool,
    octets: u64,
    cname: String,
    wallclock: SystemTime,
    cipher: Cipher,
}

impl RtpSession {
    pub fn new(n: &Negotiated, p: &SessionParams) -> RtpSession {
        RtpSession {
            codec: n.codec,
            dtmf_pt: n.dtmf_pt,
            expected: n.remote,
            expected_refused: address::check(n.remote, p.policy).err(),
            source: Source::Learning(None),
            direction: n.direction,
            rtcp_mux: n.rtcp_mux,
            confirmed: p.confirmed,
            policy: p.policy,
            signalling: p.signalling,
            ssrc: rand::random(),
            seq: rand::random(),
            timestamp: rand::random(),
            playback: VecDeque::new(),
            talking: false,
            idle_ticks: 0,
            jitter: JitterBuffer::new(p.jitter_frames, g711::silence_byte(n.codec)),
            seq_ext: SeqExtender::default(),
            ts_ext: TsExtender::default(),
            audio_ssrc: None,
            dtmf: DtmfReceiver::default(),
            out: VecDeque::new(),
            stats: SessionStats::default(),
            ticks: 0,
            silent_ticks: 0,
            timeout_ticks: p.timeout_ticks,
            timed_out: false,
            epoch: None,
            receiver: ReceiverStats::default(),
            rtcp_from: None,
            last_sr: None,
            // The first report comes after half the interval (RFC 3550 §6.2).
            rtcp_due: random_interval() / 2,
            sent_since_report: false,
            octets: 0,
            cname: p.cname.clone(),
            wallclock: p.wallclock,
            cipher: Cipher::new(n),
        }
    }

    /// The SRTP suite protecting the call, if any.
    pub fn srtp_suite(&self) -> Option<crate::srtp::Suite> {
        self.cipher.agreed().map(|a| a.suite)
    }

    /// The SRTP agreement in force (a re-offer repeating the far end's key keeps ours).
    pub fn srtp_agreed(&self) -> Option<&Agreed> {
        self.cipher.agreed()
    }

    pub fn codec(&self) -> Codec {
        self.codec
    }

    pub fn stats(&self) -> SessionStats {
        let mut s = self.stats;
        s.jitter = self.jitter.stats;
        s
    }

    /// The caller's media address once learned.
    pub fn source(&self) -> Option<SocketAddr> {
        match self.source {
            Source::Latched(a) => Some(a),
            Source::Learning(_) => None,
        }
    }

    /// Why the SDP's address is not sent to on its word alone, if it is not.
    pub fn unproven_address(&self) -> Option<&'static str> {
        self.expected_refused
    }

    /// The call was confirmed (the ACK arrived): the SDP address may now be used.
    pub fn confirm(&mut self) {
        self.confirmed = true;
    }

    /// Queues encoded audio (in this session's codec) after whatever is already queued.
    pub fn play(&mut self, encoded: &[u8]) {
        self.playback.extend(encoded);
    }

    /// Drops queued audio (barge-in). What is played next starts a new talkspurt: its
    /// first packet carries the marker bit (RFC 3551 4.1), as the audio is discontinuous.
    pub fn stop_playback(&mut self) {
        self.playback.clear();
        self.talking = false;
    }

    /// The far end changed the session (a re-INVITE): a new address, codec, DTMF
    /// payload type or direction. A new address is learned again; audio still queued
    /// is re-encoded in the new codec; on hold (we may not send) playback pauses where
    /// it is and resumes with the stream.
    pub fn retarget(&mut self, n: &Negotiated) {
        if n.srtp.as_ref() != self.cipher.agreed() {
            // New keys (or SRTP begun or ended): new contexts, a new replay window.
            self.cipher = Cipher::new(n);
        }
        if n.remote != self.expected {
            self.expected = n.remote;
            self.expected_refused = address::check(n.remote, self.policy).err();
            self.source = Source::Learning(None);
            self.rtcp_from = None;
        }
        if n.codec != self.codec {
            let queued: Vec<u8> = self.playback.drain(..).collect();
            let mut pcm = Vec::with_capacity(queued.len());
            g711::decode_into(self.codec, &queued, &mut pcm);
            self.playback.extend(g711::encode(n.codec, &pcm));
            self.codec = n.codec;
            // The caller's audio in the old codec cannot be decoded in the new one.
            self.restart_stream();
        }
        if n.direction.sends() && !self.direction.sends() {
            // Resumed: the first packet after the pause starts a talkspurt.
            self.talking = false;
        }
        self.direction = n.direction;
        self.rtcp_mux = n.rtcp_mux;
        self.dtmf_pt = n.dtmf_pt;
    }

    fn restart_stream(&mut self) {
        let stats = self.jitter.stats;
        self.jitter = JitterBuffer::new(self.jitter.delay(), g711::silence_byte(self.codec));
        self.jitter.stats = stats;
        self.seq_ext = SeqExtender::default();
        self.ts_ext = TsExtender::default();
        self.receiver.reset();
        self.audio_ssrc = None;
    }

    pub fn is_playing(&self) -> bool {
        !self.playback.is_empty()
    }

    /// Whether a packet from `from` is the caller's, learning the source if it may.
    fn accept_source(&mut self, from: SocketAddr, ssrc: u32, seq: u16) -> bool {
        if from.port() == 0 {
            // Nobody can answer port 0; raw-socket senders (sipp's RFC 4733 digits) use
            // it beside their real stream. Heard from the caller's host, never learned.
            return from.ip() == self.source().unwrap_or(self.expected).ip();
        }
        match self.source {
            Source::Latched(a) => a == from,
            Source::Learning(_) if from == self.expected => {
                self.latch(from);
                true
            }
            Source::Learning(_) if !self.may_learn(from.ip()) => false,
            Source::Learning(p) => {
                let count = match p {
                    Some(p) if p.from == from && p.ssrc == ssrc && seq == p.seq.wrapping_add(1) => p.count + 1,
                    _ => 1,
                };
                if count >= PROBATION {
                    self.latch(from);
                    true
                } else {
                    self.source = Source::Learning(Some(Probation { from, ssrc, seq, count }));
                    false
                }
            }
        }
    }

    /// Whether a source on host `ip` may become the caller's by probation.
    fn may_learn(&self, ip: IpAddr) -> bool {
        self.policy == RemotePolicy::Learned || ip == self.expected.ip() || self.signalling.is_none_or(|s| s == ip)
    }

    fn latch(&mut self, from: SocketAddr) {
        if from != self.expected {
            tracing::info!(sdp = %self.expected, source = %from, "caller's media comes from another address (NAT); learned");
        }
        self.source = Source::Latched(from);
    }

    /// One datagram from the RTP port; `now` is its arrival (for jitter statistics).
    /// On an SRTP call it is checked and decrypted first; what fails is dropped.
    pub fn handle_input(&mut self, from: SocketAddr, buf: &[u8], now: Instant) {
        if matches!(self.cipher, Cipher::Plain) {
            return self.handle_clear(from, buf, now);
        }
        if let Some(clear) = self.decrypt(buf, rtcp::is_rtcp(buf)) {
            self.handle_clear(from, &clear, now);
            self.give_back(clear);
        }
    }

    /// `buf` decrypted on an SRTP call, into the call's reused buffer (rtc-srtp's own
    /// result buffer is copied into it); `None` when it does not verify, or the call has
    /// no working contexts.
    fn decrypt(&mut self, buf: &[u8], is_rtcp: bool) -> Option<Vec<u8>> {
        let Cipher::Srtp(p) = &mut self.cipher else { return None };
        let mut clear = std::mem::take(&mut p.scratch);
        clear.clear();
        clear.extend_from_slice(buf);
        let r = if is_rtcp { p.inbound.unprotect_rtcp(&mut clear) } else { p.inbound.unprotect(&mut clear) };
        if r.is_ok() {
            return Some(clear);
        }
        p.scratch = clear;
        self.stats.srtp_rejected += 1;
        None
    }

    /// The buffer [`RtpSession::decrypt`] lent, for the next packet.
    fn give_back(&mut self, clear: Vec<u8>) {
        if let Cipher::Srtp(p) = &mut self.cipher {
            p.scratch = clear;
        }
    }

    fn handle_clear(&mut self, from: SocketAddr, buf: &[u8], now: Instant) {
        let pkt = match classify(buf) {
            Datagram::Rtp(p) => p,
            Datagram::Rtcp => return self.handle_clear_rtcp(from, buf),
            Datagram::Invalid(_) => {
                self.stats.invalid += 1;
                return;
            }
        };
        let ours = pkt.payload_type == self.codec.payload_type() || Some(pkt.payload_type) == self.dtmf_pt;
        if !ours {
            if self.source() == Some(from) {
                self.stats.foreign_pt += 1;
            } else {
                self.stats.foreign_source += 1;
            }
            return;
        }
        if !self.accept_source(from, pkt.ssrc, pkt.seq) {
            self.stats.foreign_source += 1;
            return;
        }
        self.silent_ticks = 0;
        if self.audio_ssrc != Some(pkt.ssrc) {
            // A new source restarts numbering and timing.
            self.restart_stream();
            self.audio_ssrc = Some(pkt.ssrc);
        }
        // DTMF shares the SSRC's sequence space (and may be interleaved with audio).
        let seq = self.seq_ext.extend(pkt.seq as u32);
        let epoch = *self.epoch.get_or_insert(now);
        let arrival = now.saturating_duration_since(epoch).as_micros() as u64 * 8 / 1000;
        self.receiver.packet(seq, pkt.timestamp, arrival);
        if Some(pkt.payload_type) == self.dtmf_pt {
            self.stats.dtmf_packets += 1;
            if let Some(d) = self.dtmf.handle(pkt.ssrc, pkt.timestamp, pkt.payload) {
                self.out.push_back(Output::Dtmf(d));
            }
            return;
        }
        let ts = self.ts_ext.extend(pkt.timestamp);
        self.jitter.push(ts, pkt.payload);
    }

    /// An RTCP datagram (from the RTCP port, or the RTP port with rtcp-mux). Only the
    /// caller's host is heard: it keeps the call alive and gives LSR for our reports.
    pub fn handle_rtcp(&mut self, from: SocketAddr, buf: &[u8]) {
        if matches!(self.cipher, Cipher::Plain) {
            return self.handle_clear_rtcp(from, buf);
        }
        if let Some(clear) = self.decrypt(buf, true) {
            self.handle_clear_rtcp(from, &clear);
            self.give_back(clear);
        }
    }

    fn handle_clear_rtcp(&mut self, from: SocketAddr, buf: &[u8]) {
        let host = self.source().unwrap_or(self.expected).ip();
        if from.ip() != host || !rtcp::is_rtcp(buf) {
            self.stats.foreign_source += 1;
            return;
        }
        self.stats.rtcp_received += 1;
        self.silent_ticks = 0;
        self.rtcp_from = Some(from);
        if let Some(sr) = rtcp::read_sr(buf) {
            self.last_sr = Some((sr, self.ticks));
        }
    }

    /// Where RTP goes now, if anywhere: the learned source, or — once the call is
    /// confirmed — the SDP's address if it may be used unproven.
    fn destination(&self) -> Option<SocketAddr> {
        match self.source {
            Source::Latched(a) => Some(a),
            Source::Learning(_) if self.confirmed && self.expected_refused.is_none() => Some(self.expected),
            Source::Learning(_) => None,
        }
    }

    /// One 20 ms tick: returns the caller's audio for this frame (silence when missing)
    /// and queues at most one outgoing packet.
    pub fn handle_tick(&mut self, pcm_out: &mut Vec<i16>) {
        pcm_out.clear();
        match self.jitter.pop() {
            Playout::Frame(p) => g711::decode_into(self.codec, &p, pcm_out),
            Playout::Lost | Playout::Silence => {}
        }
        pcm_out.resize(FRAME_SAMPLES, 0);
        self.ticks += 1;

        match self.destination().filter(|_| self.direction.sends()) {
            Some(to) => self.send_frame(to),
            None => {
                // Playback waits (for the ACK, a proven address, or the end of hold).
                self.stats.withheld += 1;
                self.talking = false;
            }
        }
        // The timestamp follows the clock even while we are silent (RFC 3550 5.1).
        self.timestamp = self.timestamp.wrapping_add(FRAME_SAMPLES as u32);
        self.rtcp_tick();
        self.liveness_tick();
    }

    fn send_frame(&mut self, to: SocketAddr) {
        let (payload, marker, done) = if self.playback.is_empty() {
            // Silence keeps the stream going (no-RTP timeouts, NAT bindings): one frame
            // every IDLE_EVERY ticks, each a talkspurt of its own (its timestamp jumps
            // with the clock, RFC 3551 §4.1), like comfort-noise updates.
            self.talking = false;
            self.idle_ticks += 1;
            if !self.idle_ticks.is_multiple_of(IDLE_EVERY) {
                return;
            }
            (vec![g711::silence_byte(self.codec); FRAME_SAMPLES], true, false)
        } else {
            self.idle_ticks = 0;
            let n = FRAME_SAMPLES.min(self.playback.len());
            let mut payload: Vec<u8> = self.playback.drain(..n).collect();
            payload.resize(FRAME_SAMPLES, g711::silence_byte(self.codec));
            let marker = !self.talking;
            self.talking = true;
            (payload, marker, self.playback.is_empty())
        };
        let mut bytes = rtp_rs::RtpPacketBuilder::new()
            .payload_type(self.codec.payload_type())
            .ssrc(self.ssrc)
            .sequence(self.seq.into())
            .timestamp(self.timestamp)
            .marked(marker)
            .payload(&payload)
            .build()
            .expect("a 160-byte payload always fits");
        self.seq = self.seq.wrapping_add(1);
        if !self.protect(&mut bytes, false) {
            return;
        }
        self.stats.sent += 1;
        self.octets += payload.len() as u64;
        self.sent_since_report = true;
        self.out.push_back(Output::Transmit { to, bytes });
        if done {
            self.out.push_back(Output::PlaybackDone);
        }
    }

    fn rtcp_tick(&mut self) {
        self.rtcp_due = self.rtcp_due.saturating_sub(1);
        if self.rtcp_due > 0 {
            return;
        }
        self.rtcp_due = random_interval();
        let Some(rtp_to) = self.destination() else { return };
        let to = match (self.rtcp_from, self.rtcp_mux) {
            (Some(a), _) => a,
            (None, true) => rtp_to,
            (None, false) => SocketAddr::new(rtp_to.ip(), rtp_to.port().wrapping_add(1)),
        };
        let elapsed = FRAME * self.ticks as u32;
        let sender = self.sent_since_report.then(|| SenderInfo {
            wallclock: self.wallclock + elapsed,
            rtp_timestamp: self.timestamp,
            packets: self.stats.sent as u32,
            octets: self.octets as u32,
        });
        self.sent_since_report = false;
        let me = Report { ssrc: self.ssrc, cname: &self.cname, sender };
        let last_sr = self.last_sr.map(|(sr, at)| (sr, FRAME * (self.ticks - at) as u32));
        let remote = self.audio_ssrc.map(|s| (s, &mut self.receiver));
        let mut bytes = rtcp::build(&me, remote, last_sr);
        if !self.protect(&mut bytes, true) {
            return;
        }
        self.stats.rtcp_sent += 1;
        self.out.push_back(Output::Rtcp { to, bytes, muxed: self.rtcp_mux });
    }

    /// Encrypts a packet we send on an SRTP call; false: it must not go out.
    fn protect(&mut self, bytes: &mut Vec<u8>, is_rtcp: bool) -> bool {
        match &mut self.cipher {
            Cipher::Plain => true,
            Cipher::Broken => false,
            Cipher::Srtp(p) => {
                let r = if is_rtcp { p.outbound.protect_rtcp(bytes) } else { p.outbound.protect(bytes) };
                r.inspect_err(|e| tracing::warn!(error = %e, "SRTP protect failed; packet not sent")).is_ok()
            }
        }
    }

    fn liveness_tick(&mut self) {
        // Only a confirmed call whose caller is meant to send can go silent.
        if !self.confirmed || !self.direction.receives() || self.timeout_ticks == 0 || self.timed_out {
            return;
        }
        self.silent_ticks += 1;
        if self.silent_ticks >= self.timeout_ticks {
            self.timed_out = true;
            self.out.push_back(Output::MediaTimeout);
        }
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }
}

/// An RTCP interval: the minimum, randomized to 0.5–1.5 times (RFC 3550 §6.3.1).
fn random_interval() -> u32 {
    let half = rtcp::MIN_INTERVAL_TICKS / 2;
    half + rand::random_range(0..=rtcp::MIN_INTERVAL_TICKS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALLER: &str = "127.0.0.1:6000";

    fn neg() -> Negotiated {
        Negotiated {
            remote: CALLER.parse().unwrap(),
            codec: Codec::Pcmu,
            dtmf_pt: Some(101),
            ..Negotiated::plain(CALLER.parse().unwrap(), Codec::Pcmu)
        }
    }

    fn session() -> RtpSession {
        RtpSession::new(&neg(), &SessionParams::new(1))
    }

    fn pkt(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
        rtp_rs::RtpPacketBuilder::new()
            .payload_type(pt)
            .ssrc(5)
            .sequence(seq.into())
            .timestamp(ts)
            .payload(payload)
            .build()
            .unwrap()
    }

    fn input(s: &mut RtpSession, from: &str, bytes: &[u8]) {
        s.handle_input(from.parse().unwrap(), bytes, Instant::now());
    }

    /// Runs `n` ticks; returns the RTP packets sent (destination, parsed header fields,
    /// payload) and the other outputs.
    #[allow(clippy::type_complexity)]
    fn run(s: &mut RtpSession, n: usize) -> (Vec<(SocketAddr, bool, u16, u32, Vec<u8>)>, Vec<Output>) {
        let (mut sent, mut other) = (vec![], vec![]);
        let mut pcm = Vec::new();
        for _ in 0..n {
            s.handle_tick(&mut pcm);
            while let Some(o) = s.poll_output() {
                match o {
                    Output::Transmit { to, bytes } => {
                        let r = rtp_rs::RtpReader::new(&bytes).unwrap();
                        let seq: u16 = r.sequence_number().into();
                        sent.push((to, r.mark(), seq, r.timestamp(), r.payload().to_vec()));
                    }
                    o => other.push(o),
                }
            }
        }
        (sent, other)
    }

    #[test]
    fn playback_is_paced_with_seq_ts_and_marker_and_silence_keeps_the_stream_alive() {
        let mut s = session();
        s.play(&vec![0x11u8; 400]);
        let (sent, other) = run(&mut s, 3 + 2 * IDLE_EVERY as usize);
        assert!(sent[0].1 && !sent[1].1, "marker on the first packet only");
        assert_eq!(sent[1].2, sent[0].2.wrapping_add(1));
        assert_eq!(sent[1].3, sent[0].3.wrapping_add(160));
        assert_eq!(&sent[2].4[..80], &[0x11; 80][..], "400 bytes: the third frame padded with silence");
        assert!(sent[2].4[80..].iter().all(|&b| b == 0xff));
        assert_eq!(other.iter().filter(|o| **o == Output::PlaybackDone).count(), 1);
        // Then, from a second on, a µ-law silence frame every IDLE_EVERY ticks, each
        // marked, sequence numbers consecutive, timestamps with the clock.
        let idle = &sent[3..];
        assert_eq!(idle.len(), 2, "{idle:?}");
        assert_eq!(idle[0].3, sent[2].3.wrapping_add(160 * IDLE_EVERY as u32), "the first after a second");
        assert!(idle.iter().all(|p| p.1 && p.4.iter().all(|&b| b == 0xff)));
        assert_eq!(idle[0].2, sent[2].2.wrapping_add(1));
        assert_eq!(idle[1].3, idle[0].3.wrapping_add(160 * IDLE_EVERY as u32));
        // Audio again: a new talkspurt at the clock's timestamp.
        s.play(&[0x22; 160]);
        let (sent2, _) = run(&mut s, 1);
        assert!(sent2[0].1, "a new talkspurt");
        assert_eq!(sent2[0].3, sent[0].3.wrapping_add(160 * (3 + 2 * IDLE_EVERY as u32)));
        assert_eq!(s.stats().sent, 6);
    }

    #[test]
    fn the_callers_address_is_learned_at_once_and_a_strangers_packets_are_dropped() {
        let mut s = session();
        input(&mut s, CALLER, &pkt(0, 1, 0, &[0x80; 160]));
        assert_eq!(s.source(), Some(CALLER.parse().unwrap()), "the SDP address is believed at once");
        // A stranger sends audio and a key press to the same port.
        let stranger = "127.0.0.1:7777";
        input(&mut s, stranger, &pkt(0, 2, 160, &[0x00; 160]));
        for seq in 3..6 {
            input(&mut s, stranger, &pkt(101, seq, 500, &[11, 0x8a, 0, 160]));
        }
        assert_eq!(s.poll_output(), None, "no DTMF from the stranger");
        assert_eq!(s.stats().foreign_source, 4);
        let mut pcm = Vec::new();
        s.handle_tick(&mut pcm);
        assert!(pcm[0] > 30000, "the caller's µ-law 0x80");
        s.handle_tick(&mut pcm);
        assert!(pcm.iter().all(|&x| x == 0), "the stranger's frame was not played: {:?}", &pcm[..4]);
        // The caller's own keys count.
        for _ in 0..3 {
            input(&mut s, CALLER, &pkt(101, 6, 500, &[11, 0x8a, 0, 160]));
        }
        let outs: Vec<_> = std::iter::from_fn(|| s.poll_output()).collect();
        assert!(outs.contains(&Output::Dtmf('#')));
        assert!(outs.iter().all(|o| !matches!(o, Output::Transmit { to, .. } if *to != CALLER.parse().unwrap())));
        input(&mut s, CALLER, &[1, 2, 3]);
        input(&mut s, CALLER, &pkt(18, 3, 0, &[0; 20]));
        assert_eq!((s.stats().invalid, s.stats().foreign_pt), (1, 1));
    }

    #[test]
    fn port_zero_is_heard_from_the_callers_host_but_never_learned() {
        let mut s = session();
        for seq in 1..10 {
            input(&mut s, "127.0.0.1:0", &pkt(101, seq, 500, &[1, 0x8a, 0, 160]));
        }
        assert_eq!(s.source(), None, "no reply can go to port 0");
        assert_eq!(s.poll_output(), Some(Output::Dtmf('1')));
        input(&mut s, "10.0.0.9:0", &pkt(101, 10, 900, &[2, 0x8a, 0, 160]));
        assert_eq!(s.poll_output(), None, "another host's port 0 is a stranger");
    }

    #[test]
    fn a_caller_behind_nat_is_learned_after_probation_and_then_kept() {
        let mut s = session();
        let nat = "127.0.0.1:40000";
        for seq in 10..10 + PROBATION as u16 - 1 {
            input(&mut s, nat, &pkt(0, seq, seq as u32 * 160, &[0x80; 160]));
        }
        assert_eq!(s.source(), None, "not yet");
        // Out of sequence: probation starts again.
        input(&mut s, nat, &pkt(0, 50, 50 * 160, &[0x80; 160]));
        assert_eq!(s.source(), None);
        for seq in 51..51 + PROBATION as u16 - 1 {
            input(&mut s, nat, &pkt(0, seq, seq as u32 * 160, &[0x80; 160]));
        }
        assert_eq!(s.source(), Some(nat.parse().unwrap()));
        // Now even the SDP address is a stranger; our audio goes to the learned source.
        input(&mut s, CALLER, &pkt(0, 99, 0, &[0; 160]));
        assert_eq!(s.stats().foreign_source, 2 * (PROBATION as u64 - 1) + 1, "probation packets and the SDP's");
        s.play(&[0; 160]);
        let (sent, _) = run(&mut s, 1);
        assert_eq!(sent[0].0, nat.parse::<SocketAddr>().unwrap(), "symmetric RTP");
    }

    #[test]
    fn a_third_host_cannot_pass_probation_before_the_callers_first_packet() {
        // The SIP came from 127.0.0.1 (the SDP's host too). A stranger on another host
        // that finds the port before the caller speaks sends a perfect stream: it stays
        // a stranger, and our audio does not go to it.
        let mut p = SessionParams::new(1);
        p.signalling = Some("127.0.0.1".parse().unwrap());
        let mut s = RtpSession::new(&neg(), &p);
        for seq in 10..10 + 3 * PROBATION as u16 {
            input(&mut s, "198.51.100.7:40000", &pkt(0, seq, seq as u32 * 160, &[0x80; 160]));
        }
        assert_eq!(s.source(), None, "the stranger was learned");
        s.play(&[0; 160]);
        let (sent, _) = run(&mut s, 1);
        assert_eq!(sent[0].0, CALLER.parse::<SocketAddr>().unwrap(), "our audio goes to the SDP address");
        // The caller behind NAT, on its signalling host but another port, is learned.
        for seq in 10..10 + PROBATION as u16 {
            input(&mut s, "127.0.0.1:41000", &pkt(0, seq, seq as u32 * 160, &[0x80; 160]));
        }
        assert_eq!(s.source(), Some("127.0.0.1:41000".parse().unwrap()));
        // With `sdp_addresses = "learned"` the admin said no address is known: any host.
        p.policy = RemotePolicy::Learned;
        let mut s = RtpSession::new(&neg(), &p);
        for seq in 10..10 + PROBATION as u16 {
            input(&mut s, "198.51.100.7:40000", &pkt(0, seq, seq as u32 * 160, &[0x80; 160]));
        }
        assert_eq!(s.source(), Some("198.51.100.7:40000".parse().unwrap()));
    }

    #[test]
    fn nothing_is_sent_before_the_ack_nor_ever_to_a_refused_address() {
        let mut p = SessionParams::new(1);
        p.confirmed = false;
        let mut s = RtpSession::new(&neg(), &p);
        s.play(&[0x11; 320]);
        let (sent, other) = run(&mut s, 10);
        assert!(sent.is_empty() && other.is_empty(), "unconfirmed: withheld");
        assert_eq!(s.stats().withheld, 10);
        s.confirm();
        let (sent, other) = run(&mut s, 2);
        assert_eq!(sent.len(), 2);
        assert_eq!(&sent[0].4, &vec![0x11; 160], "the greeting was paused, not lost");
        assert!(sent[0].1);
        assert!(other.contains(&Output::PlaybackDone));

        // An SDP naming a multicast group: never sent to, confirmed or not.
        let mut multicast = neg();
        multicast.remote = "224.0.0.1:6000".parse().unwrap();
        let mut m = RtpSession::new(&multicast, &SessionParams::new(1));
        assert_eq!(m.unproven_address(), Some("a multicast address"));
        m.play(&[0x11; 1600]);
        assert!(run(&mut m, 50).0.is_empty());
        assert_eq!((m.stats().sent, m.stats().withheld), (0, 50));

        // Before the ACK, the caller's own RTP proves its address.
        let mut early = RtpSession::new(&neg(), &p);
        input(&mut early, CALLER, &pkt(0, 1, 0, &[0x80; 160]));
        early.play(&[0x11; 160]);
        assert_eq!(run(&mut early, 1).0.len(), 1);
    }

    #[test]
    fn hold_pauses_sending_and_resume_goes_on_where_it_was() {
        let mut s = session();
        s.play(&(0..4).flat_map(|i| vec![i as u8; 160]).collect::<Vec<_>>());
        assert_eq!(run(&mut s, 1).0[0].4[0], 0);
        let mut hold = neg();
        hold.direction = Direction::RecvOnly;
        s.retarget(&hold);
        let (sent, _) = run(&mut s, 20);
        assert!(sent.is_empty(), "on hold nothing is sent, not even silence");
        let (sent, _) = {
            s.retarget(&neg());
            run(&mut s, 1)
        };
        assert_eq!(sent[0].4[0], 1, "playback resumes with the next frame");
        assert!(sent[0].1, "a new talkspurt after the pause");
    }

    #[test]
    fn media_that_stops_is_reported_once_and_hold_suspends_the_timeout() {
        let mut p = SessionParams::new(1);
        p.timeout_ticks = 10;
        let mut s = RtpSession::new(&neg(), &p);
        input(&mut s, CALLER, &pkt(0, 1, 0, &[0x80; 160]));
        let (_, other) = run(&mut s, 9);
        assert!(!other.contains(&Output::MediaTimeout));
        input(&mut s, CALLER, &pkt(0, 2, 160, &[0x80; 160]));
        let (_, other) = run(&mut s, 9);
        assert!(!other.contains(&Output::MediaTimeout), "a packet restarts the count");
        let (_, other) = run(&mut s, 20);
        assert_eq!(other.iter().filter(|o| **o == Output::MediaTimeout).count(), 1);

        let mut held = RtpSession::new(&neg(), &p);
        let mut inactive = neg();
        inactive.direction = Direction::Inactive;
        held.retarget(&inactive);
        assert!(!run(&mut held, 50).1.contains(&Output::MediaTimeout), "nobody sends on an inactive stream");
    }

    #[test]
    fn audio_between_telephone_events_in_one_sequence_space_is_neither_lost_nor_delayed() {
        // baresip: audio goes on during a key press, and the event packets take
        // sequence numbers of the same space.
        let mut s = RtpSession::new(&neg(), &SessionParams::new(2));
        let mut seq = 100u16;
        let mut pcm = Vec::new();
        let mut played = Vec::new();
        for frame in 0..200u32 {
            let value = (frame % 100) as u8 + 1;
            input(&mut s, CALLER, &pkt(0, seq, 8000 + frame * 160, &[value; 160]));
            seq += 1;
            if frame % 20 == 5 {
                for _ in 0..3 {
                    input(&mut s, CALLER, &pkt(101, seq, 8000 + frame * 160, &[1, 0x8a, 0, 160]));
                    seq += 1;
                }
            }
            s.handle_tick(&mut pcm);
            played.push(pcm[0]);
        }
        let st = s.stats();
        assert_eq!((st.jitter.lost, st.jitter.overflow, st.jitter.late), (0, 0, 0), "{st:?}");
        // Frame k is played on tick k + 1 (a delay of two frames) to the end: no delay grows.
        let mut dec = Vec::new();
        g711::decode_into(Codec::Pcmu, &[99], &mut dec);
        assert_eq!(played[199], dec[0], "frame 198 (value 99) on tick 199");
        assert_eq!(st.dtmf_packets, 30);
    }

    #[test]
    fn rtcp_reports_go_to_the_rtcp_port_or_the_rtp_port_when_muxed() {
        let mut s = session();
        input(&mut s, CALLER, &pkt(0, 1, 0, &[0x80; 160]));
        let (_, other) = run(&mut s, rtcp::MIN_INTERVAL_TICKS as usize * 2);
        let reports: Vec<_> = other.iter().filter(|o| matches!(o, Output::Rtcp { .. })).collect();
        assert!(!reports.is_empty() && reports.len() <= 4, "every 2.5–7.5 s: {}", reports.len());
        let Output::Rtcp { to, bytes, muxed } = reports[0] else { unreachable!() };
        assert_eq!((*to, *muxed), ("127.0.0.1:6001".parse().unwrap(), false));
        assert_eq!(bytes[1], 200, "an SR: we sent (silence)");
        assert_eq!(u32::from_be_bytes(bytes[28..32].try_into().unwrap()), 5, "a block about the caller's SSRC");
        // Their RTCP is heard from their host only; it keeps the call alive.
        s.handle_rtcp("127.0.0.1:6001".parse().unwrap(), bytes);
        s.handle_rtcp("10.9.9.9:6001".parse().unwrap(), bytes);
        assert_eq!((s.stats().rtcp_received, s.stats().foreign_source), (1, 1));

        let mut muxed = neg();
        muxed.rtcp_mux = true;
        let mut m = RtpSession::new(&muxed, &SessionParams::new(1));
        let (_, other) = run(&mut m, rtcp::MIN_INTERVAL_TICKS as usize * 2);
        assert!(other
            .iter()
            .any(|o| matches!(o, Output::Rtcp { to, muxed: true, .. } if *to == CALLER.parse().unwrap())));
    }

    #[test]
    fn retarget_moves_the_stream_and_re_encodes_what_is_queued() {
        let mut s = session();
        input(&mut s, CALLER, &pkt(0, 1, 0, &[0xff; 160]));
        s.play(&g711::encode(Codec::Pcmu, &[1000; 320]));
        let moved =
            Negotiated { remote: "127.0.0.1:7100".parse().unwrap(), codec: Codec::Pcma, dtmf_pt: None, ..neg() };
        s.retarget(&moved);
        assert_eq!(s.codec(), Codec::Pcma);
        let mut pcm = Vec::new();
        s.handle_tick(&mut pcm);
        let Some(Output::Transmit { to, bytes }) = s.poll_output() else { panic!("a packet") };
        assert_eq!(to, moved.remote, "the new address until the caller's audio comes from it");
        let r = rtp_rs::RtpReader::new(&bytes).unwrap();
        assert_eq!(r.payload_type(), 8);
        assert_eq!(r.payload(), &g711::encode(Codec::Pcma, &g711_round_trip(1000))[..160]);
        // Now PCMU packets are foreign, PCMA ones are heard; DTMF is off.
        input(&mut s, "127.0.0.1:7100", &pkt(8, 2, 160, &[0xd5; 160]));
        input(&mut s, "127.0.0.1:7100", &pkt(0, 3, 320, &[0xff; 160]));
        input(&mut s, "127.0.0.1:7100", &pkt(101, 4, 320, &[1, 0x8a, 0, 160]));
        assert_eq!(s.stats().foreign_pt, 2);
        assert_eq!(s.source(), Some(moved.remote));
    }

    #[test]
    fn an_srtp_call_decrypts_the_caller_and_encrypts_what_it_sends() {
        use crate::sdp::crypto::Agreed;
        use crate::srtp::{MasterKey, Srtp, Suite};
        let suite = Suite::AesCm128HmacSha1_80;
        let agreed = Agreed { tag: 1, suite, theirs: MasterKey::random(suite), ours: MasterKey::random(suite) };
        let n = Negotiated { srtp: Some(agreed.clone()), rtcp_mux: true, ..neg() };
        let mut s = RtpSession::new(&n, &SessionParams::new(1));
        assert_eq!(s.srtp_suite(), Some(suite));
        let mut caller = Srtp::outbound(suite, &agreed.theirs).unwrap();
        let mut hears = Srtp::inbound(suite, &agreed.ours).unwrap();
        // The caller's encrypted audio is heard; plain RTP and a stranger's key are not.
        let mut p = pkt(0, 1, 0, &[0x12; 160]);
        caller.protect(&mut p).unwrap();
        input(&mut s, CALLER, &p);
        input(&mut s, CALLER, &pkt(0, 2, 160, &[0x34; 160]));
        let mut forged = pkt(0, 3, 320, &[0x56; 160]);
        Srtp::outbound(suite, &MasterKey::random(suite)).unwrap().protect(&mut forged).unwrap();
        input(&mut s, CALLER, &forged);
        input(&mut s, CALLER, &p);
        assert_eq!(s.stats().srtp_rejected, 3, "plain, forged and replayed");
        assert_eq!(s.source(), Some(CALLER.parse().unwrap()));
        let mut pcm = Vec::new();
        s.play(&[0x77; 160]);
        s.handle_tick(&mut pcm);
        let mut want = Vec::new();
        g711::decode_into(Codec::Pcmu, &[0x12; 160], &mut want);
        assert_eq!(pcm, want, "the decrypted frame plays out");
        // What goes out is SRTP: no plain payload, and it decrypts under our key.
        let Some(Output::Transmit { bytes, .. }) = s.poll_output() else { panic!("a packet") };
        assert!(!bytes.windows(8).any(|w| w == [0x77; 8]), "payload not in clear");
        let mut clear = bytes.clone();
        hears.unprotect(&mut clear).unwrap();
        assert_eq!(rtp_rs::RtpReader::new(&clear).unwrap().payload(), &[0x77; 160][..]);
        // RTCP is SRTCP: the caller's is heard, ours decrypts.
        let mut report =
            crate::rtp::rtcp::build(&crate::rtp::rtcp::Report { ssrc: 5, cname: "c", sender: None }, None, None);
        caller.protect_rtcp(&mut report).unwrap();
        input(&mut s, CALLER, &report);
        assert_eq!(s.stats().rtcp_received, 1);
        // A re-offer with new keys of theirs: the old key is refused from then on.
        let rekeyed = Agreed { theirs: MasterKey::random(suite), ..agreed.clone() };
        s.retarget(&Negotiated { srtp: Some(rekeyed.clone()), ..n.clone() });
        let mut old = pkt(0, 10, 1600, &[0x12; 160]);
        caller.protect(&mut old).unwrap();
        input(&mut s, CALLER, &old);
        assert_eq!(s.stats().srtp_rejected, 4);
        let mut new = pkt(0, 11, 1760, &[0x12; 160]);
        Srtp::outbound(suite, &rekeyed.theirs).unwrap().protect(&mut new).unwrap();
        input(&mut s, CALLER, &new);
        assert_eq!(s.stats().srtp_rejected, 4, "the new key is heard");
    }

    /// A µ-law round trip of one sample value, as a frame.
    fn g711_round_trip(v: i16) -> Vec<i16> {
        let mut out = Vec::new();
        g711::decode_into(Codec::Pcmu, &g711::encode(Codec::Pcmu, &[v]), &mut out);
        vec![out[0]; 160]
    }
}
