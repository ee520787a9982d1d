//! A fixed-ratio windowed-sinc resampler for interleaved i16 (AAC's 44.1 kHz and others to
//! Opus's 48 kHz). Polyphase: the filter is tabulated at [`PHASES`] fractional positions, so a
//! sample costs 2 × [`HALF`] multiply-adds per channel and no trigonometry.

/// Taps on each side of the output position.
const HALF: usize = 16;
/// Fractional positions the filter is tabulated at.
const PHASES: usize = 256;

pub struct Resampler {
    channels: usize,
    /// Input frames per output frame.
    step: f64,
    /// Interleaved input not yet fully used; starts with HALF frames of silence.
    buf: Vec<f32>,
    /// Position of the next output frame, in input frames from the start of `buf`.
    pos: f64,
    /// `table[phase * 2 * HALF + k]`: the weight of input frame `floor(pos) - HALF + 1 + k`.
    table: Vec<f32>,
}

impl Resampler {
    pub fn new(from_rate: u32, to_rate: u32, channels: usize) -> Resampler {
        let step = from_rate as f64 / to_rate as f64;
        // Below the lower Nyquist frequency, with a margin for the window's transition band.
        let cutoff = (to_rate as f64 / from_rate as f64).min(1.0) * 0.92;
        let mut table = Vec::with_capacity(PHASES * 2 * HALF);
        for phase in 0..PHASES {
            let frac = phase as f64 / PHASES as f64;
            let mut row = [0f64; 2 * HALF];
            for (k, w) in row.iter_mut().enumerate() {
                // Distance from the output position to input frame (floor(pos) - HALF + 1 + k).
                let t = (k as f64 - (HALF as f64 - 1.0)) - frac;
                let x = std::f64::consts::PI * cutoff * t;
                let sinc = if x.abs() < 1e-9 { 1.0 } else { x.sin() / x };
                // Blackman window over [-HALF, HALF].
                let n = (t / HALF as f64 + 1.0) / 2.0;
                let win =
                    0.42 - 0.5 * (2.0 * std::f64::consts::PI * n).cos() + 0.08 * (4.0 * std::f64::consts::PI * n).cos();
                *w = cutoff * sinc * win.max(0.0);
            }
            // Unity gain at DC for every phase.
            let sum: f64 = row.iter().sum();
            table.extend(row.iter().map(|w| (w / sum) as f32));
        }
        Resampler { channels, step, buf: vec![0.0; HALF * channels], pos: HALF as f64, table }
    }

    /// Resamples `input` (interleaved), appending what can be made to `out`.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        let ch = self.channels;
        self.buf.extend(input.iter().map(|&s| s as f32));
        let frames = self.buf.len() / ch;
        // Output while every tap is inside the buffer.
        while (self.pos as usize) + HALF < frames {
            let base = self.pos as usize;
            let phase = ((self.pos - base as f64) * PHASES as f64) as usize;
            let row = &self.table[phase.min(PHASES - 1) * 2 * HALF..][..2 * HALF];
            let first = base + 1 - HALF;
            for c in 0..ch {
                let mut acc = 0f32;
                for (k, w) in row.iter().enumerate() {
                    acc += self.buf[(first + k) * ch + c] * w;
                }
                out.push(acc.round().clamp(i16::MIN as f32, i16::MAX as f32) as i16);
            }
            self.pos += self.step;
        }
        // Keep what the next outputs still reach back to.
        let keep_from = (self.pos as usize + 1).saturating_sub(HALF).min(frames);
        self.buf.drain(..keep_from * ch);
        self.pos -= keep_from as f64;
    }
}
