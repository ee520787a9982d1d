//! Reading the bit-packed headers of video codecs (H.264 and HEVC parameter sets, AV1 sequence
//! headers, VP9 frame headers): a bounded bit reader whose every read is `None` past the end,
//! and NAL-unit emulation-prevention removal.

/// Reads bits most significant first. Every read past the end is `None`, so a parser built on
/// it returns `None` for truncated input and never panics.
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> BitReader<'a> {
        BitReader { data, pos: 0 }
    }

    /// The next `n` bits (at most 32) as an unsigned number.
    pub(crate) fn bits(&mut self, n: u32) -> Option<u32> {
        debug_assert!(n <= 32);
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.data.get(self.pos / 8)?;
            v = (v << 1) | ((byte >> (7 - self.pos % 8)) & 1) as u32;
            self.pos += 1;
        }
        Some(v)
    }

    pub(crate) fn flag(&mut self) -> Option<bool> {
        Some(self.bits(1)? == 1)
    }

    /// Skips `n` bits (any number), `None` if fewer are left.
    pub(crate) fn skip(&mut self, n: usize) -> Option<()> {
        let end = self.pos.checked_add(n)?;
        if end > self.data.len() * 8 {
            return None;
        }
        self.pos = end;
        Some(())
    }

    /// Unsigned exponential-Golomb (H.264/HEVC `ue(v)`).
    pub(crate) fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bits(1)? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        ((1u64 << zeros) - 1 + self.bits(zeros)? as u64).try_into().ok()
    }

    /// Signed exponential-Golomb (`se(v)`).
    pub(crate) fn se(&mut self) -> Option<i32> {
        let k = self.ue()? as i64;
        Some(if k % 2 == 1 { ((k + 1) / 2) as i32 } else { -(k / 2) as i32 })
    }
}

/// A NAL unit's payload without its emulation-prevention bytes (`00 00 03` becomes `00 00`).
pub(crate) fn unescape(nal: &[u8]) -> Vec<u8> {
    let mut rbsp = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        rbsp.push(b);
    }
    rbsp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_golomb_and_bounds() {
        // 1 | 010 | 011 | 00100 | 1...: ue 0, ue 1, ue 2, ue 3.
        let data = [0b1010_0110, 0b0100_1000];
        let mut r = BitReader::new(&data);
        assert_eq!((r.ue(), r.ue(), r.ue(), r.ue()), (Some(0), Some(1), Some(2), Some(3)));
        let mut r = BitReader::new(&data);
        assert_eq!(r.bits(12), Some(0xa64));
        assert_eq!(r.skip(4), Some(()));
        assert_eq!(r.bits(1), None, "past the end");
        assert_eq!(BitReader::new(&[0, 0, 0, 0, 0]).ue(), None, "too many leading zeros");
        let mut r = BitReader::new(&[0b0110_0000]);
        assert_eq!(r.se(), Some(-1));
        assert_eq!(unescape(&[0, 0, 3, 1, 0, 0, 3]), vec![0, 0, 1, 0, 0]);
    }
}
