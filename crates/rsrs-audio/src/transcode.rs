//! The two directions WebRTC needs, frame in, frames out, with times: AAC (from RTMP, SRT) to
//! Opus for WebRTC players, and Opus (from WHIP) to AAC for RTMP, HTTP-FLV, HLS and DVR.
//!
//! Output times follow the samples, not the input's times, so the output is continuous; the
//! input's times are only followed across a gap (filled with silence up to [`MAX_GAP_MS`]) or a
//! jump (the timeline starts again).

use crate::aac::{AacDecoder, AacEncoder};
use crate::opus::{OpusDecoder, OpusEncoder, FRAME_SAMPLES};
use crate::resample::Resampler;
use crate::AudioError;

/// Opus bit rate for WebRTC players (SRS's default for its AAC->Opus transcoder is 48 kb/s
/// for stereo; 64 keeps music clean).
pub const OPUS_BITRATE: u32 = 64_000;
/// AAC bit rate for what WHIP publishers send (stereo LC).
pub const AAC_BITRATE: u32 = 128_000;
/// Larger gaps, or time going back more than [`SLACK_MS`], restart the timeline.
pub const MAX_GAP_MS: f64 = 1000.0;
/// Input this much off the expected time is taken as on time (packetization jitter).
const SLACK_MS: f64 = 60.0;

/// One output frame: its bytes and its time in ms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub data: Vec<u8>,
    pub dts_ms: u32,
}

/// Where input lands on the output's sample line.
#[derive(Debug, Default)]
struct Timeline {
    /// ms of sample 0, and samples (per channel, at `rate`) fed since.
    base: Option<f64>,
    fed: u64,
    rate: u32,
}

enum Placement {
    OnTime,
    /// Silence of this many samples per channel comes first.
    Gap(usize),
    Restart,
}

impl Timeline {
    fn new(rate: u32) -> Timeline {
        Timeline { base: None, fed: 0, rate }
    }

    fn expected_ms(&self) -> Option<f64> {
        self.base.map(|b| b + self.fed as f64 * 1000.0 / self.rate as f64)
    }

    fn place(&mut self, dts_ms: u32) -> Placement {
        let Some(expected) = self.expected_ms() else {
            self.base = Some(dts_ms as f64);
            return Placement::OnTime;
        };
        let off = dts_ms as f64 - expected;
        if off.abs() <= SLACK_MS {
            Placement::OnTime
        } else if off > 0.0 && off <= MAX_GAP_MS {
            Placement::Gap((off * self.rate as f64 / 1000.0) as usize)
        } else {
            self.base = Some(dts_ms as f64);
            self.fed = 0;
            Placement::Restart
        }
    }

    /// ms of the sample `index` samples after sample 0.
    fn ms_at(&self, index: i64) -> u32 {
        (self.base.unwrap_or(0.0) + index as f64 * 1000.0 / self.rate as f64).max(0.0) as u32
    }
}

/// AAC frames to 20 ms Opus frames at 48 kHz.
pub struct AacToOpus {
    dec: AacDecoder,
    /// Made at the first decoded frame, when rate and channels are known.
    enc: Option<(OpusEncoder, Option<Resampler>)>,
    /// 48 kHz interleaved samples waiting for a whole frame.
    fifo: Vec<i16>,
    line: Timeline,
    /// Samples per channel already encoded.
    encoded: u64,
    resampled: Vec<i16>,
}

impl AacToOpus {
    pub fn new(asc: &[u8]) -> Result<AacToOpus, AudioError> {
        Ok(AacToOpus {
            dec: AacDecoder::new(asc)?,
            enc: None,
            fifo: Vec::new(),
            line: Timeline::new(48_000),
            encoded: 0,
            resampled: Vec::new(),
        })
    }

    /// Takes one AAC frame at `dts_ms`; the Opus frames now complete.
    pub fn push(&mut self, aac: &[u8], dts_ms: u32) -> Result<Vec<Frame>, AudioError> {
        let (pcm, rate, channels) = self.dec.decode(aac)?;
        let (enc, resampler) = match &mut self.enc {
            Some((enc, _)) if enc.channels() != channels => {
                return Err(AudioError::Unsupported(format!(
                    "the AAC stream changed from {} to {channels} channels",
                    enc.channels()
                )))
            }
            Some((enc, r)) => (enc, r),
            None => {
                let r = (rate != 48_000).then(|| Resampler::new(rate, 48_000, channels));
                let (enc, r) = self.enc.insert((OpusEncoder::new(channels, OPUS_BITRATE)?, r));
                (enc, r)
            }
        };
        match self.line.place(dts_ms) {
            Placement::OnTime => {}
            Placement::Gap(n) => {
                self.fifo.extend(std::iter::repeat_n(0, n * channels));
                self.line.fed += n as u64;
            }
            Placement::Restart => {
                self.fifo.clear();
                self.encoded = 0;
            }
        }
        self.resampled.clear();
        match resampler {
            Some(r) => r.process(pcm, &mut self.resampled),
            None => self.resampled.extend_from_slice(pcm),
        }
        self.line.fed += (self.resampled.len() / channels) as u64;
        self.fifo.extend_from_slice(&self.resampled);
        let mut out = Vec::new();
        let frame = FRAME_SAMPLES * channels;
        while self.fifo.len() >= frame {
            let data = enc.encode(&self.fifo[..frame])?;
            self.fifo.drain(..frame);
            out.push(Frame { data, dts_ms: self.line.ms_at(self.encoded as i64) });
            self.encoded += FRAME_SAMPLES as u64;
        }
        Ok(out)
    }
}

/// Opus packets to AAC-LC frames at 48 kHz, stereo.
pub struct OpusToAac {
    dec: OpusDecoder,
    enc: AacEncoder,
    fifo: Vec<i16>,
    line: Timeline,
    /// AAC frames made since the timeline began.
    made: u64,
}

impl OpusToAac {
    pub fn new() -> Result<OpusToAac, AudioError> {
        Ok(OpusToAac {
            dec: OpusDecoder::new(2)?,
            enc: AacEncoder::new(48_000, 2, AAC_BITRATE)?,
            fifo: Vec::new(),
            line: Timeline::new(48_000),
            made: 0,
        })
    }

    /// The AudioSpecificConfig of the AAC frames this makes.
    pub fn asc(&self) -> &[u8] {
        self.enc.asc()
    }

    /// Takes one Opus packet at `dts_ms`; the AAC frames now complete.
    pub fn push(&mut self, opus: &[u8], dts_ms: u32) -> Result<Vec<Frame>, AudioError> {
        match self.line.place(dts_ms) {
            Placement::OnTime => {}
            Placement::Gap(n) => {
                self.fifo.extend(std::iter::repeat_n(0, n * 2));
                self.line.fed += n as u64;
            }
            Placement::Restart => {
                // The encoder's look-ahead still holds the old line's last samples; a new
                // encoder would cost a config change for every player, so those few ms stay.
                self.fifo.clear();
                self.made = 0;
            }
        }
        let pcm = self.dec.decode(opus)?;
        self.line.fed += (pcm.len() / 2) as u64;
        self.fifo.extend_from_slice(pcm);
        let frame = self.enc.frame_samples() * 2;
        let mut out = Vec::new();
        while self.fifo.len() >= frame {
            let aac = self.enc.encode(&self.fifo[..frame])?;
            self.fifo.drain(..frame);
            if let Some(data) = aac {
                // The encoder's output lags its input by its delay.
                let first = (self.made * self.enc.frame_samples() as u64) as i64 - self.enc.delay() as i64;
                out.push(Frame { data, dts_ms: self.line.ms_at(first) });
                self.made += 1;
            }
        }
        Ok(out)
    }
}
