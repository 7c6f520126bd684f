//! A mixture of experts' passes over the whole grid, on the device: the
//! constrained solution `u`, the experts' upstream gradients `ω̄`, and the
//! pull-back of their row gradients to the fields the batch was gathered
//! from (`tiles.cu`).
//!
//! Why: once the term rows are gathered on the device from the fields (the
//! basis `B`, or `S B`), the rest of a layer's work that reads whole fields
//! would otherwise run on the host's cores, after copying the row gradients
//! down (23 MB at the paper's diffusion–sorption scale, batch 6), with
//! passes over the basis (79 MB) for `u`, for `ω̄` and for the pull-back.
//! On the device these read the fields kept with the batch
//! ([`super::SolvedBatch`]); only `u` comes down and `ū` goes up (a value
//! per grid point each), and `F̄` comes down, where the host's backbone
//! backward pass takes it.
//!
//! What the passes read besides the batch: [`DeviceTiles`], fixed for a
//! layer (each point's expert, the tiles' points, the residual's terms at
//! every grid point, from which the solves gather their term rows too, and
//! their transpose), uploaded once; and per call
//! [`PullBackRows`], where one sample's row gradients sit on the grid (the
//! experts' sampled points, and their linear rows expanded over the grid).

use cudarc::driver::{CudaSlice, PushKernelArg};
use tessera_meshes::SparseRows;

use super::device::{
    BackwardOutputs, GpuLm, KeptFields, Uploaded, backward_state, bind_for_drop, driver,
    launch_config, strided_blocks, upload,
};
use super::gather::{DeviceRows, check_columns};
use super::times::{GpuTimes, Stopwatch};
use super::{GpuError, KernelShape, SolvedBatch};
use crate::{ConstraintError, HessianMode};

/// How many blocks share one problem's sum `ω̄ = Σ_{q ∈ tile} ū[q]·F[q]`:
/// enough to fill a GPU at batch 1 (4 experts × 32 blocks), each block's
/// partial sum then added in a fixed order.
const OMEGA_BAR_CHUNKS: usize = 32;

/// A grid's tiles as `tiles.cu` reads them: the expert owning each point,
/// and each expert's points (tile by tile, ascending) with where each
/// tile's list starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Tiles {
    /// `[grid points]`.
    pub owners: Vec<i32>,
    /// `[experts + 1]`, into `points`.
    pub start: Vec<i64>,
    /// `[grid points]`.
    pub points: Vec<i32>,
}

impl Tiles {
    /// The tiles of `n_experts` experts where point `q` belongs to
    /// `owners[q]`.
    ///
    /// Errors: no points or experts, an owner that is not an expert, or a
    /// grid too large for the kernels' 32-bit point indices.
    pub fn new(owners: &[usize], n_experts: usize) -> Result<Self, GpuError> {
        let fits = i32::try_from(owners.len()).is_ok() && i32::try_from(n_experts).is_ok();
        if owners.is_empty() || n_experts == 0 || !fits {
            return Err(GpuError::Unsupported(format!(
                "tiles of {n_experts} experts over {} grid points",
                owners.len()
            )));
        }
        if let Some(&bad) = owners.iter().find(|&&k| k >= n_experts) {
            return Err(GpuError::Unsupported(format!(
                "a grid point owned by expert {bad} of {n_experts}"
            )));
        }
        let mut start = vec![0_i64; n_experts + 1];
        for &k in owners {
            start[k + 1] += 1;
        }
        for k in 0..n_experts {
            start[k + 1] += start[k];
        }
        let mut next: Vec<usize> = start[..n_experts].iter().map(|&s| s as usize).collect();
        let mut points = vec![0_i32; owners.len()];
        for (q, &k) in owners.iter().enumerate() {
            points[next[k]] = q as i32;
            next[k] += 1;
        }
        Ok(Self {
            owners: owners.iter().map(|&k| k as i32).collect(),
            start,
            points,
        })
    }

    /// Number of experts.
    pub fn n_experts(&self) -> usize {
        self.start.len() - 1
    }

    /// Number of grid points.
    pub fn n_grid(&self) -> usize {
        self.owners.len()
    }
}

/// [`Tiles`] and the residual's terms at every grid point with their
/// transpose, on the device: what [`GpuLm::solve_kept_gathered`] gathers
/// the experts' term rows from and [`GpuLm::assemble`] and
/// [`GpuLm::pull_back`] read of a layer, uploaded once ([`GpuLm::tiles`]).
pub struct DeviceTiles {
    owners: CudaSlice<i32>,
    start: CudaSlice<i64>,
    points: CudaSlice<i32>,
    /// `D_j` at every grid point `p` as row `p·d + j` over the grid's points.
    terms: DeviceRows,
    /// `Σ_j D_jᵀ` as rows over the grid's points, columns `p·d + j`.
    adjoint: DeviceRows,
    /// The terms `d` per point the adjoint's columns `p·d + j` count.
    n_terms: usize,
    /// The host's copy, to check the sampled points a call names.
    host: Tiles,
}

impl DeviceTiles {
    /// Number of grid points.
    pub fn n_grid(&self) -> usize {
        self.host.n_grid()
    }

    /// The residual's terms per grid point (`d`).
    pub fn n_terms(&self) -> usize {
        self.n_terms
    }

    /// The terms at every grid point, for the gather.
    pub(super) fn terms(&self) -> &DeviceRows {
        &self.terms
    }
}

impl Drop for DeviceTiles {
    fn drop(&mut self) {
        bind_for_drop(self.owners.stream());
    }
}

impl std::fmt::Debug for DeviceTiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceTiles")
            .field("experts", &self.host.n_experts())
            .field("grid_points", &self.host.n_grid())
            .finish()
    }
}

/// Where one sample's row gradients sit on the grid, the experts in order:
/// each expert's sampled points (the term rows' points, as its problem
/// lists them) and each of its linear rows expanded over the grid
/// (`Σ_j c_j` × row `point` of `D_j`, one sparse row per linear row, as its
/// problem lists them). The same for every sample of a call.
#[derive(Debug, Clone, PartialEq)]
pub struct PullBackRows {
    points: Vec<usize>,
    points_per_expert: Vec<usize>,
    linear: SparseRows,
    linear_per_expert: Vec<usize>,
}

impl PullBackRows {
    /// Expert `k`'s sampled points `points[k]` and expanded linear rows
    /// `linear[k]`.
    ///
    /// Errors: not one list of points and one of rows per expert, no
    /// experts, rows over another number of grid points than the others, a
    /// point outside them, or more rows or points than 32-bit indices reach.
    pub fn new(points: &[&[usize]], linear: &[SparseRows]) -> Result<Self, GpuError> {
        let n_grid = linear.first().map_or(0, SparseRows::n_columns);
        let mut all = SparseRows::new(n_grid);
        for rows in linear {
            all.append(rows)
                .map_err(|e| GpuError::Unsupported(format!("linear rows of the experts: {e}")))?;
        }
        let flat: Vec<usize> = points.concat();
        if points.is_empty() || points.len() != linear.len() || flat.iter().any(|&p| p >= n_grid) {
            return Err(GpuError::Unsupported(format!(
                "{} experts' points and {} experts' linear rows over {n_grid} grid points",
                points.len(),
                linear.len()
            )));
        }
        if i32::try_from(flat.len()).is_err() || i32::try_from(all.len()).is_err() {
            return Err(GpuError::Unsupported(format!(
                "{} sampled points and {} linear rows (the kernels index them with 32 bits)",
                flat.len(),
                all.len()
            )));
        }
        check_columns(&all)?;
        Ok(Self {
            points: flat,
            points_per_expert: points.iter().map(|p| p.len()).collect(),
            linear: all,
            linear_per_expert: linear.iter().map(SparseRows::len).collect(),
        })
    }

    /// Number of experts.
    pub fn n_experts(&self) -> usize {
        self.points_per_expert.len()
    }

    /// Number of grid points.
    pub fn n_grid(&self) -> usize {
        self.linear.n_columns()
    }

    /// Sampled points of one sample, all experts.
    pub fn n_points(&self) -> usize {
        self.points.len()
    }

    /// Linear rows of one sample, all experts.
    pub fn n_linear(&self) -> usize {
        self.linear.len()
    }

    /// Where each grid point appears among the sampled points, as
    /// `tiles.cu` reads it: `(start, sampled)`, grid point `p` at the
    /// indices `sampled[start[p]..start[p + 1]]` (ascending) of the experts'
    /// concatenated points.
    pub fn sampled(&self) -> (Vec<i64>, Vec<i32>) {
        let n_grid = self.n_grid();
        let mut start = vec![0_i64; n_grid + 1];
        for &p in &self.points {
            start[p + 1] += 1;
        }
        for p in 0..n_grid {
            start[p + 1] += start[p];
        }
        let mut next: Vec<usize> = start[..n_grid].iter().map(|&s| s as usize).collect();
        let mut sampled = vec![0_i32; self.points.len()];
        for (s, &p) in self.points.iter().enumerate() {
            sampled[next[p]] = s as i32;
            next[p] += 1;
        }
        (start, sampled)
    }

    /// The linear rows' transpose (one row per grid point, over the
    /// sample's linear rows) and the expert of each linear row, as
    /// `tiles.cu` reads them.
    pub fn linear_adjoint(&self) -> (SparseRows, Vec<i32>) {
        let experts = self
            .linear_per_expert
            .iter()
            .enumerate()
            .flat_map(|(k, &rows)| std::iter::repeat_n(k as i32, rows))
            .collect();
        (self.linear.transpose(), experts)
    }

    /// Whether every expert's points lie in its tile of `tiles`.
    fn inside(&self, tiles: &Tiles) -> bool {
        let mut points = self.points.iter();
        self.points_per_expert.iter().enumerate().all(|(k, &n)| {
            points
                .by_ref()
                .take(n)
                .all(|&p| tiles.owners.get(p) == Some(&(k as i32)))
        })
    }

    /// `Ok` if `solved` is `samples` samples of these experts' problems
    /// (sample-major), each with these points and linear rows.
    fn check_batch(&self, solved: &SolvedBatch, samples: usize) -> Result<(), GpuError> {
        let k = self.n_experts();
        let counts = |start: &[i64], i: usize| (start[i + 1] - start[i]) as usize;
        let matches = solved.len() == samples * k
            && (0..solved.len()).all(|i| {
                counts(&solved.point_start, i) == self.points_per_expert[i % k]
                    && counts(&solved.linear_start, i) == self.linear_per_expert[i % k]
            });
        if matches {
            return Ok(());
        }
        Err(GpuError::Unsupported(format!(
            "a pull-back of {samples} samples × {k} experts with {} points and {} linear rows \
             each for a batch of {} problems",
            self.n_points(),
            self.n_linear(),
            solved.len()
        )))
    }
}

/// The fields a batch kept and their layout, or why a call cannot use it.
fn kept_fields<'a>(
    shape: KernelShape,
    solved: &'a SolvedBatch,
    tiles: &DeviceTiles,
) -> Result<&'a KeptFields, GpuError> {
    // Another solver's batch or tiles would have the kernels index their
    // arrays with another N or d: past their ends.
    if solved.shape != shape || tiles.n_terms != shape.n_terms {
        return Err(GpuError::Unsupported(format!(
            "a batch of {:?} and tiles of {} terms for a solver of {shape:?}",
            solved.shape, tiles.n_terms
        )));
    }
    let Some(fields) = &solved.fields else {
        return Err(GpuError::Unsupported(
            "a pass over the grid for a batch whose term rows were not gathered on the device"
                .into(),
        ));
    };
    if fields.n_grid != tiles.host.n_grid()
        || solved.len() != fields.samples * tiles.host.n_experts()
    {
        return Err(GpuError::Unsupported(format!(
            "a batch of {} problems over {} grid points for {} experts' tiles of {} points",
            solved.len(),
            fields.n_grid,
            tiles.host.n_experts(),
            tiles.host.n_grid()
        )));
    }
    Ok(fields)
}

impl GpuLm {
    /// The tiles of a layer whose grid points belong to the experts
    /// `owners`, and the residual's `terms` at every grid point (`[grid
    /// points, d]` rows over the grid, point-major, as
    /// [`GpuLm::field_residual`] takes them), on this solver's device.
    ///
    /// Errors: tiles as [`Tiles::new`]'s, terms of another grid or number
    /// of terms, or a driver failure.
    pub fn tiles(
        &self,
        owners: &[usize],
        n_experts: usize,
        terms: &SparseRows,
    ) -> Result<DeviceTiles, GpuError> {
        let host = Tiles::new(owners, n_experts)?;
        let d = self.shape.n_terms;
        if terms.n_columns() != host.n_grid() || terms.len() != host.n_grid() * d {
            return Err(GpuError::Unsupported(format!(
                "{} term rows over {} grid points for tiles of {} points and {d} terms",
                terms.len(),
                terms.n_columns(),
                host.n_grid()
            )));
        }
        let adjoint = terms.transpose();
        check_columns(&adjoint)?;
        Ok(DeviceTiles {
            owners: upload(&self.stream, &host.owners)?,
            start: upload(&self.stream, &host.start)?,
            points: upload(&self.stream, &host.points)?,
            terms: DeviceRows::upload(&self.stream, terms)?,
            adjoint: DeviceRows::upload(&self.stream, &adjoint)?,
            n_terms: d,
            host,
        })
    }

    /// `u = Σ_k 1_{Ω_k} ⊙ (F ω_k*) + s₀` of every sample of `solved`, a batch
    /// whose term rows were gathered from the fields `F` it kept
    /// ([`GpuLm::solve_kept_gathered`]), at its solutions: `[samples, grid
    /// points]`, with the offsets `s₀` (`[samples, grid points]`) if given.
    ///
    /// Errors: a batch without kept fields or not of `tiles`' experts and
    /// grid, offsets of the wrong length, or a driver failure.
    pub fn assemble(
        &self,
        solved: &SolvedBatch,
        tiles: &DeviceTiles,
        offsets: Option<&[f64]>,
    ) -> Result<Vec<f64>, GpuError> {
        let mut watch = Stopwatch::start();
        let fields = kept_fields(self.shape, solved, tiles)?;
        let total = fields.samples * fields.n_grid;
        if offsets.is_some_and(|s| s.len() != total) {
            return Err(GpuError::Unsupported(format!(
                "offsets of {} values for {} samples of {} grid points",
                offsets.map_or(0, <[f64]>::len),
                fields.samples,
                fields.n_grid
            )));
        }
        let s = &self.stream;
        let (on, _) = solved.lock();
        let offset_values = upload(s, offsets.unwrap_or_default())?;
        let mut u = on.zeros(total)?;
        self.synchronize()?;
        let upload_s = watch.lap();
        let (samples, n_grid) = (fields.samples as i64, fields.n_grid as i64);
        let (experts, has_offsets) = (tiles.host.n_experts() as i32, i32::from(offsets.is_some()));
        let mut launch = s.launch_builder(&self.tiles[0]);
        launch
            .arg(&samples)
            .arg(&n_grid)
            .arg(&experts)
            .arg(&tiles.owners)
            .arg(&fields.values)
            .arg(&on.omega)
            .arg(&offset_values)
            .arg(&has_offsets)
            .arg(&mut u);
        // SAFETY: the arguments match `tessera_assemble`'s parameters; the
        // fields hold `samples · n_grid · N` doubles, ω one row of N per
        // problem (`samples · experts`, checked by `kept_fields`), the
        // owners are experts of `n_grid` points (`Tiles::new`), the offsets
        // are read only when given (and then hold `total` values), and the
        // grid-stride loop covers `total` points.
        unsafe { launch.launch(launch_config(strided_blocks(total))?) }
            .map_err(driver("launching the assembly of u"))?;
        self.synchronize()?;
        let kernel_s = watch.lap();
        let u = on.download(&u, total)?;
        self.record(
            |t| &mut t.solve,
            GpuTimes {
                upload_s,
                kernel_s,
                download_s: watch.lap(),
                ..GpuTimes::default()
            },
        );
        Ok(u)
    }

    /// The backward pass of `solved` (a batch gathered from the fields `F`
    /// it kept, [`GpuLm::solve_kept_gathered`]) for the upstream gradient
    /// `u_bar = ∂L/∂u` (`[samples, grid points]`), all on the device:
    /// the experts' `ω̄`, the implicit-function-theorem backward pass with
    /// the Hessian by `mode`, and the pull-back of its row gradients,
    /// through `rows`, with the direct path `ū ⊗ ω*`. Returns `F̄ = ∂L/∂F`,
    /// `[samples, grid points, N]`.
    ///
    /// Errors: the outer result a batch without kept fields, or not of
    /// `tiles`' and `rows`' experts, points and linear rows, a `u_bar` of
    /// the wrong length, or a driver failure; the inner one the first
    /// problem whose backward pass fails, as
    /// [`GpuLm::differentiate_solved`] reports it.
    pub fn pull_back(
        &self,
        mode: HessianMode,
        solved: &SolvedBatch,
        tiles: &DeviceTiles,
        rows: &PullBackRows,
        u_bar: &[f64],
    ) -> Result<Result<Vec<f64>, ConstraintError>, GpuError> {
        let mut watch = Stopwatch::start();
        let fields = kept_fields(self.shape, solved, tiles)?;
        let (samples, g, n) = (fields.samples, fields.n_grid, self.shape.n_basis);
        rows.check_batch(solved, samples)?;
        if rows.n_grid() != g || !rows.inside(&tiles.host) || u_bar.len() != samples * g {
            return Err(GpuError::Unsupported(format!(
                "a pull-back over {} grid points with points outside their tiles or a ū of {} \
                 values, for {samples} samples of {g} grid points",
                rows.n_grid(),
                u_bar.len()
            )));
        }
        let (sampled_start, sampled) = rows.sampled();
        let (linear, linear_expert) = rows.linear_adjoint();
        let pack_s = watch.lap();
        let s = &self.stream;
        let (mut on, at) = solved.lock();
        let problems = solved.len();
        let u_bar = upload(s, u_bar)?;
        let bar = self.omega_bars(&on, tiles, fields, &u_bar, problems)?;
        let sampled_start = upload(s, &sampled_start)?;
        let sampled = upload(s, &sampled)?;
        let linear = DeviceRows::upload(s, &linear)?;
        let linear_expert = upload(s, &linear_expert)?;
        self.record(
            |t| &mut t.backward,
            GpuTimes {
                pack_s,
                ..GpuTimes::default()
            },
        );
        let out = self.launch_backward(mode, &mut on, &at, &bar, &mut watch)?;
        let mut f_bar = on.zeros(samples * g * n)?;
        let BackwardOutputs {
            lambda,
            state,
            term_omega,
            term_lambda,
            linear_omega,
            linear_lambda,
        } = &out;
        let (samples_i, g_i, experts) = (samples as i64, g as i64, rows.n_experts() as i32);
        let (points, linears) = (rows.n_points() as i64, rows.n_linear() as i64);
        let mut launch = s.launch_builder(&self.tiles[3]);
        launch
            .arg(&samples_i)
            .arg(&g_i)
            .arg(&experts)
            .arg(&tiles.owners)
            .arg(&u_bar)
            .arg(&tiles.adjoint.starts)
            .arg(&tiles.adjoint.columns)
            .arg(&tiles.adjoint.weights)
            .arg(&sampled_start)
            .arg(&sampled)
            .arg(&points)
            .arg(&linear.starts)
            .arg(&linear.columns)
            .arg(&linear.weights)
            .arg(&linear_expert)
            .arg(&linears)
            .arg(term_omega)
            .arg(term_lambda)
            .arg(linear_omega)
            .arg(linear_lambda)
            .arg(&on.omega)
            .arg(lambda)
            .arg(&mut f_bar);
        // SAFETY: the arguments match `tessera_pull_back`'s parameters in
        // order and type. The adjoint's columns are `p·d + j` for the `g`
        // grid points (`GpuLm::tiles`), `sampled` indexes the `points`
        // sampled points of a sample at each grid point and `linear` the
        // `linears` linear rows (`PullBackRows`), which `check_batch` found
        // to be the batch's, so the backward outputs hold `samples ·
        // points · d` and `samples · linears` coefficients and ω, λ one row
        // of N per problem; ū holds `samples · g` values, the output
        // `samples · g · N`, which the grid-stride loop covers.
        unsafe { launch.launch(launch_config(strided_blocks(samples * g * n))?) }
            .map_err(driver("launching the pull-back"))?;
        self.synchronize()?;
        let kernel_s = watch.lap();
        let states = on.download(state, problems)?;
        let bars = on.download(&bar, problems * n)?;
        let f_bar = on.download(&f_bar, samples * g * n)?;
        self.record(
            |t| &mut t.backward,
            GpuTimes {
                kernel_s,
                ..GpuTimes::default()
            },
        );
        self.record_backward_download(watch);
        for (state, bar) in states.iter().zip(bars.chunks_exact(n)) {
            if let Err(e) = backward_state(*state, bar) {
                return Ok(Err(e));
            }
        }
        Ok(Ok(f_bar))
    }

    /// `ω̄[b·K + k] = Σ_{q ∈ tile k} ū[b, q]·F[b, q]` for every problem, on
    /// the device (`[problems, N]`).
    fn omega_bars(
        &self,
        on: &Uploaded,
        tiles: &DeviceTiles,
        fields: &KeptFields,
        u_bar: &CudaSlice<f64>,
        problems: usize,
    ) -> Result<CudaSlice<f64>, GpuError> {
        let (s, n) = (&self.stream, self.shape.n_basis);
        let mut parts = on.zeros(problems * OMEGA_BAR_CHUNKS * n)?;
        let mut bar = on.zeros(problems * n)?;
        let (g, experts) = (fields.n_grid as i64, tiles.host.n_experts() as i32);
        let chunks = OMEGA_BAR_CHUNKS as i32;
        let mut launch = s.launch_builder(&self.tiles[1]);
        launch
            .arg(&g)
            .arg(&experts)
            .arg(&chunks)
            .arg(&tiles.start)
            .arg(&tiles.points)
            .arg(&fields.values)
            .arg(u_bar)
            .arg(&mut parts);
        // SAFETY: `tessera_omega_bar_parts`'s parameters; one block of
        // THREADS ≥ N threads per problem and chunk, the tiles' lists index
        // the `g` points of each field, ū holds `samples · g` values and the
        // parts `problems · chunks · N`.
        unsafe { launch.launch(launch_config(problems * OMEGA_BAR_CHUNKS)?) }
            .map_err(driver("launching the experts' ω̄"))?;
        let problems_i = problems as i64;
        let mut launch = s.launch_builder(&self.tiles[2]);
        launch
            .arg(&problems_i)
            .arg(&chunks)
            .arg(&parts)
            .arg(&mut bar);
        // SAFETY: `tessera_omega_bar_sum`'s parameters, with the parts just
        // written and `problems · N` outputs, covered by the grid-stride loop.
        unsafe { launch.launch(launch_config(strided_blocks(problems * n))?) }
            .map_err(driver("launching the experts' ω̄"))?;
        Ok(bar)
    }
}
