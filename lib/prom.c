/* Prometheus registry (see prom.h).  Locks: the registry mutex guards the
 * family list and the collect hooks; each family's mutex guards its series
 * list and its histograms' buckets; counter and gauge values are 64-bit
 * atomics holding the double's bits, updated by compare-and-swap. */
#include "prom.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"

#define MAX_HOOKS 16

const double cr_prom_default_buckets[11] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

struct cr_prom_series {
    cr_prom_metric *fam;
    char **values;                 /* nlabels heap strings */
    _Atomic uint64_t bits;         /* counter, gauge: the value's bits */
    uint64_t *buckets;             /* histogram: per-bucket counts (not cumulative), +Inf last */
    double sum;                    /* histogram, under fam->mu */
    uint64_t count;                /* histogram, under fam->mu */
    cr_prom_series *next;
};

struct cr_prom_metric {
    cr_prom_registry *reg;
    char *name, *help;
    cr_prom_type type;
    char **labels;                 /* nlabels heap strings */
    size_t nlabels;
    double *bounds;                /* histogram upper bounds (finite) */
    size_t nbounds;
    pthread_mutex_t mu;
    cr_prom_series *head, *tail;
    cr_prom_metric *next;
};

struct cr_prom_registry {
    pthread_mutex_t mu;
    cr_prom_metric *head, *tail;
    struct {
        cr_prom_collect_fn fn;
        void *data;
    } hooks[MAX_HOOKS];
    size_t nhooks;
};

static uint64_t d2b(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof(b));
    return b;
}

static double b2d(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof(v));
    return v;
}

static void strv_free_n(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void series_free(cr_prom_series *s)
{
    if (!s)
        return;
    strv_free_n(s->values, s->fam->nlabels);
    free(s->buckets);
    free(s);
}

static void metric_free(cr_prom_metric *m)
{
    if (!m)
        return;
    for (cr_prom_series *s = m->head, *n; s; s = n) {
        n = s->next;
        series_free(s);
    }
    pthread_mutex_destroy(&m->mu);
    free(m->name);
    free(m->help);
    strv_free_n(m->labels, m->nlabels);
    free(m->bounds);
    free(m);
}

cr_prom_registry *cr_prom_registry_new(void)
{
    cr_prom_registry *r = calloc(1, sizeof(*r));
    if (r)
        pthread_mutex_init(&r->mu, NULL);
    return r;
}

void cr_prom_registry_free(cr_prom_registry *r)
{
    if (!r)
        return;
    for (cr_prom_metric *m = r->head, *n; m; m = n) {
        n = m->next;
        metric_free(m);
    }
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static bool valid_name(const char *s, bool colon)
{
    if (!s || !*s)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':') ||
                  (p != s && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

static size_t strv_len(const char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

static char **strv_dup_n(const char *const *v, size_t n)
{
    char **out = calloc(n + 1, sizeof(*out));
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!(out[i] = strdup(v[i]))) {
            strv_free_n(out, n);
            return NULL;
        }
    return out;
}

static cr_prom_series *series_new(cr_prom_metric *m, const char *const *values)
{
    cr_prom_series *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->fam = m;
    atomic_init(&s->bits, d2b(0));
    if (!(s->values = strv_dup_n(values, m->nlabels)) ||
        (m->type == CR_PROM_HISTOGRAM && !(s->buckets = calloc(m->nbounds + 1, sizeof(*s->buckets))))) {
        series_free(s);
        return NULL;
    }
    return s;
}

static cr_prom_metric *reg_add(cr_prom_registry *r, cr_prom_type type, const char *name, const char *help,
                               const char *const *labels, const double *buckets, size_t nbuckets, cr_err **err)
{
    if (!valid_name(name, true)) {
        cr_err_set(err, CR_INVALID_ARGUMENT, "metric name \"%s\" is not valid", name ? name : "");
        return NULL;
    }
    size_t nl = strv_len(labels);
    for (size_t i = 0; i < nl; i++) {
        if (!valid_name(labels[i], false) || !strncmp(labels[i], "__", 2) ||
            (type == CR_PROM_HISTOGRAM && !strcmp(labels[i], "le"))) {
            cr_err_set(err, CR_INVALID_ARGUMENT, "metric %s: label name \"%s\" is not valid", name, labels[i]);
            return NULL;
        }
        for (size_t j = 0; j < i; j++)
            if (!strcmp(labels[i], labels[j])) {
                cr_err_set(err, CR_INVALID_ARGUMENT, "metric %s: label %s given twice", name, labels[i]);
                return NULL;
            }
    }
    /* A trailing +Inf bound is implied; drop it when given. */
    if (type == CR_PROM_HISTOGRAM && nbuckets && buckets[nbuckets - 1] > 1.7976931348623157e308)
        nbuckets--;
    for (size_t i = 0; type == CR_PROM_HISTOGRAM && i < nbuckets; i++) {
        double b = buckets[i];
        if (b != b || b > 1.7976931348623157e308 || b < -1.7976931348623157e308 || (i && !(b > buckets[i - 1]))) {
            cr_err_set(err, CR_INVALID_ARGUMENT, "histogram %s: buckets must be finite and strictly increasing",
                       name);
            return NULL;
        }
    }

    cr_prom_metric *m = calloc(1, sizeof(*m));
    if (!m)
        goto oom;
    pthread_mutex_init(&m->mu, NULL);
    m->reg = r;
    m->type = type;
    m->nlabels = nl;
    if (!(m->name = strdup(name)) || !(m->help = strdup(help ? help : "")) ||
        !(m->labels = strv_dup_n(labels, nl)))
        goto oom;
    if (type == CR_PROM_HISTOGRAM) {
        m->nbounds = nbuckets;
        if (!(m->bounds = calloc(nbuckets + 1, sizeof(*m->bounds))))
            goto oom;
        if (nbuckets)
            memcpy(m->bounds, buckets, nbuckets * sizeof(*buckets));
    }
    if (nl == 0 && !(m->head = m->tail = series_new(m, NULL)))
        goto oom;

    pthread_mutex_lock(&r->mu);
    for (cr_prom_metric *o = r->head; o; o = o->next)
        if (!strcmp(o->name, name)) {
            pthread_mutex_unlock(&r->mu);
            metric_free(m);
            cr_err_set(err, CR_ALREADY_EXISTS, "metric %s is already registered", name);
            return NULL;
        }
    if (r->tail)
        r->tail->next = m;
    else
        r->head = m;
    r->tail = m;
    pthread_mutex_unlock(&r->mu);
    return m;

oom:
    metric_free(m);
    cr_err_set(err, CR_RESOURCE_EXHAUSTED, "metric %s: out of memory", name);
    return NULL;
}

cr_prom_metric *cr_prom_counter(cr_prom_registry *r, const char *name, const char *help,
                                const char *const *labels, cr_err **err)
{
    return reg_add(r, CR_PROM_COUNTER, name, help, labels, NULL, 0, err);
}

cr_prom_metric *cr_prom_gauge(cr_prom_registry *r, const char *name, const char *help,
                              const char *const *labels, cr_err **err)
{
    return reg_add(r, CR_PROM_GAUGE, name, help, labels, NULL, 0, err);
}

cr_prom_metric *cr_prom_histogram(cr_prom_registry *r, const char *name, const char *help,
                                  const char *const *labels, const double *buckets, size_t nbuckets,
                                  cr_err **err)
{
    return reg_add(r, CR_PROM_HISTOGRAM, name, help, labels, buckets, nbuckets, err);
}

cr_prom_type cr_prom_metric_type(const cr_prom_metric *m)
{
    return m->type;
}

static bool values_equal(const cr_prom_series *s, const char *const *values, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s->values[i], values[i]))
            return false;
    return true;
}

/* Lookup under m->mu (held by the caller). */
static cr_prom_series *find_locked(cr_prom_metric *m, const char *const *values)
{
    for (cr_prom_series *s = m->head; s; s = s->next)
        if (values_equal(s, values, m->nlabels))
            return s;
    return NULL;
}

cr_prom_series *cr_prom_get(cr_prom_metric *m, const char *const *values, cr_err **err)
{
    size_t n = strv_len(values);
    if (n != m->nlabels) {
        cr_err_set(err, CR_INVALID_ARGUMENT, "metric %s: %zu label values for %zu labels", m->name, n, m->nlabels);
        return NULL;
    }
    pthread_mutex_lock(&m->mu);
    cr_prom_series *s = find_locked(m, values);
    if (!s && (s = series_new(m, values))) {
        if (m->tail)
            m->tail->next = s;
        else
            m->head = s;
        m->tail = s;
    }
    pthread_mutex_unlock(&m->mu);
    if (!s)
        cr_err_set(err, CR_RESOURCE_EXHAUSTED, "metric %s: out of memory", m->name);
    return s;
}

static void atomic_add_double(_Atomic uint64_t *bits, double v)
{
    uint64_t old = atomic_load_explicit(bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(bits, &old, d2b(b2d(old) + v), memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

int cr_prom_series_add(cr_prom_series *s, double v)
{
    if (!s || s->fam->type == CR_PROM_HISTOGRAM)
        return -1;
    if (s->fam->type == CR_PROM_COUNTER && !(v >= 0))
        return -1;   /* counters only go up; NaN refused too */
    atomic_add_double(&s->bits, v);
    return 0;
}

int cr_prom_series_inc(cr_prom_series *s)
{
    return cr_prom_series_add(s, 1);
}

int cr_prom_series_sub(cr_prom_series *s, double v)
{
    if (!s || s->fam->type != CR_PROM_GAUGE)
        return -1;
    atomic_add_double(&s->bits, -v);
    return 0;
}

int cr_prom_series_set(cr_prom_series *s, double v)
{
    if (!s || s->fam->type != CR_PROM_GAUGE)
        return -1;
    atomic_store_explicit(&s->bits, d2b(v), memory_order_relaxed);
    return 0;
}

int cr_prom_series_observe(cr_prom_series *s, double v)
{
    if (!s || s->fam->type != CR_PROM_HISTOGRAM)
        return -1;
    cr_prom_metric *m = s->fam;
    /* The first bucket whose upper bound holds v; +Inf (index nbounds) else.
     * Binary search: bounds are sorted. */
    size_t lo = 0, hi = m->nbounds;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v <= m->bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    pthread_mutex_lock(&m->mu);
    s->buckets[lo]++;
    s->sum += v;
    s->count++;
    pthread_mutex_unlock(&m->mu);
    return 0;
}

double cr_prom_series_value(cr_prom_series *s)
{
    if (s->fam->type != CR_PROM_HISTOGRAM)
        return b2d(atomic_load_explicit(&s->bits, memory_order_relaxed));
    pthread_mutex_lock(&s->fam->mu);
    double v = s->sum;
    pthread_mutex_unlock(&s->fam->mu);
    return v;
}

unsigned long long cr_prom_series_count(cr_prom_series *s)
{
    if (s->fam->type != CR_PROM_HISTOGRAM)
        return 0;
    pthread_mutex_lock(&s->fam->mu);
    unsigned long long c = s->count;
    pthread_mutex_unlock(&s->fam->mu);
    return c;
}

int cr_prom_inc(cr_prom_metric *m, const char *const *values)
{
    return cr_prom_series_inc(cr_prom_get(m, values, NULL));
}

int cr_prom_add(cr_prom_metric *m, const char *const *values, double v)
{
    return cr_prom_series_add(cr_prom_get(m, values, NULL), v);
}

int cr_prom_set(cr_prom_metric *m, const char *const *values, double v)
{
    return cr_prom_series_set(cr_prom_get(m, values, NULL), v);
}

int cr_prom_observe(cr_prom_metric *m, const char *const *values, double v)
{
    return cr_prom_series_observe(cr_prom_get(m, values, NULL), v);
}

int cr_prom_remove(cr_prom_metric *m, const char *const *values)
{
    if (strv_len(values) != m->nlabels || m->nlabels == 0)
        return -1;
    pthread_mutex_lock(&m->mu);
    cr_prom_series *prev = NULL, *s = m->head;
    while (s && !values_equal(s, values, m->nlabels)) {
        prev = s;
        s = s->next;
    }
    if (s) {
        if (prev)
            prev->next = s->next;
        else
            m->head = s->next;
        if (m->tail == s)
            m->tail = prev;
    }
    pthread_mutex_unlock(&m->mu);
    if (!s)
        return -1;
    series_free(s);
    return 0;
}

void cr_prom_clear(cr_prom_metric *m)
{
    if (m->nlabels == 0)
        return;   /* the one unlabeled series stays */
    pthread_mutex_lock(&m->mu);
    cr_prom_series *s = m->head;
    m->head = m->tail = NULL;
    pthread_mutex_unlock(&m->mu);
    for (cr_prom_series *n; s; s = n) {
        n = s->next;
        series_free(s);
    }
}

int cr_prom_on_collect(cr_prom_registry *r, cr_prom_collect_fn fn, void *data, cr_err **err)
{
    pthread_mutex_lock(&r->mu);
    if (r->nhooks == MAX_HOOKS) {
        pthread_mutex_unlock(&r->mu);
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "metrics registry: more than %d collect hooks", MAX_HOOKS);
    }
    r->hooks[r->nhooks].fn = fn;
    r->hooks[r->nhooks].data = data;
    r->nhooks++;
    pthread_mutex_unlock(&r->mu);
    return 0;
}

/* ---- text exposition format ---- */

/* Shortest text that reads back as v: "42", "0.25", "1e-06", "+Inf", "NaN". */
static void fmt_value(char *buf, size_t size, double v)
{
    if (v != v) {
        snprintf(buf, size, "NaN");
        return;
    }
    if (v > 1.7976931348623157e308 || v < -1.7976931348623157e308) {
        snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == 0) {
        snprintf(buf, size, "0");   /* -0 too */
        return;
    }
    if (v > -1e15 && v < 1e15 && v == (double)(long long)v) {
        snprintf(buf, size, "%lld", (long long)v);
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

/* which: 0 help text (\\ and \n), 1 label value (\\, \" and \n). */
static void put_escaped(FILE *f, const char *s, int label)
{
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\\\", f);
        else if (*s == '\n')
            fputs("\\n", f);
        else if (label && *s == '"')
            fputs("\\\"", f);
        else
            fputc(*s, f);
    }
}

/* "{a="x",b="y"" without the closing brace (le may follow); nothing when
 * there are no labels and no le. */
static void put_labels(FILE *f, const cr_prom_metric *m, const cr_prom_series *s, const char *le)
{
    if (!m->nlabels && !le)
        return;
    fputc('{', f);
    for (size_t i = 0; i < m->nlabels; i++) {
        fprintf(f, "%s%s=\"", i ? "," : "", m->labels[i]);
        put_escaped(f, s->values[i], 1);
        fputc('"', f);
    }
    if (le)
        fprintf(f, "%sle=\"%s\"", m->nlabels ? "," : "", le);
    fputc('}', f);
}

static void render_family(FILE *f, cr_prom_metric *m)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    pthread_mutex_lock(&m->mu);
    if (!m->head) {
        pthread_mutex_unlock(&m->mu);
        return;
    }
    fprintf(f, "# HELP %s ", m->name);
    put_escaped(f, m->help, 0);
    fprintf(f, "\n# TYPE %s %s\n", m->name, type_names[m->type]);
    char num[64];
    for (cr_prom_series *s = m->head; s; s = s->next) {
        if (m->type != CR_PROM_HISTOGRAM) {
            fputs(m->name, f);
            put_labels(f, m, s, NULL);
            fmt_value(num, sizeof(num), b2d(atomic_load_explicit(&s->bits, memory_order_relaxed)));
            fprintf(f, " %s\n", num);
            continue;
        }
        uint64_t cum = 0;
        for (size_t i = 0; i <= m->nbounds; i++) {
            cum += s->buckets[i];
            char le[64];
            if (i < m->nbounds)
                fmt_value(le, sizeof(le), m->bounds[i]);
            else
                snprintf(le, sizeof(le), "+Inf");
            fprintf(f, "%s_bucket", m->name);
            put_labels(f, m, s, le);
            fprintf(f, " %llu\n", (unsigned long long)cum);
        }
        fmt_value(num, sizeof(num), s->sum);
        fprintf(f, "%s_sum", m->name);
        put_labels(f, m, s, NULL);
        fprintf(f, " %s\n%s_count", num, m->name);
        put_labels(f, m, s, NULL);
        fprintf(f, " %llu\n", (unsigned long long)s->count);
    }
    pthread_mutex_unlock(&m->mu);
}

char *cr_prom_render(cr_prom_registry *r, size_t *len)
{
    struct {
        cr_prom_collect_fn fn;
        void *data;
    } hooks[MAX_HOOKS];
    pthread_mutex_lock(&r->mu);
    size_t nhooks = r->nhooks;
    memcpy(hooks, r->hooks, nhooks * sizeof(hooks[0]));
    pthread_mutex_unlock(&r->mu);
    for (size_t i = 0; i < nhooks; i++)
        hooks[i].fn(r, hooks[i].data);

    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return NULL;
    /* Families are only appended, never removed: walking the list needs the
     * registry lock only to read each link. */
    pthread_mutex_lock(&r->mu);
    cr_prom_metric *m = r->head;
    pthread_mutex_unlock(&r->mu);
    while (m) {
        render_family(f, m);
        pthread_mutex_lock(&r->mu);
        m = m->next;
        pthread_mutex_unlock(&r->mu);
    }
    if (ferror(f)) {
        fclose(f);
        free(buf);
        return NULL;
    }
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    if (len)
        *len = n;
    return buf;
}
