//! Each codec and the resampler against a known signal: a 1 kHz sine must come out as a 1 kHz
//! sine of about the same level, and frame times must follow the samples.

use rsrs_audio::aac::{AacDecoder, AacEncoder};
use rsrs_audio::opus::{OpusDecoder, OpusEncoder, FRAME_SAMPLES};
use rsrs_audio::resample::Resampler;
use rsrs_audio::{AacToOpus, OpusToAac};

const AMPLITUDE: f64 = 8000.0;

fn sine(rate: u32, channels: usize, frames: usize, start: usize) -> Vec<i16> {
    let mut v = Vec::with_capacity(frames * channels);
    for i in start..start + frames {
        let s = (AMPLITUDE * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / rate as f64).sin()) as i16;
        v.extend(std::iter::repeat_n(s, channels));
    }
    v
}

/// (frequency by zero crossings, RMS) of channel 0, after skipping `skip` frames of codec delay.
fn measure(pcm: &[i16], channels: usize, rate: u32, skip: usize) -> (f64, f64) {
    let ch0: Vec<f64> = pcm.iter().step_by(channels).skip(skip).map(|&s| s as f64).collect();
    assert!(ch0.len() > rate as usize / 10, "too little audio to measure: {} samples", ch0.len());
    let crossings = ch0.windows(2).filter(|w| (w[0] < 0.0) != (w[1] < 0.0)).count();
    let secs = ch0.len() as f64 / rate as f64;
    let rms = (ch0.iter().map(|s| s * s).sum::<f64>() / ch0.len() as f64).sqrt();
    (crossings as f64 / 2.0 / secs, rms)
}

fn assert_sine(pcm: &[i16], channels: usize, rate: u32, skip: usize, what: &str) {
    let (freq, rms) = measure(pcm, channels, rate, skip);
    let want_rms = AMPLITUDE / 2f64.sqrt();
    assert!((freq - 1000.0).abs() < 15.0, "{what}: the sine came out at {freq:.1} Hz");
    assert!((rms / want_rms - 1.0).abs() < 0.15, "{what}: level {rms:.0} RMS, expected about {want_rms:.0}");
}

#[test]
fn resampler_keeps_pitch_level_and_length() {
    let mut r = Resampler::new(44_100, 48_000, 2);
    let mut out = Vec::new();
    // In uneven pieces, as AAC frames and network reads come.
    let input = sine(44_100, 2, 44_100, 0);
    for piece in input.chunks(1024 * 2 + 6) {
        r.process(piece, &mut out);
    }
    let frames = out.len() / 2;
    assert!((47_950..=48_000).contains(&frames), "one second at 44.1 kHz made {frames} frames at 48 kHz");
    assert_sine(&out, 2, 48_000, 64, "44.1 -> 48 kHz");
    // Both channels carry the same signal.
    assert!(out.chunks(2).all(|f| f[0] == f[1]));
}

#[test]
fn resampler_down() {
    let mut r = Resampler::new(48_000, 16_000, 1);
    let mut out = Vec::new();
    r.process(&sine(48_000, 1, 48_000, 0), &mut out);
    assert!((15_990..=16_000).contains(&out.len()), "{}", out.len());
    assert_sine(&out, 1, 16_000, 32, "48 -> 16 kHz");
}

#[test]
fn aac_encode_then_decode() {
    let mut enc = AacEncoder::new(44_100, 2, 128_000).unwrap();
    // AAC-LC (2), 44.1 kHz (index 4), stereo (2): 0x12 0x10.
    assert_eq!(&enc.asc()[..2], &[0x12, 0x10]);
    let mut dec = AacDecoder::new(enc.asc()).unwrap();
    let n = enc.frame_samples();
    assert_eq!(n, 1024);
    let mut pcm = Vec::new();
    for i in 0..60 {
        if let Some(frame) = enc.encode(&sine(44_100, 2, n, i * n)).unwrap() {
            let (out, rate, channels) = dec.decode(&frame).unwrap();
            assert_eq!((rate, channels), (44_100, 2));
            pcm.extend_from_slice(out);
        }
    }
    assert_sine(&pcm, 2, 44_100, 4096, "AAC round trip");
}

#[test]
fn aac_decoder_refuses_garbage() {
    assert!(AacDecoder::new(&[]).is_err());
    let mut dec = AacDecoder::new(&[0x12, 0x10]).unwrap();
    // Whatever a hostile publisher sends: an error or concealment, never a crash.
    for len in [0usize, 1, 7, 300] {
        let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
        let _ = dec.decode(&junk);
    }
}

#[test]
fn opus_encode_then_decode() {
    if !rsrs_audio::HAS_LIBOPUS {
        panic!("libopus is missing: apt-get install libopus-dev pkg-config, then rebuild");
    }
    let mut enc = OpusEncoder::new(2, 64_000).unwrap();
    let mut dec = OpusDecoder::new(2).unwrap();
    let mut pcm = Vec::new();
    for i in 0..50 {
        let packet = enc.encode(&sine(48_000, 2, FRAME_SAMPLES, i * FRAME_SAMPLES)).unwrap();
        assert!(packet.len() > 10 && packet.len() < 1000, "{} bytes", packet.len());
        pcm.extend_from_slice(dec.decode(&packet).unwrap());
    }
    assert_sine(&pcm, 2, 48_000, 960, "Opus round trip");
    assert!(enc.encode(&[0; 10]).is_err());
    // A garbage packet: an error, or at most one packet's worth of samples (120 ms, stereo).
    if let Ok(pcm) = dec.decode(&[0xff; 3]) {
        assert!(pcm.len() <= 5760 * 2, "{} samples from 3 bytes", pcm.len());
    }
}

#[test]
fn aac_to_opus_times_follow_samples() {
    let mut aac = AacEncoder::new(44_100, 2, 128_000).unwrap();
    let mut t = AacToOpus::new(aac.asc()).unwrap();
    let mut dec = OpusDecoder::new(2).unwrap();
    let (mut times, mut pcm) = (Vec::new(), Vec::new());
    let mut made = 0u32;
    for i in 0..100 {
        if let Some(frame) = aac.encode(&sine(44_100, 2, 1024, i * 1024)).unwrap() {
            // The AAC frame's time as an RTMP publisher stamps it (ms, rounded down), from 5000.
            let dts = 5000 + made * 1024 * 1000 / 44_100;
            made += 1;
            for f in t.push(&frame, dts).unwrap() {
                times.push(f.dts_ms);
                pcm.extend_from_slice(dec.decode(&f.data).unwrap());
            }
        }
    }
    assert_eq!(times[0], 5000);
    assert!(times.len() > 100, "{} Opus frames", times.len());
    for (i, w) in times.windows(2).enumerate() {
        assert_eq!(w[1] - w[0], 20, "frame {i}: {times:?}");
    }
    assert_sine(&pcm, 2, 48_000, 9600, "AAC 44.1 kHz -> Opus");
}

#[test]
fn aac_to_opus_fills_a_gap_and_restarts_after_a_jump() {
    let mut aac = AacEncoder::new(48_000, 1, 64_000).unwrap();
    let mut t = AacToOpus::new(aac.asc()).unwrap();
    let mut times = Vec::new();
    let mut frames = Vec::new();
    for i in 0..40 {
        if let Some(f) = aac.encode(&sine(48_000, 1, 1024, i * 1024)).unwrap() {
            frames.push(f);
        }
    }
    // 10 frames, then 200 ms missing, then 10 more; then time jumps back to 0.
    let mut dts = 1000.0;
    for (i, f) in frames.iter().take(30).enumerate() {
        if i == 10 {
            dts += 200.0;
        }
        if i == 20 {
            dts = 0.0;
        }
        for o in t.push(f, dts as u32).unwrap() {
            times.push(o.dts_ms);
        }
        dts += 1024.0 / 48.0;
    }
    let restart = times.iter().position(|&ms| ms < 1000).expect("the jump back restarts the timeline");
    assert_eq!(times[restart], 0);
    // Before the jump: continuous 20 ms steps through the gap (filled with silence).
    for w in times[..restart].windows(2) {
        assert_eq!(w[1] - w[0], 20, "{times:?}");
    }
    let before = *times[..restart].last().unwrap();
    assert!(before >= 1000 + 19 * 21 + 200 - 40, "the gap was not filled: {times:?}");
}

#[test]
fn opus_to_aac_makes_48k_stereo_lc() {
    let mut opus = OpusEncoder::new(2, 64_000).unwrap();
    let mut t = OpusToAac::new().unwrap();
    // AAC-LC, 48 kHz (index 3), stereo: 0x11 0x90.
    assert_eq!(&t.asc()[..2], &[0x11, 0x90]);
    let mut dec = AacDecoder::new(t.asc()).unwrap();
    let (mut times, mut pcm) = (Vec::new(), Vec::new());
    for i in 0..150 {
        let packet = opus.encode(&sine(48_000, 2, FRAME_SAMPLES, i * FRAME_SAMPLES)).unwrap();
        for f in t.push(&packet, 3000 + i as u32 * 20).unwrap() {
            times.push(f.dts_ms);
            let (out, rate, ch) = dec.decode(&f.data).unwrap();
            assert_eq!((rate, ch), (48_000, 2));
            pcm.extend_from_slice(out);
        }
    }
    assert!(times.len() >= 135, "{} AAC frames from 3 s", times.len());
    // 1024 samples at 48 kHz: 21 or 22 ms apart; never back.
    for w in times.windows(2) {
        assert!((21..=22).contains(&(w[1] - w[0])), "{times:?}");
    }
    assert!(times[0] <= 3000 && times[0] >= 2900, "first AAC frame at {} ms", times[0]);
    assert_sine(&pcm, 2, 48_000, 9600, "Opus -> AAC");
}
