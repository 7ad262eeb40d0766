/* crispd's own Prometheus metrics: the registry, its families, the
 * scrape-time pod and container gauges, and the /metrics endpoint.
 *
 * Everything lives in one struct hung off the daemon (d->metrics), made by
 * srv_metrics_start only when [crisp.metrics] enable is true; every entry
 * point returns at once when it is NULL.  Label values come from fixed sets
 * (the dispatch table's method paths, gRPC code names, a few component and
 * op names), never from what a client sends, so the series stay bounded. */
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "container.h"
#include "sandbox.h"
#include "lib/log.h"
#include "lib/prom.h"
#include "lib/promhttp.h"

/* RPC latency: 1 ms .. 60 s (a unary call may run a pull or a runtime). */
static const double rpc_buckets[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                      0.5,   1,      2.5,   5,    10,    30,   60 };
/* Image pulls: 100 ms .. 30 min. */
static const double pull_buckets[] = { 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800 };

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Container states, indexed by Runtime__V1__ContainerState (0..3). */
static const char *const ctr_states[] = { "created", "running", "exited", "unknown" };
static const char *const pod_states[] = { "ready", "notready" };

struct srv_metrics {
    srv_daemon *d;
    cr_prom_registry *reg;
    cr_promhttp *http;
    char *info;             /* Status verbose info["metrics"], JSON */

    cr_prom_metric *rpc_requests, *rpc_errors, *rpc_duration;
    cr_prom_metric *failures;
    cr_prom_series *pulls_ok, *pulls_failed, *pull_bytes, *pull_duration;
    cr_prom_series *ctr_gauge[N(ctr_states)];
    cr_prom_series *pod_gauge[N(pod_states)];
};

/* ---- scrape-time gauges ---- */

static void collect_state(cr_prom_registry *r, void *data)
{
    struct srv_metrics *m = data;
    srv_daemon *d = m->d;
    double ctrs[N(ctr_states)] = { 0 }, pods[N(pod_states)] = { 0 };

    pthread_mutex_lock(&d->ctr_mu);   /* guards the list and every container's state */
    for (size_t i = 0; i < d->n_containers; i++) {
        unsigned st = (unsigned)d->containers[i]->state;
        ctrs[st < N(ctr_states) ? st : N(ctr_states) - 1]++;
    }
    pthread_mutex_unlock(&d->ctr_mu);

    pthread_mutex_lock(&d->sb_mu);    /* guards the list */
    for (size_t i = 0; i < d->n_sandboxes; i++) {
        /* ready changes under the sandbox's op_mu, which a scrape must not
         * wait for (a stop can take its grace period): read it atomically. */
        bool ready = __atomic_load_n(&d->sandboxes[i]->ready, __ATOMIC_RELAXED);
        pods[ready ? 0 : 1]++;
    }
    pthread_mutex_unlock(&d->sb_mu);

    for (size_t i = 0; i < N(ctr_states); i++)
        cr_prom_series_set(m->ctr_gauge[i], ctrs[i]);
    for (size_t i = 0; i < N(pod_states); i++)
        cr_prom_series_set(m->pod_gauge[i], pods[i]);
}

/* ---- start / stop ---- */

static void metrics_free(struct srv_metrics *m)
{
    if (!m)
        return;
    cr_promhttp_stop(m->http);   /* no scrape (and no collect) after this */
    cr_prom_registry_free(m->reg);
    free(m->info);
    free(m);
}

/* Register every family and the series that always exist. */
static int build_registry(struct srv_metrics *m, cr_err **err)
{
    cr_prom_registry *r = m->reg;
    cr_prom_metric *build, *pulls, *bytes, *pull_dur, *ctrs, *pods;
    if (!(build = cr_prom_gauge(r, "crisp_build_info", "crispd's version; always 1.", CR_PROM_L("version"), err)) ||
        !(m->rpc_requests = cr_prom_counter(r, "crisp_rpc_requests_total", "CRI calls served, by gRPC method.",
                                            CR_PROM_L("method"), err)) ||
        !(m->rpc_errors = cr_prom_counter(r, "crisp_rpc_errors_total",
                                          "CRI calls that ended with a status other than OK, by method and gRPC code.",
                                          CR_PROM_L("method", "code"), err)) ||
        !(m->rpc_duration = cr_prom_histogram(r, "crisp_rpc_duration_seconds",
                                              "Time from a CRI call's arrival at a handler to its final status.",
                                              CR_PROM_L("method"), rpc_buckets, N(rpc_buckets), err)) ||
        !(pulls = cr_prom_counter(r, "crisp_image_pulls_total", "Image pulls, by result (success or failure).",
                                  CR_PROM_L("result"), err)) ||
        !(bytes = cr_prom_counter(r, "crisp_image_pull_bytes_total", "Bytes of image layers pulled.", NULL, err)) ||
        !(pull_dur = cr_prom_histogram(r, "crisp_image_pull_duration_seconds",
                                       "Duration of image pulls, successful or not.", NULL, pull_buckets,
                                       N(pull_buckets), err)) ||
        !(m->failures = cr_prom_counter(r, "crisp_runtime_failures_total",
                                        "Failures of the OCI runtime, container monitors and CNI plugins, by "
                                        "component and operation.",
                                        CR_PROM_L("component", "op"), err)) ||
        !(ctrs = cr_prom_gauge(r, "crisp_containers", "Containers known to crispd, by state.", CR_PROM_L("state"),
                               err)) ||
        !(pods = cr_prom_gauge(r, "crisp_pods", "Pod sandboxes known to crispd, by state.", CR_PROM_L("state"),
                               err)))
        return -1;
    if (cr_prom_set(build, CR_PROM_L(CRISP_VERSION), 1) < 0 ||
        !(m->pulls_ok = cr_prom_get(pulls, CR_PROM_L("success"), err)) ||
        !(m->pulls_failed = cr_prom_get(pulls, CR_PROM_L("failure"), err)) ||
        !(m->pull_bytes = cr_prom_get(bytes, NULL, err)) || !(m->pull_duration = cr_prom_get(pull_dur, NULL, err)))
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "metrics: out of memory");
    for (size_t i = 0; i < N(ctr_states); i++)
        if (!(m->ctr_gauge[i] = cr_prom_get(ctrs, CR_PROM_L(ctr_states[i]), err)))
            return -1;
    for (size_t i = 0; i < N(pod_states); i++)
        if (!(m->pod_gauge[i] = cr_prom_get(pods, CR_PROM_L(pod_states[i]), err)))
            return -1;
    return cr_prom_on_collect(r, collect_state, m, err);
}

int srv_metrics_start(srv_daemon *d, cr_err **err)
{
    const cr_config *c = d->cfg;
    if (!c->metrics_enable || d->metrics)
        return 0;
    struct srv_metrics *m = calloc(1, sizeof(*m));
    if (!m || !(m->reg = cr_prom_registry_new())) {
        free(m);
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "metrics: out of memory");
    }
    m->d = d;
    if (build_registry(m, err) < 0) {
        metrics_free(m);
        return cr_err_prefix(err, "metrics");
    }
    if (cr_promhttp_start(m->reg, c->metrics_address, (int)c->metrics_port, &m->http, err) < 0) {
        metrics_free(m);
        return -1;
    }
    /* An IPv6 literal needs brackets in host:port and URLs. */
    bool v6 = strchr(c->metrics_address, ':') != NULL;
    char hostport[80];
    snprintf(hostport, sizeof(hostport), "%s%s%s:%d", v6 ? "[" : "", c->metrics_address, v6 ? "]" : "",
             cr_promhttp_port(m->http));
    if (asprintf(&m->info, "{\"address\":\"%s\",\"url\":\"http://%s/metrics\"}", hostport, hostport) < 0) {
        m->info = NULL;
        metrics_free(m);
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "metrics: out of memory");
    }
    d->metrics = m;
    return 0;
}

void srv_metrics_stop(srv_daemon *d)
{
    if (!d || !d->metrics)
        return;
    metrics_free(d->metrics);
    d->metrics = NULL;
}

char *srv_metrics_info(srv_daemon *d)
{
    return d && d->metrics ? strdup(d->metrics->info) : NULL;
}

/* ---- recording ---- */

/* The dispatch table's own path for method, or "unknown": never a string
 * a client made up. */
static const char *known_method(srv_daemon *d, const char *method)
{
    for (size_t i = 0; method && i < d->n_methods; i++)
        if (d->methods[i].path == method || strcmp(d->methods[i].path, method) == 0)
            return d->methods[i].path;
    return "unknown";
}

void srv_metrics_rpc(srv_daemon *d, const char *method, int grpc_code, double seconds)
{
    struct srv_metrics *m = d ? d->metrics : NULL;
    if (!m)
        return;
    const char *name = known_method(d, method);
    cr_prom_inc(m->rpc_requests, CR_PROM_L(name));
    cr_prom_observe(m->rpc_duration, CR_PROM_L(name), seconds > 0 ? seconds : 0);
    if (grpc_code != CR_OK)
        cr_prom_inc(m->rpc_errors, CR_PROM_L(name, cr_code_name(grpc_code)));
}

void srv_metrics_pull(srv_daemon *d, uint64_t bytes, double seconds, bool ok)
{
    struct srv_metrics *m = d ? d->metrics : NULL;
    if (!m)
        return;
    cr_prom_series_inc(ok ? m->pulls_ok : m->pulls_failed);
    if (bytes)
        cr_prom_series_add(m->pull_bytes, (double)bytes);
    cr_prom_series_observe(m->pull_duration, seconds > 0 ? seconds : 0);
}

void srv_metrics_failure(srv_daemon *d, const char *component, const char *op)
{
    struct srv_metrics *m = d ? d->metrics : NULL;
    if (!m)
        return;
    cr_prom_inc(m->failures, CR_PROM_L(component ? component : "unknown", op ? op : "unknown"));
}
