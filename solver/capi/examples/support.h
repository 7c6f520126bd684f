/* Helpers shared by the C examples (not part of the library): a check that
 * reports the library's last error, moves along a direction for the
 * finite-difference checks, and test-data readers for one sample of a Tessera/PDEBench-layout .safetensors data file
 * (tensor "NNNN/data", float32 [nt, nx, (ny), 1]) and the per-sample errors
 * "rel_l2" of a run's summary.json (written by `tessera eval`). */
#ifndef TESSERA_EXAMPLES_SUPPORT_H
#define TESSERA_EXAMPLES_SUPPORT_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tessera.h"

static int failures = 0;

/* Counts a failed check and prints the library's last error. */
static inline void check(int ok, const char *what) {
    if (!ok) {
        char message[512];
        tessera_last_error(message, sizeof message);
        fprintf(stderr, "FAILED: %s (last error: %s)\n", what, message);
        failures++;
    }
}

/* out = x + step * f(k i), elementwise: x moved along a direction. */
static inline void moved(double *out, const double *x, size_t n, double step,
                         double (*f)(double), double k) {
    for (size_t i = 0; i < n; i++) out[i] = x[i] + step * f(k * (double)i);
}

/* <v, d> for the direction d_i = f(k i). */
static inline double along(const double *v, size_t n, double (*f)(double), double k) {
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) sum += v[i] * f(k * (double)i);
    return sum;
}

/* Reads a whole file; returns NULL on failure. */
static inline char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
    fclose(f);
    if (buf) { buf[n] = 0; if (len) *len = (size_t)n; }
    return buf;
}

/* The float32 tensor `name` of a safetensors file (`"0000/data"`,
 * `"0000/grid/x"`) as float64, `count` values; returns 0 on success. */
static inline int read_tensor(const char *path, const char *name, double *out, size_t count) {
    size_t len = 0;
    char *bytes = read_file(path, &len);
    if (!bytes || len < 8) { free(bytes); return 1; }
    uint64_t header_len = 0;
    memcpy(&header_len, bytes, 8); /* little-endian host assumed (x86-64, aarch64) */
    char key[64];
    snprintf(key, sizeof key, "\"%s\"", name);
    char *header = bytes + 8;
    char saved = header[header_len];
    header[header_len] = 0;
    char *entry = strstr(header, key);
    char *offsets = entry ? strstr(entry, "\"data_offsets\":[") : NULL;
    unsigned long long begin = 0, end = 0;
    int ok = offsets && sscanf(offsets, "\"data_offsets\":[%llu,%llu]", &begin, &end) == 2;
    header[header_len] = saved;
    if (!ok || end - begin != 4 * count || 8 + header_len + end > len) { free(bytes); return 1; }
    const char *data = bytes + 8 + header_len + begin;
    for (size_t i = 0; i < count; i++) {
        float v;
        memcpy(&v, data + 4 * i, 4);
        out[i] = (double)v;
    }
    free(bytes);
    return 0;
}

/* Sample `index` of the data file as float64 (`count` values, row-major
 * [nt, nx, (ny)]); returns 0 on success. */
static inline int read_sample(const char *path, int index, double *out, size_t count) {
    char name[32];
    snprintf(name, sizeof name, "%04d/data", index);
    return read_tensor(path, name, out, count);
}

/* Entry `index` of the "rel_l2" array of summary.json; NAN if missing. */
static inline double read_rel_l2(const char *path, int index) {
    char *text = read_file(path, NULL);
    char *p = text ? strstr(text, "\"rel_l2\": [") : NULL;
    double value = NAN;
    if (p) {
        p += strlen("\"rel_l2\": [");
        for (int i = 0; i <= index && p; i++) {
            char *end;
            value = strtod(p, &end);
            if (end == p) { value = NAN; break; }
            p = strchr(end, ',');
            if (p) p++;
            else if (i < index) value = NAN;
        }
    }
    free(text);
    return value;
}

/* ‖p − t‖₂ / ‖t‖₂, summed in the order `tessera eval` sums. */
static inline double relative_l2(const double *p, const double *t, size_t n) {
    double diff = 0.0, norm = 0.0;
    for (size_t i = 0; i < n; i++) diff += (p[i] - t[i]) * (p[i] - t[i]);
    for (size_t i = 0; i < n; i++) norm += t[i] * t[i];
    return sqrt(diff / norm);
}

#endif
