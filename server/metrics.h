/* Private to server/: crispd's own Prometheus metrics ([crisp.metrics]).
 *
 * srv_metrics_start builds the registry and serves it on
 * http://<address>:<port>/metrics (lib/promhttp.h) when metrics are enabled;
 * otherwise d->metrics stays NULL and every function here is a no-op, so
 * callers never check.  The recording functions are cheap (atomic updates
 * plus, for a labeled series, one short locked lookup) and thread-safe;
 * call them from any handler or background thread until srv_metrics_stop. */
#ifndef CRISP_SERVER_METRICS_H
#define CRISP_SERVER_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"

typedef struct srv_daemon srv_daemon;
struct srv_metrics;

/* Disabled: 0 and nothing done.  Enabled: registry, families, the scrape-time
 * pod/container gauges and the HTTP endpoint (its port is logged); an address
 * in use fails with ALREADY_EXISTS naming it.  Call once the sandbox and
 * container lists are loaded. */
int srv_metrics_start(srv_daemon *d, cr_err **err);
/* Stop serving and free everything; d->metrics becomes NULL.  Call once no
 * thread records any more (after the handlers and the exit watcher stop). */
void srv_metrics_stop(srv_daemon *d);

/* One finished RPC: method is the gRPC path ("/runtime.v1.RuntimeService/
 * Version"; anything not in the dispatch table is counted as "unknown"),
 * grpc_code its final status (enum cr_code), seconds its duration.
 *   crisp_rpc_requests_total{method}, crisp_rpc_errors_total{method,code}
 *   (code named like NOT_FOUND; OK is not an error),
 *   crisp_rpc_duration_seconds{method} (1 ms .. 60 s buckets). */
void srv_metrics_rpc(srv_daemon *d, const char *method, int grpc_code, double seconds);

/* One image pull that reached the image store: bytes pulled (0 when unknown
 * or failed), duration, outcome.
 *   crisp_image_pulls_total{result="success"|"failure"},
 *   crisp_image_pull_bytes_total, crisp_image_pull_duration_seconds. */
void srv_metrics_pull(srv_daemon *d, uint64_t bytes, double seconds, bool ok);

/* A failure below the CRI call: component "runtime" | "monitor" | "cni",
 * op "create" | "start" | "stop" | "delete" | "add" | "del" | ...
 * (NULL counts as "unknown").  crisp_runtime_failures_total{component,op}. */
void srv_metrics_failure(srv_daemon *d, const char *component, const char *op);

/* Status verbose info["metrics"]: a JSON object {"address": "127.0.0.1:9090",
 * "url": "http://127.0.0.1:9090/metrics"} (heap string), or NULL when
 * metrics are disabled. */
char *srv_metrics_info(srv_daemon *d);

#endif
