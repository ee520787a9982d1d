//! libopus: 48 kHz encoding of 20 ms frames and decoding of any Opus packet, interleaved i16.

use crate::AudioError;

/// Samples per channel in one 20 ms frame at 48 kHz (what WebRTC sends).
pub const FRAME_SAMPLES: usize = 960;
/// Most samples per channel one Opus packet decodes to (120 ms at 48 kHz).
const MAX_PACKET_SAMPLES: usize = 5760;
/// Largest encoded frame asked of libopus (its recommended bound).
const MAX_PACKET_BYTES: usize = 4000;

#[cfg(not(rsrs_no_libopus))]
mod sys {
    use std::os::raw::{c_char, c_int, c_uchar};
    pub enum OpusEncoder {}
    pub enum OpusDecoder {}
    pub const OPUS_APPLICATION_AUDIO: c_int = 2049;
    pub const OPUS_SET_BITRATE_REQUEST: c_int = 4002;
    #[link(name = "opus")]
    extern "C" {
        pub fn opus_encoder_create(fs: i32, channels: c_int, application: c_int, error: *mut c_int)
            -> *mut OpusEncoder;
        pub fn opus_encode(
            st: *mut OpusEncoder,
            pcm: *const i16,
            frame_size: c_int,
            data: *mut c_uchar,
            max: i32,
        ) -> i32;
        pub fn opus_encoder_ctl(st: *mut OpusEncoder, request: c_int, ...) -> c_int;
        pub fn opus_encoder_destroy(st: *mut OpusEncoder);
        pub fn opus_decoder_create(fs: i32, channels: c_int, error: *mut c_int) -> *mut OpusDecoder;
        pub fn opus_decode(
            st: *mut OpusDecoder,
            data: *const c_uchar,
            len: i32,
            pcm: *mut i16,
            frame_size: c_int,
            decode_fec: c_int,
        ) -> c_int;
        pub fn opus_decoder_destroy(st: *mut OpusDecoder);
        pub fn opus_strerror(error: c_int) -> *const c_char;
    }

    pub fn error(code: c_int) -> String {
        // SAFETY: opus_strerror returns a static NUL-terminated string for any code.
        unsafe { std::ffi::CStr::from_ptr(opus_strerror(code)) }.to_string_lossy().into_owned()
    }
}

/// Encodes 20 ms frames of 48 kHz interleaved PCM.
pub struct OpusEncoder {
    #[cfg(not(rsrs_no_libopus))]
    st: *mut sys::OpusEncoder,
    channels: usize,
    out: Vec<u8>,
}

// SAFETY: the encoder state is owned by this value and only used through &mut self.
unsafe impl Send for OpusEncoder {}

impl OpusEncoder {
    /// A 48 kHz encoder for `channels` (1 or 2) at `bitrate` bits per second.
    pub fn new(channels: usize, bitrate: u32) -> Result<OpusEncoder, AudioError> {
        if !(1..=2).contains(&channels) {
            return Err(AudioError::Unsupported(format!("Opus encoding of {channels} channels (1 or 2 are)")));
        }
        #[cfg(rsrs_no_libopus)]
        {
            let _ = bitrate;
            Err(AudioError::NoLibopus)
        }
        #[cfg(not(rsrs_no_libopus))]
        {
            let mut err = 0;
            // SAFETY: valid arguments; the result is checked before use.
            let st =
                unsafe { sys::opus_encoder_create(48_000, channels as i32, sys::OPUS_APPLICATION_AUDIO, &mut err) };
            if st.is_null() || err != 0 {
                return Err(AudioError::Codec(format!("opus_encoder_create: {}", sys::error(err))));
            }
            let enc = OpusEncoder { st, channels, out: vec![0; MAX_PACKET_BYTES] };
            // SAFETY: st is a live encoder; the request takes one opus_int32.
            let rc = unsafe { sys::opus_encoder_ctl(st, sys::OPUS_SET_BITRATE_REQUEST, bitrate as i32) };
            if rc != 0 {
                return Err(AudioError::Codec(format!("OPUS_SET_BITRATE({bitrate}): {}", sys::error(rc))));
            }
            Ok(enc)
        }
    }

    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Encodes one 20 ms frame: exactly [`FRAME_SAMPLES`] samples per channel, interleaved.
    pub fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, AudioError> {
        if pcm.len() != FRAME_SAMPLES * self.channels {
            return Err(AudioError::Codec(format!(
                "an Opus frame takes {} samples, not {}",
                FRAME_SAMPLES * self.channels,
                pcm.len()
            )));
        }
        #[cfg(rsrs_no_libopus)]
        {
            Err(AudioError::NoLibopus)
        }
        #[cfg(not(rsrs_no_libopus))]
        {
            // SAFETY: pcm holds frame_size * channels samples; out holds MAX_PACKET_BYTES.
            let n = unsafe {
                sys::opus_encode(
                    self.st,
                    pcm.as_ptr(),
                    FRAME_SAMPLES as i32,
                    self.out.as_mut_ptr(),
                    self.out.len() as i32,
                )
            };
            if n < 0 {
                return Err(AudioError::Codec(format!("opus_encode: {}", sys::error(n))));
            }
            Ok(self.out[..n as usize].to_vec())
        }
    }
}

impl Drop for OpusEncoder {
    fn drop(&mut self) {
        #[cfg(not(rsrs_no_libopus))]
        // SAFETY: created by opus_encoder_create and destroyed once.
        unsafe {
            sys::opus_encoder_destroy(self.st)
        }
    }
}

/// Decodes Opus packets to 48 kHz interleaved PCM.
pub struct OpusDecoder {
    #[cfg(not(rsrs_no_libopus))]
    st: *mut sys::OpusDecoder,
    channels: usize,
    pcm: Vec<i16>,
}

// SAFETY: the decoder state is owned by this value and only used through &mut self.
unsafe impl Send for OpusDecoder {}

impl OpusDecoder {
    pub fn new(channels: usize) -> Result<OpusDecoder, AudioError> {
        if !(1..=2).contains(&channels) {
            return Err(AudioError::Unsupported(format!("Opus decoding to {channels} channels (1 or 2 are)")));
        }
        #[cfg(rsrs_no_libopus)]
        {
            Err(AudioError::NoLibopus)
        }
        #[cfg(not(rsrs_no_libopus))]
        {
            let mut err = 0;
            // SAFETY: valid arguments; the result is checked before use.
            let st = unsafe { sys::opus_decoder_create(48_000, channels as i32, &mut err) };
            if st.is_null() || err != 0 {
                return Err(AudioError::Codec(format!("opus_decoder_create: {}", sys::error(err))));
            }
            Ok(OpusDecoder { st, channels, pcm: vec![0; MAX_PACKET_SAMPLES * channels] })
        }
    }

    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Decodes one packet; its interleaved samples.
    pub fn decode(&mut self, packet: &[u8]) -> Result<&[i16], AudioError> {
        #[cfg(rsrs_no_libopus)]
        {
            let _ = packet;
            Err(AudioError::NoLibopus)
        }
        #[cfg(not(rsrs_no_libopus))]
        {
            // SAFETY: pcm holds MAX_PACKET_SAMPLES per channel, the most one packet decodes to.
            let n = unsafe {
                sys::opus_decode(
                    self.st,
                    packet.as_ptr(),
                    packet.len() as i32,
                    self.pcm.as_mut_ptr(),
                    MAX_PACKET_SAMPLES as i32,
                    0,
                )
            };
            if n < 0 {
                return Err(AudioError::Codec(format!("opus_decode of {} bytes: {}", packet.len(), sys::error(n))));
            }
            Ok(&self.pcm[..n as usize * self.channels])
        }
    }
}

impl Drop for OpusDecoder {
    fn drop(&mut self) {
        #[cfg(not(rsrs_no_libopus))]
        // SAFETY: created by opus_decoder_create and destroyed once.
        unsafe {
            sys::opus_decoder_destroy(self.st)
        }
    }
}
