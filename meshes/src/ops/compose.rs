//! Products of operators: `D = D₁ · D₂ · … · D_m`.

use std::sync::Arc;

use crate::buffer_pool::{BufferPool, Pooled};
use crate::ops::axis_matrix::merge_row;
use crate::ops::{
    LinearOperator, check_field_lengths, check_point_rows, check_same_shape, gather_rows,
};
use crate::{MeshError, Shape};

/// The product `D₁ · D₂ · … · D_m` of operators on one grid, read as in
/// mathematics: **applied right to left**, so `D_m` acts first and `D₁` last
/// (`Compose::new(vec![dx, s])` is `∂x ∘ S`: scale, then differentiate). Its
/// adjoint is `D_mᵀ · … · D₁ᵀ`, applied in the opposite order, and is exact
/// because each factor's is. It is local when every factor is: a mixed
/// derivative `∂x∂y` as the product of two difference stencils is then
/// evaluated at an expert's points alone, and its rows go to a GPU as any
/// stencil's do.
#[derive(Debug, Clone)]
pub struct Compose {
    shape: Shape,
    factors: Vec<Arc<dyn LinearOperator>>,
    /// The intermediate fields' buffers, kept from one application to the
    /// next (shared by clones): applied to a basis, one is as large as the
    /// basis (134 MB for 64 channels on 64³), which a worker thread's
    /// allocator would map and fault in afresh each time
    /// ([`crate::buffer_pool`]). Not above [`MAX_KEPT_BYTES`].
    scratch: Arc<BufferPool<f64>>,
}

/// The largest intermediate a [`Compose`] keeps between applications, 1 GiB.
/// A larger one is freed after each: a basis of 64 channels on 256² × 64 is
/// 2.1 GB, and a kept intermediate would sit idle through the rest of the
/// caller's pass, at its peak; a pass at that size faults in far more anyway.
const MAX_KEPT_BYTES: usize = 1 << 30;

impl Compose {
    /// The product of `factors`, leftmost first (see the type docs for the order).
    ///
    /// Errors: no factors, or factors acting on different shapes.
    pub fn new(factors: Vec<Arc<dyn LinearOperator>>) -> Result<Self, MeshError> {
        let Some(first) = factors.first() else {
            return Err(MeshError::TooSmall {
                what: "number of composed operators",
                min: 1,
                got: 0,
            });
        };
        let shape = first.shape().clone();
        for factor in &factors[1..] {
            check_same_shape("composed operator", &shape, factor.shape())?;
        }
        Ok(Self {
            shape,
            factors,
            scratch: Arc::new(BufferPool::keeping_at_most(
                MAX_KEPT_BYTES / size_of::<f64>(),
            )),
        })
    }

    /// The factors, leftmost (applied last) first.
    pub fn factors(&self) -> &[Arc<dyn LinearOperator>] {
        &self.factors
    }
}

impl LinearOperator for Compose {
    fn shape(&self) -> &Shape {
        &self.shape
    }

    #[track_caller]
    fn apply(&self, input: &[f64], channels: usize, out: &mut [f64]) {
        let order = self.factors.iter().rev();
        self.chain(order, input, channels, out, |d, i, c, o| d.apply(i, c, o));
    }

    #[track_caller]
    fn apply_adjoint(&self, input: &[f64], channels: usize, out: &mut [f64]) {
        let order = self.factors.iter();
        self.chain(order, input, channels, out, |d, i, c, o| {
            d.apply_adjoint(i, c, o)
        });
    }

    /// Local factors: the leftmost factor's row at each point combined with
    /// the rest's rows at that row's columns — the values
    /// [`Compose::apply`] computes there, without the full grid. Otherwise
    /// the full product, gathered.
    #[track_caller]
    fn apply_at(
        &self,
        input: &[f64],
        channels: usize,
        points: &[usize],
        out: &mut [f64],
        stride: usize,
    ) {
        check_point_rows(&self.shape, input, channels, points, out, stride);
        if channels == 0 || points.is_empty() {
            return;
        }
        if !self.is_local() {
            let full = self.apply_to_vec(input, channels);
            gather_rows(&full, channels, points, out, stride);
            return;
        }
        let rows = local_rows(&self.factors, input, channels, points);
        for (k, row) in rows.chunks_exact(channels).enumerate() {
            out[k * stride..][..channels].copy_from_slice(row);
        }
    }

    /// Local when every factor is.
    fn is_local(&self) -> bool {
        self.factors.iter().all(|op| op.is_local())
    }

    /// The product's row: the leftmost factor's row at `point`, each of its
    /// columns `q` replaced by the next factor's row at `q` times its weight,
    /// and so on to the rightmost factor (repeated columns merged, and zero
    /// sums dropped, after each factor, so a long product does not multiply
    /// them). A non-local factor leaves `row` as it was.
    #[track_caller]
    fn add_row_at(&self, point: usize, scale: f64, row: &mut Vec<(usize, f64)>) -> bool {
        if !self.is_local() {
            return false;
        }
        let mut current = vec![(point, scale)];
        for factor in &self.factors {
            let mut next = Vec::new();
            for (q, w) in current {
                factor.add_row_at(q, w, &mut next);
            }
            merge_row(&mut next);
            current = next;
        }
        row.extend(current);
        true
    }
}

/// Rows `points` of `factors[0] · … · factors[m−1] · input`, all factors
/// local, `[points, channels]`: the rightmost factor's own rows, then each
/// factor to the left combines the rows of the product to its right at its
/// row's columns.
fn local_rows(
    factors: &[Arc<dyn LinearOperator>],
    input: &[f64],
    channels: usize,
    points: &[usize],
) -> Vec<f64> {
    let mut out = vec![0.0; points.len() * channels];
    let Some((first, rest)) = factors.split_first() else {
        return out;
    };
    if rest.is_empty() {
        first.apply_at(input, channels, points, &mut out, channels);
        return out;
    }
    let mut weights = Vec::new();
    let mut starts = Vec::with_capacity(points.len() + 1);
    for &p in points {
        starts.push(weights.len());
        first.add_row_at(p, 1.0, &mut weights);
    }
    starts.push(weights.len());
    let columns: Vec<usize> = weights.iter().map(|&(q, _)| q).collect();
    let inner = local_rows(rest, input, channels, &columns);
    for (k, row) in out.chunks_exact_mut(channels).enumerate() {
        for j in starts[k]..starts[k + 1] {
            let w = weights[j].1;
            for (o, v) in row.iter_mut().zip(&inner[j * channels..][..channels]) {
                *o += w * v;
            }
        }
    }
    out
}

impl Compose {
    /// Runs `step` for each operator in application order, ping-ponging
    /// between two scratch fields (zeroed when taken from the pool, so an
    /// operator that wrongly adds into its output still sees zeros the first
    /// time) and writing the last step straight into `out`.
    #[track_caller]
    fn chain<'a>(
        &self,
        order: impl ExactSizeIterator<Item = &'a Arc<dyn LinearOperator>>,
        input: &[f64],
        channels: usize,
        out: &mut [f64],
        step: impl Fn(&dyn LinearOperator, &[f64], usize, &mut [f64]),
    ) {
        check_field_lengths(&self.shape, input, channels, out);
        let steps = order.len();
        let mut current: Option<Pooled<f64>> = None;
        let mut next: Option<Pooled<f64>> = None;
        for (k, op) in order.enumerate() {
            let source: &[f64] = current.as_deref().unwrap_or(input);
            if k + 1 == steps {
                step(op.as_ref(), source, channels, out);
            } else {
                let mut target = next
                    .take()
                    .unwrap_or_else(|| self.scratch.zeros(input.len()));
                step(op.as_ref(), source, channels, &mut target);
                next = current.replace(target);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::scale::Scale;

    /// The first difference along `axis` with `spacing` (numpy's stencils).
    fn difference(shape: &Shape, axis: usize, spacing: f64) -> Arc<dyn LinearOperator> {
        let scheme = crate::ops::fd::FdScheme::Reference;
        let d = crate::ops::fd::FiniteDifference::first_with_spacing(shape, axis, scheme, spacing);
        Arc::new(d.unwrap())
    }

    fn scale(shape: &Shape, w: f64) -> Arc<dyn LinearOperator> {
        Arc::new(Scale::new(shape, (0..shape.len()).map(|p| w + p as f64).collect()).unwrap())
    }

    #[test]
    fn applies_right_to_left() {
        // With diagonal factors the order does not show, so compose a permutation-free
        // but non-commuting pair: a first-difference along the axis and a scaling.
        let shape = Shape::new(&[4]);
        let d = difference(&shape, 0, 1.0);
        let s = scale(&shape, 1.0); // weights 1, 2, 3, 4
        let u = [1.0, 1.0, 1.0, 1.0];
        // D ∘ S: differentiate (1, 2, 3, 4) → all ones.
        let ds = Compose::new(vec![d.clone(), s.clone()]).unwrap();
        assert_eq!(ds.apply_to_vec(&u, 1), vec![1.0; 4]);
        // S ∘ D: differentiate a constant → zero.
        let sd = Compose::new(vec![s, d]).unwrap();
        assert_eq!(sd.apply_to_vec(&u, 1), vec![0.0; 4]);
    }

    #[test]
    fn three_factors_multiply_and_one_factor_is_itself() {
        let shape = Shape::new(&[2, 3]);
        let ops = vec![scale(&shape, 1.0), scale(&shape, 2.0), scale(&shape, -1.0)];
        let field: Vec<f64> = (0..12).map(|k| f64::from(k) - 4.0).collect();
        let product = Compose::new(ops.clone()).unwrap().apply_to_vec(&field, 2);
        for (k, v) in product.iter().enumerate() {
            let p = (k / 2) as f64;
            assert_eq!(*v, (1.0 + p) * (2.0 + p) * (-1.0 + p) * field[k]);
        }
        let single = Compose::new(vec![ops[0].clone()]).unwrap();
        assert_eq!(
            single.apply_to_vec(&field, 2),
            ops[0].apply_to_vec(&field, 2)
        );
    }

    /// The intermediates' buffers are kept between applications: applying
    /// to fields of other channel counts first leaves every later result
    /// (forward and adjoint) equal to the factors applied one by one, and
    /// the pool holds no more than the two buffers one chain uses.
    #[test]
    fn kept_scratch_does_not_change_an_application() {
        let shape = Shape::new(&[3, 4]);
        let d = difference(&shape, 1, 0.5);
        let ops = vec![d.clone(), scale(&shape, 1.5), d, scale(&shape, -0.5)];
        let product = Compose::new(ops.clone()).unwrap();
        for channels in [3, 1, 2, 3] {
            let field: Vec<f64> = (0..12 * channels)
                .map(|k| (0.7 * k as f64).sin() + 0.1 * k as f64)
                .collect();
            let by_hand = ops
                .iter()
                .rev()
                .fold(field.clone(), |f, op| op.apply_to_vec(&f, channels));
            assert_eq!(product.apply_to_vec(&field, channels), by_hand);
            let adjoint_by_hand =
                (ops.iter()).fold(field.clone(), |f, op| op.apply_adjoint_to_vec(&f, channels));
            assert_eq!(
                product.apply_adjoint_to_vec(&field, channels),
                adjoint_by_hand
            );
        }
        assert_eq!(product.scratch.free_buffers(), 2);
    }

    #[test]
    fn bad_input_gives_typed_errors() {
        assert!(matches!(
            Compose::new(vec![]),
            Err(MeshError::TooSmall { .. })
        ));
        let mixed = vec![
            scale(&Shape::new(&[2, 3]), 1.0),
            scale(&Shape::new(&[3, 2]), 1.0),
        ];
        assert_eq!(
            Compose::new(mixed).err(),
            Some(MeshError::ShapeMismatch {
                what: "composed operator",
                expected: vec![2, 3],
                got: vec![3, 2]
            })
        );
    }
}
