/* Shared by the benchmark programs: a monotonic clock and latency figures. */
#ifndef CRISP_BENCH_H
#define CRISP_BENCH_H

#include <stdlib.h>
#include <time.h>

static inline double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static inline int bench_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct bench_figures {
    double median, p95, mean;
    double min, max;
} bench_figures;

/* Sorts v (n >= 1) and returns its median, 95th percentile, mean, minimum
 * and maximum. */
static inline bench_figures bench_summary(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), bench_cmp);
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += v[i];
    bench_figures f = { n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2, v[(int)(0.95 * (n - 1) + 0.5)], sum / n,
                        v[0], v[n - 1] };
    return f;
}

#endif
