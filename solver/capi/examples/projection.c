/* The constraint layer as a projection on the caller's arrays: project a
 * pseudo-random basis B [T][X][N] for the initial condition sin(pi x), then
 * check, with the weights it returns, that each expert's field B w_k meets the
 * PDE at that expert's sampled points to the solver's tolerance (the
 * residual there is bounded by the solver's final residual and a millionth
 * of the unprojected field's), that the backward pass matches central
 * finite differences of the projected field, that the residual's backward
 * pass matches central differences of the residual, that a kept forward
 * pass (tessera_constraint_forward) gives the same field and gradient, and
 * that its gradient in the initial condition matches central differences.
 *
 *   projection SCENARIO.toml
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

#define N 48
#define NB 8

/* max |F| at expert k's points of the field B w_k, over the experts. */
static double residual_at_points(const TesseraConstraint *layer, const TesseraShape *shape,
                                 const double *basis, const double *weights) {
    size_t g = shape->field_len, p = shape->points_per_expert;
    double *field = malloc(sizeof(double) * g), *f = malloc(sizeof(double) * g);
    size_t *points = malloc(sizeof(size_t) * p);
    double worst = 0.0;
    for (size_t k = 0; k < shape->n_experts; k++) {
        for (size_t q = 0; q < g; q++) {
            double v = 0.0;
            for (size_t n = 0; n < N; n++) v += basis[q * N + n] * weights[k * N + n];
            field[q] = v;
        }
        check(tessera_constraint_residual(layer, field, g, f, g) == TESSERA_STATUS_OK, "residual");
        check(tessera_constraint_points(layer, k, points, p) == TESSERA_STATUS_OK, "points");
        for (size_t i = 0; i < p; i++) worst = fmax(worst, fabs(f[points[i]]));
    }
    free(field); free(f); free(points);
    return worst;
}

static double projected_dot(const TesseraConstraint *layer, const double *basis, size_t nb,
                            const double *ic, size_t s, const double *u_bar, size_t g) {
    double *u = malloc(sizeof(double) * g), dot = 0.0;
    check(tessera_constraint_solve(layer, basis, nb, NB, ic, s, u, g, NULL, 0, NULL, 0)
              == TESSERA_STATUS_OK, "solve (finite differences)");
    for (size_t q = 0; q < g; q++) dot += u[q] * u_bar[q];
    free(u);
    return dot;
}

/* The central difference of <u_bar, u(basis, ic)> along d_i = f(k i), moving
 * the basis (along_basis) or the initial condition. */
static double central_difference(const TesseraConstraint *layer, const double *basis, size_t nb,
                                 const double *ic, size_t s, const double *u_bar, size_t g,
                                 int along_basis, double (*f)(double), double k, double eps) {
    size_t n = along_basis ? nb : s;
    double *x = malloc(sizeof(double) * n), dots[2];
    for (int side = 0; side < 2; side++) {
        moved(x, along_basis ? basis : ic, n, side ? -eps : eps, f, k);
        dots[side] = along_basis ? projected_dot(layer, x, nb, ic, s, u_bar, g)
                                 : projected_dot(layer, basis, nb, x, s, u_bar, g);
    }
    free(x);
    return (dots[0] - dots[1]) / (2.0 * eps);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s SCENARIO\n", argv[0]);
        return 2;
    }
    TesseraConstraint *layer = NULL;
    check(tessera_constraint_create(argv[1], NULL, 0, &layer) == TESSERA_STATUS_OK, "create");
    if (!layer) return 1;
    TesseraShape shape;
    check(tessera_constraint_shape(layer, &shape) == TESSERA_STATUS_OK, "shape");
    size_t g = shape.field_len, s = shape.ic_len, k = shape.n_experts, nb = g * N;
    double *basis = malloc(sizeof(double) * nb), *ic = malloc(sizeof(double) * s);
    double *u = malloc(sizeof(double) * g), *weights = malloc(sizeof(double) * k * N);
    double *ones = malloc(sizeof(double) * k * N);
    TesseraSolveStatus *status = malloc(sizeof(TesseraSolveStatus) * k);
    uint64_t state = 12345;
    for (size_t i = 0; i < nb; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        basis[i] = (double)(state >> 11) / (double)(1ull << 52) - 1.0;
    }
    for (size_t i = 0; i < s; i++) ic[i] = sin(M_PI * ((double)i + 0.5) / (double)shape.nx);
    for (size_t i = 0; i < k * N; i++) ones[i] = 1.0;
    check(tessera_constraint_solve(layer, basis, nb, N, ic, s, u, g, weights, k * N, status, k)
              == TESSERA_STATUS_OK, "solve");
    double before = residual_at_points(layer, &shape, basis, ones);
    double after = residual_at_points(layer, &shape, basis, weights);
    double solver = 0.0;
    for (size_t e = 0; e < k; e++) {
        solver = fmax(solver, status[e].final_residual);
        check(status[e].reason == TESSERA_STOP_REASON_CONVERGED, "expert converged");
    }
    printf("max |F| at the sampled points: %.3e before, %.3e after (solver residual %.3e)\n",
           before, after, solver);
    check(after <= solver, "residual at the points within the solver's residual");
    check(after <= 1e-6 * before, "residual at the points at the solver's tolerance");

    /* Backward: <dL/dB, V> against central differences of <u_bar, u(B + eps V)>,
     * with NB = 8 basis functions (a well-conditioned, overdetermined
     * problem: with N = 48 the tiny ridge makes the weights too sensitive for
     * differences). The first NB * g values of B serve as [T][X][NB]. */
    nb = g * NB;
    double *u_bar = malloc(sizeof(double) * g), *grad = malloc(sizeof(double) * nb);
    for (size_t q = 0; q < g; q++) u_bar[q] = sin(1.3 * (double)q);
    check(tessera_constraint_backward(layer, basis, nb, NB, ic, s, u_bar, g, grad, nb)
              == TESSERA_STATUS_OK, "backward");
    double eps = 1e-6, analytic = along(grad, nb, cos, 0.7);
    double numeric = central_difference(layer, basis, nb, ic, s, u_bar, g, 1, cos, 0.7, eps);
    printf("backward: %.10g, finite differences %.10g\n", analytic, numeric);
    check(fabs(analytic - numeric) <= 1e-5 * fmax(1.0, fabs(analytic)), "backward matches");

    /* The residual's backward pass: <f_bar, F(u + eps v) - F(u - eps v)> / 2 eps
     * against <u_bar_r, v>, at the projected field u. */
    size_t m = g * shape.n_equations;
    double *f_bar = malloc(sizeof(double) * m), *u_bar_r = malloc(sizeof(double) * g);
    double *f_plus = malloc(sizeof(double) * m), *f_minus = malloc(sizeof(double) * m);
    double *u_shift = malloc(sizeof(double) * g);
    for (size_t q = 0; q < m; q++) f_bar[q] = cos(0.3 * (double)q);
    check(tessera_constraint_residual_backward(layer, u, g, f_bar, m, u_bar_r, g)
              == TESSERA_STATUS_OK, "residual backward");
    double r_analytic = along(u_bar_r, g, sin, 0.9), r_numeric = 0.0;
    moved(u_shift, u, g, eps, sin, 0.9);
    check(tessera_constraint_residual(layer, u_shift, g, f_plus, m) == TESSERA_STATUS_OK, "F(u + eps v)");
    moved(u_shift, u, g, -eps, sin, 0.9);
    check(tessera_constraint_residual(layer, u_shift, g, f_minus, m) == TESSERA_STATUS_OK, "F(u - eps v)");
    for (size_t q = 0; q < m; q++) r_numeric += f_bar[q] * (f_plus[q] - f_minus[q]) / (2.0 * eps);
    printf("residual backward: %.10g, finite differences %.10g\n", r_analytic, r_numeric);
    check(fabs(r_analytic - r_numeric) <= 1e-6 * fmax(1.0, fabs(r_analytic)), "residual backward matches");
    free(f_bar); free(u_bar_r); free(f_plus); free(f_minus); free(u_shift);

    /* A kept forward pass: the solve's u, and then the backward pass's bits
     * without solving again (from tessera_forward_backward_ic too, with the
     * same ic gradient each time), also after the layer's handle is freed
     * (the forward pass holds its layer) and twice over. */
    TesseraForward *forward = NULL;
    double *u_kept = malloc(sizeof(double) * g), *grad_kept = malloc(sizeof(double) * nb);
    double *ic_bar = malloc(sizeof(double) * s), *ic_bar_kept = malloc(sizeof(double) * s);
    check(tessera_constraint_forward(layer, basis, nb, NB, ic, s, u_kept, g, NULL, 0, NULL, 0,
                                     &forward) == TESSERA_STATUS_OK, "forward");
    check(tessera_constraint_solve(layer, basis, nb, NB, ic, s, u, g, NULL, 0, NULL, 0)
              == TESSERA_STATUS_OK, "solve (N = NB)");
    check(memcmp(u, u_kept, sizeof(double) * g) == 0, "kept forward: the solve's u");

    /* The backward pass in the initial condition, while the layer can still
     * solve: <dL/dic, d> against central differences of <u_bar, u(ic + eps d)>
     * (the heat equation's initial rows take ic as right-hand sides, so u is
     * linear in it and the differences are accurate). */
    check(tessera_forward_backward_ic(forward, u_bar, g, grad_kept, nb, ic_bar, s)
              == TESSERA_STATUS_OK, "backward in ic");
    double ic_analytic = along(ic_bar, s, sin, 0.5);
    double ic_numeric = central_difference(layer, basis, nb, ic, s, u_bar, g, 0, sin, 0.5, eps);
    printf("backward in ic: %.10g, finite differences %.10g\n", ic_analytic, ic_numeric);
    check(fabs(ic_analytic) > 1e-8, "backward in ic: not vacuously zero");
    check(fabs(ic_analytic - ic_numeric) <= 1e-5 * fmax(1.0, fabs(ic_analytic)),
          "backward in ic matches");

    check(tessera_constraint_free(layer) == TESSERA_STATUS_OK, "free");
    for (int twice = 0; twice < 2; twice++) {
        check(tessera_forward_backward(forward, u_bar, g, grad_kept, nb) == TESSERA_STATUS_OK,
              "kept backward");
        check(memcmp(grad, grad_kept, sizeof(double) * nb) == 0,
              "kept backward: the backward pass's gradient");
        check(tessera_forward_backward_ic(forward, u_bar, g, grad_kept, nb, ic_bar_kept, s)
                  == TESSERA_STATUS_OK, "kept backward in ic");
        check(memcmp(grad, grad_kept, sizeof(double) * nb) == 0,
              "kept backward in ic: the backward pass's gradient");
        check(memcmp(ic_bar, ic_bar_kept, sizeof(double) * s) == 0,
              "kept backward in ic: the same ic gradient");
    }
    check(tessera_forward_free(forward) == TESSERA_STATUS_OK, "free forward");
    printf("kept forward: the solve's u and the backward pass's gradient (also backward in "
           "ic's), bit for bit\n");

    free(basis); free(ic); free(u); free(weights); free(ones); free(status);
    free(u_bar); free(grad); free(u_kept); free(grad_kept);
    free(ic_bar); free(ic_bar_kept);
    if (failures) fprintf(stderr, "%d checks failed\n", failures);
    else printf("projection: all checks passed\n");
    return failures ? 1 : 0;
}
