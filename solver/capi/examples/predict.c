/* Loads a trained run through the C ABI, predicts the test set's initial
 * conditions one at a time and as one batch, and checks each prediction's
 * relative L2 error against the truth equals what `tessera eval` wrote to
 * summary.json (to 1e-12); then predicts from 4 threads at once and checks the
 * results equal the single-threaded ones bit for bit. Finally keeps a
 * prediction of two initial conditions (tessera_model_forward) and checks its
 * fields are predict's bit for bit and its gradient in the initial conditions
 * matches central finite differences of predictions, the same bits every time,
 * also after the model's handle is freed.
 *
 *   predict RUN_DIR TEST_DATA.safetensors SAMPLES
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

#define THREADS 4

struct job {
    const TesseraModel *model;
    const double *ics;
    size_t n_ic, n_out;
    double *out;
    TesseraStatus status;
};

static void *predict_job(void *arg) {
    struct job *j = arg;
    j->status = tessera_model_predict(j->model, j->ics, j->n_ic, j->out, j->n_out, NULL, 0);
    return NULL;
}

/* The central difference of <fields_bar, predict(ic)> along d_i = f(k i),
 * moving the initial conditions (n_ic values; n_fields fields). */
static double central_difference(const TesseraModel *model, const double *ic, size_t n_ic,
                                 const double *fields_bar, size_t n_fields,
                                 double (*f)(double), double k, double eps) {
    double *x = malloc(sizeof(double) * n_ic), *fields = malloc(sizeof(double) * n_fields);
    double dots[2] = {0.0, 0.0};
    for (int side = 0; side < 2; side++) {
        moved(x, ic, n_ic, side ? -eps : eps, f, k);
        check(tessera_model_predict(model, x, n_ic, fields, n_fields, NULL, 0) == TESSERA_STATUS_OK,
              "predict (finite differences)");
        for (size_t q = 0; q < n_fields; q++) dots[side] += fields[q] * fields_bar[q];
    }
    free(x); free(fields);
    return (dots[0] - dots[1]) / (2.0 * eps);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s RUN_DIR TEST_DATA SAMPLES\n", argv[0]);
        return 2;
    }
    const char *run_dir = argv[1], *data = argv[2];
    int samples = atoi(argv[3]);
    char summary[4096];
    snprintf(summary, sizeof summary, "%s/summary.json", run_dir);

    check(tessera_set_num_threads(2) == TESSERA_STATUS_OK, "set threads");
    TesseraModel *model = NULL;
    check(tessera_model_load(run_dir, &model) == TESSERA_STATUS_OK, "load");
    if (!model) return 1;
    TesseraShape shape;
    check(tessera_model_shape(model, &shape) == TESSERA_STATUS_OK, "shape");
    printf("tessera %s: grid %zu x %zu, %zu experts, %zu basis functions\n",
           tessera_version(), shape.nt, shape.nx, shape.n_experts, shape.n_basis);

    /* The grid's coordinates are those the data file was written with
     * (float32 there). */
    const char *axis_names[] = {"0000/grid/t", "0000/grid/x", "0000/grid/y"};
    size_t axis_lens[] = {shape.nt, shape.nx, shape.ny};
    for (size_t a = 0; a < shape.n_dims; a++) {
        double *mine = malloc(sizeof(double) * axis_lens[a]);
        double *stored = malloc(sizeof(double) * axis_lens[a]);
        check(tessera_model_coordinates(model, a, mine, axis_lens[a]) == TESSERA_STATUS_OK,
              "coordinates");
        check(read_tensor(data, axis_names[a], stored, axis_lens[a]) == 0, "reading the grid");
        for (size_t i = 0; i < axis_lens[a]; i++)
            check(fabs(mine[i] - stored[i]) <= 1e-6 * fmax(1.0, fabs(stored[i])),
                  "coordinates equal the data file's grid");
        printf("axis %zu: %zu coordinates from %g to %g, as in the data file\n", a, axis_lens[a],
               mine[0], mine[axis_lens[a] - 1]);
        free(mine);
        free(stored);
    }

    size_t g = shape.field_len, s = shape.ic_len, k = shape.n_experts;
    double *truth = malloc(sizeof(double) * g * samples);
    double *ics = malloc(sizeof(double) * s * samples);
    double *single = malloc(sizeof(double) * g * samples);
    double *batch = malloc(sizeof(double) * g * samples);
    TesseraSolveStatus *statuses = malloc(sizeof(TesseraSolveStatus) * k * samples);
    double worst = 0.0;
    for (int b = 0; b < samples; b++) {
        check(read_sample(data, b, truth + g * b, g) == 0, "reading the test data");
        memcpy(ics + s * b, truth + g * b, sizeof(double) * s); /* frame 0 */
        check(tessera_model_predict(model, ics + s * b, s, single + g * b, g, statuses + k * b, k)
                  == TESSERA_STATUS_OK, "predict one");
        double mine = relative_l2(single + g * b, truth + g * b, g);
        double eval = read_rel_l2(summary, b);
        double diff = fabs(mine - eval);
        if (diff > worst) worst = diff;
        printf("sample %d: rel L2 %.17g (tessera eval %.17g), expert 0: %d after %llu iterations\n",
               b, mine, eval, (int)statuses[k * b].reason,
               (unsigned long long)statuses[k * b].iterations);
        check(diff <= 1e-12 * eval, "rel L2 equals tessera eval's");
    }
    printf("max |rel L2 - eval| = %.3g\n", worst);
    /* The whole set as one batch: the same fields, bit for bit. */
    check(tessera_model_predict(model, ics, s * samples, batch, g * samples, statuses, k * samples)
              == TESSERA_STATUS_OK, "predict batch");
    check(memcmp(batch, single, sizeof(double) * g * samples) == 0, "batch equals one at a time");

    /* Four threads on one handle at once. */
    pthread_t threads[THREADS];
    struct job jobs[THREADS];
    for (int t = 0; t < THREADS; t++) {
        jobs[t] = (struct job){model, ics, s * samples, g * samples,
                               malloc(sizeof(double) * g * samples), TESSERA_STATUS_INTERNAL};
        pthread_create(&threads[t], NULL, predict_job, &jobs[t]);
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        check(jobs[t].status == TESSERA_STATUS_OK, "predict from a thread");
        check(memcmp(jobs[t].out, single, sizeof(double) * g * samples) == 0,
              "concurrent prediction equals the single-threaded one");
        free(jobs[t].out);
    }
    printf("%d threads at once: results equal\n", THREADS);

    /* A kept prediction of the first two initial conditions: predict's
     * fields, and the gradient of <fields_bar, fields> in the initial
     * conditions (through the backbone and the constraint layer) against
     * central differences of predictions; the same bits twice over, and
     * after the model's handle is freed (the prediction holds its model).
     * run.sh drives the solves to round-off, but where a solve stops still
     * moves the fields by about 1e-10 between nearby initial conditions, so
     * a step of 1e-5 (not 1e-7) keeps that out of the differences. */
    size_t kept = samples < 2 ? (size_t)samples : 2, n_ic = s * kept, n_fields = g * kept;
    TesseraModelForward *forward = NULL;
    double *fields = malloc(sizeof(double) * n_fields);
    double *fields_bar = malloc(sizeof(double) * n_fields);
    double *ic_bar = malloc(sizeof(double) * n_ic), *ic_bar_again = malloc(sizeof(double) * n_ic);
    check(tessera_model_forward(model, ics, n_ic, fields, n_fields, statuses, k * kept, &forward)
              == TESSERA_STATUS_OK, "forward");
    check(memcmp(fields, single, sizeof(double) * n_fields) == 0,
          "kept prediction: predict's fields");
    for (size_t q = 0; q < n_fields; q++) fields_bar[q] = sin(1.3 * (double)q);
    check(tessera_model_forward_backward(forward, fields_bar, n_fields, ic_bar, n_ic)
              == TESSERA_STATUS_OK, "backward in ic");
    double eps = 1e-5, analytic = along(ic_bar, n_ic, sin, 0.71);
    double numeric = central_difference(model, ics, n_ic, fields_bar, n_fields, sin, 0.71, eps);
    printf("kept prediction: backward in ic %.10g, finite differences %.10g\n", analytic, numeric);
    check(fabs(analytic) > 1e-6, "backward in ic: not vacuously zero");
    check(fabs(analytic - numeric) <= 1e-5 * fmax(fabs(analytic), fabs(numeric)),
          "backward in ic matches");
    for (int again = 0; again < 2; again++) {
        if (again) check(tessera_model_free(model) == TESSERA_STATUS_OK, "free");
        memset(ic_bar_again, 0, sizeof(double) * n_ic);
        check(tessera_model_forward_backward(forward, fields_bar, n_fields, ic_bar_again, n_ic)
                  == TESSERA_STATUS_OK, "backward in ic again");
        check(memcmp(ic_bar, ic_bar_again, sizeof(double) * n_ic) == 0,
              "backward in ic again: the same bits");
    }
    check(tessera_model_forward_free(forward) == TESSERA_STATUS_OK, "free forward");
    printf("kept prediction: predict's fields and the same gradient each time, bit for bit, also "
           "after the model's free\n");

    free(truth); free(ics); free(single); free(batch); free(statuses);
    free(fields); free(fields_bar); free(ic_bar); free(ic_bar_again);
    if (failures) fprintf(stderr, "%d checks failed\n", failures);
    else printf("predict: all checks passed\n");
    return failures ? 1 : 0;
}
