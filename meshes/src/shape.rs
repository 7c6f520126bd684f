//! Row-major index arithmetic for grids of any dimension.

/// The point dimensions of a grid, e.g. `[nt, nx]` or `[nt, nx, ny]`, in row-major
/// order (last axis fastest). Channels are not part of a `Shape`; a field with `c`
/// channels stores `shape.len() * c` values with the channel fastest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Shape {
    dims: Vec<usize>,
}

impl Shape {
    /// A shape from its dimensions.
    ///
    /// # Panics
    /// If `dims` is empty or any dimension is zero (a programmer error: user input
    /// goes through [`crate::Grid`] constructors, which return errors instead).
    #[track_caller]
    pub fn new(dims: &[usize]) -> Self {
        assert!(!dims.is_empty(), "a shape needs at least one dimension");
        assert!(
            dims.iter().all(|&d| d > 0),
            "zero-length dimension in {dims:?}"
        );
        Self {
            dims: dims.to_vec(),
        }
    }

    /// The dimensions, slowest axis first.
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// Number of axes.
    pub fn ndim(&self) -> usize {
        self.dims.len()
    }

    /// Number of points (product of the dimensions).
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    /// Always false: a shape has no zero dimension.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Row-major strides in points (not counting channels).
    pub fn strides(&self) -> Vec<usize> {
        let mut strides = vec![1; self.dims.len()];
        for a in (0..self.dims.len().saturating_sub(1)).rev() {
            strides[a] = strides[a + 1] * self.dims[a + 1];
        }
        strides
    }

    /// The shape seen from one axis: `(outer, len, inner)` with `outer` the number of
    /// points before the axis (product of the slower dimensions), `len` the axis
    /// length and `inner` the number of points after it (product of the faster
    /// dimensions). A field with `c` channels is then a row-major
    /// `[outer, len, inner · c]` array, which is how every axis operator streams
    /// through it.
    ///
    /// # Panics
    /// If `axis >= self.ndim()`.
    #[track_caller]
    pub fn around_axis(&self, axis: usize) -> (usize, usize, usize) {
        assert!(
            axis < self.dims.len(),
            "axis {axis} out of range for shape {:?}",
            self.dims
        );
        let outer = self.dims[..axis].iter().product();
        let inner = self.dims[axis + 1..].iter().product();
        (outer, self.dims[axis], inner)
    }

    /// Flat point index of a multi-index.
    #[track_caller]
    pub fn flat(&self, index: &[usize]) -> usize {
        debug_assert_eq!(index.len(), self.dims.len());
        index.iter().zip(&self.dims).fold(0, |acc, (&i, &d)| {
            debug_assert!(i < d);
            acc * d + i
        })
    }

    /// Multi-index of a flat point index.
    pub fn unflat(&self, mut flat: usize) -> Vec<usize> {
        let mut index = vec![0; self.dims.len()];
        for a in (0..self.dims.len()).rev() {
            index[a] = flat % self.dims[a];
            flat /= self.dims[a];
        }
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_and_unflat_are_inverse_row_major_maps() {
        let shape = Shape::new(&[3, 4, 5]);
        assert_eq!(shape.strides(), vec![20, 5, 1]);
        assert_eq!(shape.len(), 60);
        for p in 0..shape.len() {
            let index = shape.unflat(p);
            let by_strides: usize = index.iter().zip(shape.strides()).map(|(i, s)| i * s).sum();
            assert_eq!(by_strides, p);
            assert_eq!(shape.flat(&index), p);
        }
    }

    #[test]
    fn around_axis_splits_the_shape() {
        let shape = Shape::new(&[3, 4, 5]);
        assert_eq!(shape.around_axis(0), (1, 3, 20));
        assert_eq!(shape.around_axis(1), (3, 4, 5));
        assert_eq!(shape.around_axis(2), (12, 5, 1));
    }

    #[test]
    #[should_panic(expected = "zero-length dimension")]
    fn zero_dimension_panics() {
        Shape::new(&[3, 0]);
    }
}
