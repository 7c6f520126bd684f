// The experts' term rows built on the device from the fields they read (the
// basis B, or S·B), instead of being built on the host and copied up.
//
// Every term is a local linear operator, so each term row is a short sparse
// combination of the field's rows: the residual's d terms at every grid
// point are a CSR matrix over the grid's points (`row_start` [n_grid·d + 1],
// `columns` and `weights` [nnz]), point-major (row p·d + j is term j at
// point p), uploaded once per layer. A call names only the experts' sampled
// points (`points`, the batch's order: expert, then point), the same for
// every sample of the call. For sample b, batch row r = i·d + j (term j at
// the call's i-th point) and basis index c:
//
//   out[(b·rows + r)·N + c] = Σ_e weights[e] · fields[b·field_len + columns[e]·N + c]
//
// over e in row_start[s]..row_start[s+1] with s = points[i]·d + j, summed in
// stored order (as the host's `SparseRows::apply`). Consecutive threads
// take consecutive c, so a warp reads whole rows of the field. A
// grid-stride loop covers any batch with any grid size.
// `tessera_gather_rows` has N = TESSERA_N (the basis) and reads the rows at
// `points`; `tessera_gather_values` has N = 1 and applies any CSR matrix's
// `rows` rows in order (`points` null, `row_start` [rows + 1]), for the
// losses' terms of a field and their adjoint (`field.cu`).

template <int NV>
__device__ inline void tessera_gather(long long samples, long long rows, const int* points,
    long long terms, const long long* row_start, const int* columns, const double* weights,
    const double* fields, long long field_len, double* out) {
    const long long n = NV;
    const long long total = samples * rows * n;
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) {
        const long long c = e % n, sample_row = e / n;
        const long long r = sample_row % rows, b = sample_row / rows;
        const long long s = points ? (long long)points[r / terms] * terms + r % terms : r;
        const double* field = fields + b * field_len + c;
        double sum = 0.0;
        for (long long k = row_start[s]; k < row_start[s + 1]; ++k)
            sum += weights[k] * field[(long long)columns[k] * n];
        out[e] = sum;
    }
}

extern "C" __global__ void tessera_gather_rows(long long samples, long long rows,
    const int* points, long long terms, const long long* row_start, const int* columns,
    const double* weights, const double* fields, long long field_len, double* out) {
    tessera_gather<TESSERA_N>(
        samples, rows, points, terms, row_start, columns, weights, fields, field_len, out);
}

extern "C" __global__ void tessera_gather_values(long long samples, long long rows,
    const long long* row_start, const int* columns, const double* weights,
    const double* fields, long long field_len, double* out) {
    tessera_gather<1>(
        samples, rows, nullptr, 1, row_start, columns, weights, fields, field_len, out);
}
