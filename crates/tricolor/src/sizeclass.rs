//! Size classes: the rounded object sizes small objects are carved in.
//!
//! The table is Go's `sizeclasses.go` (classes of at most 12.5% tail waste up
//! to 32 KiB) without its 8-byte class: every tricolor object carries an
//! 8-byte header, so 16 bytes is the smallest slot. Every small span is one
//! fixed, aligned [`SPAN_BYTES`] block, so unlike Go the number of pages per
//! class is constant; the largest classes lose at most 6.4% at the span tail
//! (Go's table bounds the waste inside a slot at 12.5%).
//!
//! Lookups are `const fn`s: for a Rust type the class is computed at compile
//! time and the allocation fast path indexes the thread cache with a constant.
//!
//! Slot index from address uses Go's "divMagic": `(off * magic) >> 32` with
//! `magic = ceil(2^32 / size)`. It is exact for every offset used here
//! (an object's value pointer lies at most one alignment past its slot start,
//! far below the `size - span_bytes / 2^32 * size` error margin); a unit test
//! checks every class and every slot.

/// Bytes in a span: every small span is exactly this large and this aligned.
pub(crate) const SPAN_SHIFT: usize = 18;
/// `1 << SPAN_SHIFT` (256 KiB).
pub(crate) const SPAN_BYTES: usize = 1 << SPAN_SHIFT;
/// The largest slot served from size classes; larger objects get their own spans.
pub(crate) const MAX_SMALL: usize = 32 << 10;

/// Slot sizes; index 0 is unused ("no class": a large object).
pub(crate) const CLASS_SIZES: [u32; 67] = [
    0, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256, 288, 320, 352,
    384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280, 1408, 1536, 1792, 2048,
    2304, 2688, 3072, 3200, 3456, 4096, 4864, 5376, 6144, 6528, 6784, 6912, 8192, 9472, 9728,
    10240, 10880, 12288, 13568, 14336, 16384, 18432, 19072, 20480, 21760, 24576, 27264, 28672,
    32768,
];
/// Number of size classes including the unused class 0.
pub(crate) const NUM_CLASSES: usize = CLASS_SIZES.len();
/// Span classes: a size class and a noscan bit (`class << 1 | noscan`), as Go's spanClass.
pub(crate) const NUM_SPAN_CLASSES: usize = NUM_CLASSES * 2;

/// The smallest class whose slot holds `bytes` and is a multiple of `align`
/// (so every slot of a span is `align`-aligned), or 0 if none (large object).
pub(crate) const fn class_for(bytes: usize, align: usize) -> usize {
    let mut c = 1;
    while c < NUM_CLASSES {
        let s = CLASS_SIZES[c] as usize;
        if s >= bytes && s.is_multiple_of(align) {
            return c;
        }
        c += 1;
    }
    0
}

/// Objects of class `c` that fit in one span.
pub(crate) const fn objects_per_span(c: usize) -> usize {
    SPAN_BYTES / CLASS_SIZES[c] as usize
}

/// Go's divMagic for `size`: `(off * magic) >> 32 == off / size` for the offsets used.
pub(crate) const fn div_magic(size: usize) -> u64 {
    (u32::MAX as u64) / size as u64 + 1
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)] // class numbers index several tables
mod tests {
    use super::*;

    #[test]
    fn classes_are_sorted_and_aligned() {
        for c in 2..NUM_CLASSES {
            assert!(CLASS_SIZES[c] > CLASS_SIZES[c - 1]);
            assert_eq!(CLASS_SIZES[c] % 8, 0);
        }
        assert_eq!(CLASS_SIZES[NUM_CLASSES - 1] as usize, MAX_SMALL);
    }

    #[test]
    fn class_for_picks_smallest_fit() {
        assert_eq!(CLASS_SIZES[class_for(1, 8)], 16);
        assert_eq!(CLASS_SIZES[class_for(24, 8)], 24);
        assert_eq!(CLASS_SIZES[class_for(25, 8)], 32);
        assert_eq!(CLASS_SIZES[class_for(24, 16)], 32);
        assert_eq!(CLASS_SIZES[class_for(40, 32)], 64);
        assert_eq!(class_for(MAX_SMALL + 1, 8), 0);
    }

    #[test]
    fn div_magic_is_exact_for_value_offsets() {
        for c in 1..NUM_CLASSES {
            let size = CLASS_SIZES[c] as usize;
            let m = div_magic(size);
            for k in 0..objects_per_span(c) {
                // a value pointer is the slot start + an alignment offset (8..=4096 bytes, < size)
                for delta in [8usize, 16, 64, 4096] {
                    if delta < size {
                        let off = (k * size + delta) as u64;
                        assert_eq!(((off * m) >> 32) as usize, k, "class {c} slot {k} +{delta}");
                    }
                }
            }
        }
    }

    #[test]
    fn tail_waste_is_small() {
        for c in 1..NUM_CLASSES {
            let size = CLASS_SIZES[c] as usize;
            let waste = SPAN_BYTES - objects_per_span(c) * size;
            assert!(waste * 15 <= SPAN_BYTES, "class {c} wastes {waste}");
        }
    }
}
