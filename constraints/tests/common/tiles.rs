//! The mixture's passes over the grid (`tiles.cu`) run on the host through
//! the shim, on the arrays the GPU solver uploads: shared by the kernels'
//! own tests and the layer's (experts crate).

use tessera_constraints::gpu::kernel::TILES_SOURCE;
use tessera_constraints::gpu::{PullBackRows, Tiles};
use tessera_meshes::SparseRows;

use super::gpu::{bytes_f64, bytes_i64, compile_and_run};

/// Runs `tessera_assemble`, `tessera_omega_bar_parts` (then `_sum`) and
/// `tessera_pull_back` on the input [`TilesCase::input`] writes; writes `u`,
/// `ω̄` and `F̄`.
const DRIVER: &str = r#"
int main(int argc, char** argv) {
    if (argc != 3) return 2;
    FILE* f = fopen(argv[1], "rb");
    auto h = take<int64_t>(f, 12);
    const int64_t samples = h[0], g = h[1], K = h[2], S = h[3], L = h[4], adj_nnz = h[5];
    const int64_t lin_nnz = h[6], blocks = h[7], threads = h[8], chunks = h[9];
    const int64_t has_offsets = h[10], part_threads = h[11];
    const int64_t N = TESSERA_N, D = TESSERA_D, problems = samples * K;
    auto owners = take<int>(f, g);
    auto tile_start = take<long long>(f, K + 1);
    auto tile_points = take<int>(f, g);
    auto adj_start = take<long long>(f, g + 1);
    auto adj_cols = take<int>(f, adj_nnz);
    auto adj_w = take<double>(f, adj_nnz);
    auto smp_start = take<long long>(f, g + 1);
    auto smp = take<int>(f, S);
    auto lin_start = take<long long>(f, g + 1);
    auto lin_cols = take<int>(f, lin_nnz);
    auto lin_w = take<double>(f, lin_nnz);
    auto lin_expert = take<int>(f, L);
    auto fields = take<double>(f, samples * g * N);
    auto omega = take<double>(f, problems * N);
    auto lambda = take<double>(f, problems * N);
    auto offsets = take<double>(f, samples * g);
    auto u_bar = take<double>(f, samples * g);
    auto t_omega = take<double>(f, samples * S * D);
    auto t_lambda = take<double>(f, samples * S * D);
    auto l_omega = take<double>(f, samples * L);
    auto l_lambda = take<double>(f, samples * L);
    fclose(f);
    std::vector<double> u(samples * g), parts(problems * chunks * N), bar(problems * N);
    std::vector<double> out(samples * g * N);
    tessera_launch((unsigned)blocks, (unsigned)threads, tessera_assemble, (long long)samples,
        (long long)g, (int)K, (const int*)owners.data(), (const double*)fields.data(),
        (const double*)omega.data(), (const double*)offsets.data(), (int)has_offsets, u.data());
    tessera_launch((unsigned)(problems * chunks), (unsigned)part_threads, tessera_omega_bar_parts,
        (long long)g, (int)K, (int)chunks, (const long long*)tile_start.data(),
        (const int*)tile_points.data(), (const double*)fields.data(), (const double*)u_bar.data(),
        parts.data());
    tessera_launch((unsigned)blocks, (unsigned)threads, tessera_omega_bar_sum, (long long)problems,
        (int)chunks, (const double*)parts.data(), bar.data());
    tessera_launch((unsigned)blocks, (unsigned)threads, tessera_pull_back, (long long)samples,
        (long long)g, (int)K, (const int*)owners.data(), (const double*)u_bar.data(),
        (const long long*)adj_start.data(), (const int*)adj_cols.data(), (const double*)adj_w.data(),
        (const long long*)smp_start.data(), (const int*)smp.data(), (long long)S,
        (const long long*)lin_start.data(), (const int*)lin_cols.data(), (const double*)lin_w.data(),
        (const int*)lin_expert.data(), (long long)L, (const double*)t_omega.data(),
        (const double*)t_lambda.data(), (const double*)l_omega.data(), (const double*)l_lambda.data(),
        (const double*)omega.data(), (const double*)lambda.data(), out.data());
    FILE* o = fopen(argv[2], "wb");
    fwrite(u.data(), 8, u.size(), o);
    fwrite(bar.data(), 8, bar.size(), o);
    fwrite(out.data(), 8, out.size(), o);
    fclose(o);
    return 0;
}
"#;

/// One call of the passes: the layout (`tiles`, the residual terms'
/// `adjoint` at every grid point, the pull-back `rows`) and the values the
/// device would hold, for `samples` samples of `N = n` and `d` terms.
pub struct TilesCase<'a> {
    pub n: usize,
    pub d: usize,
    pub samples: usize,
    pub tiles: &'a Tiles,
    pub adjoint: &'a SparseRows,
    pub rows: &'a PullBackRows,
    pub fields: &'a [f64],
    pub omega: &'a [f64],
    pub lambda: &'a [f64],
    pub offsets: Option<&'a [f64]>,
    pub u_bar: &'a [f64],
    pub term_omega: &'a [f64],
    pub term_lambda: &'a [f64],
    pub linear_omega: &'a [f64],
    pub linear_lambda: &'a [f64],
}

/// A launch: `blocks × threads` for the grid-stride kernels, and `chunks`
/// blocks of `part_threads` (at most 64) per problem for `ω̄`'s parts.
#[derive(Debug, Clone, Copy)]
pub struct Launch {
    pub blocks: usize,
    pub threads: usize,
    pub chunks: usize,
    pub part_threads: usize,
}

/// What the passes return: `u`, `ω̄` and `F̄`.
pub struct TilesOutput {
    pub u: Vec<f64>,
    pub omega_bar: Vec<f64>,
    pub f_bar: Vec<f64>,
}

impl TilesCase<'_> {
    /// The driver's input for `launch`.
    fn input(&self, launch: Launch) -> Vec<u8> {
        let (smp_start, smp) = self.rows.sampled();
        let (linear, linear_expert) = self.rows.linear_adjoint();
        let g = self.tiles.n_grid();
        let head = [
            self.samples,
            g,
            self.tiles.n_experts(),
            self.rows.n_points(),
            self.rows.n_linear(),
            self.adjoint.nnz(),
            linear.nnz(),
            launch.blocks,
            launch.threads,
            launch.chunks,
            usize::from(self.offsets.is_some()),
            launch.part_threads,
        ];
        let i32s = |v: &[i32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let csr = |rows: &SparseRows| {
            let starts: Vec<i64> = rows.row_start().iter().map(|&s| s as i64).collect();
            let columns: Vec<i32> = rows.columns().iter().map(|&c| c as i32).collect();
            [
                bytes_i64(&starts),
                i32s(&columns),
                bytes_f64(rows.weights()),
            ]
            .concat()
        };
        let zeros = vec![0.0; self.samples * g];
        [
            bytes_i64(&head.map(|x| x as i64)),
            i32s(&self.tiles.owners),
            bytes_i64(&self.tiles.start),
            i32s(&self.tiles.points),
            csr(self.adjoint),
            bytes_i64(&smp_start),
            i32s(&smp),
            csr(&linear),
            i32s(&linear_expert),
            bytes_f64(self.fields),
            bytes_f64(self.omega),
            bytes_f64(self.lambda),
            bytes_f64(self.offsets.unwrap_or(&zeros)),
            bytes_f64(self.u_bar),
            bytes_f64(self.term_omega),
            bytes_f64(self.term_lambda),
            bytes_f64(self.linear_omega),
            bytes_f64(self.linear_lambda),
        ]
        .concat()
    }

    /// The kernels compiled for the host and run with `launch`.
    pub fn run(&self, launch: Launch, tag: &str) -> TilesOutput {
        let kernels = format!(
            "#define TESSERA_N {}\n#define TESSERA_D {}\n#define TESSERA_THREADS 64\n{TILES_SOURCE}",
            self.n, self.d
        );
        let got = compile_and_run(&kernels, DRIVER, &self.input(launch), tag);
        let g = self.tiles.n_grid();
        let (u, rest) = got.split_at(self.samples * g);
        let (omega_bar, f_bar) = rest.split_at(self.samples * self.tiles.n_experts() * self.n);
        TilesOutput {
            u: u.to_vec(),
            omega_bar: omega_bar.to_vec(),
            f_bar: f_bar.to_vec(),
        }
    }
}

/// Asserts `got` equals `expected` to `tolerance` relative to the largest
/// magnitude (at least 1).
#[track_caller]
pub fn assert_close(what: &str, got: &[f64], expected: &[f64], tolerance: f64) {
    assert_eq!(got.len(), expected.len(), "{what}: length");
    let size = expected.iter().fold(1.0_f64, |m, x| m.max(x.abs()));
    for (i, (a, e)) in got.iter().zip(expected).enumerate() {
        assert!(
            (a - e).abs() <= tolerance * size,
            "{what}[{i}]: {a:e} against {e:e}"
        );
    }
}
