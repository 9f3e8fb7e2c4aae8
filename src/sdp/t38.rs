//! T.38 in SDP (ITU-T T.38 Annex D; RFC 3362's `image/t38`): an `m=image PORT udptl t38`
//! stream with its `a=T38Fax…` attributes, and our answer to it. What the far end
//! claims is bounded: a datagram size of 0, absurd or unreadable is taken as the usual
//! 400 octets, as Asterisk's udptl.c does.

use super::{parse_c, session_header, SdpError};
use crate::udptl::ErrorCorrection;
use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateManagement {
    /// The training check is sent through (the usual choice over UDP).
    TransferredTcf,
    /// Each gateway makes its own (TCP, or gateways that ask for it).
    LocalTcf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpEc {
    None,
    Redundancy,
    Fec,
}

/// The T.38 session parameters of one side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct T38Params {
    pub version: u8,
    pub max_bit_rate: u32,
    pub rate_management: RateManagement,
    pub max_buffer: Option<u32>,
    pub max_datagram: Option<u32>,
    pub udp_ec: UdpEc,
    pub fill_bit_removal: bool,
    pub transcoding_mmr: bool,
    pub transcoding_jbig: bool,
}

impl Default for T38Params {
    fn default() -> Self {
        T38Params {
            version: 0,
            max_bit_rate: 14_400,
            rate_management: RateManagement::TransferredTcf,
            max_buffer: None,
            max_datagram: None,
            udp_ec: UdpEc::None,
            fill_bit_removal: false,
            transcoding_mmr: false,
            transcoding_jbig: false,
        }
    }
}

/// An offered T.38 stream: where to send, what the far end asked for, and the index
/// of its m= line among the offer's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct T38Offer {
    pub remote: SocketAddr,
    pub params: T38Params,
    pub line: usize,
    /// Every m= line of the offer as (media, proto, formats), for the answer's order.
    lines: Vec<(String, String, String)>,
}

/// What both sides agreed, for the UDPTL session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct T38Session {
    pub remote: SocketAddr,
    pub version: u8,
    pub max_bit_rate: u32,
    pub rate_management: RateManagement,
    /// How we protect what we send (what the far end offered, FEC answered as redundancy).
    pub error_correction: ErrorCorrection,
    /// The largest IFP we may send, from the far end's T38FaxMaxDatagram.
    pub far_max_ifp: usize,
}

/// The far end's datagram size when it gives none or one that cannot be right.
pub const DEFAULT_FAR_MAX_DATAGRAM: u32 = 400;
/// What we say we take: our receiver accepts IFPs up to [`crate::udptl::MAX_IFP`].
pub const LOCAL_MAX_DATAGRAM: u32 = 1400;
/// Redundant IFPs we send by default.
const REDUNDANCY: u8 = 3;

/// Reads the first T.38 stream (port not 0) of an offer.
pub fn read_offer(offer: &[u8]) -> Result<T38Offer, SdpError> {
    let text = std::str::from_utf8(offer).map_err(|_| SdpError::Malformed("not UTF-8"))?;
    let mut session_addr: Option<IpAddr> = None;
    let mut lines = Vec::new();
    let mut found: Option<(usize, u16, Option<IpAddr>, T38Params)> = None;
    let mut in_t38 = false;
    for raw in text.lines() {
        let line = raw.trim_end_matches('\r');
        let Some((k, v)) = line.split_once('=') else { continue };
        match k {
            "m" => {
                let f: Vec<&str> = v.split_whitespace().collect();
                if f.len() < 3 {
                    return Err(SdpError::Malformed("bad m= line"));
                }
                lines.push((f[0].to_string(), f[2].to_string(), f[3..].join(" ")));
                let port: u16 =
                    f[1].split('/').next().unwrap_or("").parse().map_err(|_| SdpError::Malformed("bad m= port"))?;
                in_t38 = found.is_none() && port != 0 && super::is_t38_media(&f);
                if in_t38 {
                    found = Some((lines.len() - 1, port, None, T38Params::default()));
                }
            }
            "c" if lines.is_empty() => session_addr = Some(parse_c(v)?),
            "c" if in_t38 => {
                if let Some(f) = found.as_mut() {
                    f.2 = Some(parse_c(v)?);
                }
            }
            "a" if in_t38 => {
                if let Some(f) = found.as_mut() {
                    attribute(&mut f.3, v);
                }
            }
            _ => {}
        }
    }
    let Some((line, port, addr, params)) = found else { return Err(SdpError::Malformed("no T.38 stream offered")) };
    let ip = addr.or(session_addr).ok_or(SdpError::Malformed("no c= address for the T.38 stream"))?;
    Ok(T38Offer { remote: SocketAddr::new(ip, port), params, line, lines })
}

/// One `a=` attribute of the T.38 stream; unknown ones and unreadable values are
/// ignored (the defaults stand).
fn attribute(p: &mut T38Params, v: &str) {
    let (name, value) = match v.split_once(':') {
        Some((n, val)) => (n.trim(), Some(val.trim())),
        None => (v.trim(), None),
    };
    let number = || value.and_then(|x| x.parse::<u32>().ok());
    // A boolean attribute is true when present, unless it says 0 (some stacks write :0).
    let flag = || value.is_none_or(|x| x != "0");
    match name.to_ascii_lowercase().as_str() {
        "t38faxversion" => p.version = number().map_or(0, |n| n.min(255) as u8),
        "t38maxbitrate" | "t38faxmaxrate" => {
            if let Some(n) = number() {
                p.max_bit_rate = n;
            }
        }
        "t38faxratemanagement" => {
            p.rate_management = if value.is_some_and(|x| x.eq_ignore_ascii_case("localTCF")) {
                RateManagement::LocalTcf
            } else {
                RateManagement::TransferredTcf
            }
        }
        "t38faxmaxbuffer" => p.max_buffer = number(),
        "t38faxmaxdatagram" | "t38maxdatagram" => p.max_datagram = number(),
        "t38faxudpec" => {
            p.udp_ec = match value.map(str::to_ascii_lowercase).as_deref() {
                Some("t38udpredundancy") => UdpEc::Redundancy,
                Some("t38udpfec") => UdpEc::Fec,
                _ => UdpEc::None,
            }
        }
        "t38faxfillbitremoval" => p.fill_bit_removal = flag(),
        "t38faxtranscodingmmr" => p.transcoding_mmr = flag(),
        "t38faxtranscodingjbig" => p.transcoding_jbig = flag(),
        _ => {}
    }
}

/// The largest IFP that fits the far end's datagrams with our error correction (as
/// Asterisk's udptl.c derives it, 5 % kept spare); redundancy sends fewer repeats
/// rather than IFPs under 80 octets.
pub fn far_max_ifp(far_max_datagram: Option<u32>, ec: ErrorCorrection) -> (usize, ErrorCorrection) {
    let d = match far_max_datagram {
        Some(d) if (40..=LOCAL_MAX_DATAGRAM).contains(&d) => d as usize,
        _ => DEFAULT_FAR_MAX_DATAGRAM as usize,
    };
    let (raw, ec) = match ec {
        ErrorCorrection::None => (d - 5, ec),
        ErrorCorrection::Redundancy(mut n) => loop {
            let each = (d - 8) / (n as usize + 1);
            if each < 80 && n > 1 {
                n -= 1;
            } else {
                break (each, ErrorCorrection::Redundancy(n));
            }
        },
        ErrorCorrection::Fec { .. } => ((d - 10) / 2, ec),
    };
    (raw * 95 / 100, ec)
}

/// Our answer to a T.38 offer: version and bit rate no higher than offered (we do
/// versions 0 to 3 and V.17's 14,400 bit/s), the offered rate management, redundancy
/// when redundancy or FEC was offered, no fill-bit removal or transcoding; every other
/// m= line refused (port 0), in the offer's order.
pub fn answer(
    offer: &T38Offer,
    local_ip: IpAddr,
    local_port: u16,
    session_id: u64,
    version: u64,
) -> (T38Session, Vec<u8>) {
    let p = &offer.params;
    let t38_version = p.version.min(3);
    let bit_rate = p.max_bit_rate.clamp(2_400, 14_400);
    let (udp_ec, ec) = match p.udp_ec {
        UdpEc::None => (UdpEc::None, ErrorCorrection::None),
        UdpEc::Redundancy | UdpEc::Fec => (UdpEc::Redundancy, ErrorCorrection::Redundancy(REDUNDANCY)),
    };
    let (max_ifp, ec) = far_max_ifp(p.max_datagram, ec);
    let mut s = session_header(local_ip, session_id, version);
    for (i, (media, proto, fmts)) in offer.lines.iter().enumerate() {
        if i != offer.line {
            s.push_str(&format!("m={media} 0 {proto} {fmts}\r\n"));
            continue;
        }
        s.push_str(&format!("m=image {local_port} udptl t38\r\n"));
        s.push_str(&format!("a=T38FaxVersion:{t38_version}\r\na=T38MaxBitRate:{bit_rate}\r\n"));
        s.push_str(match p.rate_management {
            RateManagement::TransferredTcf => "a=T38FaxRateManagement:transferredTCF\r\n",
            RateManagement::LocalTcf => "a=T38FaxRateManagement:localTCF\r\n",
        });
        s.push_str(&format!("a=T38FaxMaxBuffer:{LOCAL_MAX_DATAGRAM}\r\na=T38FaxMaxDatagram:{LOCAL_MAX_DATAGRAM}\r\n"));
        s.push_str(match udp_ec {
            UdpEc::Redundancy => "a=T38FaxUdpEC:t38UDPRedundancy\r\n",
            _ => "a=T38FaxUdpEC:t38UDPNoEC\r\n",
        });
    }
    let session = T38Session {
        remote: offer.remote,
        version: t38_version,
        max_bit_rate: bit_rate,
        rate_management: p.rate_management,
        error_correction: ec,
        far_max_ifp: max_ifp,
    };
    (session, s.into_bytes())
}

/// Our own T.38 offer (a re-INVITE after a fax tone): version 0 (every gateway takes
/// it), 14,400 bit/s, transferred TCF, redundancy. The audio stream keeps its place,
/// refused (port 0), as RFC 3264 §8 wants of a changed session.
pub fn offer(local_ip: IpAddr, local_port: u16, session_id: u64, version: u64) -> Vec<u8> {
    let mut s = session_header(local_ip, session_id, version);
    s.push_str("m=audio 0 RTP/AVP 0\r\n");
    s.push_str(&format!("m=image {local_port} udptl t38\r\n"));
    s.push_str("a=T38FaxVersion:0\r\na=T38MaxBitRate:14400\r\na=T38FaxRateManagement:transferredTCF\r\n");
    s.push_str(&format!("a=T38FaxMaxBuffer:{LOCAL_MAX_DATAGRAM}\r\na=T38FaxMaxDatagram:{LOCAL_MAX_DATAGRAM}\r\n"));
    s.push_str("a=T38FaxUdpEC:t38UDPRedundancy\r\n");
    s.into_bytes()
}

/// The far end's answer to [`offer`]: the session it agreed (no higher than we
/// offered); an error when it accepted no T.38 stream.
pub fn read_answer(answer: &[u8]) -> Result<T38Session, SdpError> {
    let a = read_offer(answer)?;
    let p = &a.params;
    let ec = match p.udp_ec {
        UdpEc::None => ErrorCorrection::None,
        UdpEc::Redundancy | UdpEc::Fec => ErrorCorrection::Redundancy(REDUNDANCY),
    };
    let (far_max_ifp, error_correction) = far_max_ifp(p.max_datagram, ec);
    Ok(T38Session {
        remote: a.remote,
        version: p.version.min(3),
        max_bit_rate: p.max_bit_rate.clamp(2_400, 14_400),
        rate_management: p.rate_management,
        error_correction,
        far_max_ifp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An offer as Asterisk and most gateways send it, beside a refused audio stream.
    const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
        m=audio 0 RTP/AVP 0\r\n\
        m=image 4000 udptl t38\r\nc=IN IP4 192.0.2.11\r\na=T38FaxVersion:1\r\na=T38MaxBitRate:14400\r\n\
        a=T38FaxRateManagement:transferredTCF\r\na=T38FaxMaxBuffer:200\r\na=T38FaxMaxDatagram:400\r\n\
        a=T38FaxUdpEC:t38UDPRedundancy\r\na=T38FaxFillBitRemoval\r\na=T38FaxTranscodingMMR:0\r\n";

    #[test]
    fn an_offer_is_read_with_its_attributes() {
        let o = read_offer(OFFER.as_bytes()).unwrap();
        assert_eq!(o.remote, "192.0.2.11:4000".parse().unwrap(), "the media-level c= wins");
        assert_eq!(o.line, 1);
        let p = &o.params;
        assert_eq!((p.version, p.max_bit_rate, p.max_datagram, p.udp_ec), (1, 14_400, Some(400), UdpEc::Redundancy));
        assert!(p.fill_bit_removal && !p.transcoding_mmr && !p.transcoding_jbig);
        // Lower-case names and localTCF; no attributes at all: the defaults.
        let o =
            read_offer(b"c=IN IP4 10.0.0.1\r\nm=image 5000 UDPTL T38\r\na=t38faxratemanagement:localTCF\r\n").unwrap();
        assert_eq!(o.params.rate_management, RateManagement::LocalTcf);
        assert_eq!((o.params.version, o.params.udp_ec, o.params.max_datagram), (0, UdpEc::None, None));
    }

    #[test]
    fn bad_offers_are_errors() {
        for bad in [
            &b"m=image 0 udptl t38\r\nc=IN IP4 1.2.3.4\r\n"[..],
            b"m=audio 4000 RTP/AVP 0\r\n",
            b"m=image 4000 udptl t38\r\n",
            b"c=IN IP4 1.2.3.4\r\nm=image x udptl t38\r\n",
            b"\xff\xfe",
        ] {
            assert!(read_offer(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn the_answer_keeps_the_offer_order_and_agrees_downwards() {
        let o = read_offer(OFFER.as_bytes()).unwrap();
        let (s, sdp) = answer(&o, "127.0.0.1".parse().unwrap(), 30000, 7, 8);
        let sdp = String::from_utf8(sdp).unwrap();
        let m: Vec<&str> = sdp.lines().filter(|l| l.starts_with("m=")).collect();
        assert_eq!(m, ["m=audio 0 RTP/AVP 0", "m=image 30000 udptl t38"]);
        for want in [
            "a=T38FaxVersion:1",
            "a=T38MaxBitRate:14400",
            "a=T38FaxRateManagement:transferredTCF",
            "a=T38FaxUdpEC:t38UDPRedundancy",
            "a=T38FaxMaxDatagram:1400",
        ] {
            assert!(sdp.contains(want), "{want} in\n{sdp}");
        }
        assert!(!sdp.contains("FillBitRemoval") && !sdp.contains("MMR") && !sdp.contains("JBIG"), "{sdp}");
        // 400-octet datagrams with 3 repeats: (400-8)/4 = 98, 95 % of it.
        assert_eq!((s.error_correction, s.far_max_ifp), (ErrorCorrection::Redundancy(3), 93));
        // A version beyond ours and a rate beyond V.17 are answered with ours.
        let high = read_offer(b"c=IN IP4 1.2.3.4\r\nm=image 9 udptl t38\r\na=T38FaxVersion:5\r\na=T38MaxBitRate:33600\r\na=T38FaxUdpEC:t38UDPFEC\r\n").unwrap();
        let (s, sdp) = answer(&high, "127.0.0.1".parse().unwrap(), 30000, 7, 7);
        assert_eq!((s.version, s.max_bit_rate), (3, 14_400));
        assert!(String::from_utf8(sdp).unwrap().contains("t38UDPRedundancy"), "FEC offered: redundancy answered");
    }

    #[test]
    fn absurd_datagram_sizes_are_not_trusted() {
        let red = ErrorCorrection::Redundancy(3);
        for silly in [None, Some(0), Some(10), Some(100_000)] {
            assert_eq!(far_max_ifp(silly, red), far_max_ifp(Some(DEFAULT_FAR_MAX_DATAGRAM), red), "{silly:?}");
        }
        // Small datagrams: fewer repeats rather than tiny IFPs.
        assert_eq!(far_max_ifp(Some(200), red), ((200 - 8) / 2 * 95 / 100, ErrorCorrection::Redundancy(1)));
        assert_eq!(far_max_ifp(Some(1400), ErrorCorrection::None).0, (1400 - 5) * 95 / 100);
    }

    #[test]
    fn our_offer_keeps_the_audio_line_and_the_answer_is_read_back() {
        let o = String::from_utf8(offer("127.0.0.1".parse().unwrap(), 30002, 9, 10)).unwrap();
        let m: Vec<&str> = o.lines().filter(|l| l.starts_with("m=")).collect();
        assert_eq!(m, ["m=audio 0 RTP/AVP 0", "m=image 30002 udptl t38"]);
        assert!(o.contains("o=voxbridge 9 10 ") && o.contains("a=T38FaxUdpEC:t38UDPRedundancy"), "{o}");
        // Our offer read as the far end reads it: the image stream, at our port.
        assert_eq!(read_offer(o.as_bytes()).unwrap().remote, "127.0.0.1:30002".parse().unwrap());
        let answer = b"v=0\r\nc=IN IP4 10.1.1.1\r\nm=audio 0 RTP/AVP 0\r\nm=image 5004 udptl t38\r\n\
            a=T38FaxVersion:0\r\na=T38FaxMaxDatagram:200\r\na=T38FaxUdpEC:t38UDPRedundancy\r\n";
        let s = read_answer(answer).unwrap();
        assert_eq!(s.remote, "10.1.1.1:5004".parse().unwrap());
        assert_eq!((s.version, s.error_correction, s.far_max_ifp), (0, ErrorCorrection::Redundancy(1), 91));
        // An answer that refused the image stream (port 0) is no T.38 session.
        assert!(read_answer(b"v=0\r\nc=IN IP4 10.1.1.1\r\nm=audio 0 RTP/AVP 0\r\nm=image 0 udptl t38\r\n").is_err());
    }
}
