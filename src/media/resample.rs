//! Band-limited resampling (windowed sinc), used to bring espeak-ng's 22.05 kHz output
//! and human recordings at any rate down to the 8 kHz of G.711.

const HALF_TAPS: i64 = 16;

pub fn resample(input: &[i16], from_rate: u32, to_rate: u32) -> Vec<i16> {
    if from_rate == to_rate || input.is_empty() || from_rate == 0 || to_rate == 0 {
        return input.to_vec();
    }
    let ratio = from_rate as f64 / to_rate as f64;
    // Cut off below the lower Nyquist frequency.
    let cutoff = (to_rate as f64 / from_rate as f64).min(1.0) * 0.95;
    let out_len = ((input.len() as f64) / ratio).floor() as usize;
    let mut out = Vec::with_capacity(out_len);
    for n in 0..out_len {
        let t = n as f64 * ratio;
        let center = t.floor() as i64;
        let mut acc = 0.0;
        let mut norm = 0.0;
        for k in (center - HALF_TAPS + 1)..=(center + HALF_TAPS) {
            if k < 0 || k as usize >= input.len() {
                continue;
            }
            let x = t - k as f64;
            let sinc = if x.abs() < 1e-9 {
                1.0
            } else {
                (std::f64::consts::PI * cutoff * x).sin() / (std::f64::consts::PI * cutoff * x)
            };
            // Blackman window over the tap span.
            let w = 0.42
                + 0.5 * (std::f64::consts::PI * x / HALF_TAPS as f64).cos()
                + 0.08 * (2.0 * std::f64::consts::PI * x / HALF_TAPS as f64).cos();
            let c = sinc * w.max(0.0);
            acc += input[k as usize] as f64 * c;
            norm += c;
        }
        let v = if norm.abs() > 1e-9 { acc / norm } else { 0.0 };
        out.push(v.round().clamp(-32768.0, 32767.0) as i16);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_length_and_low_tones_removes_high_ones() {
        let tone = |f: f64| {
            (0..22050)
                .map(|i| ((2.0 * std::f64::consts::PI * f * i as f64 / 22050.0).sin() * 10000.0) as i16)
                .collect::<Vec<_>>()
        };
        let low = resample(&tone(1000.0), 22050, 8000);
        assert!((low.len() as i64 - 8000).abs() <= 1);
        assert!(crate::media::mean_level(&low[100..7900]) > 5000, "1 kHz passes");
        let high = resample(&tone(6000.0), 22050, 8000);
        assert!(crate::media::mean_level(&high[100..7900]) < 1500, "6 kHz is filtered, not aliased");
    }
}
