//! What the store needs to know of a TIFF the fax engine wrote: how many pages it holds
//! (a fax cut part way has no T.30 count, but the pages received are in the file).
//! Reads only the header and the IFD chain; any malformed file is 0 pages, never a panic.

/// The number of images (IFDs) in a TIFF file's bytes.
pub fn pages(bytes: &[u8]) -> usize {
    let le = match bytes.get(..4) {
        Some(b"II*\0") => true,
        Some(b"MM\0*") => false,
        _ => return 0,
    };
    let u16_at = |o: usize| -> Option<usize> {
        let b = bytes.get(o..o + 2)?;
        Some(if le { u16::from_le_bytes([b[0], b[1]]) } else { u16::from_be_bytes([b[0], b[1]]) } as usize)
    };
    let u32_at = |o: usize| -> Option<usize> {
        let b: [u8; 4] = bytes.get(o..o + 4)?.try_into().ok()?;
        Some(if le { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) } as usize)
    };
    let mut n = 0;
    let mut at = u32_at(4).unwrap_or(0);
    // A chain that loops or runs off the file ends the count.
    let mut seen = std::collections::HashSet::new();
    while at != 0 && seen.insert(at) && n < 10_000 {
        let Some(entries) = u16_at(at) else { break };
        let Some(next) = u32_at(at + 2 + entries * 12) else { break };
        n += 1;
        at = next;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::pages;

    #[test]
    fn pages_are_counted_and_bad_files_are_none() {
        // Two IFDs of zero entries: header → 8 → 14 → end.
        let mut two = b"II*\0\x08\0\0\0".to_vec();
        two.extend([0, 0, 14, 0, 0, 0]);
        two.extend([0, 0, 0, 0, 0, 0]);
        assert_eq!(pages(&two), 2);
        assert_eq!(pages(b"not a tiff"), 0);
        assert_eq!(pages(b"II*\0\xff\xff\0\0"), 0, "IFD past the end");
        // A loop: the IFD points to itself.
        assert_eq!(pages(b"II*\0\x08\0\0\0\0\0\x08\0\0\0"), 1);
    }
}
