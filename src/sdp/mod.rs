//! SDP offer/answer (RFC 3264) for G.711 audio with RFC 4733 telephone events.
//!
//! Parsing never panics; an offer we cannot serve yields [`SdpError`], which the call
//! layer answers with 488 Not Acceptable Here.

pub mod crypto;
pub mod t38;

use crypto::{Agreed, Attribute, Crypto, OurOffer};
use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Pcmu,
    Pcma,
}

impl Codec {
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }
}

/// Which way media flows (RFC 3264 §5.1, §6.1), always from our side: `SendOnly` means
/// we send and the far end only listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    #[default]
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn parse(attr: &str) -> Option<Direction> {
        Some(match attr {
            "sendrecv" => Direction::SendRecv,
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => return None,
        })
    }

    /// The other side's view of the same stream: an offer to send only is answered by
    /// receiving only (RFC 3264 §6.1), and so on.
    pub fn reverse(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }

    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    fn without_send(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::RecvOnly,
            Direction::SendOnly => Direction::Inactive,
            d => d,
        }
    }

    pub fn attribute(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
}

/// What was agreed for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub remote: SocketAddr,
    pub codec: Codec,
    /// Payload type the offerer chose for telephone-event, if it offered one.
    pub dtmf_pt: Option<u8>,
    /// Our direction: a hold offer (`a=sendonly`, or the old `c=0.0.0.0`) leaves us
    /// receiving only; `a=inactive` neither way.
    pub direction: Direction,
    /// RTCP on the RTP port (RFC 5761), when the other side offered or accepted it.
    pub rtcp_mux: bool,
    /// The stream's profile was RTP/SAVP (or SAVPF): it must be answered with SRTP or
    /// refused (RFC 4568 §7.1.2).
    pub savp: bool,
    /// The stream's usable `a=crypto` attributes (RFC 4568), in the sender's order.
    pub crypto: Vec<Crypto>,
    /// SRTP agreed for the call, both keys — set by the session layer's keying
    /// (`session::keying`), never by parsing.
    pub srtp: Option<Agreed>,
}

impl Negotiated {
    /// Plain audio to `remote` in `codec`, both ways, nothing else negotiated (tests,
    /// and the resting RTP session of a T.38 call).
    pub fn plain(remote: SocketAddr, codec: Codec) -> Negotiated {
        Negotiated {
            remote,
            codec,
            dtmf_pt: None,
            direction: Direction::SendRecv,
            rtcp_mux: false,
            savp: false,
            crypto: Vec::new(),
            srtp: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("no SDP offer")]
    Empty,
    #[error("malformed SDP: {0}")]
    Malformed(&'static str),
    #[error("no audio stream with PCMU or PCMA offered")]
    NoCommonCodec,
    #[error("media address {0} cannot be reached from this server's {1} media address")]
    AddressFamily(IpAddr, &'static str),
    /// The media's protection cannot be agreed: SRTP required and not offered, offered
    /// and turned off, keys that came without TLS…
    #[error("{0}")]
    Srtp(String),
}

/// Refuses a negotiation whose media address our socket cannot send to (an IPv6
/// address for an IPv4 media address, or the other way round): silence both ways
/// otherwise, for the whole call.
pub fn check_family(n: &Negotiated, local_ip: IpAddr) -> Result<(), SdpError> {
    check_family_of(n.remote.ip(), local_ip)
}

/// [`check_family`] for any stream's address (T.38's too).
pub fn check_family_of(remote: IpAddr, local_ip: IpAddr) -> Result<(), SdpError> {
    let mapped = matches!(remote, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some());
    match (local_ip, remote) {
        (IpAddr::V4(_), IpAddr::V6(_)) if !mapped => Err(SdpError::AddressFamily(remote, "IPv4")),
        (IpAddr::V6(_), IpAddr::V4(_)) => Err(SdpError::AddressFamily(remote, "IPv6")),
        _ => Ok(()),
    }
}

#[derive(Debug)]
struct Media {
    kind: String,
    port: u16,
    proto: String,
    fmts: Vec<String>,
    addr: Option<IpAddr>,
    rtpmaps: Vec<(u8, String)>,
    direction: Option<Direction>,
    rtcp_mux: bool,
    crypto: Vec<Crypto>,
}

fn parse_c(value: &str) -> Result<IpAddr, SdpError> {
    // c=IN IP4 127.0.0.1 (a multicast TTL suffix is cut off).
    let mut it = value.split_whitespace();
    let (Some("IN"), Some(_), Some(addr)) = (it.next(), it.next(), it.next()) else {
        return Err(SdpError::Malformed("bad c= line"));
    };
    addr.split('/').next().unwrap_or(addr).parse().map_err(|_| SdpError::Malformed("bad c= address"))
}

/// Parses an offer and picks what we will use.
pub fn negotiate(offer: &[u8]) -> Result<(Negotiated, Vec<String>), SdpError> {
    let text = std::str::from_utf8(offer).map_err(|_| SdpError::Malformed("not UTF-8"))?;
    if text.trim().is_empty() {
        return Err(SdpError::Empty);
    }
    let mut session_addr = None;
    let mut session_direction = None;
    let mut media: Vec<Media> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        match (k, media.last_mut()) {
            ("c", None) => session_addr = Some(parse_c(v)?),
            ("c", Some(m)) => m.addr = Some(parse_c(v)?),
            ("m", _) => {
                let mut it = v.split_whitespace();
                let kind = it.next().ok_or(SdpError::Malformed("empty m= line"))?.to_string();
                let port = it.next().ok_or(SdpError::Malformed("m= line without port"))?;
                let port: u16 =
                    port.split('/').next().unwrap_or(port).parse().map_err(|_| SdpError::Malformed("bad m= port"))?;
                let proto = it.next().ok_or(SdpError::Malformed("m= line without protocol"))?.to_string();
                media.push(Media {
                    kind,
                    port,
                    proto,
                    fmts: it.map(str::to_string).collect(),
                    addr: None,
                    rtpmaps: vec![],
                    direction: None,
                    rtcp_mux: false,
                    crypto: Vec::new(),
                });
            }
            ("a", None) => session_direction = Direction::parse(v.trim()).or(session_direction),
            ("a", Some(m)) => {
                let v = v.trim();
                if let Some(d) = Direction::parse(v) {
                    m.direction = Some(d);
                }
                m.rtcp_mux |= v == "rtcp-mux";
                if let Some(value) = v.strip_prefix("crypto:") {
                    // One attribute we cannot read is one choice less, not a broken offer.
                    match crypto::parse(value) {
                        Ok(Attribute::Usable(c)) => m.crypto.push(c),
                        Ok(Attribute::Unusable(why)) | Err(why) => {
                            tracing::debug!(reason = why, "a=crypto attribute skipped")
                        }
                    }
                }
                if let Some(rest) = v.strip_prefix("rtpmap:") {
                    let (pt, enc) = rest.split_once(' ').ok_or(SdpError::Malformed("bad rtpmap"))?;
                    let pt: u8 = pt.trim().parse().map_err(|_| SdpError::Malformed("bad rtpmap payload type"))?;
                    m.rtpmaps.push((pt, enc.trim().to_ascii_lowercase()));
                }
            }
            _ => {}
        }
    }
    if media.is_empty() {
        return Err(SdpError::Malformed("no m= line"));
    }
    let mut chosen: Option<Negotiated> = None;
    let mut answer_lines = Vec::new();
    for m in &media {
        let savp = m.proto.starts_with("RTP/SAVP");
        let usable = m.kind == "audio" && m.port != 0 && (m.proto.starts_with("RTP/AVP") || savp) && chosen.is_none();
        let mut codec = None;
        let mut dtmf_pt = None;
        if usable {
            for f in &m.fmts {
                let Ok(pt) = f.parse::<u8>() else { continue };
                let name = m.rtpmaps.iter().find(|(p, _)| *p == pt).map(|(_, n)| n.as_str());
                let c = match (pt, name) {
                    (_, Some(n)) if n.starts_with("pcmu/8000") => Some(Codec::Pcmu),
                    (_, Some(n)) if n.starts_with("pcma/8000") => Some(Codec::Pcma),
                    (0, None) => Some(Codec::Pcmu),
                    (8, None) => Some(Codec::Pcma),
                    _ => None,
                };
                if codec.is_none() {
                    codec = c;
                }
                if name.is_some_and(|n| n.starts_with("telephone-event/8000")) {
                    dtmf_pt.get_or_insert(pt);
                }
            }
        }
        match (codec, m.addr.or(session_addr)) {
            (Some(codec), Some(ip)) => {
                let theirs = m.direction.or(session_direction).unwrap_or_default();
                // RFC 2543 hold: "c=0.0.0.0" means "do not send to me".
                let direction = if ip.is_unspecified() { theirs.reverse().without_send() } else { theirs.reverse() };
                let remote = SocketAddr::new(ip, m.port);
                let crypto = m.crypto.clone();
                chosen = Some(Negotiated {
                    remote,
                    codec,
                    dtmf_pt,
                    direction,
                    rtcp_mux: m.rtcp_mux,
                    savp,
                    crypto,
                    srtp: None,
                });
                answer_lines.push(String::new()); // placeholder for our accepted stream
            }
            (Some(_), None) => return Err(SdpError::Malformed("audio stream without c= address")),
            _ => {
                answer_lines.push(format!("m={} 0 {} {}", m.kind, m.proto, m.fmts.first().map_or("0", |s| s.as_str())))
            }
        }
    }
    let n = chosen.ok_or(SdpError::NoCommonCodec)?;
    Ok((n, answer_lines))
}

fn session_header(local_ip: IpAddr, session_id: u64, version: u64) -> String {
    let ipv = if local_ip.is_ipv4() { "IP4" } else { "IP6" };
    format!("v=0\r\no=voxbridge {session_id} {version} IN {ipv} {local_ip}\r\ns=voxbridge\r\nc=IN {ipv} {local_ip}\r\nt=0 0\r\n")
}

/// Whether an offer has a T.38 fax stream (`m=image … udptl t38`, port not 0), alone
/// or beside audio: the application decides (a fax application can take it).
pub fn offers_t38(offer: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(offer) else { return false };
    text.lines().filter_map(|l| l.trim_end_matches('\r').strip_prefix("m=")).any(|m| {
        let f: Vec<&str> = m.split_whitespace().collect();
        f.len() >= 2 && f[1] != "0" && is_t38_media(&f)
    })
}

/// Whether an m= line's fields (media, port, proto, formats…) are a T.38 stream:
/// `image`, a UDPTL transport, the `t38` format (port not looked at).
fn is_t38_media(f: &[&str]) -> bool {
    f.len() >= 4
        && f[0].eq_ignore_ascii_case("image")
        && f[2].to_ascii_lowercase().contains("udptl")
        && f[3..].iter().any(|x| x.eq_ignore_ascii_case("t38"))
}

/// Payload type of telephone-event in our own offers (the usual dynamic choice).
pub const OFFER_DTMF_PT: u8 = 101;

/// Our offer, for an INVITE that came without one (delayed offer: it goes in the 2xx
/// and the caller answers in the ACK) and for the calls we place: PCMU, PCMA and
/// telephone-event, with our SDES keys when `keys` has any (RTP/SAVP when SRTP is
/// required, else RTP/AVP with the keys beside it: SRTP if the far end takes it).
pub fn offer(local_ip: IpAddr, local_port: u16, session_id: u64, keys: &OurOffer) -> Vec<u8> {
    let d = OFFER_DTMF_PT;
    let mut s = session_header(local_ip, session_id, session_id);
    let proto = if keys.savp { "RTP/SAVP" } else { "RTP/AVP" };
    s.push_str(&format!(
        "m=audio {local_port} {proto} 0 8 {d}\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:{d} telephone-event/8000\r\na=fmtp:{d} 0-15\r\na=ptime:20\r\na=rtcp-mux\r\na=sendrecv\r\n"
    ));
    for c in &keys.keys {
        s.push_str(&crypto::line(c.tag, c.suite, &c.key));
    }
    s.into_bytes()
}

/// Reads the caller's answer to [`offer`]: the codec it chose and where to send.
pub fn read_answer(answer: &[u8]) -> Result<Negotiated, SdpError> {
    negotiate(answer).map(|(n, _)| n)
}

/// Builds our answer: one m= line per offered one, ours accepted, the rest port 0.
/// `version` is the o= line's session version: the first answer has the session id,
/// and each changed description after it one more (RFC 3264 §8).
pub fn answer(
    n: &Negotiated,
    rejected_lines: &[String],
    local_ip: IpAddr,
    local_port: u16,
    session_id: u64,
    version: u64,
) -> Vec<u8> {
    let mut s = session_header(local_ip, session_id, version);
    for line in rejected_lines {
        if line.is_empty() {
            let pt = n.codec.payload_type();
            let proto = if n.savp { "RTP/SAVP" } else { "RTP/AVP" };
            match n.dtmf_pt {
                Some(d) => s.push_str(&format!("m=audio {local_port} {proto} {pt} {d}\r\n")),
                None => s.push_str(&format!("m=audio {local_port} {proto} {pt}\r\n")),
            }
            s.push_str(&format!("a=rtpmap:{pt} {}/8000\r\n", n.codec.name()));
            if let Some(d) = n.dtmf_pt {
                s.push_str(&format!("a=rtpmap:{d} telephone-event/8000\r\na=fmtp:{d} 0-15\r\n"));
            }
            s.push_str("a=ptime:20\r\n");
            if n.rtcp_mux {
                s.push_str("a=rtcp-mux\r\n");
            }
            s.push_str(&format!("a={}\r\n", n.direction.attribute()));
            if let Some(a) = &n.srtp {
                s.push_str(&crypto::line(a.tag, a.suite, &a.ours));
            }
        } else {
            s.push_str(line);
            s.push_str("\r\n");
        }
    }
    s.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=video 5000 RTP/AVP 96\r\nm=audio 6000 RTP/AVP 18 8 0 101\r\na=rtpmap:18 G729/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n";

    #[test]
    fn our_offer_reads_back_and_an_answer_is_read() {
        let o = offer("127.0.0.1".parse().unwrap(), 20002, 9, &OurOffer::default());
        let text = String::from_utf8(o.clone()).unwrap();
        assert!(text.contains("m=audio 20002 RTP/AVP 0 8 101\r\n"), "{text}");
        let (n, _) = negotiate(&o).unwrap();
        assert_eq!((n.remote, n.codec, n.dtmf_pt), ("127.0.0.1:20002".parse().unwrap(), Codec::Pcmu, Some(101)));
        assert!(n.rtcp_mux, "we offer RTCP multiplexing");
        let answer = b"v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 7000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n";
        let a = read_answer(answer).unwrap();
        assert_eq!((a.remote, a.codec, a.dtmf_pt), ("127.0.0.1:7000".parse().unwrap(), Codec::Pcma, Some(101)));
        assert_eq!((a.direction, a.rtcp_mux), (Direction::SendRecv, false), "they did not accept multiplexing");
        assert_eq!(read_answer(b""), Err(SdpError::Empty));
        assert_eq!(
            read_answer(b"v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 7000 RTP/AVP 18\r\n"),
            Err(SdpError::NoCommonCodec)
        );
    }

    #[test]
    fn picks_first_g711_and_dtmf_and_keeps_line_count() {
        let (n, lines) = negotiate(OFFER.as_bytes()).unwrap();
        assert_eq!((n.remote, n.codec, n.dtmf_pt), ("127.0.0.1:6000".parse().unwrap(), Codec::Pcma, Some(101)));
        let a = String::from_utf8(answer(&n, &lines, "127.0.0.1".parse().unwrap(), 20000, 7, 7)).unwrap();
        assert!(a.contains("m=video 0 RTP/AVP 96\r\n"));
        assert!(a.contains("m=audio 20000 RTP/AVP 8 101\r\n"));
        assert!(a.find("m=video").unwrap() < a.find("m=audio").unwrap(), "order kept");
        assert!(a.contains("a=rtpmap:101 telephone-event/8000"));
    }

    #[test]
    fn hold_and_resume_directions_are_answered_per_rfc_3264() {
        let dir = |offer: &str| negotiate(offer.as_bytes()).unwrap().0.direction;
        assert_eq!(dir(OFFER), Direction::SendRecv);
        assert_eq!(dir(&format!("{OFFER}a=sendonly\r\n")), Direction::RecvOnly, "hold: we only listen");
        assert_eq!(dir(&format!("{OFFER}a=inactive\r\n")), Direction::Inactive);
        assert_eq!(dir(&format!("{OFFER}a=recvonly\r\n")), Direction::SendOnly);
        // A session-level attribute applies unless the stream has its own.
        let session_level = OFFER.replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n");
        assert_eq!(dir(&session_level), Direction::RecvOnly);
        assert_eq!(dir(&format!("{session_level}a=sendrecv\r\n")), Direction::SendRecv);
        // RFC 2543 hold.
        assert_eq!(dir(&OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0")), Direction::RecvOnly);
        let (n, lines) = negotiate(format!("{OFFER}a=sendonly\r\na=rtcp-mux\r\n").as_bytes()).unwrap();
        let a = String::from_utf8(answer(&n, &lines, "127.0.0.1".parse().unwrap(), 20000, 7, 8)).unwrap();
        assert!(a.contains("a=recvonly\r\n") && !a.contains("sendrecv"), "{a}");
        assert!(a.contains("a=rtcp-mux\r\n"), "{a}");
    }

    #[test]
    fn an_address_family_the_socket_cannot_reach_is_refused() {
        let v6 = OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP6 ::1");
        let (n, _) = negotiate(v6.as_bytes()).unwrap();
        let e = check_family(&n, "127.0.0.1".parse().unwrap()).unwrap_err();
        assert_eq!(e.to_string(), "media address ::1 cannot be reached from this server's IPv4 media address");
        assert!(check_family(&n, "::1".parse().unwrap()).is_ok());
        let (n4, _) = negotiate(OFFER.as_bytes()).unwrap();
        assert!(check_family(&n4, "127.0.0.1".parse().unwrap()).is_ok());
        assert!(check_family(&n4, "::1".parse().unwrap()).is_err());
    }

    #[test]
    fn refuses_what_it_cannot_serve() {
        let g729 = OFFER.replace("18 8 0 101", "18");
        assert_eq!(negotiate(g729.as_bytes()).unwrap_err(), SdpError::NoCommonCodec);
        assert_eq!(negotiate(b"").unwrap_err(), SdpError::Empty);
        assert!(matches!(negotiate(b"v=0\r\nc=IN IP4 nonsense\r\n"), Err(SdpError::Malformed(_))));
        assert!(matches!(negotiate(b"v=0\r\nm=audio x RTP/AVP 0\r\n"), Err(SdpError::Malformed(_))));
        assert!(matches!(negotiate(b"\xff"), Err(SdpError::Malformed(_))));
    }

    #[test]
    fn a_t38_stream_is_seen_alone_or_beside_audio_and_not_when_refused() {
        let t38 = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=image 7000 udptl t38\r\na=T38FaxVersion:0\r\n";
        assert!(offers_t38(t38.as_bytes()));
        assert!(offers_t38(format!("{OFFER}m=image 7000 UDPTL T38\r\n").as_bytes()));
        assert!(!offers_t38(OFFER.as_bytes()), "audio and video only");
        assert!(!offers_t38(b"m=image 0 udptl t38\r\n"), "port 0: refused stream");
        assert!(!offers_t38(b"m=image 7000 udptl\r\n"), "no format");
        assert!(!offers_t38(&[0xff, 0xfe]), "not text");
        // The audio beside it is still negotiated for an application that keeps audio.
        let both = format!("{OFFER}m=image 7000 udptl t38\r\n");
        let (n, lines) = negotiate(both.as_bytes()).unwrap();
        assert_eq!(n.codec, Codec::Pcma);
        assert_eq!(lines.last().unwrap(), "m=image 0 udptl t38");
    }
}
