//! AAC through libfdk-aac: decoding raw frames (with their AudioSpecificConfig) to interleaved
//! i16, and encoding AAC-LC raw frames with the AudioSpecificConfig that describes them.

use crate::AudioError;
use fdk_aac::{dec, enc};

/// Room for one decoded frame: 2048 samples (HE-AAC) for up to 8 channels.
const MAX_FRAME_SAMPLES: usize = 2048 * 8;

pub struct AacDecoder {
    dec: dec::Decoder,
    pcm: Vec<i16>,
}

impl AacDecoder {
    /// A decoder for raw frames described by `asc`, mixed down to at most two channels.
    pub fn new(asc: &[u8]) -> Result<AacDecoder, AudioError> {
        if asc.len() < 2 {
            return Err(AudioError::Codec(format!("an AAC AudioSpecificConfig of {} bytes (2 at least)", asc.len())));
        }
        let mut d = dec::Decoder::new(dec::Transport::Raw);
        d.config_raw(asc).map_err(|e| AudioError::Codec(format!("AAC AudioSpecificConfig {asc:02x?}: {e}")))?;
        d.set_max_output_channels(2).map_err(|e| AudioError::Codec(format!("AAC downmix to stereo: {e}")))?;
        Ok(AacDecoder { dec: d, pcm: vec![0; MAX_FRAME_SAMPLES] })
    }

    /// Decodes one raw frame: (interleaved samples, sample rate, channels).
    pub fn decode(&mut self, frame: &[u8]) -> Result<(&[i16], u32, usize), AudioError> {
        let bad = |e: dec::DecoderError| AudioError::Codec(format!("AAC frame of {} bytes: {e}", frame.len()));
        self.dec.fill(frame).map_err(bad)?;
        self.dec.decode_frame(&mut self.pcm).map_err(bad)?;
        let info = self.dec.stream_info();
        let (rate, channels) = (info.sampleRate.max(0) as u32, info.numChannels.max(0) as usize);
        let n = self.dec.decoded_frame_size().min(self.pcm.len());
        if rate == 0 || !(1..=2).contains(&channels) {
            return Err(AudioError::Unsupported(format!("AAC decoded to {channels} channels at {rate} Hz")));
        }
        Ok((&self.pcm[..n], rate, channels))
    }
}

pub struct AacEncoder {
    enc: enc::Encoder,
    channels: usize,
    frame_samples: usize,
    delay: usize,
    asc: Vec<u8>,
    out: Vec<u8>,
}

impl AacEncoder {
    /// An AAC-LC encoder of raw frames at `rate` Hz for `channels` (1 or 2).
    pub fn new(rate: u32, channels: usize, bitrate: u32) -> Result<AacEncoder, AudioError> {
        let mode = match channels {
            1 => enc::ChannelMode::Mono,
            2 => enc::ChannelMode::Stereo,
            n => return Err(AudioError::Unsupported(format!("AAC encoding of {n} channels (1 or 2 are)"))),
        };
        let e = enc::Encoder::new(enc::EncoderParams {
            bit_rate: enc::BitRate::Cbr(bitrate),
            sample_rate: rate,
            transport: enc::Transport::Raw,
            channels: mode,
            audio_object_type: enc::AudioObjectType::Mpeg4LowComplexity,
        })
        .map_err(|e| AudioError::Codec(format!("AAC encoder at {rate} Hz, {channels} channels: {e:?}")))?;
        let info = e.info().map_err(|e| AudioError::Codec(format!("AAC encoder info: {e:?}")))?;
        let asc = info.confBuf[..(info.confSize as usize).min(info.confBuf.len())].to_vec();
        Ok(AacEncoder {
            channels,
            frame_samples: info.frameLength as usize,
            delay: info.nDelay as usize,
            asc,
            out: vec![0; (info.maxOutBufBytes as usize).max(8192)],
            enc: e,
        })
    }

    /// The AudioSpecificConfig of what this encoder makes.
    pub fn asc(&self) -> &[u8] {
        &self.asc
    }

    /// Samples per channel one frame takes (1024 for AAC-LC).
    pub fn frame_samples(&self) -> usize {
        self.frame_samples
    }

    /// Samples per channel the output lags the input by.
    pub fn delay(&self) -> usize {
        self.delay
    }

    /// Encodes one frame of [`frame_samples`](Self::frame_samples) per channel; the raw AAC
    /// frame, or `None` while the encoder fills its look-ahead.
    pub fn encode(&mut self, pcm: &[i16]) -> Result<Option<Vec<u8>>, AudioError> {
        if pcm.len() != self.frame_samples * self.channels {
            return Err(AudioError::Codec(format!(
                "an AAC frame takes {} samples, not {}",
                self.frame_samples * self.channels,
                pcm.len()
            )));
        }
        let info = self.enc.encode(pcm, &mut self.out).map_err(|e| AudioError::Codec(format!("AAC encode: {e:?}")))?;
        Ok((info.output_size > 0).then(|| self.out[..info.output_size].to_vec()))
    }
}
