//! G.711 µ-law and A-law (ITU-T G.711), sample by sample.

use crate::sdp::Codec;

pub fn ulaw_encode(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut s = sample as i32;
    let sign = if s < 0 { 0x80 } else { 0 };
    if s < 0 {
        s = -s;
    }
    s = s.min(CLIP) + BIAS;
    let exponent = (7 - ((s as u32) << 17).leading_zeros().min(7)) as i32;
    let mantissa = (s >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

pub fn ulaw_decode(byte: u8) -> i16 {
    let b = !byte;
    let sign = b & 0x80;
    let exponent = ((b >> 4) & 0x07) as i32;
    let mantissa = (b & 0x0f) as i32;
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    (if sign != 0 { -magnitude } else { magnitude }) as i16
}

pub fn alaw_encode(sample: i16) -> u8 {
    let mut s = sample as i32;
    let sign = if s >= 0 { 0x80 } else { 0 };
    if s < 0 {
        s = -s - 1;
    }
    s = s.min(32767);
    let byte = if s < 256 {
        (s >> 4) as u8
    } else {
        let exponent = 31 - (s as u32).leading_zeros() - 7; // 1..=7
        let mantissa = (s >> (exponent + 3)) & 0x0f;
        ((exponent << 4) as u8) | mantissa as u8
    };
    (byte | sign) ^ 0x55
}

pub fn alaw_decode(byte: u8) -> i16 {
    let b = byte ^ 0x55;
    let sign = b & 0x80;
    let exponent = ((b >> 4) & 0x07) as i32;
    let mantissa = (b & 0x0f) as i32;
    let magnitude = if exponent == 0 { (mantissa << 4) + 8 } else { ((mantissa << 4) + 0x108) << (exponent - 1) };
    (if sign != 0 { magnitude } else { -magnitude }) as i16
}

pub fn encode(codec: Codec, pcm: &[i16]) -> Vec<u8> {
    match codec {
        Codec::Pcmu => pcm.iter().map(|&s| ulaw_encode(s)).collect(),
        Codec::Pcma => pcm.iter().map(|&s| alaw_encode(s)).collect(),
    }
}

pub fn decode_into(codec: Codec, payload: &[u8], out: &mut Vec<i16>) {
    match codec {
        Codec::Pcmu => out.extend(payload.iter().map(|&b| ulaw_decode(b))),
        Codec::Pcma => out.extend(payload.iter().map(|&b| alaw_decode(b))),
    }
}

/// The codeword for silence, used to fill gaps.
pub fn silence_byte(codec: Codec) -> u8 {
    match codec {
        Codec::Pcmu => 0xff,
        Codec::Pcma => 0xd5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_error_is_within_quantization() {
        for s in (-32768i32..=32767).step_by(7) {
            let s = s as i16;
            for (enc, dec) in [(ulaw_encode as fn(i16) -> u8, ulaw_decode as fn(u8) -> i16), (alaw_encode, alaw_decode)]
            {
                let back = dec(enc(s)) as i32;
                let err = (back - s as i32).abs();
                // Segment step is 1/16 of the segment: relative error below ~1/16.
                assert!(err <= (s as i32).abs() / 16 + 16, "sample {s} -> {back}");
            }
        }
    }

    #[test]
    fn known_codewords() {
        assert_eq!(ulaw_encode(0), 0xff);
        assert_eq!(alaw_encode(0), 0xd5);
        assert_eq!(ulaw_decode(0xff), 0);
        assert_eq!(ulaw_encode(32767), 0x80);
        assert_eq!(ulaw_encode(-32768), 0x00);
        // Every codeword decodes and re-encodes to itself.
        for b in 0..=255u8 {
            assert_eq!(alaw_encode(alaw_decode(b)), b, "alaw {b:#x}");
            if b != 0x7f {
                assert_eq!(ulaw_encode(ulaw_decode(b)), b, "ulaw {b:#x}");
            }
        }
    }
}
