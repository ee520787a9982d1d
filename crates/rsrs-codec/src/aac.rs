//! AAC's AudioSpecificConfig (ISO 14496-3 1.6.2.1): what FLV calls the AAC sequence header,
//! needed to write ADTS headers and to report rate and channels.

/// Sampling frequencies by index.
const RATES: [u32; 13] = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioSpecificConfig {
    /// Audio object type (2 = AAC LC, 5 = HE-AAC, 29 = HE-AACv2).
    pub object_type: u8,
    pub freq_index: u8,
    pub channels: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("AAC AudioSpecificConfig of {0} bytes is too short (needs 2)")]
pub struct BadAudioSpecificConfig(pub usize);

impl AudioSpecificConfig {
    pub fn parse(asc: &[u8]) -> Result<AudioSpecificConfig, BadAudioSpecificConfig> {
        if asc.len() < 2 {
            return Err(BadAudioSpecificConfig(asc.len()));
        }
        Ok(AudioSpecificConfig {
            object_type: asc[0] >> 3,
            freq_index: ((asc[0] & 0x07) << 1) | (asc[1] >> 7),
            channels: (asc[1] >> 3) & 0x0f,
        })
    }

    /// The sampling rate in Hz; `None` for an escape or reserved index.
    pub fn sample_rate(&self) -> Option<u32> {
        RATES.get(self.freq_index as usize).copied()
    }

    /// The two-byte AudioSpecificConfig for this object type, rate index and channel layout
    /// (what an ADTS header carries, for a stream that came in ADTS).
    pub fn to_bytes(&self) -> [u8; 2] {
        [(self.object_type << 3) | (self.freq_index >> 1), ((self.freq_index & 1) << 7) | ((self.channels & 0x0f) << 3)]
    }

    /// SRS's name for the object type.
    pub fn profile_name(&self) -> &'static str {
        match self.object_type {
            1 => "Main",
            2 => "LC",
            3 => "SSR",
            5 => "HE",
            29 => "HEv2",
            _ => "Other",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lc_44100_stereo() {
        let c = AudioSpecificConfig::parse(&[0x12, 0x10]).unwrap();
        assert_eq!(c, AudioSpecificConfig { object_type: 2, freq_index: 4, channels: 2 });
        assert_eq!((c.sample_rate(), c.profile_name()), (Some(44100), "LC"));
        assert_eq!(AudioSpecificConfig::parse(&[0x12]), Err(BadAudioSpecificConfig(1)));
        assert_eq!(c.to_bytes(), [0x12, 0x10]);
        let he = AudioSpecificConfig { object_type: 5, freq_index: 3, channels: 1 };
        assert_eq!(AudioSpecificConfig::parse(&he.to_bytes()).unwrap(), he);
        // Index 15 (explicit frequency) is not in the table.
        assert_eq!(AudioSpecificConfig::parse(&[0x17, 0x90]).unwrap().sample_rate(), None);
    }
}
