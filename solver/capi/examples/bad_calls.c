/* Bad calls get a status and a message, never a crash: a missing or corrupt
 * run directory, an unknown or unusable device, a wrong-length array, NULL
 * pointers, NaN input, a handle used after free, a double free, a handle of
 * the wrong kind.
 *
 *   bad_calls RUN_DIR CORRUPT_RUN_DIR SCENARIO.toml
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tessera.h"

static int failures = 0;

/* The call returned `expected` and left a non-empty message. */
static void expect(TesseraStatus got, TesseraStatus expected, const char *what) {
    char message[256];
    size_t len = tessera_last_error(message, sizeof message);
    if (got != expected || (expected != TESSERA_STATUS_OK && len == 0)) {
        fprintf(stderr, "FAILED: %s: status %d, expected %d\n", what, (int)got, (int)expected);
        failures++;
    } else if (expected != TESSERA_STATUS_OK) {
        printf("%-28s -> %d: %s\n", what, (int)got, message);
    }
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s RUN_DIR CORRUPT_RUN_DIR SCENARIO\n", argv[0]);
        return 2;
    }
    TesseraModel *model = NULL;
    expect(tessera_model_load("/nonexistent/run", &model), TESSERA_STATUS_IO, "missing run directory");
    expect(tessera_model_load(argv[2], &model), TESSERA_STATUS_INVALID_RUN, "corrupt checkpoint");
    expect(tessera_model_load(NULL, &model), TESSERA_STATUS_NULL_POINTER, "NULL path");
    expect(tessera_model_load(argv[1], NULL), TESSERA_STATUS_NULL_POINTER, "NULL out");
    expect(tessera_model_load(argv[1], &model), TESSERA_STATUS_OK, "load");
    TesseraModel *elsewhere = NULL;
    expect(tessera_model_load_on(argv[1], "tpu", &elsewhere), TESSERA_STATUS_INVALID_ARGUMENT,
           "unknown device");
    expect(tessera_model_load_on(argv[1], NULL, &elsewhere), TESSERA_STATUS_NULL_POINTER,
           "NULL device");
    expect(tessera_model_load_on(argv[1], "cpu", &elsewhere), TESSERA_STATUS_OK, "load on the CPU");
    expect(tessera_model_free(elsewhere), TESSERA_STATUS_OK, "free");
    /* A GPU loads only where one can be used: a library built with `cuda`,
     * on a machine with a GPU; anywhere else the status says the device. */
    TesseraStatus gpu = tessera_model_load_on(argv[1], "cuda", &elsewhere);
    if (gpu == TESSERA_STATUS_OK)
        expect(tessera_model_free(elsewhere), TESSERA_STATUS_OK, "free the GPU model");
    else
        expect(gpu, TESSERA_STATUS_DEVICE, "a GPU that cannot be used");
    TesseraShape shape;
    expect(tessera_model_shape(model, &shape), TESSERA_STATUS_OK, "shape");
    expect(tessera_model_shape(model, NULL), TESSERA_STATUS_NULL_POINTER, "NULL shape");
    size_t s = shape.ic_len, g = shape.field_len;
    double *ic = calloc(s + 1, sizeof(double)), *out = calloc(g, sizeof(double));
    double *ic_grad = calloc(s, sizeof(double));
    expect(tessera_model_coordinates(model, shape.n_dims, out, 1), TESSERA_STATUS_SHAPE_MISMATCH,
           "an axis the grid does not have");
    expect(tessera_model_coordinates(model, 1, out, shape.nx - 1), TESSERA_STATUS_SHAPE_MISMATCH,
           "short coordinates");
    expect(tessera_model_coordinates(model, 0, NULL, shape.nt), TESSERA_STATUS_NULL_POINTER,
           "NULL coordinates");
    for (size_t i = 0; i < s; i++) ic[i] = 0.5;
    expect(tessera_model_predict(model, ic, s - 1, out, g, NULL, 0), TESSERA_STATUS_SHAPE_MISMATCH,
           "short initial condition");
    expect(tessera_model_predict(model, ic, s, out, g - 1, NULL, 0), TESSERA_STATUS_SHAPE_MISMATCH,
           "short output");
    TesseraSolveStatus status[1];
    if (shape.n_experts != 1)
        expect(tessera_model_predict(model, ic, s, out, g, status, 1), TESSERA_STATUS_SHAPE_MISMATCH,
               "short status array");
    expect(tessera_model_predict(model, NULL, s, out, g, NULL, 0), TESSERA_STATUS_NULL_POINTER,
           "NULL initial condition");
    expect(tessera_model_predict(model, ic, s, NULL, g, NULL, 0), TESSERA_STATUS_NULL_POINTER,
           "NULL output");
    expect(tessera_model_predict(model, ic, s, out, g, NULL, 3), TESSERA_STATUS_SHAPE_MISMATCH,
           "NULL status with a length");
    ic[1] = NAN;
    expect(tessera_model_predict(model, ic, s, out, g, NULL, 0), TESSERA_STATUS_NON_FINITE,
           "NaN in the initial condition");
    ic[1] = 0.5;
    expect(tessera_model_predict(model, ic, s, out, g, NULL, 0), TESSERA_STATUS_OK, "predict");
    expect(tessera_constraint_shape((TesseraConstraint *)model, &shape),
           TESSERA_STATUS_INVALID_HANDLE, "model as constraint handle");
    /* A kept prediction; `out` (a prediction) serves as fields_bar. */
    TesseraModelForward *kept = NULL;
    expect(tessera_model_forward(model, ic, s, out, g, NULL, 0, NULL), TESSERA_STATUS_NULL_POINTER,
           "model forward to NULL");
    expect(tessera_model_forward(model, ic, s, out, g - 1, NULL, 0, &kept),
           TESSERA_STATUS_SHAPE_MISMATCH, "model forward, short fields");
    expect(tessera_model_forward(model, ic, s, out, g, NULL, 0, &kept), TESSERA_STATUS_OK,
           "model forward");
    expect(tessera_model_forward_backward(kept, out, g - 1, ic_grad, s),
           TESSERA_STATUS_SHAPE_MISMATCH, "model backward, short fields_bar");
    expect(tessera_model_forward_backward(kept, out, g, ic_grad, s - 1),
           TESSERA_STATUS_SHAPE_MISMATCH, "model backward, short ic out");
    expect(tessera_model_forward_backward(kept, out, g, NULL, s), TESSERA_STATUS_NULL_POINTER,
           "model backward, NULL ic out");
    out[3] = NAN;
    expect(tessera_model_forward_backward(kept, out, g, ic_grad, s), TESSERA_STATUS_NON_FINITE,
           "model backward, NaN fields_bar");
    expect(tessera_model_forward_backward((TesseraModelForward *)model, out, g, ic_grad, s),
           TESSERA_STATUS_INVALID_HANDLE, "model as model forward handle");
    expect(tessera_model_forward_free(kept), TESSERA_STATUS_OK, "free model forward");
    expect(tessera_model_forward_free(kept), TESSERA_STATUS_INVALID_HANDLE,
           "double free model forward");
    expect(tessera_model_forward_backward(kept, out, g, ic_grad, s), TESSERA_STATUS_INVALID_HANDLE,
           "model backward after free");
    expect(tessera_model_forward_free(NULL), TESSERA_STATUS_OK, "free model forward (NULL)");
    expect(tessera_model_free(model), TESSERA_STATUS_OK, "free");
    expect(tessera_model_predict(model, ic, s, out, g, NULL, 0), TESSERA_STATUS_INVALID_HANDLE,
           "use after free");
    expect(tessera_model_free(model), TESSERA_STATUS_INVALID_HANDLE, "double free");
    expect(tessera_model_free(NULL), TESSERA_STATUS_OK, "free(NULL)");
    expect(tessera_model_predict(NULL, ic, s, out, g, NULL, 0), TESSERA_STATUS_NULL_POINTER,
           "NULL model");

    TesseraConstraint *layer = NULL;
    expect(tessera_constraint_create("/nonexistent.toml", NULL, 0, &layer), TESSERA_STATUS_IO,
           "missing scenario file");
    size_t dims[3] = {8, 16, 4};
    expect(tessera_constraint_create(argv[3], dims, 3, &layer), TESSERA_STATUS_SHAPE_MISMATCH,
           "3 dims for a 1-D scenario");
    expect(tessera_constraint_create(argv[3], NULL, 2, &layer), TESSERA_STATUS_NULL_POINTER,
           "NULL dims with n_dims = 2");
    expect(tessera_constraint_create(argv[3], dims, 2, &layer), TESSERA_STATUS_OK, "create");
    double basis[8 * 16 * 2];
    for (size_t i = 0; i < sizeof basis / sizeof basis[0]; i++) basis[i] = (double)(i % 7) / 7.0;
    double u[8 * 16];
    expect(tessera_constraint_solve(layer, basis, 8 * 16 * 2 - 1, 2, ic, 16, u, 128, NULL, 0, NULL, 0),
           TESSERA_STATUS_SHAPE_MISMATCH, "short basis");
    expect(tessera_constraint_solve(layer, basis, 8 * 16 * 2, 0, ic, 16, u, 128, NULL, 0, NULL, 0),
           TESSERA_STATUS_INVALID_ARGUMENT, "zero basis functions");
    basis[5] = INFINITY;
    expect(tessera_constraint_solve(layer, basis, 8 * 16 * 2, 2, ic, 16, u, 128, NULL, 0, NULL, 0),
           TESSERA_STATUS_NON_FINITE, "infinite basis value");
    size_t points[4];
    expect(tessera_constraint_points(layer, 99, points, 4), TESSERA_STATUS_SHAPE_MISMATCH,
           "expert out of range");
    basis[5] = 0.5;
    TesseraForward *forward = NULL;
    expect(tessera_constraint_forward(layer, basis, 8 * 16 * 2, 2, ic, 16, u, 128, NULL, 0, NULL,
                                      0, NULL),
           TESSERA_STATUS_NULL_POINTER, "forward to NULL");
    expect(tessera_constraint_forward(layer, basis, 8 * 16 * 2, 2, ic, 16, u, 127, NULL, 0, NULL,
                                      0, &forward),
           TESSERA_STATUS_SHAPE_MISMATCH, "forward, short u");
    expect(tessera_constraint_forward(layer, basis, 8 * 16 * 2, 2, ic, 16, u, 128, NULL, 0, NULL,
                                      0, &forward),
           TESSERA_STATUS_OK, "forward");
    double grad[8 * 16 * 2], ic_bar[16];
    expect(tessera_forward_backward(forward, u, 127, grad, 8 * 16 * 2),
           TESSERA_STATUS_SHAPE_MISMATCH, "kept backward, short u_bar");
    expect(tessera_forward_backward(forward, u, 128, grad, 8 * 16 * 2 - 1),
           TESSERA_STATUS_SHAPE_MISMATCH, "kept backward, short out");
    expect(tessera_forward_backward_ic(forward, u, 128, grad, 8 * 16 * 2, ic_bar, 15),
           TESSERA_STATUS_SHAPE_MISMATCH, "backward in ic, short ic out");
    expect(tessera_forward_backward_ic(forward, u, 128, grad, 8 * 16 * 2, NULL, 16),
           TESSERA_STATUS_NULL_POINTER, "backward in ic, NULL ic out");
    u[3] = NAN;
    expect(tessera_forward_backward(forward, u, 128, grad, 8 * 16 * 2), TESSERA_STATUS_NON_FINITE,
           "kept backward, NaN u_bar");
    expect(tessera_forward_backward_ic(forward, u, 128, grad, 8 * 16 * 2, ic_bar, 16),
           TESSERA_STATUS_NON_FINITE, "backward in ic, NaN u_bar");
    expect(tessera_forward_backward((TesseraForward *)layer, u, 128, grad, 8 * 16 * 2),
           TESSERA_STATUS_INVALID_HANDLE, "layer as forward handle");
    expect(tessera_forward_free(forward), TESSERA_STATUS_OK, "free forward");
    expect(tessera_forward_free(forward), TESSERA_STATUS_INVALID_HANDLE, "double free forward");
    expect(tessera_forward_backward(forward, u, 128, grad, 8 * 16 * 2),
           TESSERA_STATUS_INVALID_HANDLE, "kept backward after free");
    expect(tessera_forward_backward_ic(forward, u, 128, grad, 8 * 16 * 2, ic_bar, 16),
           TESSERA_STATUS_INVALID_HANDLE, "backward in ic after free");
    expect(tessera_forward_free(NULL), TESSERA_STATUS_OK, "free forward (NULL)");
    double f_bar[8 * 16], u_bar[8 * 16];
    for (size_t i = 0; i < 8 * 16; i++) u[i] = 0.5 + 0.01 * (double)(i % 5), f_bar[i] = 1.0;
    expect(tessera_constraint_residual_backward(layer, u, 128, f_bar, 127, u_bar, 128),
           TESSERA_STATUS_SHAPE_MISMATCH, "residual backward, short f_bar");
    expect(tessera_constraint_residual_backward(layer, u, 128, f_bar, 128, u_bar, 127),
           TESSERA_STATUS_SHAPE_MISMATCH, "residual backward, short out");
    f_bar[7] = NAN;
    expect(tessera_constraint_residual_backward(layer, u, 128, f_bar, 128, u_bar, 128),
           TESSERA_STATUS_NON_FINITE, "residual backward, NaN f_bar");
    expect(tessera_constraint_free(layer), TESSERA_STATUS_OK, "free layer");
    expect(tessera_constraint_free(layer), TESSERA_STATUS_INVALID_HANDLE, "double free layer");

    char tiny[8];
    size_t full = tessera_last_error(tiny, sizeof tiny);
    if (!(full >= sizeof tiny && strlen(tiny) == sizeof tiny - 1)) {
        fprintf(stderr, "FAILED: a short buffer gets a truncated, terminated message\n");
        failures++;
    }
    free(ic);
    free(out);
    free(ic_grad);
    if (failures) fprintf(stderr, "%d checks failed\n", failures);
    else printf("bad_calls: all checks passed\n");
    return failures ? 1 : 0;
}
