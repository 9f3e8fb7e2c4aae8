//! SDP offer/answer (RFC 3264) for G.711 audio with RFC 4733 telephone events.
//!
//! Parsing never panics; an offer we cannot serve yields [`SdpError`], which the call
//! layer answers with 488 Not Acceptable Here.

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

/// What was agreed for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub remote: SocketAddr,
    pub codec: Codec,
    /// Payload type the offerer chose for telephone-event, if it offered one.
    pub dtmf_pt: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("no SDP offer")]
    Empty,
    #[error("malformed SDP: {0}")]
    Malformed(&'static str),
    #[error("no audio stream with PCMU or PCMA offered")]
    NoCommonCodec,
}

#[derive(Debug)]
struct Media {
    kind: String,
    port: u16,
    proto: String,
    fmts: Vec<String>,
    addr: Option<IpAddr>,
    rtpmaps: Vec<(u8, String)>,
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
                });
            }
            ("a", Some(m)) => {
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
        let usable = m.kind == "audio" && m.port != 0 && m.proto.starts_with("RTP/AVP") && chosen.is_none();
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
                chosen = Some(Negotiated { remote: SocketAddr::new(ip, m.port), codec, dtmf_pt });
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
        f.len() >= 4
            && f[0].eq_ignore_ascii_case("image")
            && f[1] != "0"
            && f[2].to_ascii_lowercase().contains("udptl")
            && f[3..].iter().any(|x| x.eq_ignore_ascii_case("t38"))
    })
}

/// Payload type of telephone-event in our own offers (the usual dynamic choice).
pub const OFFER_DTMF_PT: u8 = 101;

/// Our offer, for an INVITE that came without one (delayed offer: it goes in the 2xx
/// and the caller answers in the ACK): PCMU, PCMA and telephone-event.
pub fn offer(local_ip: IpAddr, local_port: u16, session_id: u64) -> Vec<u8> {
    let d = OFFER_DTMF_PT;
    let mut s = session_header(local_ip, session_id, session_id);
    s.push_str(&format!(
        "m=audio {local_port} RTP/AVP 0 8 {d}\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:{d} telephone-event/8000\r\na=fmtp:{d} 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
    ));
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
            match n.dtmf_pt {
                Some(d) => s.push_str(&format!("m=audio {local_port} RTP/AVP {pt} {d}\r\n")),
                None => s.push_str(&format!("m=audio {local_port} RTP/AVP {pt}\r\n")),
            }
            s.push_str(&format!("a=rtpmap:{pt} {}/8000\r\n", n.codec.name()));
            if let Some(d) = n.dtmf_pt {
                s.push_str(&format!("a=rtpmap:{d} telephone-event/8000\r\na=fmtp:{d} 0-15\r\n"));
            }
            s.push_str("a=ptime:20\r\na=sendrecv\r\n");
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
        let o = offer("127.0.0.1".parse().unwrap(), 20002, 9);
        let text = String::from_utf8(o.clone()).unwrap();
        assert!(text.contains("m=audio 20002 RTP/AVP 0 8 101\r\n"), "{text}");
        let (n, _) = negotiate(&o).unwrap();
        assert_eq!(
            n,
            Negotiated { remote: "127.0.0.1:20002".parse().unwrap(), codec: Codec::Pcmu, dtmf_pt: Some(101) }
        );
        let answer = b"v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 7000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n";
        assert_eq!(
            read_answer(answer).unwrap(),
            Negotiated { remote: "127.0.0.1:7000".parse().unwrap(), codec: Codec::Pcma, dtmf_pt: Some(101) }
        );
        assert_eq!(read_answer(b""), Err(SdpError::Empty));
        assert_eq!(
            read_answer(b"v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 7000 RTP/AVP 18\r\n"),
            Err(SdpError::NoCommonCodec)
        );
    }

    #[test]
    fn picks_first_g711_and_dtmf_and_keeps_line_count() {
        let (n, lines) = negotiate(OFFER.as_bytes()).unwrap();
        assert_eq!(n, Negotiated { remote: "127.0.0.1:6000".parse().unwrap(), codec: Codec::Pcma, dtmf_pt: Some(101) });
        let a = String::from_utf8(answer(&n, &lines, "127.0.0.1".parse().unwrap(), 20000, 7, 7)).unwrap();
        assert!(a.contains("m=video 0 RTP/AVP 96\r\n"));
        assert!(a.contains("m=audio 20000 RTP/AVP 8 101\r\n"));
        assert!(a.find("m=video").unwrap() < a.find("m=audio").unwrap(), "order kept");
        assert!(a.contains("a=rtpmap:101 telephone-event/8000"));
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
