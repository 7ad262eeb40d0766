/* A small Prometheus metrics registry for crispd's own metrics: counters,
 * gauges and fixed-bucket histograms with label sets, thread-safe, rendered
 * in the text exposition format 0.0.4.
 *
 *   cr_prom_registry *r = cr_prom_registry_new();
 *   cr_prom_metric *calls = cr_prom_counter(r, "crisp_rpc_calls_total", "CRI calls served.",
 *                                           CR_PROM_L("method", "code"), &err);
 *   cr_prom_inc(calls, CR_PROM_L("RunPodSandbox", "OK"));
 *   cr_prom_series *s = cr_prom_get(calls, CR_PROM_L("Version", "OK"), &err);   // hot path:
 *   cr_prom_series_inc(s);                                                     // no lookup, lock-free
 *
 * Label names and values are NULL-terminated arrays (CR_PROM_L builds one;
 * NULL = no labels); a value array must have exactly the family's label count.
 * Counter and gauge values are atomics (no lock on update); a histogram
 * observation and a series lookup take the family's mutex.  Families and
 * series live as long as the registry, unless removed with cr_prom_remove or
 * cr_prom_clear. */
#ifndef CRISP_LIB_PROM_H
#define CRISP_LIB_PROM_H

#include <stddef.h>

#include "err.h"

#define CR_PROM_L(...) ((const char *const[]){__VA_ARGS__, NULL})

typedef struct cr_prom_registry cr_prom_registry;
typedef struct cr_prom_metric cr_prom_metric;   /* a family: name, help, type, label names */
typedef struct cr_prom_series cr_prom_series;   /* one label-value combination of a family */

typedef enum cr_prom_type { CR_PROM_COUNTER, CR_PROM_GAUGE, CR_PROM_HISTOGRAM } cr_prom_type;

cr_prom_registry *cr_prom_registry_new(void);   /* NULL: out of memory */
void cr_prom_registry_free(cr_prom_registry *r);

/* Register a family.  name: [a-zA-Z_:][a-zA-Z0-9_:]*; label names:
 * [a-zA-Z_][a-zA-Z0-9_]*, not "__"-prefixed, distinct (histograms: not "le").
 * INVALID_ARGUMENT for a bad name; ALREADY_EXISTS for a name registered
 * before.  A family without labels has its one series (value 0) at once. */
cr_prom_metric *cr_prom_counter(cr_prom_registry *r, const char *name, const char *help,
                                const char *const *labels, cr_err **err);
cr_prom_metric *cr_prom_gauge(cr_prom_registry *r, const char *name, const char *help,
                              const char *const *labels, cr_err **err);
/* Upper bounds, strictly increasing and finite (+Inf is always added). */
cr_prom_metric *cr_prom_histogram(cr_prom_registry *r, const char *name, const char *help,
                                  const char *const *labels, const double *buckets, size_t nbuckets,
                                  cr_err **err);
/* Common bucket sets: seconds from 5 ms to 10 s (Prometheus' default). */
extern const double cr_prom_default_buckets[11];

cr_prom_type cr_prom_metric_type(const cr_prom_metric *m);

/* The series for these label values, created (at 0) when new.  Stable until
 * removed.  INVALID_ARGUMENT when the value count is wrong. */
cr_prom_series *cr_prom_get(cr_prom_metric *m, const char *const *values, cr_err **err);

/* Updates on a series.  inc/add: counters (add refuses a negative or NaN
 * amount) and gauges; set/sub: gauges; observe: histograms.  0, or -1 for a
 * call the family's type does not take. */
int cr_prom_series_inc(cr_prom_series *s);
int cr_prom_series_add(cr_prom_series *s, double v);
int cr_prom_series_sub(cr_prom_series *s, double v);
int cr_prom_series_set(cr_prom_series *s, double v);
int cr_prom_series_observe(cr_prom_series *s, double v);
/* Current value (counter, gauge) or sum (histogram). */
double cr_prom_series_value(cr_prom_series *s);
/* A histogram's observation count. */
unsigned long long cr_prom_series_count(cr_prom_series *s);

/* The same with a lookup by label values: 0, or -1 (wrong type, wrong value
 * count, out of memory). */
int cr_prom_inc(cr_prom_metric *m, const char *const *values);
int cr_prom_add(cr_prom_metric *m, const char *const *values, double v);
int cr_prom_set(cr_prom_metric *m, const char *const *values, double v);
int cr_prom_observe(cr_prom_metric *m, const char *const *values, double v);

/* Drop one series / every series of a labeled family (a gauge recomputed
 * at each scrape).  Pointers to the dropped series become invalid. */
int cr_prom_remove(cr_prom_metric *m, const char *const *values);
void cr_prom_clear(cr_prom_metric *m);

/* Called at the start of every render, outside any registry lock, to bring
 * gauges up to date (pods, containers, ...).  Up to 16 per registry. */
typedef void (*cr_prom_collect_fn)(cr_prom_registry *r, void *data);
int cr_prom_on_collect(cr_prom_registry *r, cr_prom_collect_fn fn, void *data, cr_err **err);

/* The whole registry in the text exposition format 0.0.4: families in
 * registration order, each "# HELP" (help escaped: \\ and \n), "# TYPE",
 * then its series in creation order (label values escaped: \\, \" and \n);
 * histograms as _bucket{...,le="..."} (cumulative, +Inf last), _sum, _count.
 * A labeled family with no series is left out.  Heap string, *len (may be
 * NULL) its length; NULL when out of memory. */
char *cr_prom_render(cr_prom_registry *r, size_t *len);

/* The content type of that format. */
#define CR_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
