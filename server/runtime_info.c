/* Version, Status, RuntimeConfig and UpdateRuntimeConfig. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "metrics.h"
#include "network/network.h"
#include "lib/log.h"

/* The kubelet's CRI client sends and expects this wire version. */
#define KUBE_RUNTIME_API_VERSION "0.1.0"

char *srv_strdup(const char *s)
{
    return strdup(s ? s : "");
}

int srv_version(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err)
{
    Runtime__V1__VersionResponse *r = malloc(sizeof(*r));
    if (!r)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "version: out of memory");
    runtime__v1__version_response__init(r);
    r->version = srv_strdup(KUBE_RUNTIME_API_VERSION);
    r->runtime_name = srv_strdup("crisp");
    r->runtime_version = srv_strdup(CRISP_VERSION);
    r->runtime_api_version = srv_strdup("v1");
    *resp = &r->base;
    return 0;
}

static Runtime__V1__RuntimeCondition *condition(const char *type, bool ok, const char *reason,
                                                const char *message)
{
    Runtime__V1__RuntimeCondition *c = malloc(sizeof(*c));
    if (!c)
        return NULL;
    runtime__v1__runtime_condition__init(c);
    c->type = srv_strdup(type);
    c->status = ok;
    c->reason = srv_strdup(ok ? "" : reason);
    c->message = srv_strdup(ok ? "" : message);
    return c;
}

static Runtime__V1__StatusResponse__InfoEntry *info_entry(const char *key, char *value)
{
    Runtime__V1__StatusResponse__InfoEntry *e = malloc(sizeof(*e));
    if (!e) {
        free(value);
        return NULL;
    }
    runtime__v1__status_response__info_entry__init(e);
    e->key = srv_strdup(key);
    e->value = value ? value : srv_strdup("");
    return e;
}

static Runtime__V1__RuntimeHandler *handler_entry(const char *name)
{
    Runtime__V1__RuntimeHandler *h = malloc(sizeof(*h));
    Runtime__V1__RuntimeHandlerFeatures *f = malloc(sizeof(*f));
    if (!h || !f) {
        free(h);
        free(f);
        return NULL;
    }
    runtime__v1__runtime_handler__init(h);
    runtime__v1__runtime_handler_features__init(f);
    h->name = srv_strdup(name);
    h->features = f;
    return h;
}

int srv_status(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err)
{
    const Runtime__V1__StatusRequest *in = (const Runtime__V1__StatusRequest *)req;
    const cr_config *cfg = d->cfg;
    Runtime__V1__StatusResponse *r = malloc(sizeof(*r));
    Runtime__V1__RuntimeStatus *st = malloc(sizeof(*st));
    if (!r || !st) {
        free(r);
        free(st);
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "status: out of memory");
    }
    runtime__v1__status_response__init(r);
    runtime__v1__runtime_status__init(st);
    r->status = st;
    *resp = &r->base; /* from here on the dispatcher frees whatever is filled in */

    st->conditions = calloc(2, sizeof(*st->conditions));
    if (!st->conditions)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "status: out of memory");
    _cleanup_free_ char *rt_why = NULL, *net_why = NULL;
    if (!d->runtime_path &&
        asprintf(&rt_why, "default runtime handler %s: binary not found", cfg->default_runtime) < 0)
        rt_why = NULL;
    bool net_ok = net_cni_ready(d->cni, &net_why);
    st->conditions[st->n_conditions++] =
        condition("RuntimeReady", d->runtime_path != NULL, "RuntimeBinaryNotFound", rt_why);
    st->conditions[st->n_conditions++] =
        condition("NetworkReady", net_ok, "NetworkPluginNotReady", net_why);
    if (!st->conditions[0] || !st->conditions[1])
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "status: out of memory");

    /* The default handler is listed under the empty name, as the kubelet expects. */
    r->runtime_handlers = calloc(cfg->n_runtimes + 1, sizeof(*r->runtime_handlers));
    if (!r->runtime_handlers)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "status: out of memory");
    if (!(r->runtime_handlers[r->n_runtime_handlers++] = handler_entry("")))
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "status: out of memory");
    for (size_t i = 0; i < cfg->n_runtimes; i++)
        if (!(r->runtime_handlers[r->n_runtime_handlers++] = handler_entry(cfg->runtimes[i].name)))
            return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "status: out of memory");

    Runtime__V1__RuntimeFeatures *feat = malloc(sizeof(*feat));
    if (!feat)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "status: out of memory");
    runtime__v1__runtime_features__init(feat);
    r->features = feat;

    if (in->verbose) {
        r->info = calloc(3, sizeof(*r->info));
        if (!r->info || !(r->info[r->n_info++] = info_entry("config", cr_config_to_json(cfg))))
            return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "status: out of memory");
        /* Where the metrics endpoint listens (its port may be chosen at start). */
        char *metrics = srv_metrics_info(d);
        if (metrics) {
            if (!(r->info[r->n_info] = info_entry("metrics", metrics)))
                return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "status: out of memory");
            r->n_info++;
        }
        /* Where the exec/attach/port-forward server listens. */
        char *stream = srv_streaming_info(d);
        if (stream) {
            if (!(r->info[r->n_info] = info_entry("streamServer", stream)))
                return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "status: out of memory");
            r->n_info++;
        }
    }
    return 0;
}

int srv_runtime_config(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err)
{
    Runtime__V1__RuntimeConfigResponse *r = malloc(sizeof(*r));
    Runtime__V1__LinuxRuntimeConfiguration *lx = malloc(sizeof(*lx));
    if (!r || !lx) {
        free(r);
        free(lx);
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "runtime config: out of memory");
    }
    runtime__v1__runtime_config_response__init(r);
    runtime__v1__linux_runtime_configuration__init(lx);
    lx->cgroup_driver = strcmp(d->cfg->cgroup_manager, "systemd") == 0
                            ? RUNTIME__V1__CGROUP_DRIVER__SYSTEMD
                            : RUNTIME__V1__CGROUP_DRIVER__CGROUPFS;
    r->linux = lx;
    *resp = &r->base;
    return 0;
}

/* The kubelet pushes the node's pod CIDR here at start.  Networking comes from
 * CNI configs, so it is only recorded (and logged) for now. */
int srv_update_runtime_config(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp,
                              cr_err **err)
{
    const Runtime__V1__UpdateRuntimeConfigRequest *in = (const Runtime__V1__UpdateRuntimeConfigRequest *)req;
    const char *cidr = in->runtime_config && in->runtime_config->network_config
                           ? in->runtime_config->network_config->pod_cidr
                           : "";
    Runtime__V1__UpdateRuntimeConfigResponse *r = malloc(sizeof(*r));
    char *copy = srv_strdup(cidr);
    if (!r || !copy) {
        free(r);
        free(copy);
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "update runtime config: out of memory");
    }
    runtime__v1__update_runtime_config_response__init(r);
    pthread_mutex_lock(&d->mu);
    free(d->pod_cidr);
    d->pod_cidr = copy;
    pthread_mutex_unlock(&d->mu);
    if (*cidr)
        cr_log_info("pod CIDR updated", "cidr", cidr, NULL);
    *resp = &r->base;
    return 0;
}
