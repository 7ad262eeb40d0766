/* crispd's own Prometheus endpoint ([crisp.metrics], --enable-metrics):
 * the port is found from Status verbose info, /metrics is fetched with
 * libcurl and read by a strict parser of the text format 0.0.4, and the
 * counters must match the calls the test made. */
#include <check.h>
#include <curl/curl.h>
#include <dirent.h>
#include <math.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <yajl/yajl_tree.h>

#include "harness.h"
#include "lib/fs.h"
#include "test/fixtures/registry.h"

/* A sample value (NAN when absent) equals want. */
#define ASSERT_VAL(expr, want)                                                              \
    do {                                                                                    \
        double v_ = (expr);                                                                 \
        ck_assert_msg(v_ == (double)(want), "%s is %g, want %g", #expr, v_, (double)(want)); \
    } while (0)

#define RT(m) CC_RUNTIME m
#define IMG(m) CC_IMAGE m

static th_daemon D;
static tf_registry reg;

/* Remove every pod before crispd goes, so no pause process outlives a test. */
static void teardown(void)
{
    if (D.pid > 0) {
        cc_conn *c = th_connect(&D);
        cr_err *err = NULL;
        Runtime__V1__ListPodSandboxResponse *l = cc_list_pod_sandbox(c, NULL, &err);
        for (size_t i = 0; l && i < l->n_items; i++) {
            cr_err *e = NULL;
            if (cc_remove_pod_sandbox(c, l->items[i]->id, &e) < 0) {
                fprintf(stderr, "teardown: rmp %s: %s\n", l->items[i]->id, e ? e->msg : "?");
                cr_err_free(e);
            }
        }
        if (l)
            cc_free(l);
        cr_err_free(err);
        cc_close(c);
    }
    tf_registry_stop(&reg);
    th_cleanup(&D);
}

/* ---- a strict reader of the text exposition format 0.0.4 ---- */

#define MAX_LABELS 8

typedef struct sample {
    char *name;
    char *lname[MAX_LABELS], *lval[MAX_LABELS];
    int nl;
    double v;
    int family;   /* index into expo.fam */
} sample;

typedef struct family {
    char *name;
    char type[16];   /* counter, gauge, histogram, summary, untyped */
    bool help;
    bool closed;     /* a later family's sample came: no more of this one */
    int nsamples;
} family;

typedef struct expo {
    sample *s;
    size_t ns;
    family *fam;
    size_t nf;
} expo;

static void expo_free(expo *e)
{
    for (size_t i = 0; i < e->ns; i++) {
        free(e->s[i].name);
        for (int j = 0; j < e->s[i].nl; j++) {
            free(e->s[i].lname[j]);
            free(e->s[i].lval[j]);
        }
    }
    for (size_t i = 0; i < e->nf; i++)
        free(e->fam[i].name);
    free(e->s);
    free(e->fam);
    memset(e, 0, sizeof(*e));
}

static bool is_name_start(char c, bool colon)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
}
static bool is_name_char(char c, bool colon)
{
    return is_name_start(c, colon) || (c >= '0' && c <= '9');
}

/* A metric (colon) or label name at *p; heap copy, *p moved past it. */
static char *take_name(const char **p, bool colon)
{
    const char *s = *p;
    if (!is_name_start(*s, colon))
        return NULL;
    while (is_name_char(*s, colon))
        s++;
    char *out = strndup(*p, (size_t)(s - *p));
    *p = s;
    return out;
}

/* A float as the format writes it: Go's ParseFloat syntax, +Inf, -Inf, NaN. */
static bool take_value(const char **p, double *v)
{
    const char *s = *p;
    size_t n = strcspn(s, " \n");
    char buf[64];
    if (n == 0 || n >= sizeof(buf))
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (!strcmp(buf, "+Inf") || !strcmp(buf, "Inf"))
        *v = INFINITY;
    else if (!strcmp(buf, "-Inf"))
        *v = -INFINITY;
    else if (!strcmp(buf, "NaN"))
        *v = NAN;
    else {
        /* digits, sign, point, exponent only (strtod would take "inf", hex, ...) */
        for (size_t i = 0; i < n; i++)
            if (!strchr("0123456789+-.eE", buf[i]))
                return false;
        char *end = NULL;
        *v = strtod(buf, &end);
        if (*end)
            return false;
    }
    *p = s + n;
    return true;
}

static int find_family(const expo *e, const char *name)
{
    for (size_t i = 0; i < e->nf; i++)
        if (!strcmp(e->fam[i].name, name))
            return (int)i;
    return -1;
}

static int add_family(expo *e, const char *name)
{
    int i = find_family(e, name);
    if (i >= 0)
        return i;
    e->fam = realloc(e->fam, (e->nf + 1) * sizeof(*e->fam));
    memset(&e->fam[e->nf], 0, sizeof(family));
    e->fam[e->nf].name = strdup(name);
    return (int)e->nf++;
}

/* The family a sample name belongs to: its own TYPE, or a histogram's
 * (or summary's) for the _bucket/_sum/_count lines.  -1: none. */
static int family_of(const expo *e, const char *name, bool *is_bucket)
{
    *is_bucket = false;
    int f = find_family(e, name);
    if (f >= 0 && e->fam[f].type[0])
        return strcmp(e->fam[f].type, "histogram") && strcmp(e->fam[f].type, "summary") ? f : -1;
    static const char *const suffixes[] = { "_bucket", "_sum", "_count" };
    size_t len = strlen(name);
    for (size_t i = 0; i < 3; i++) {
        size_t sl = strlen(suffixes[i]);
        if (len <= sl || strcmp(name + len - sl, suffixes[i]))
            continue;
        char base[256];
        snprintf(base, sizeof(base), "%.*s", (int)(len - sl), name);
        f = find_family(e, base);
        if (f < 0 || !e->fam[f].type[0])
            return -1;
        if (!strcmp(e->fam[f].type, "histogram")) {
            *is_bucket = i == 0;
            return f;
        }
        if (!strcmp(e->fam[f].type, "summary") && i > 0)
            return f;
        return -1;
    }
    return -1;
}

static bool bad(char *why, size_t len, int line, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static bool bad(char *why, size_t len, int line, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(why, len, "line %d: %s", line, msg);
    return false;
}

/* "# HELP name text" or "# TYPE name type"; any other comment is allowed. */
static bool parse_comment(expo *e, const char *p, int ln, char *why, size_t wl)
{
    bool help = !strncmp(p, "# HELP ", 7), type = !strncmp(p, "# TYPE ", 7);
    if (!help && !type)
        return true;
    p += 7;
    char *name = take_name(&p, true);
    if (!name)
        return bad(why, wl, ln, "bad metric name in %s", help ? "HELP" : "TYPE");
    int f = add_family(e, name);
    free(name);
    family *fm = &e->fam[f];
    if (help) {
        if (fm->help)
            return bad(why, wl, ln, "second HELP for %s", fm->name);
        fm->help = true;
        if (*p != ' ' && *p != '\n')
            return bad(why, wl, ln, "HELP %s: no space before the text", fm->name);
        for (; *p && *p != '\n'; p++)
            if (*p == '\\' && p[1] != '\\' && p[1] != 'n')
                return bad(why, wl, ln, "HELP %s: bad escape \\%c", fm->name, p[1]);
            else if (*p == '\\')
                p++;
        return true;
    }
    if (fm->type[0])
        return bad(why, wl, ln, "second TYPE for %s", fm->name);
    if (fm->nsamples)
        return bad(why, wl, ln, "TYPE for %s after its samples", fm->name);
    if (*p++ != ' ')
        return bad(why, wl, ln, "TYPE %s: no type", fm->name);
    size_t n = strcspn(p, "\n");
    static const char *const types[] = { "counter", "gauge", "histogram", "summary", "untyped" };
    for (size_t i = 0; i < 5; i++)
        if (n == strlen(types[i]) && !strncmp(p, types[i], n)) {
            strcpy(fm->type, types[i]);
            return true;
        }
    return bad(why, wl, ln, "TYPE %s: unknown type %.*s", fm->name, (int)n, p);
}

static bool parse_sample(expo *e, const char *p, int ln, char *why, size_t wl)
{
    sample s = { 0 };
    bool ok = false;
    s.name = take_name(&p, true);
    if (!s.name) {
        bad(why, wl, ln, "bad metric name");
        goto out;
    }
    if (*p == '{') {
        p++;
        while (*p != '}') {
            if (s.nl == MAX_LABELS) {
                bad(why, wl, ln, "%s: too many labels", s.name);
                goto out;
            }
            char *ln_ = take_name(&p, false);
            if (!ln_ || !strncmp(ln_, "__", 2)) {
                free(ln_);
                bad(why, wl, ln, "%s: bad label name", s.name);
                goto out;
            }
            for (int j = 0; j < s.nl; j++)
                if (!strcmp(s.lname[j], ln_)) {
                    free(ln_);
                    bad(why, wl, ln, "%s: label repeated", s.name);
                    goto out;
                }
            s.lname[s.nl] = ln_;
            if (p[0] != '=' || p[1] != '"') {
                s.nl++;
                bad(why, wl, ln, "%s: label %s without =\"", s.name, ln_);
                goto out;
            }
            p += 2;
            char *val = malloc(strlen(p) + 1), *w = val;
            for (; *p && *p != '"' && *p != '\n'; p++) {
                if (*p == '\\') {
                    if (p[1] == 'n')
                        *w++ = '\n';
                    else if (p[1] == '\\' || p[1] == '"')
                        *w++ = p[1];
                    else {
                        free(val);
                        s.nl++;
                        bad(why, wl, ln, "%s: bad escape in label %s", s.name, ln_);
                        goto out;
                    }
                    p++;
                } else {
                    *w++ = *p;
                }
            }
            *w = '\0';
            s.lval[s.nl++] = val;
            if (*p != '"') {
                bad(why, wl, ln, "%s: unterminated label value", s.name);
                goto out;
            }
            p++;
            if (*p == ',')
                p++;
            else if (*p != '}') {
                bad(why, wl, ln, "%s: expected , or } after a label", s.name);
                goto out;
            }
        }
        p++;
    }
    if (*p++ != ' ' || !take_value(&p, &s.v)) {
        bad(why, wl, ln, "%s: bad value", s.name);
        goto out;
    }
    if (*p == ' ') { /* optional timestamp: an integer */
        p++;
        char *end = NULL;
        strtoll(p, &end, 10);
        if (end == p) {
            bad(why, wl, ln, "%s: bad timestamp", s.name);
            goto out;
        }
        p = end;
    }
    if (*p != '\n') {
        bad(why, wl, ln, "%s: trailing text", s.name);
        goto out;
    }
    bool bucket;
    s.family = family_of(e, s.name, &bucket);
    if (s.family < 0) {
        bad(why, wl, ln, "sample %s has no TYPE for its family", s.name);
        goto out;
    }
    bool has_le = false;
    for (int j = 0; j < s.nl; j++)
        has_le |= !strcmp(s.lname[j], "le");
    if (bucket != has_le) {
        bad(why, wl, ln, "%s: le label %s", s.name, bucket ? "missing" : "outside a _bucket line");
        goto out;
    }
    family *fm = &e->fam[s.family];
    if (fm->closed) {
        bad(why, wl, ln, "%s: the samples of %s are not one group", s.name, fm->name);
        goto out;
    }
    for (size_t i = 0; i < e->nf; i++)
        if ((int)i != s.family && e->fam[i].nsamples)
            e->fam[i].closed = true;
    fm->nsamples++;
    e->s = realloc(e->s, (e->ns + 1) * sizeof(*e->s));
    e->s[e->ns++] = s;
    return true;
out:
    free(s.name);
    for (int j = 0; j < s.nl; j++) {
        free(s.lname[j]);
        free(s.lval[j]);
    }
    if (s.nl < MAX_LABELS)
        free(s.lname[s.nl]); /* a name whose value never came */
    return ok;
}

/* Whether a and b carry the same labels, le aside. */
static bool same_labels_but_le(const sample *a, const sample *b)
{
    int na = 0, nb = 0;
    for (int i = 0; i < a->nl; i++) {
        if (!strcmp(a->lname[i], "le"))
            continue;
        na++;
        bool found = false;
        for (int j = 0; j < b->nl && !found; j++)
            found = !strcmp(a->lname[i], b->lname[j]) && !strcmp(a->lval[i], b->lval[j]);
        if (!found)
            return false;
    }
    for (int j = 0; j < b->nl; j++)
        nb += strcmp(b->lname[j], "le") != 0;
    return na == nb;
}

static const char *label(const sample *s, const char *name)
{
    for (int i = 0; i < s->nl; i++)
        if (!strcmp(s->lname[i], name))
            return s->lval[i];
    return NULL;
}

/* Each histogram series: buckets with rising le and non-decreasing counts,
 * ending at +Inf equal to _count, and a _sum. */
static bool check_histograms(const expo *e, char *why, size_t wl)
{
    for (size_t i = 0; i < e->ns; i++) {
        const sample *c = &e->s[i];
        const family *fm = &e->fam[c->family];
        size_t fl = strlen(fm->name);
        if (strcmp(fm->type, "histogram") || strcmp(c->name + fl, "_count"))
            continue;
        double last_le = -INFINITY, last_v = 0;
        int buckets = 0, sums = 0;
        for (size_t j = 0; j < e->ns; j++) {
            const sample *b = &e->s[j];
            if (b->family != c->family || !same_labels_but_le(b, c))
                continue;
            if (!strcmp(b->name + fl, "_sum")) {
                sums++;
                continue;
            }
            if (strcmp(b->name + fl, "_bucket"))
                continue;
            const char *les = label(b, "le");
            double le;
            const char *q = les;
            if (!take_value(&q, &le) || *q)
                return bad(why, wl, 0, "%s: bad le \"%s\"", fm->name, les);
            if (le <= last_le || b->v < last_v)
                return bad(why, wl, 0, "%s: buckets out of order at le=%s", fm->name, les);
            last_le = le;
            last_v = b->v;
            buckets++;
        }
        if (!buckets || last_le != INFINITY || last_v != c->v || sums != 1)
            return bad(why, wl, 0, "%s: +Inf bucket %g vs _count %g (%d buckets, %d sums)", fm->name, last_v,
                        c->v, buckets, sums);
    }
    return true;
}

static bool parse_expo(const char *text, expo *e, char *why, size_t wl)
{
    memset(e, 0, sizeof(*e));
    size_t len = strlen(text);
    if (len && text[len - 1] != '\n')
        return bad(why, wl, 0, "the last line has no newline");
    int ln = 0;
    for (const char *p = text; *p; p = strchr(p, '\n') + 1) {
        ln++;
        if (*p == '\n')
            continue; /* empty lines are ignored */
        if (*p == '#' ? !parse_comment(e, p, ln, why, wl) : !parse_sample(e, p, ln, why, wl))
            return false;
    }
    return check_histograms(e, why, wl);
}

/* The value of the sample with exactly these labels (name, value, ...,
 * NULL), or NAN when there is none. */
static double getv(const expo *e, const char *name, ...)
{
    const char *kv[2 * MAX_LABELS + 1];
    int n = 0;
    va_list ap;
    va_start(ap, name);
    for (const char *k; n < 2 * MAX_LABELS && (k = va_arg(ap, const char *));) {
        kv[n++] = k;
        kv[n++] = va_arg(ap, const char *);
    }
    va_end(ap);
    for (size_t i = 0; i < e->ns; i++) {
        const sample *s = &e->s[i];
        if (strcmp(s->name, name) || s->nl != n / 2)
            continue;
        bool match = true;
        for (int j = 0; j < n && match; j += 2) {
            const char *v = label(s, kv[j]);
            match = v && !strcmp(v, kv[j + 1]);
        }
        if (match)
            return s->v;
    }
    return NAN;
}

/* Sum of every sample of name whose label k is v (k NULL: all). */
static double sumv(const expo *e, const char *name, const char *k, const char *v)
{
    double t = 0;
    for (size_t i = 0; i < e->ns; i++)
        if (!strcmp(e->s[i].name, name) && (!k || (label(&e->s[i], k) && !strcmp(label(&e->s[i], k), v))))
            t += e->s[i].v;
    return t;
}

/* ---- HTTP ---- */

typedef struct buf {
    char *data;
    size_t len;
} buf;

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    buf *b = ud;
    b->data = realloc(b->data, b->len + size * n + 1);
    memcpy(b->data + b->len, p, size * n);
    b->len += size * n;
    b->data[b->len] = '\0';
    return size * n;
}

/* GET url: the body (heap), *code the HTTP status, ctype (may be NULL) the
 * Content-Type. */
static char *http_get(const char *url, long *code, char *ctype, size_t ctlen)
{
    CURL *h = curl_easy_init();
    ck_assert_ptr_nonnull(h);
    buf b = { .data = calloc(1, 1) };
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    CURLcode rc = curl_easy_perform(h);
    ck_assert_msg(rc == CURLE_OK, "GET %s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, code);
    char *ct = NULL;
    curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
    if (ctype)
        snprintf(ctype, ctlen, "%s", ct ? ct : "");
    curl_easy_cleanup(h);
    return b.data;
}

/* Scrape url into e (strictly parsed; the test fails otherwise). */
static void scrape(const char *url, expo *e)
{
    long code = 0;
    char ctype[128];
    char *body = http_get(url, &code, ctype, sizeof(ctype));
    ck_assert_int_eq(code, 200);
    ck_assert_str_eq(ctype, "text/plain; version=0.0.4; charset=utf-8");
    char why[512] = "";
    bool ok = parse_expo(body, e, why, sizeof(why));
    if (!ok)
        fprintf(stderr, "unparsable /metrics:\n%s\n", body);
    ck_assert_msg(ok, "/metrics is not valid text format 0.0.4: %s", why);
    free(body);
}

/* ---- daemon helpers ---- */

/* The metrics URL from Status verbose info["metrics"]; "" when absent. */
static void metrics_url(cc_conn *c, char *url, size_t len, int *port)
{
    cr_err *err = NULL;
    Runtime__V1__StatusResponse *s = cc_status(c, 1, &err);
    ck_assert_msg(s != NULL, "Status: %s", err ? err->msg : "");
    url[0] = '\0';
    *port = 0;
    for (size_t i = 0; i < s->n_info; i++) {
        if (strcmp(s->info[i]->key, "metrics"))
            continue;
        char ebuf[256];
        yajl_val v = yajl_tree_parse(s->info[i]->value, ebuf, sizeof(ebuf));
        ck_assert_msg(v != NULL, "info[metrics] is not JSON: %s", s->info[i]->value);
        const char *p_url[] = { "url", NULL }, *p_addr[] = { "address", NULL };
        yajl_val u = yajl_tree_get(v, p_url, yajl_t_string), a = yajl_tree_get(v, p_addr, yajl_t_string);
        ck_assert_msg(u && a, "info[metrics] lacks url or address: %s", s->info[i]->value);
        const char *us = YAJL_GET_STRING(u), *as = YAJL_GET_STRING(a);
        ck_assert(us && as);
        snprintf(url, len, "%s", us);
        const char *colon = strrchr(as, ':');
        ck_assert_ptr_nonnull(colon);
        *port = atoi(colon + 1);
        yajl_tree_free(v);
    }
    cc_free(s);
}

/* Whether a TCP socket of process pid listens on port (any address):
 * its socket inodes from /proc/pid/fd against /proc/pid/net/tcp{,6}. */
static bool pid_listens_on(pid_t pid, int port)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *dir = opendir(path);
    ck_assert_ptr_nonnull(dir);
    unsigned long inodes[512];
    size_t n = 0;
    for (struct dirent *de; (de = readdir(dir)) && n < 512;) {
        char lp[320], target[64];
        snprintf(lp, sizeof(lp), "%s/%s", path, de->d_name);
        ssize_t l = readlink(lp, target, sizeof(target) - 1);
        if (l <= 0)
            continue;
        target[l] = '\0';
        if (sscanf(target, "socket:[%lu]", &inodes[n]) == 1)
            n++;
    }
    closedir(dir);
    bool found = false;
    for (int v6 = 0; v6 < 2 && !found; v6++) {
        snprintf(path, sizeof(path), "/proc/%d/net/tcp%s", (int)pid, v6 ? "6" : "");
        char *text = cr_read_file(path, NULL, NULL);
        char *save = NULL;
        for (char *line = text ? strtok_r(text, "\n", &save) : NULL; line && !found;
             line = strtok_r(NULL, "\n", &save)) {
            char local[64];
            unsigned st;
            unsigned long inode;
            /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
            if (sscanf(line, " %*s %63s %*s %x %*s %*s %*s %*u %*u %lu", local, &st, &inode) != 3 || st != 0x0A)
                continue;
            const char *colon = strrchr(local, ':');
            if (!colon || (int)strtol(colon + 1, NULL, 16) != port)
                continue;
            for (size_t i = 0; i < n && !found; i++)
                found = inodes[i] == inode;
        }
        free(text);
    }
    return found;
}

static int code_of(cr_err *err)
{
    int code = err ? err->code : CR_OK;
    cr_err_free(err);
    return code;
}

/* ---- tests ---- */

START_TEST(metrics_count_calls)
{
    th_prepare(&D, "[crisp.metrics]\nenable = true\nport = 0\n");
    D.pid = th_spawn(&D, NULL);
    ck_assert_msg(th_wait_ready(&D, 20000), "crispd did not come up");
    cc_conn *c = th_connect(&D);
    char url[256], needle[128];
    int port;
    metrics_url(c, url, sizeof(url), &port);
    ck_assert_msg(port > 0 && strstr(url, "http://127.0.0.1:") == url, "info[metrics] url %s", url);
    /* the port taken is logged, and it is crispd that listens there */
    snprintf(needle, sizeof(needle), "msg=\"metrics endpoint listening\" address=127.0.0.1 port=%d", port);
    ck_assert_msg(th_log_contains(&D, needle, 5000), "log lacks <<%s>>", needle);
    ck_assert(pid_listens_on(D.pid, port));

    expo before, after;
    scrape(url, &before);
    double v0 = getv(&before, "crisp_rpc_requests_total", "method", RT("Version"), NULL);
    ck_assert_msg(v0 >= 1, "th_wait_ready's Version is not counted: %g", v0);
    ck_assert(isnan(getv(&before, "crisp_rpc_requests_total", "method", RT("PodSandboxStatus"), NULL)));

    cr_err *err = NULL;
    for (int i = 0; i < 3; i++) {
        Runtime__V1__VersionResponse *v = cc_version(c, &err);
        ck_assert_msg(v != NULL, "Version: %s", err ? err->msg : "");
        cc_free(v);
    }
    Runtime__V1__ImageStatusResponse *is = cc_image_status(c, "127.0.0.1:1/no/such/image:1", 0, &err);
    ck_assert_msg(is != NULL, "ImageStatus: %s", err ? err->msg : "");
    ck_assert_ptr_null(is->image);
    cc_free(is);
    ck_assert_int_eq(code_of(cc_remove_pod_sandbox(c, "0123456789abcdef", &err) < 0 ? err : NULL), CR_OK);
    err = NULL;
    ck_assert_ptr_null(cc_pod_sandbox_status(c, "0123456789abcdef", 0, &err));
    ck_assert_int_eq(code_of(err), CR_NOT_FOUND);
    err = NULL;
    /* an unknown method is counted under "unknown", not under its made-up name */
    uint8_t *raw = NULL;
    size_t raw_len = 0;
    ck_assert_int_lt(cc_call_raw(c, RT("NoSuchMethodAtAll"), "", 0, &raw, &raw_len, &err), 0);
    ck_assert_int_eq(code_of(err), CR_UNIMPLEMENTED);
    err = NULL;
    free(raw);

    scrape(url, &after);
    ASSERT_VAL(getv(&after, "crisp_rpc_requests_total", "method", RT("Version"), NULL) - v0, 3);
    ASSERT_VAL(getv(&after, "crisp_rpc_requests_total", "method", IMG("ImageStatus"), NULL), 1);
    ASSERT_VAL(getv(&after, "crisp_rpc_requests_total", "method", RT("RemovePodSandbox"), NULL), 1);
    ASSERT_VAL(getv(&after, "crisp_rpc_requests_total", "method", RT("PodSandboxStatus"), NULL), 1);
    ASSERT_VAL(getv(&after, "crisp_rpc_requests_total", "method", "unknown", NULL), 1);
    ASSERT_VAL(getv(&after, "crisp_rpc_errors_total", "method", RT("PodSandboxStatus"), "code", "NOT_FOUND", NULL),
                     1);
    ASSERT_VAL(getv(&after, "crisp_rpc_errors_total", "method", "unknown", "code", "UNIMPLEMENTED", NULL), 1);
    /* successful calls are no errors */
    ASSERT_VAL(sumv(&after, "crisp_rpc_errors_total", "method", RT("Version")), 0);
    ASSERT_VAL(sumv(&after, "crisp_rpc_errors_total", "method", IMG("ImageStatus")), 0);
    ASSERT_VAL(sumv(&after, "crisp_rpc_errors_total", "method", RT("RemovePodSandbox")), 0);
    ASSERT_VAL(sumv(&after, "crisp_rpc_errors_total", NULL, NULL), 2);
    /* every method's histogram counts exactly its requests */
    size_t methods = 0;
    for (size_t i = 0; i < after.ns; i++) {
        const sample *s = &after.s[i];
        if (strcmp(s->name, "crisp_rpc_requests_total"))
            continue;
        const char *m = label(s, "method");
        ck_assert_msg(!strstr(m, "NoSuchMethod"), "a client-made method name became a label: %s", m);
        double n = getv(&after, "crisp_rpc_duration_seconds_count", "method", m, NULL);
        ck_assert_msg(n == s->v, "%s: %g requests, histogram count %g", m, s->v, n);
        ck_assert(getv(&after, "crisp_rpc_duration_seconds_sum", "method", m, NULL) >= 0);
        methods++;
    }
    ck_assert_uint_ge(methods, 6); /* Version, Status, ImageStatus, RemovePodSandbox, PodSandboxStatus, unknown */
    /* the families and their types */
    static const char *const types[][2] = {
        { "crisp_rpc_requests_total", "counter" },  { "crisp_rpc_errors_total", "counter" },
        { "crisp_rpc_duration_seconds", "histogram" }, { "crisp_image_pulls_total", "counter" },
        { "crisp_image_pull_bytes_total", "counter" }, { "crisp_image_pull_duration_seconds", "histogram" },
        { "crisp_containers", "gauge" }, { "crisp_pods", "gauge" }, { "crisp_build_info", "gauge" },
    };
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        int f = find_family(&after, types[i][0]);
        ck_assert_msg(f >= 0, "family %s missing", types[i][0]);
        ck_assert_str_eq(after.fam[f].type, types[i][1]);
        ck_assert_msg(after.fam[f].help, "family %s has no HELP", types[i][0]);
    }
    ASSERT_VAL(getv(&after, "crisp_image_pulls_total", "result", "success", NULL), 0);
    ASSERT_VAL(getv(&after, "crisp_image_pulls_total", "result", "failure", NULL), 0);
    ASSERT_VAL(getv(&after, "crisp_containers", "state", "running", NULL), 0);
    ASSERT_VAL(getv(&after, "crisp_pods", "state", "ready", NULL), 0);
    ASSERT_VAL(getv(&after, "crisp_pods", "state", "notready", NULL), 0);
    expo_free(&before);
    expo_free(&after);

    /* the pod gauge follows a pod (host network: no CNI needed) through its life */
    Runtime__V1__PodSandboxMetadata md = RUNTIME__V1__POD_SANDBOX_METADATA__INIT;
    md.name = "metrics";
    md.namespace_ = "crisp-test";
    md.uid = "uid-metrics";
    Runtime__V1__PodSandboxConfig cfg = RUNTIME__V1__POD_SANDBOX_CONFIG__INIT;
    cfg.metadata = &md;
    Runtime__V1__NamespaceOption nso = RUNTIME__V1__NAMESPACE_OPTION__INIT;
    nso.network = RUNTIME__V1__NAMESPACE_MODE__NODE;
    Runtime__V1__LinuxSandboxSecurityContext sc = RUNTIME__V1__LINUX_SANDBOX_SECURITY_CONTEXT__INIT;
    sc.namespace_options = &nso;
    Runtime__V1__LinuxPodSandboxConfig lx = RUNTIME__V1__LINUX_POD_SANDBOX_CONFIG__INIT;
    lx.security_context = &sc;
    cfg.linux = &lx;
    Runtime__V1__RunPodSandboxResponse *run = cc_run_pod_sandbox(c, &cfg, NULL, &err);
    ck_assert_msg(run != NULL, "RunPodSandbox: %s", err ? err->msg : "");
    char id[80];
    snprintf(id, sizeof(id), "%s", run->pod_sandbox_id);
    cc_free(run);
    scrape(url, &after);
    ASSERT_VAL(getv(&after, "crisp_pods", "state", "ready", NULL), 1);
    ASSERT_VAL(getv(&after, "crisp_pods", "state", "notready", NULL), 0);
    ASSERT_VAL(getv(&after, "crisp_rpc_requests_total", "method", RT("RunPodSandbox"), NULL), 1);
    expo_free(&after);
    ck_assert_msg(cc_stop_pod_sandbox(c, id, &err) == 0, "StopPodSandbox: %s", err ? err->msg : "");
    scrape(url, &after);
    ASSERT_VAL(getv(&after, "crisp_pods", "state", "ready", NULL), 0);
    ASSERT_VAL(getv(&after, "crisp_pods", "state", "notready", NULL), 1);
    expo_free(&after);
    ck_assert_msg(cc_remove_pod_sandbox(c, id, &err) == 0, "RemovePodSandbox: %s", err ? err->msg : "");
    scrape(url, &after);
    ASSERT_VAL(getv(&after, "crisp_pods", "state", "notready", NULL), 0);
    ASSERT_VAL(getv(&after, "crisp_rpc_requests_total", "method", RT("RemovePodSandbox"), NULL), 2);
    expo_free(&after);

    /* anything but GET /metrics */
    long code = 0;
    char other[300];
    snprintf(other, sizeof(other), "http://127.0.0.1:%d/", port);
    free(http_get(other, &code, NULL, 0));
    ck_assert_int_eq(code, 404);
    cc_close(c);
}
END_TEST

START_TEST(metrics_disabled_by_default)
{
    th_start(&D, NULL);
    cc_conn *c = th_connect(&D);
    char url[256];
    int port;
    metrics_url(c, url, sizeof(url), &port);
    ck_assert_msg(url[0] == '\0', "metrics served although not enabled: %s", url);
    cr_err *err = NULL;
    Runtime__V1__StatusResponse *s = cc_status(c, 1, &err);
    ck_assert_ptr_nonnull(s);
    /* config and the streaming server's address, no metrics entry */
    ck_assert_int_eq(s->n_info, 2);
    ck_assert_str_eq(s->info[0]->key, "config");
    ck_assert_str_eq(s->info[1]->key, "streamServer");
    yajl_val v = yajl_tree_parse(s->info[0]->value, NULL, 0);
    ck_assert_ptr_nonnull(v);
    const char *p_en[] = { "crisp", "metrics", "enable", NULL }, *p_port[] = { "crisp", "metrics", "port", NULL };
    ck_assert(YAJL_IS_FALSE(yajl_tree_get(v, p_en, yajl_t_false)));
    ck_assert_int_eq(YAJL_GET_INTEGER(yajl_tree_get(v, p_port, yajl_t_number)), 9090);
    yajl_tree_free(v);
    cc_free(s);
    /* nothing of crispd's listens on the default port, nothing is logged */
    ck_assert(!pid_listens_on(D.pid, 9090));
    ck_assert(!th_log_contains(&D, "metrics endpoint", 0));
    cc_close(c);
}
END_TEST

/* --enable-metrics --metrics-port 0 on the command line; pulls are counted. */
START_TEST(metrics_flags_and_pulls)
{
    char msg[512];
    ck_assert_msg(tf_registry_start(&reg, NULL, NULL, msg, sizeof(msg)) == 0, "registry: %s", msg);
    th_prepare(&D, NULL);
    th_push_image(D.dir, "busybox", "busybox", &reg, "busybox:latest", false, NULL, NULL);
    char path[256], text[512];
    snprintf(path, sizeof(path), "%s/registries.conf", D.dir);
    snprintf(text, sizeof(text), "[[registry]]\nlocation = \"%s\"\ninsecure = true\n", reg.addr);
    ck_assert_int_eq(cr_write_file_atomic(path, text, strlen(text), 0644, NULL), 0);
    FILE *f = fopen(D.config, "a");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "[crisp.image]\nregistries_conf = \"%s\"\n", path);
    fclose(f);
    const char *args[] = { "--enable-metrics", "--metrics-port", "0", NULL };
    D.pid = th_spawn(&D, args);
    ck_assert_msg(th_wait_ready(&D, 20000), "crispd did not come up");
    cc_conn *c = th_connect(&D);
    char url[256];
    int port;
    metrics_url(c, url, sizeof(url), &port);
    ck_assert_msg(port > 0, "no metrics endpoint with --enable-metrics: %s", url);

    char image[160], missing[160];
    snprintf(image, sizeof(image), "%s/busybox:latest", reg.addr);
    snprintf(missing, sizeof(missing), "%s/busybox:no-such-tag", reg.addr);
    cr_err *err = NULL;
    Runtime__V1__PullImageResponse *p = cc_pull_image(c, image, NULL, &err);
    ck_assert_msg(p != NULL, "pull %s: %s", image, err ? err->msg : "");
    cc_free(p);
    Runtime__V1__ImageStatusResponse *is = cc_image_status(c, image, 0, &err);
    ck_assert_msg(is && is->image, "ImageStatus %s: %s", image, err ? err->msg : "");
    double size = (double)is->image->size;
    cc_free(is);
    ck_assert_ptr_null(cc_pull_image(c, missing, NULL, &err));
    ck_assert_ptr_nonnull(err);
    char code[32];
    snprintf(code, sizeof(code), "%s", cr_code_name(err->code));
    cr_err_free(err);

    expo e;
    scrape(url, &e);
    ASSERT_VAL(getv(&e, "crisp_image_pulls_total", "result", "success", NULL), 1);
    ASSERT_VAL(getv(&e, "crisp_image_pulls_total", "result", "failure", NULL), 1);
    ck_assert_msg(size > 0 && getv(&e, "crisp_image_pull_bytes_total", NULL) == size,
                  "pulled bytes %g, image size %g", getv(&e, "crisp_image_pull_bytes_total", NULL), size);
    ASSERT_VAL(getv(&e, "crisp_image_pull_duration_seconds_count", NULL), 2);
    ck_assert(getv(&e, "crisp_image_pull_duration_seconds_sum", NULL) > 0);
    ASSERT_VAL(getv(&e, "crisp_rpc_requests_total", "method", IMG("PullImage"), NULL), 2);
    ASSERT_VAL(getv(&e, "crisp_rpc_errors_total", "method", IMG("PullImage"), "code", code, NULL), 1);
    expo_free(&e);
    cc_close(c);
}
END_TEST

/* A metrics port already taken: crispd refuses to start and says where. */
START_TEST(metrics_port_in_use_stops_start)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(fd, 1), 0);
    socklen_t sl = sizeof(sa);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    int port = ntohs(sa.sin_port);
    char extra[128];
    snprintf(extra, sizeof(extra), "[crisp.metrics]\nenable = true\nport = %d\n", port);
    th_prepare(&D, extra);
    D.pid = th_spawn(&D, NULL);
    int st = -1;
    for (long until = th_now_ms() + 20000; th_now_ms() < until;) {
        if (waitpid(D.pid, &st, WNOHANG) == D.pid) {
            D.pid = -1;
            break;
        }
        struct timespec ts = { 0, 20 * 1000000L };
        nanosleep(&ts, NULL); /* polling the exit, under a deadline */
    }
    close(fd);
    ck_assert_msg(D.pid == -1, "crispd kept running with its metrics port taken");
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "wait status %d", st);
    char needle[128];
    snprintf(needle, sizeof(needle), "metrics endpoint: listen on 127.0.0.1 port %d", port);
    ck_assert_msg(th_log_contains(&D, needle, 0), "log lacks <<%s>>", needle);
}
END_TEST

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("metrics");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_unchecked_fixture(tc, NULL, th_collect_leftovers);
    tcase_set_timeout(tc, 120);
    TH_ADD(tc, metrics_count_calls);
    TH_ADD(tc, metrics_disabled_by_default);
    TH_ADD(tc, metrics_flags_and_pulls);
    TH_ADD(tc, metrics_port_in_use_stops_start);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
