// The experts' term rows built on the device from the fields they read (the
// basis B, or S·B), instead of being built on the host and copied up.
//
// Every term is a local linear operator, so each term row is a short sparse
// combination of the field's rows: one sample's term rows, in the order the
// batch lays them out (expert, point, term: [ΣP, d] rows of N values), are a
// CSR matrix over the grid's points (`row_start` [rows + 1], `columns` and
// `weights` [nnz]), the same for every sample of a call since the experts'
// points are. For sample b, row r and basis index c:
//
//   out[(b·rows + r)·N + c] = Σ_e weights[e] · fields[b·field_len + columns[e]·N + c]
//
// over e in row_start[r]..row_start[r+1], summed in stored order (as the
// host's `SparseRows::apply`). Consecutive threads take consecutive c, so a
// warp reads whole rows of the field. A grid-stride loop covers any batch
// with any grid size. `tessera_gather_rows` has N = TESSERA_N (the basis);
// `tessera_gather_values` has N = 1, for the losses' terms of a field and
// their adjoint (`field.cu`).

template <int NV>
__device__ inline void tessera_gather(long long samples, long long rows,
    const long long* row_start, const int* columns, const double* weights,
    const double* fields, long long field_len, double* out) {
    const long long n = NV;
    const long long total = samples * rows * n;
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) {
        const long long c = e % n, sample_row = e / n;
        const long long r = sample_row % rows, b = sample_row / rows;
        const double* field = fields + b * field_len + c;
        double sum = 0.0;
        for (long long k = row_start[r]; k < row_start[r + 1]; ++k)
            sum += weights[k] * field[(long long)columns[k] * n];
        out[e] = sum;
    }
}

extern "C" __global__ void tessera_gather_rows(long long samples, long long rows,
    const long long* row_start, const int* columns, const double* weights,
    const double* fields, long long field_len, double* out) {
    tessera_gather<TESSERA_N>(samples, rows, row_start, columns, weights, fields, field_len, out);
}

extern "C" __global__ void tessera_gather_values(long long samples, long long rows,
    const long long* row_start, const int* columns, const double* weights,
    const double* fields, long long field_len, double* out) {
    tessera_gather<1>(samples, rows, row_start, columns, weights, fields, field_len, out);
}
