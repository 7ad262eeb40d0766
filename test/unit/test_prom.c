/* Prometheus registry and /metrics endpoint: the exact text format
 * (escaping, value formatting, histogram buckets), validation, concurrent
 * updates from threads, and the HTTP endpoint fetched with libcurl. */
#include <check.h>
#include <curl/curl.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/prom.h"
#include "lib/promhttp.h"

static void reg_freep(cr_prom_registry **r)
{
    cr_prom_registry_free(*r);
}
#define _cleanup_reg_ __attribute__((cleanup(reg_freep)))

static char *render(cr_prom_registry *r)
{
    size_t len = 0;
    char *s = cr_prom_render(r, &len);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(strlen(s), len);
    return s;
}

static cr_prom_metric *must(cr_prom_metric *m, cr_err *err)
{
    ck_assert_msg(m, "register: %s", err ? err->msg : "?");
    return m;
}

START_TEST(text_format_exact)
{
    _cleanup_reg_ cr_prom_registry *r = cr_prom_registry_new();
    _cleanup_err_ cr_err *err = NULL;
    cr_prom_metric *c = must(cr_prom_counter(r, "crisp_requests_total", "Requests served.", NULL, &err), err);
    cr_prom_metric *l = must(cr_prom_counter(r, "crisp_rpc_total", "RPCs by method and code.",
                                             CR_PROM_L("method", "code"), &err), err);
    cr_prom_metric *unused = must(cr_prom_gauge(r, "crisp_unused", "Never set.", CR_PROM_L("x"), &err), err);
    cr_prom_metric *g = must(cr_prom_gauge(r, "crisp_pods", "Pods known.", CR_PROM_L("state"), &err), err);
    static const double b[] = {0.125, 0.5, 1};
    cr_prom_metric *h = must(cr_prom_histogram(r, "crisp_rpc_duration_seconds", "RPC latency.",
                                               CR_PROM_L("method"), b, 3, &err), err);
    static const double bb[] = {1024, 1048576};
    cr_prom_metric *hb = must(cr_prom_histogram(r, "crisp_pull_bytes", "Bytes per pull.", NULL, bb, 2, &err), err);
    (void)unused;
    ck_assert_int_eq(cr_prom_metric_type(h), CR_PROM_HISTOGRAM);

    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(cr_prom_inc(c, NULL), 0);
    ck_assert_int_eq(cr_prom_inc(l, CR_PROM_L("Version", "OK")), 0);
    ck_assert_int_eq(cr_prom_inc(l, CR_PROM_L("Version", "OK")), 0);
    ck_assert_int_eq(cr_prom_add(l, CR_PROM_L("RunPodSandbox", "Unavailable"), 5), 0);
    ck_assert_int_eq(cr_prom_set(g, CR_PROM_L("ready"), 4), 0);
    ck_assert_int_eq(cr_prom_set(g, CR_PROM_L("notready"), 0.5), 0);
    /* On a bound counts in that bucket (le is "less or equal"). */
    ck_assert_int_eq(cr_prom_observe(h, CR_PROM_L("Version"), 0.0625), 0);
    ck_assert_int_eq(cr_prom_observe(h, CR_PROM_L("Version"), 0.125), 0);
    ck_assert_int_eq(cr_prom_observe(h, CR_PROM_L("Version"), 0.75), 0);
    ck_assert_int_eq(cr_prom_observe(h, CR_PROM_L("Version"), 3), 0);
    ck_assert_int_eq(cr_prom_observe(hb, NULL, 2048), 0);

    _cleanup_free_ char *out = render(r);
    ck_assert_str_eq(out,
                     "# HELP crisp_requests_total Requests served.\n"
                     "# TYPE crisp_requests_total counter\n"
                     "crisp_requests_total 3\n"
                     "# HELP crisp_rpc_total RPCs by method and code.\n"
                     "# TYPE crisp_rpc_total counter\n"
                     "crisp_rpc_total{method=\"Version\",code=\"OK\"} 2\n"
                     "crisp_rpc_total{method=\"RunPodSandbox\",code=\"Unavailable\"} 5\n"
                     "# HELP crisp_pods Pods known.\n"
                     "# TYPE crisp_pods gauge\n"
                     "crisp_pods{state=\"ready\"} 4\n"
                     "crisp_pods{state=\"notready\"} 0.5\n"
                     "# HELP crisp_rpc_duration_seconds RPC latency.\n"
                     "# TYPE crisp_rpc_duration_seconds histogram\n"
                     "crisp_rpc_duration_seconds_bucket{method=\"Version\",le=\"0.125\"} 2\n"
                     "crisp_rpc_duration_seconds_bucket{method=\"Version\",le=\"0.5\"} 2\n"
                     "crisp_rpc_duration_seconds_bucket{method=\"Version\",le=\"1\"} 3\n"
                     "crisp_rpc_duration_seconds_bucket{method=\"Version\",le=\"+Inf\"} 4\n"
                     "crisp_rpc_duration_seconds_sum{method=\"Version\"} 3.9375\n"
                     "crisp_rpc_duration_seconds_count{method=\"Version\"} 4\n"
                     "# HELP crisp_pull_bytes Bytes per pull.\n"
                     "# TYPE crisp_pull_bytes histogram\n"
                     "crisp_pull_bytes_bucket{le=\"1024\"} 0\n"
                     "crisp_pull_bytes_bucket{le=\"1048576\"} 1\n"
                     "crisp_pull_bytes_bucket{le=\"+Inf\"} 1\n"
                     "crisp_pull_bytes_sum 2048\n"
                     "crisp_pull_bytes_count 1\n");

    /* An empty registry renders to nothing. */
    _cleanup_reg_ cr_prom_registry *empty = cr_prom_registry_new();
    _cleanup_free_ char *none = render(empty);
    ck_assert_str_eq(none, "");
}
END_TEST

START_TEST(escaping)
{
    _cleanup_reg_ cr_prom_registry *r = cr_prom_registry_new();
    _cleanup_err_ cr_err *err = NULL;
    cr_prom_metric *g = must(cr_prom_gauge(r, "crisp:image_info", "Help with \"quotes\", a back\\slash\nand a newline.",
                                           CR_PROM_L("image", "note"), &err), err);
    ck_assert_int_eq(cr_prom_set(g, CR_PROM_L("docker.io/library/busybox:latest", "a\\b\"c\nd"), 1), 0);
    ck_assert_int_eq(cr_prom_set(g, CR_PROM_L("", "ünïcødé {},="), 2), 0);
    _cleanup_free_ char *out = render(r);
    ck_assert_str_eq(out,
                     "# HELP crisp:image_info Help with \"quotes\", a back\\\\slash\\nand a newline.\n"
                     "# TYPE crisp:image_info gauge\n"
                     "crisp:image_info{image=\"docker.io/library/busybox:latest\",note=\"a\\\\b\\\"c\\nd\"} 1\n"
                     "crisp:image_info{image=\"\",note=\"ünïcødé {},=\"} 2\n");
}
END_TEST

START_TEST(value_formatting)
{
    _cleanup_reg_ cr_prom_registry *r = cr_prom_registry_new();
    _cleanup_err_ cr_err *err = NULL;
    cr_prom_metric *g = must(cr_prom_gauge(r, "v", "", CR_PROM_L("k"), &err), err);
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {0, "0"},
        {-0.0, "0"},
        {1, "1"},
        {-2.5, "-2.5"},
        {0.1, "0.1"},
        {1.0 / 3, "0.3333333333333333"},
        {1e-6, "1e-06"},
        {123456789012.0, "123456789012"},
        {9007199254740993.0, "9007199254740992"},   /* 2^53 + 1 is not a double */
        {1e20, "1e+20"},
        {__builtin_inf(), "+Inf"},
        {-__builtin_inf(), "-Inf"},
        {__builtin_nan(""), "NaN"},
    };
    char want[1024] = "# HELP v \n# TYPE v gauge\n";
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        char k[8];
        snprintf(k, sizeof(k), "%zu", i);
        ck_assert_int_eq(cr_prom_set(g, CR_PROM_L(k), cases[i].v), 0);
        size_t n = strlen(want);
        snprintf(want + n, sizeof(want) - n, "v{k=\"%zu\"} %s\n", i, cases[i].text);
    }
    _cleanup_free_ char *out = render(r);
    ck_assert_str_eq(out, want);
}
END_TEST

START_TEST(histogram_buckets)
{
    _cleanup_reg_ cr_prom_registry *r = cr_prom_registry_new();
    _cleanup_err_ cr_err *err = NULL;
    /* A trailing +Inf is accepted and not doubled. */
    static const double b[] = {1, 2, 4, __builtin_inf()};
    cr_prom_metric *h = must(cr_prom_histogram(r, "h", "H.", NULL, b, 4, &err), err);
    cr_prom_series *s = cr_prom_get(h, NULL, &err);
    ck_assert_ptr_nonnull(s);
    static const double obs[] = {-5, 0, 1, 1.5, 2, 2.0001, 4, 4.5, 100, 1e300};
    double sum = 0;
    for (size_t i = 0; i < sizeof(obs) / sizeof(*obs); i++) {
        ck_assert_int_eq(cr_prom_series_observe(s, obs[i]), 0);
        sum += obs[i];
    }
    ck_assert_uint_eq(cr_prom_series_count(s), 10);
    ck_assert_double_eq(cr_prom_series_value(s), sum);
    _cleanup_free_ char *out = render(r);
    ck_assert_str_eq(out, "# HELP h H.\n# TYPE h histogram\n"
                          "h_bucket{le=\"1\"} 3\n"
                          "h_bucket{le=\"2\"} 5\n"
                          "h_bucket{le=\"4\"} 7\n"
                          "h_bucket{le=\"+Inf\"} 10\n"
                          "h_sum 1e+300\n"
                          "h_count 10\n");
    /* The default buckets, no labels: every bound listed once, in order. */
    cr_prom_metric *d = must(cr_prom_histogram(r, "d", "D.", NULL, cr_prom_default_buckets, 11, &err), err);
    ck_assert_int_eq(cr_prom_observe(d, NULL, 0.3), 0);
    _cleanup_free_ char *out2 = render(r);
    ck_assert_ptr_nonnull(strstr(out2, "d_bucket{le=\"0.005\"} 0\nd_bucket{le=\"0.01\"} 0\nd_bucket{le=\"0.025\"} 0\n"
                                       "d_bucket{le=\"0.05\"} 0\nd_bucket{le=\"0.1\"} 0\nd_bucket{le=\"0.25\"} 0\n"
                                       "d_bucket{le=\"0.5\"} 1\nd_bucket{le=\"1\"} 1\nd_bucket{le=\"2.5\"} 1\n"
                                       "d_bucket{le=\"5\"} 1\nd_bucket{le=\"10\"} 1\nd_bucket{le=\"+Inf\"} 1\n"
                                       "d_sum 0.3\nd_count 1\n"));
    /* No bounds at all: only +Inf. */
    cr_prom_metric *z = must(cr_prom_histogram(r, "z", "Z.", CR_PROM_L("a"), NULL, 0, &err), err);
    ck_assert_int_eq(cr_prom_observe(z, CR_PROM_L("x"), 7), 0);
    _cleanup_free_ char *out3 = render(r);
    ck_assert_ptr_nonnull(strstr(out3, "z_bucket{a=\"x\",le=\"+Inf\"} 1\nz_sum{a=\"x\"} 7\nz_count{a=\"x\"} 1\n"));
}
END_TEST

static void refused_reg(cr_prom_metric *m, cr_err **err, int code, const char *want)
{
    ck_assert_ptr_null(m);
    ck_assert_ptr_nonnull(*err);
    ck_assert_msg((*err)->code == code, "%s: code %s", (*err)->msg, cr_code_name((*err)->code));
    ck_assert_msg(strstr((*err)->msg, want), "\"%s\" lacks \"%s\"", (*err)->msg, want);
    cr_err_freep(err);
}

START_TEST(validation)
{
    _cleanup_reg_ cr_prom_registry *r = cr_prom_registry_new();
    cr_err *err = NULL;
    refused_reg(cr_prom_counter(r, "9lives", "", NULL, &err), &err, CR_INVALID_ARGUMENT, "9lives");
    refused_reg(cr_prom_counter(r, "a-b", "", NULL, &err), &err, CR_INVALID_ARGUMENT, "a-b");
    refused_reg(cr_prom_counter(r, "", "", NULL, &err), &err, CR_INVALID_ARGUMENT, "not valid");
    refused_reg(cr_prom_counter(r, "ok", "", CR_PROM_L("a:b"), &err), &err, CR_INVALID_ARGUMENT, "a:b");
    refused_reg(cr_prom_counter(r, "ok", "", CR_PROM_L("__name"), &err), &err, CR_INVALID_ARGUMENT, "__name");
    refused_reg(cr_prom_counter(r, "ok", "", CR_PROM_L("a", "b", "a"), &err), &err, CR_INVALID_ARGUMENT, "twice");
    refused_reg(cr_prom_histogram(r, "ok", "", CR_PROM_L("le"), NULL, 0, &err), &err, CR_INVALID_ARGUMENT, "le");
    static const double unsorted[] = {1, 3, 2}, dup[] = {1, 1}, nan[] = {__builtin_nan("")};
    refused_reg(cr_prom_histogram(r, "ok", "", NULL, unsorted, 3, &err), &err, CR_INVALID_ARGUMENT, "increasing");
    refused_reg(cr_prom_histogram(r, "ok", "", NULL, dup, 2, &err), &err, CR_INVALID_ARGUMENT, "increasing");
    refused_reg(cr_prom_histogram(r, "ok", "", NULL, nan, 1, &err), &err, CR_INVALID_ARGUMENT, "finite");

    cr_prom_metric *c = cr_prom_counter(r, "ok", "", CR_PROM_L("a", "b"), &err);
    ck_assert_ptr_nonnull(c);
    refused_reg(cr_prom_gauge(r, "ok", "", NULL, &err), &err, CR_ALREADY_EXISTS, "ok");
    /* Wrong value count. */
    ck_assert_ptr_null(cr_prom_get(c, CR_PROM_L("x"), &err));
    ck_assert_int_eq(err->code, CR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err->msg, "1 label values for 2 labels"));
    cr_err_freep(&err);
    ck_assert_int_lt(cr_prom_inc(c, NULL), 0);
    ck_assert_int_lt(cr_prom_inc(c, CR_PROM_L("x", "y", "z")), 0);
    /* Calls the type does not take. */
    cr_prom_series *s = cr_prom_get(c, CR_PROM_L("x", "y"), &err);
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_eq(cr_prom_get(c, CR_PROM_L("x", "y"), &err), s);   /* same series again */
    ck_assert_int_lt(cr_prom_series_add(s, -1), 0);
    ck_assert_int_lt(cr_prom_series_add(s, __builtin_nan("")), 0);
    ck_assert_int_lt(cr_prom_series_set(s, 5), 0);
    ck_assert_int_lt(cr_prom_series_sub(s, 1), 0);
    ck_assert_int_lt(cr_prom_series_observe(s, 1), 0);
    ck_assert_int_eq(cr_prom_series_add(s, 2.5), 0);
    ck_assert_double_eq(cr_prom_series_value(s), 2.5);
    cr_prom_metric *g = cr_prom_gauge(r, "g", "", NULL, &err);
    cr_prom_series *gs = cr_prom_get(g, NULL, &err);
    ck_assert_int_lt(cr_prom_series_observe(gs, 1), 0);
    ck_assert_int_eq(cr_prom_series_add(gs, -3), 0);
    ck_assert_int_eq(cr_prom_series_sub(gs, 1), 0);
    ck_assert_double_eq(cr_prom_series_value(gs), -4);
    ck_assert_uint_eq(cr_prom_series_count(gs), 0);
}
END_TEST

static void collect(cr_prom_registry *r, void *data)
{
    int *calls = data;
    (*calls)++;
}

START_TEST(remove_clear_and_collect)
{
    _cleanup_reg_ cr_prom_registry *r = cr_prom_registry_new();
    _cleanup_err_ cr_err *err = NULL;
    cr_prom_metric *g = must(cr_prom_gauge(r, "containers", "By state.", CR_PROM_L("state"), &err), err);
    int calls = 0;
    ck_assert_int_eq(cr_prom_on_collect(r, collect, &calls, &err), 0);
    cr_prom_set(g, CR_PROM_L("running"), 3);
    cr_prom_set(g, CR_PROM_L("exited"), 1);
    cr_prom_set(g, CR_PROM_L("created"), 2);
    ck_assert_int_eq(cr_prom_remove(g, CR_PROM_L("exited")), 0);
    ck_assert_int_lt(cr_prom_remove(g, CR_PROM_L("exited")), 0);
    _cleanup_free_ char *a = render(r);
    ck_assert_str_eq(a, "# HELP containers By state.\n# TYPE containers gauge\n"
                        "containers{state=\"running\"} 3\ncontainers{state=\"created\"} 2\n");
    ck_assert_int_eq(calls, 1);
    ck_assert_int_eq(cr_prom_remove(g, CR_PROM_L("created")), 0);   /* the tail */
    cr_prom_set(g, CR_PROM_L("paused"), 1);
    _cleanup_free_ char *b = render(r);
    ck_assert_str_eq(b, "# HELP containers By state.\n# TYPE containers gauge\n"
                        "containers{state=\"running\"} 3\ncontainers{state=\"paused\"} 1\n");
    cr_prom_clear(g);
    _cleanup_free_ char *c = render(r);
    ck_assert_str_eq(c, "");
    cr_prom_set(g, CR_PROM_L("running"), 1);
    _cleanup_free_ char *d = render(r);
    ck_assert_str_eq(d, "# HELP containers By state.\n# TYPE containers gauge\ncontainers{state=\"running\"} 1\n");
    ck_assert_int_eq(calls, 4);
    for (int i = 1; i < 16; i++)
        ck_assert_int_eq(cr_prom_on_collect(r, collect, &calls, &err), 0);
    ck_assert_int_lt(cr_prom_on_collect(r, collect, &calls, &err), 0);
    ck_assert_int_eq(err->code, CR_RESOURCE_EXHAUSTED);
}
END_TEST

/* ---- threads ---- */

enum { THREADS = 8, ITER = 50000 };

typedef struct shared {
    cr_prom_registry *r;
    cr_prom_metric *calls, *inflight, *lat;
    cr_prom_series *fast;
    volatile int stop;
    int renders, bad_renders;
} shared;

static void *hammer(void *arg)
{
    shared *sh = arg;
    for (int i = 0; i < ITER; i++) {
        cr_prom_inc(sh->calls, CR_PROM_L(i % 2 ? "odd" : "even"));
        cr_prom_series_inc(sh->fast);
        cr_prom_add(sh->inflight, NULL, 1);
        cr_prom_observe(sh->lat, CR_PROM_L("m"), (i % 4) * 0.25);
        cr_prom_add(sh->inflight, NULL, -1);
    }
    return NULL;
}

/* The value on the line starting with prefix (followed by a space). */
static double line_value(const char *text, const char *prefix)
{
    size_t pl = strlen(prefix);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (!strncmp(l, prefix, pl) && l[pl] == ' ')
            return strtod(l + pl + 1, NULL);
    return -1;
}

static void *scraper(void *arg)
{
    shared *sh = arg;
    double last = 0;
    while (!sh->stop) {
        char *t = cr_prom_render(sh->r, NULL);
        if (!t) {
            sh->bad_renders++;
            continue;
        }
        double v = line_value(t, "fast_total");
        double b = line_value(t, "lat_bucket{m=\"m\",le=\"+Inf\"}"), cnt = line_value(t, "lat_count{m=\"m\"}");
        /* Monotonic counter; a histogram consistent within one render. */
        if (v < last || (b >= 0 && b != cnt))
            sh->bad_renders++;
        last = v;
        sh->renders++;
        free(t);
    }
    return NULL;
}

START_TEST(concurrent_updates)
{
    _cleanup_reg_ cr_prom_registry *r = cr_prom_registry_new();
    _cleanup_err_ cr_err *err = NULL;
    shared sh = {.r = r};
    sh.calls = must(cr_prom_counter(r, "calls_total", "", CR_PROM_L("parity"), &err), err);
    cr_prom_metric *fast = must(cr_prom_counter(r, "fast_total", "", NULL, &err), err);
    sh.fast = cr_prom_get(fast, NULL, &err);
    sh.inflight = must(cr_prom_gauge(r, "inflight", "", NULL, &err), err);
    static const double b[] = {0.25, 0.5};
    sh.lat = must(cr_prom_histogram(r, "lat", "", CR_PROM_L("m"), b, 2, &err), err);
    pthread_t t[THREADS], s;
    ck_assert_int_eq(pthread_create(&s, NULL, scraper, &sh), 0);
    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, hammer, &sh), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    sh.stop = 1;
    pthread_join(s, NULL);
    ck_assert_int_eq(sh.bad_renders, 0);
    ck_assert_int_gt(sh.renders, 0);

    _cleanup_free_ char *out = render(r);
    const double total = (double)THREADS * ITER;
    ck_assert_double_eq(line_value(out, "calls_total{parity=\"odd\"}"), total / 2);
    ck_assert_double_eq(line_value(out, "calls_total{parity=\"even\"}"), total / 2);
    ck_assert_double_eq(line_value(out, "fast_total"), total);
    ck_assert_double_eq(line_value(out, "inflight"), 0);
    ck_assert_double_eq(line_value(out, "lat_bucket{m=\"m\",le=\"0.25\"}"), total / 2);   /* 0 and 0.25 */
    ck_assert_double_eq(line_value(out, "lat_bucket{m=\"m\",le=\"0.5\"}"), total * 3 / 4);
    ck_assert_double_eq(line_value(out, "lat_bucket{m=\"m\",le=\"+Inf\"}"), total);
    ck_assert_double_eq(line_value(out, "lat_count{m=\"m\"}"), total);
    ck_assert_double_eq(line_value(out, "lat_sum{m=\"m\"}"), total / 4 * (0 + 0.25 + 0.5 + 0.75));
}
END_TEST

/* ---- HTTP ---- */

typedef struct buf {
    char *data;
    size_t len;
} buf;

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    buf *b = arg;
    char *nd = realloc(b->data, b->len + size * n + 1);
    if (!nd)
        return 0;
    memcpy(nd + b->len, p, size * n);
    b->data = nd;
    b->len += size * n;
    b->data[b->len] = '\0';
    return size * n;
}

typedef struct reply {
    CURLcode rc;
    long status;
    char content_type[128];
    char allow[64];
    buf body;
} reply;

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    reply *r = arg;
    size_t len = size * n;
    if (len > 7 && !strncasecmp(p, "Allow: ", 7))
        snprintf(r->allow, sizeof(r->allow), "%.*s", (int)(len - 7), p + 7);
    char *cr = strpbrk(r->allow, "\r\n");
    if (cr)
        *cr = '\0';
    return len;
}

static reply fetch(const char *url, const char *method)
{
    reply r = {0};
    CURL *c = curl_easy_init();
    ck_assert_ptr_nonnull(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    if (method && !strcmp(method, "HEAD"))
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (method && !strcmp(method, "POST"))
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "x=1");
    r.rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    char *ct = NULL;
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    if (ct)
        snprintf(r.content_type, sizeof(r.content_type), "%s", ct);
    curl_easy_cleanup(c);
    return r;
}

/* Every line of a 0.0.4 body: "# HELP name ...", "# TYPE name type", or
 * "name[{k="v",...}] value".  Returns the number of sample lines. */
static int check_exposition(const char *text)
{
    int samples = 0;
    for (const char *l = text; *l;) {
        const char *nl = strchr(l, '\n');
        ck_assert_msg(nl, "last line not terminated");
        size_t n = (size_t)(nl - l);
        char line[1024];
        ck_assert_uint_lt(n, sizeof(line));
        memcpy(line, l, n);
        line[n] = '\0';
        if (line[0] == '#') {
            char kind[8], name[256], rest[512];
            ck_assert_msg(sscanf(line, "# %7s %255s %511[^\n]", kind, name, rest) >= 2, "bad line: %s", line);
            ck_assert_msg(!strcmp(kind, "HELP") || !strcmp(kind, "TYPE"), "bad comment: %s", line);
        } else {
            const char *sp = strrchr(line, ' ');
            ck_assert_msg(sp && sp != line, "bad sample: %s", line);
            char *end;
            strtod(sp + 1, &end);
            ck_assert_msg(*end == '\0' || !strcmp(sp + 1, "+Inf") || !strcmp(sp + 1, "NaN"), "bad value: %s", line);
            samples++;
        }
        l = nl + 1;
    }
    return samples;
}

START_TEST(http_endpoint)
{
    _cleanup_reg_ cr_prom_registry *r = cr_prom_registry_new();
    _cleanup_err_ cr_err *err = NULL;
    cr_prom_metric *c = must(cr_prom_counter(r, "crisp_scrapes_total", "Scrapes.", CR_PROM_L("path"), &err), err);
    static const double b[] = {0.5};
    cr_prom_metric *h = must(cr_prom_histogram(r, "crisp_h", "H.", NULL, b, 1, &err), err);
    cr_prom_inc(c, CR_PROM_L("/metrics"));
    cr_prom_observe(h, NULL, 0.25);

    cr_promhttp *srv = NULL;
    ck_assert_msg(cr_promhttp_start(r, "127.0.0.1", 0, &srv, &err) == 0, "%s", err ? err->msg : "");
    int port = cr_promhttp_port(srv);
    ck_assert_int_gt(port, 0);
    char url[128];

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
    reply m = fetch(url, NULL);
    ck_assert_int_eq(m.rc, CURLE_OK);
    ck_assert_int_eq(m.status, 200);
    ck_assert_str_eq(m.content_type, "text/plain; version=0.0.4; charset=utf-8");
    ck_assert_ptr_nonnull(m.body.data);
    ck_assert_int_eq(check_exposition(m.body.data), 5);
    ck_assert_ptr_nonnull(strstr(m.body.data, "crisp_scrapes_total{path=\"/metrics\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(m.body.data, "crisp_h_bucket{le=\"0.5\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(m.body.data, "crisp_h_sum 0.25\ncrisp_h_count 1\n"));
    free(m.body.data);

    /* Updates show on the next scrape; a query string is fine. */
    cr_prom_add(c, CR_PROM_L("/metrics"), 41);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics?x=1", port);
    m = fetch(url, NULL);
    ck_assert_int_eq(m.status, 200);
    ck_assert_ptr_nonnull(strstr(m.body.data, "crisp_scrapes_total{path=\"/metrics\"} 42\n"));
    free(m.body.data);

    m = fetch(url, "HEAD");
    ck_assert_int_eq(m.rc, CURLE_OK);
    ck_assert_int_eq(m.status, 200);
    ck_assert_ptr_null(m.body.data);

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
    m = fetch(url, NULL);
    ck_assert_int_eq(m.status, 404);
    free(m.body.data);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics/extra", port);
    m = fetch(url, NULL);
    ck_assert_int_eq(m.status, 404);
    free(m.body.data);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
    m = fetch(url, "POST");
    ck_assert_int_eq(m.status, 405);
    ck_assert_str_eq(m.allow, "GET, HEAD");
    free(m.body.data);

    /* The same port again: in use. */
    cr_promhttp *dup = NULL;
    ck_assert_int_lt(cr_promhttp_start(r, "127.0.0.1", port, &dup, &err), 0);
    ck_assert_ptr_null(dup);
    ck_assert_int_eq(err->code, CR_ALREADY_EXISTS);
    ck_assert_ptr_nonnull(strstr(err->msg, "127.0.0.1"));
    cr_err_freep(&err);

    cr_promhttp_stop(srv);
    m = fetch(url, NULL);
    ck_assert_int_eq(m.rc, CURLE_COULDNT_CONNECT);
    free(m.body.data);
}
END_TEST

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

START_TEST(http_addresses)
{
    _cleanup_reg_ cr_prom_registry *r = cr_prom_registry_new();
    _cleanup_err_ cr_err *err = NULL;
    cr_promhttp *srv = NULL;
    ck_assert_int_lt(cr_promhttp_start(r, "localhost", 0, &srv, &err), 0);
    ck_assert_int_eq(err->code, CR_INVALID_ARGUMENT);
    cr_err_freep(&err);
    ck_assert_int_lt(cr_promhttp_start(r, "127.0.0.1", 70000, &srv, &err), 0);
    ck_assert_int_eq(err->code, CR_INVALID_ARGUMENT);
    cr_err_freep(&err);
    cr_promhttp_stop(NULL);

    /* Start and stop leave no descriptor behind (MHD closes the socket). */
    int fds = count_fds();
    ck_assert_int_eq(cr_promhttp_start(r, "127.0.0.1", 0, &srv, &err), 0);
    ck_assert_int_gt(count_fds(), fds);
    cr_promhttp_stop(srv);
    ck_assert_int_eq(count_fds(), fds);

    /* Default address: loopback. */
    ck_assert_int_eq(cr_promhttp_start(r, NULL, 0, &srv, &err), 0);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", cr_promhttp_port(srv));
    reply m = fetch(url, NULL);
    ck_assert_int_eq(m.status, 200);
    free(m.body.data);
    cr_promhttp_stop(srv);

    /* IPv6 loopback, where the machine has it. */
    if (cr_promhttp_start(r, "[::1]", 0, &srv, &err) == 0) {
        snprintf(url, sizeof(url), "http://[::1]:%d/metrics", cr_promhttp_port(srv));
        m = fetch(url, NULL);
        ck_assert_int_eq(m.status, 200);
        free(m.body.data);
        cr_promhttp_stop(srv);
    } else {
        fprintf(stderr, "test_prom: no IPv6 loopback here (%s)\n", err->msg);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("prom");
    TCase *tc = tcase_create("prom");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, text_format_exact);
    tcase_add_test(tc, escaping);
    tcase_add_test(tc, value_formatting);
    tcase_add_test(tc, histogram_buckets);
    tcase_add_test(tc, validation);
    tcase_add_test(tc, remove_clear_and_collect);
    tcase_add_test(tc, concurrent_updates);
    tcase_add_test(tc, http_endpoint);
    tcase_add_test(tc, http_addresses);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
