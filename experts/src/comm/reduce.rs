//! The all-reduce every communicator shares, built on the variable all-to-all
//! so that the summation order is fixed by the world size alone.

use std::ops::Range;

use super::{CommError, Communicator};

/// The fixed split of a vector of `len` values into `size` contiguous buckets:
/// bucket `r` (summed by rank `r`) holds `len / size` values, one more for the
/// first `len % size` buckets.
pub fn bucket_ranges(len: usize, size: usize) -> Vec<Range<usize>> {
    let (base, extra) = (len / size, len % size);
    let mut start = 0;
    (0..size)
        .map(|r| {
            let end = start + base + usize::from(r < extra);
            let range = start..end;
            start = end;
            range
        })
        .collect()
}

/// See [`Communicator::all_reduce_sum`].
pub(super) fn all_reduce_sum<C: Communicator + ?Sized>(
    comm: &C,
    values: &mut [f64],
) -> Result<(), CommError> {
    let size = comm.size();
    if size == 1 {
        return Ok(());
    }
    let buckets = bucket_ranges(values.len(), size);
    // Reduce-scatter: rank r receives everyone's bucket r and sums it in rank order.
    let send: Vec<Vec<f64>> = buckets.iter().map(|b| values[b.clone()].to_vec()).collect();
    let received = comm.all_to_all_v(&send)?;
    let mine = &buckets[comm.rank()];
    let mut sum = vec![0.0; mine.len()];
    for (source, part) in received.iter().enumerate() {
        if part.len() != mine.len() {
            return Err(CommError::Inconsistent {
                what: "all-reduce length",
                rank: source,
                expected: values.len(),
                got: part.len(),
            });
        }
        if source == 0 {
            sum.copy_from_slice(part);
        } else {
            sum.iter_mut().zip(part).for_each(|(s, v)| *s += v);
        }
    }
    // All-gather: every rank sends its summed bucket to all.
    let send = vec![sum; size];
    let received = comm.all_to_all_v(&send)?;
    for (bucket, part) in buckets.iter().zip(&received) {
        values[bucket.clone()].copy_from_slice(part);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_tile_the_vector_in_order() {
        for (len, size) in [(0, 3), (7, 3), (9, 3), (2, 5), (1000, 7)] {
            let buckets = bucket_ranges(len, size);
            assert_eq!(buckets.len(), size);
            assert_eq!(buckets[0].start, 0);
            assert_eq!(buckets[size - 1].end, len);
            for w in buckets.windows(2) {
                assert_eq!(w[0].end, w[1].start);
                assert!(w[0].len() >= w[1].len() && w[0].len() - w[1].len() <= 1);
            }
        }
    }
}
