//! The kernels as checked, typed calls: every view is bounds-checked against
//! its buffer before the launch, so a shape slip is an error, not a stray
//! write on the device.

use tessera_constraints::gpu::GpuError;

use std::ops::Range;

use super::executor::{Arg, DeviceArray, Executor, Kernel};
use super::optimiser::AdamScalars;

/// A batch of `rows × cols` matrices inside a buffer: element `(b, i, j)` sits
/// at `offset + b·batch + i·row + j·col`. Transposes, sub-blocks and operands
/// shared by the whole batch (`batch = 0`) are views, not copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// First element.
    pub offset: usize,
    /// Rows of each matrix.
    pub rows: usize,
    /// Columns of each matrix.
    pub cols: usize,
    /// Distance between rows.
    pub row: usize,
    /// Distance between columns.
    pub col: usize,
    /// Distance between matrices of the batch.
    pub batch: usize,
}

impl View {
    /// Contiguous row-major `rows × cols` matrices, one after another.
    pub fn dense(offset: usize, rows: usize, cols: usize) -> Self {
        Self {
            offset,
            rows,
            cols,
            row: cols,
            col: 1,
            batch: rows * cols,
        }
    }

    /// The transposed matrices (same elements).
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            row: self.col,
            col: self.row,
            ..self
        }
    }

    /// The same matrix for every entry of a batch.
    pub fn shared(self) -> Self {
        Self { batch: 0, ..self }
    }

    /// With rows `row` apart.
    pub fn row_stride(self, row: usize) -> Self {
        Self { row, ..self }
    }

    /// With batch entries `batch` apart.
    pub fn batch_stride(self, batch: usize) -> Self {
        Self { batch, ..self }
    }

    /// Checks that `count` matrices fit a buffer of `len` elements.
    fn check(&self, count: usize, len: usize, what: &str) -> Result<(), GpuError> {
        if self.rows == 0 || self.cols == 0 || count == 0 {
            return Ok(());
        }
        let last = self.offset
            + (count - 1) * self.batch
            + (self.rows - 1) * self.row
            + (self.cols - 1) * self.col;
        if last < len {
            Ok(())
        } else {
            Err(GpuError::Unsupported(format!(
                "{what}: {count} × {self:?} reaches element {last} of a buffer of {len}"
            )))
        }
    }
}

fn int(v: usize) -> Arg {
    Arg::Int(v as i64)
}

/// `blocks` as a launch's grid, which CUDA limits to 2³¹ − 1 blocks along
/// `x`; `what` says what asked for more in the error.
fn launch_grid(blocks: usize, what: impl FnOnce() -> String) -> Result<u32, GpuError> {
    match u32::try_from(blocks) {
        Ok(b) if b <= i32::MAX.unsigned_abs() => Ok(b),
        _ => Err(GpuError::Unsupported(what())),
    }
}

/// Blocks of `threads` covering `len` elements.
fn blocks_for(len: usize, threads: u32) -> Result<u32, GpuError> {
    launch_grid(len.div_ceil(threads as usize).max(1), || {
        format!("{len} elements in one launch")
    })
}

/// The typed kernels on one executor.
pub struct Ops<'e, E: Executor> {
    exec: &'e E,
}

/// Rows and columns of one product tile (`TESSERA_TILE` in the source).
const TILE: usize = 64;
/// Slices of a product's `k` are at least this long: shorter ones cost more in
/// partial sums than they gain in blocks.
const MIN_K_SLICE: usize = 2048;
/// Split a product's `k` only while it has fewer tiles than this, roughly the
/// number of multiprocessors of a large GPU.
const SPLIT_BELOW_TILES: usize = 128;

impl<'e, E: Executor> Ops<'e, E> {
    /// The kernels on `exec`.
    pub fn new(exec: &'e E) -> Self {
        Self { exec }
    }

    /// The executor.
    pub fn exec(&self) -> &'e E {
        self.exec
    }

    fn ptr(&self, buffer: &E::Buffer, offset: usize) -> Arg {
        Arg::Ptr(self.exec.address(buffer) + self.exec.precision().bytes() * offset as u64)
    }

    /// `C_b = α A_b B_b + β C_b` for `b < count` (`β = 0` ignores what `C`
    /// held). Products with few tiles and a long `k` (the weight gradients,
    /// whose `k` is every grid point) are split along `k` into slices summed
    /// in a fixed order, so the result is deterministic.
    #[allow(clippy::too_many_arguments)]
    pub fn gemm(
        &self,
        count: usize,
        alpha: f64,
        (a_buf, a): (&E::Buffer, View),
        (b_buf, b): (&E::Buffer, View),
        beta: f64,
        (c_buf, c): (&mut E::Buffer, View),
    ) -> Result<(), GpuError> {
        let (m, n, k) = (c.rows, c.cols, a.cols);
        if a.rows != m || b.rows != k || b.cols != n {
            return Err(GpuError::Unsupported(format!(
                "product of {}×{} and {}×{} into {}×{}",
                a.rows, a.cols, b.rows, b.cols, m, n
            )));
        }
        a.check(count, a_buf.len(), "product operand A")?;
        b.check(count, b_buf.len(), "product operand B")?;
        c.check(count, c_buf.len(), "product result")?;
        if m == 0 || n == 0 || count == 0 {
            return Ok(());
        }
        let tiles = m.div_ceil(TILE) * n.div_ceil(TILE) * count;
        let splits = if tiles < SPLIT_BELOW_TILES {
            (k / MIN_K_SLICE).clamp(1, SPLIT_BELOW_TILES / tiles)
        } else {
            1
        };
        let k_slice = k.div_ceil(splits).max(1);
        let splits = k.div_ceil(k_slice).max(1);
        let partial = if splits > 1 {
            Some(self.exec.zeros(count * splits * m * n)?)
        } else {
            None
        };
        let blocks = launch_grid(tiles * splits, || format!("{tiles} product tiles"))?;
        let partial_ptr = match &partial {
            Some(p) => self.ptr(p, 0),
            None => Arg::Ptr(0),
        };
        let args = [
            int(m),
            int(n),
            int(k),
            int(count),
            int(splits),
            int(k_slice),
            Arg::Real(alpha),
            self.ptr(a_buf, a.offset),
            int(a.row),
            int(a.col),
            int(a.batch),
            self.ptr(b_buf, b.offset),
            int(b.row),
            int(b.col),
            int(b.batch),
            Arg::Real(beta),
            self.ptr(c_buf, c.offset),
            int(c.row),
            int(c.col),
            int(c.batch),
            partial_ptr,
        ];
        // SAFETY: the arguments follow `tessera_gemm`'s parameters, and the
        // three views were checked against their buffers above; the partial
        // sums have `count · splits · m · n` elements.
        unsafe { self.exec.launch(Kernel::Gemm, blocks, &args)? };
        if let Some(p) = &partial {
            let args = [
                int(m),
                int(n),
                int(count),
                int(splits),
                self.ptr(p, 0),
                Arg::Real(beta),
                self.ptr(c_buf, c.offset),
                int(c.row),
                int(c.col),
                int(c.batch),
            ];
            let blocks = blocks_for(count * m * n, Kernel::GemmReduce.threads())?;
            // SAFETY: `tessera_gemm_reduce`'s parameters; the views as above.
            unsafe { self.exec.launch(Kernel::GemmReduce, blocks, &args)? };
        }
        Ok(())
    }

    fn elementwise(
        &self,
        kernel: Kernel,
        len: usize,
        input: (&E::Buffer, usize),
        output: (&mut E::Buffer, usize),
    ) -> Result<(), GpuError> {
        View::dense(input.1, len, 1).check(1, input.0.len(), kernel.name())?;
        View::dense(output.1, len, 1).check(1, output.0.len(), kernel.name())?;
        if len == 0 {
            return Ok(());
        }
        let args = [
            int(len),
            self.ptr(input.0, input.1),
            self.ptr(output.0, output.1),
        ];
        // SAFETY: `(len, const real*, real*)` is the signature of both
        // elementwise kernels, and both ranges were checked.
        unsafe {
            self.exec
                .launch(kernel, blocks_for(len, kernel.threads())?, &args)
        }
    }

    /// `out = gelu(z)` elementwise over whole buffers.
    pub fn gelu(&self, z: &E::Buffer, out: &mut E::Buffer) -> Result<(), GpuError> {
        self.elementwise(Kernel::Gelu, z.len(), (z, 0), (out, 0))
    }

    /// `gelu(z)` in a new buffer.
    pub fn gelu_of(&self, z: &E::Buffer) -> Result<E::Buffer, GpuError> {
        let mut out = self.exec.zeros(z.len())?;
        self.gelu(z, &mut out)?;
        Ok(out)
    }

    /// `g *= gelu'(z)` elementwise over whole buffers.
    pub fn gelu_backward(&self, z: &E::Buffer, g: &mut E::Buffer) -> Result<(), GpuError> {
        if z.len() != g.len() {
            return Err(GpuError::Unsupported(format!(
                "activation gradient of {} for {} inputs",
                g.len(),
                z.len()
            )));
        }
        self.elementwise(Kernel::GeluBackward, z.len(), (z, 0), (g, 0))
    }

    /// Every row of `out: [len / cols, cols]` set to `bias[offset..offset + cols]`.
    pub fn fill_rows(
        &self,
        (bias, offset): (&E::Buffer, usize),
        out: &mut E::Buffer,
        cols: usize,
    ) -> Result<(), GpuError> {
        View::dense(offset, 1, cols).check(1, bias.len(), "bias")?;
        if cols == 0 || out.len() % cols != 0 {
            return Err(GpuError::Unsupported(format!(
                "{} elements in rows of {cols}",
                out.len()
            )));
        }
        let args = [
            int(out.len() / cols),
            int(cols),
            self.ptr(bias, offset),
            self.ptr(out, 0),
        ];
        let blocks = blocks_for(out.len(), Kernel::FillRows.threads())?;
        // SAFETY: `tessera_fill_rows`'s parameters; `out` holds whole rows
        // and the bias `cols` elements from `offset`.
        unsafe { self.exec.launch(Kernel::FillRows, blocks, &args) }
    }

    /// A new `[rows, cols]` array whose rows are the bias at `offset`.
    pub fn rows_of(
        &self,
        bias: (&E::Buffer, usize),
        rows: usize,
        cols: usize,
    ) -> Result<E::Buffer, GpuError> {
        let mut out = self.exec.zeros(rows * cols)?;
        self.fill_rows(bias, &mut out, cols)?;
        Ok(out)
    }

    /// `out[offset + c] = Σ_r data[r, c]` for `data: [len / cols, cols]`.
    pub fn column_sums(
        &self,
        data: &E::Buffer,
        cols: usize,
        (out, offset): (&mut E::Buffer, usize),
    ) -> Result<(), GpuError> {
        View::dense(offset, 1, cols).check(1, out.len(), "column sums")?;
        if cols == 0 || data.len() % cols != 0 {
            return Err(GpuError::Unsupported(format!(
                "{} elements in rows of {cols}",
                data.len()
            )));
        }
        let args = [
            int(data.len() / cols),
            int(cols),
            self.ptr(data, 0),
            self.ptr(out, offset),
        ];
        let blocks = launch_grid(cols, || format!("{cols} columns"))?;
        // SAFETY: `tessera_column_sums`'s parameters, one block per column;
        // the ranges were checked.
        unsafe { self.exec.launch(Kernel::ColumnSums, blocks, &args) }
    }

    /// One Adam update of `params[range]` and its moments `m[range]`,
    /// `v[range]` in place, for the gradient `grad[range]` ([`AdamScalars`]).
    pub fn adam(
        &self,
        range: Range<usize>,
        params: &mut E::Buffer,
        grad: &E::Buffer,
        (m, v): (&mut E::Buffer, &mut E::Buffer),
        scalars: &AdamScalars,
    ) -> Result<(), GpuError> {
        let len = range.len();
        for (buffer, what) in [
            (params.len(), "parameters"),
            (grad.len(), "gradient"),
            (m.len(), "first moment"),
            (v.len(), "second moment"),
        ] {
            View::dense(range.start, len, 1).check(1, buffer, what)?;
        }
        if len == 0 {
            return Ok(());
        }
        let s = scalars;
        let args = [
            int(len),
            self.ptr(params, range.start),
            self.ptr(grad, range.start),
            self.ptr(m, range.start),
            self.ptr(v, range.start),
            Arg::Real(s.scale),
            Arg::Real(s.beta1),
            Arg::Real(s.one_minus_beta1),
            Arg::Real(s.beta2),
            Arg::Real(s.one_minus_beta2),
            Arg::Real(s.unbias1),
            Arg::Real(s.unbias2),
            Arg::Real(s.eps),
            Arg::Real(s.lr),
        ];
        // SAFETY: `tessera_adam`'s parameters; the four ranges were checked.
        unsafe {
            self.exec.launch(
                Kernel::Adam,
                blocks_for(len, Kernel::Adam.threads())?,
                &args,
            )
        }
    }

    /// The sums of squares of `x[range]` in blocks of `per_block` elements,
    /// written to `out[offset..]`; returns the number of blocks.
    pub fn squares(
        &self,
        (x, range): (&E::Buffer, Range<usize>),
        per_block: usize,
        (out, offset): (&mut E::Buffer, usize),
    ) -> Result<usize, GpuError> {
        let blocks = range.len().div_ceil(per_block.max(1));
        View::dense(range.start, range.len(), 1).check(1, x.len(), "squared values")?;
        View::dense(offset, blocks, 1).check(1, out.len(), "sums of squares")?;
        if blocks == 0 {
            return Ok(0);
        }
        let args = [
            int(range.len()),
            int(per_block),
            self.ptr(x, range.start),
            self.ptr(out, offset),
        ];
        let grid = launch_grid(blocks, || format!("{blocks} blocks in one launch"))?;
        // SAFETY: `tessera_squares`'s parameters, one block per `per_block`
        // elements; the ranges were checked.
        unsafe { self.exec.launch(Kernel::Squares, grid, &args) }?;
        Ok(blocks)
    }
}
