/* Container and pod stats, and the CRI metrics RPCs.
 *
 * Figures come from the cgroup of each container (oci/cgstats.h: v1, hybrid
 * and v2 layouts), the container's overlay upper dir (its writable layer),
 * and the pod's network namespace (network/netstats.h).  CPU usage rates
 * need two samples: the previous one of every container and pod is kept
 * here, so the kubelet's periodic polls yield usage_nano_cores from the
 * second poll on. */
#include "internal.h"
#include "container.h"
#include "sandbox.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/log.h"
#include "network/netstats.h"
#include "oci/cgstats.h"
#include "oci/fsusage.h"

/* ---- the cgroup layout and previous CPU samples ---- */

static pthread_once_t layout_once = PTHREAD_ONCE_INIT;
static oci_cg_layout g_layout = OCI_CG_UNKNOWN;

static void detect_layout(void)
{
    cr_err *err = NULL;
    if (oci_cg_detect(NULL, &g_layout, &err) < 0) {
        cr_log_warn("cannot tell the cgroup layout; stats unavailable", "error", err->msg, NULL);
        cr_err_free(err);
    }
}

static oci_cg_layout layout(void)
{
    pthread_once(&layout_once, detect_layout);
    return g_layout;
}

typedef struct sample {
    char id[65];
    uint64_t usage_ns;
    int64_t mono_ns;
} sample;

static pthread_mutex_t samples_mu = PTHREAD_MUTEX_INITIALIZER;
static sample *samples;
static size_t n_samples, cap_samples;

/* Rate since the previous sample of id (false on the first), then remember this one. */
static bool cpu_rate(const char *id, uint64_t usage_ns, int64_t mono_ns, uint64_t *nano_cores)
{
    bool have = false;
    pthread_mutex_lock(&samples_mu);
    size_t i = 0;
    while (i < n_samples && strcmp(samples[i].id, id))
        i++;
    if (i < n_samples) {
        have = oci_cg_nano_cores(samples[i].usage_ns, samples[i].mono_ns, usage_ns, mono_ns, nano_cores);
    } else if (n_samples == cap_samples) {
        size_t ncap = cap_samples ? cap_samples * 2 : 64;
        sample *nv = realloc(samples, ncap * sizeof(*nv));
        if (!nv) {
            pthread_mutex_unlock(&samples_mu);
            return false;
        }
        samples = nv;
        cap_samples = ncap;
    }
    if (i == n_samples) {
        snprintf(samples[i].id, sizeof(samples[i].id), "%s", id);
        n_samples++;
    }
    samples[i].usage_ns = usage_ns;
    samples[i].mono_ns = mono_ns;
    pthread_mutex_unlock(&samples_mu);
    return have;
}

/* Forget samples of objects that no longer exist (called on each list):
 * one look at each list under its lock, then the filtering. */
static bool id_in(char (*ids)[65], size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(ids[i], id))
            return true;
    return false;
}

/* The ids of every container and pod (taken one lock at a time); NULL when out of memory. */
static char (*live_ids(srv_daemon *d, size_t *k))[65]
{
    pthread_mutex_lock(&d->ctr_mu);
    size_t cap = d->n_containers + 64;
    char (*live)[65] = malloc(cap * sizeof(*live));
    *k = 0;
    for (size_t i = 0; live && i < d->n_containers; i++)
        memcpy(live[(*k)++], d->containers[i]->id, 65);
    pthread_mutex_unlock(&d->ctr_mu);
    pthread_mutex_lock(&d->sb_mu);
    if (live && *k + d->n_sandboxes > cap) {
        char (*more)[65] = realloc(live, (*k + d->n_sandboxes) * sizeof(*live));
        if (!more)
            free(live);
        live = more;
    }
    for (size_t i = 0; live && i < d->n_sandboxes; i++)
        memcpy(live[(*k)++], d->sandboxes[i]->id, 65);
    pthread_mutex_unlock(&d->sb_mu);
    return live;
}

static void prune_samples(srv_daemon *d)
{
    size_t k = 0;
    char (*live)[65] = live_ids(d, &k);
    if (!live)
        return; /* out of memory: keep them until the next list */
    pthread_mutex_lock(&samples_mu);
    size_t kept = 0;
    for (size_t i = 0; i < n_samples; i++)
        if (id_in(live, k, samples[i].id))
            samples[kept++] = samples[i];
    n_samples = kept;
    pthread_mutex_unlock(&samples_mu);
    free(live);
}

/* ---- message builders ---- */

static Runtime__V1__UInt64Value *u64(bool *oom, uint64_t v)
{
    Runtime__V1__UInt64Value *x = malloc(sizeof(*x));
    if (!x) {
        *oom = true;
        return NULL;
    }
    runtime__v1__uint64_value__init(x);
    x->value = v;
    return x;
}

static Runtime__V1__PsiData *psi_data(bool *oom, const oci_cg_psi_data *p)
{
    Runtime__V1__PsiData *x = malloc(sizeof(*x));
    if (!x) {
        *oom = true;
        return NULL;
    }
    runtime__v1__psi_data__init(x);
    x->total = p->total_ns;
    x->avg10 = p->avg10;
    x->avg60 = p->avg60;
    x->avg300 = p->avg300;
    return x;
}

static Runtime__V1__PsiStats *psi(bool *oom, const oci_cg_psi *p)
{
    if (!p->present)
        return NULL;
    Runtime__V1__PsiStats *x = malloc(sizeof(*x));
    if (!x) {
        *oom = true;
        return NULL;
    }
    runtime__v1__psi_stats__init(x);
    x->some = psi_data(oom, &p->some);
    if (p->has_full)
        x->full = psi_data(oom, &p->full);
    return x;
}

#define NEW(type, init, oom)                                   \
    ({                                                         \
        type *x_ = malloc(sizeof(type));                       \
        if (x_)                                                \
            init(x_);                                          \
        else                                                   \
            *(oom) = true;                                     \
        x_;                                                    \
    })

static Runtime__V1__CpuUsage *cpu_usage(bool *oom, const char *id, const oci_cg_stats *st)
{
    Runtime__V1__CpuUsage *c = NEW(Runtime__V1__CpuUsage, runtime__v1__cpu_usage__init, oom);
    if (!c)
        return NULL;
    c->timestamp = st->timestamp_ns;
    c->usage_core_nano_seconds = u64(oom, st->cpu_usage_ns);
    uint64_t rate;
    if (cpu_rate(id, st->cpu_usage_ns, st->monotonic_ns, &rate))
        c->usage_nano_cores = u64(oom, rate);
    c->psi = psi(oom, &st->cpu_psi);
    return c;
}

static Runtime__V1__MemoryUsage *memory_usage(bool *oom, const oci_cg_stats *st)
{
    Runtime__V1__MemoryUsage *m = NEW(Runtime__V1__MemoryUsage, runtime__v1__memory_usage__init, oom);
    if (!m)
        return NULL;
    m->timestamp = st->timestamp_ns;
    m->working_set_bytes = u64(oom, st->mem_working_set);
    if (st->has_mem_limit)
        m->available_bytes = u64(oom, st->mem_available);
    m->usage_bytes = u64(oom, st->mem_usage);
    m->rss_bytes = u64(oom, st->mem_rss);
    m->page_faults = u64(oom, st->mem_page_faults);
    m->major_page_faults = u64(oom, st->mem_major_page_faults);
    m->psi = psi(oom, &st->memory_psi);
    return m;
}

static Runtime__V1__IoUsage *io_usage(bool *oom, const oci_cg_stats *st)
{
    if (!st->io_psi.present)
        return NULL;
    Runtime__V1__IoUsage *io = NEW(Runtime__V1__IoUsage, runtime__v1__io_usage__init, oom);
    if (io) {
        io->timestamp = st->timestamp_ns;
        io->psi = psi(oom, &st->io_psi);
    }
    return io;
}

static Runtime__V1__FilesystemUsage *writable_layer(bool *oom, srv_daemon *d, const char *id, int64_t ts)
{
    _cleanup_free_ char *mnt = srv_pathf("%s/storage", d->cfg->root);
    _cleanup_free_ char *upper = srv_pathf("%s/storage/containers/%s/upper", d->cfg->root, id);
    oci_fs_usage u;
    cr_err *err = NULL;
    if (!mnt || !upper || oci_fs_usage_get(upper, &u, &err) < 0) {
        cr_err_free(err);
        return NULL;
    }
    Runtime__V1__FilesystemUsage *f = NEW(Runtime__V1__FilesystemUsage, runtime__v1__filesystem_usage__init, oom);
    Runtime__V1__FilesystemIdentifier *fs =
        NEW(Runtime__V1__FilesystemIdentifier, runtime__v1__filesystem_identifier__init, oom);
    if (!f || !fs) {
        free(f);
        free(fs);
        return NULL;
    }
    fs->mountpoint = cr_steal(&mnt);
    f->timestamp = ts;
    f->fs_id = fs;
    f->used_bytes = u64(oom, u.bytes);
    f->inodes_used = u64(oom, u.inodes);
    return f;
}

static Runtime__V1__ContainerAttributes *ctr_attributes(bool *oom, const srv_container *c)
{
    Runtime__V1__ContainerAttributes *a =
        NEW(Runtime__V1__ContainerAttributes, runtime__v1__container_attributes__init, oom);
    Runtime__V1__ContainerMetadata *md = NEW(Runtime__V1__ContainerMetadata, runtime__v1__container_metadata__init, oom);
    if (!a || !md) {
        free(a);
        free(md);
        return NULL;
    }
    const Runtime__V1__ContainerConfig *cfg = c->config;
    a->id = strdup(c->id);
    md->name = strdup(cfg->metadata->name);
    md->attempt = cfg->metadata->attempt;
    a->metadata = md;
    a->labels = srv_copy_map(oom, cfg->n_labels, (void *const *)cfg->labels,
                             &runtime__v1__container_attributes__labels_entry__descriptor, &a->n_labels);
    a->annotations = srv_copy_map(oom, cfg->n_annotations, (void *const *)cfg->annotations,
                                  &runtime__v1__container_attributes__annotations_entry__descriptor, &a->n_annotations);
    *oom |= !a->id || !md->name;
    return a;
}

/* Stats of one container; NULL with *err NOT_FOUND when its cgroup is gone
 * (not running), other errors as the reader reports them. */
static Runtime__V1__ContainerStats *container_stats(srv_daemon *d, const srv_container *c, oci_cg_stats *raw,
                                                    bool *oom, cr_err **err)
{
    oci_cg_stats st;
    if (!c->cgroups_path || !*c->cgroups_path)
        return cr_err_set(err, CR_NOT_FOUND, "container %s has no cgroup", c->id), NULL;
    if (oci_cg_read_stats_path(NULL, layout(), c->cgroups_path, &st, err) < 0)
        return NULL;
    if (raw)
        *raw = st;
    Runtime__V1__ContainerStats *s = NEW(Runtime__V1__ContainerStats, runtime__v1__container_stats__init, oom);
    if (!s)
        return NULL;
    s->attributes = ctr_attributes(oom, c);
    s->cpu = cpu_usage(oom, c->id, &st);
    s->memory = memory_usage(oom, &st);
    s->writable_layer = writable_layer(oom, d, c->id, st.timestamp_ns);
    if (st.has_swap) {
        Runtime__V1__SwapUsage *sw = NEW(Runtime__V1__SwapUsage, runtime__v1__swap_usage__init, oom);
        if (sw) {
            sw->timestamp = st.timestamp_ns;
            sw->swap_usage_bytes = u64(oom, st.swap_usage);
            if (st.has_swap_limit)
                sw->swap_available_bytes = u64(oom, st.swap_available);
        }
        s->swap = sw;
    }
    s->io = io_usage(oom, &st);
    return s;
}

static bool labels_match(size_t n_sel, void *const *sel, size_t n_labels, void *const *labels)
{
    for (size_t i = 0; i < n_sel; i++) {
        const Runtime__V1__ContainerStatsFilter__LabelSelectorEntry *e = sel[i];
        const char *v = srv_map_get(n_labels, labels, e->key);
        if (!v || strcmp(v, e->value))
            return false;
    }
    return true;
}

static bool ctr_filter_match(const srv_container *c, const Runtime__V1__ContainerStatsFilter *f)
{
    if (c->state != RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING)
        return false; /* only running containers have a cgroup to read */
    if (!f)
        return true;
    if (f->id && *f->id && strncmp(c->id, f->id, strlen(f->id)))
        return false;
    if (f->pod_sandbox_id && *f->pod_sandbox_id && strncmp(c->sandbox_id, f->pod_sandbox_id, strlen(f->pod_sandbox_id)))
        return false;
    return labels_match(f->n_label_selector, (void *const *)f->label_selector, c->config->n_labels,
                        (void *const *)c->config->labels);
}

/* Stats of every running container matching f (unreadable ones skipped). */
static Runtime__V1__ContainerStats **list_container_stats(srv_daemon *d, const Runtime__V1__ContainerStatsFilter *f,
                                                         size_t *n_out, bool *oom)
{
    size_t n = 0;
    srv_container **v = srv_containers_snapshot(d, &n);
    Runtime__V1__ContainerStats **out = calloc(n + 1, sizeof(*out));
    *n_out = 0;
    if (!out)
        *oom = true;
    for (size_t i = 0; out && i < n; i++) {
        pthread_mutex_lock(&d->ctr_mu);
        bool want = ctr_filter_match(v[i], f);
        pthread_mutex_unlock(&d->ctr_mu);
        if (!want)
            continue;
        cr_err *err = NULL;
        Runtime__V1__ContainerStats *s = container_stats(d, v[i], NULL, oom, &err);
        if (s)
            out[(*n_out)++] = s;
        cr_err_free(err); /* exited meanwhile: left out */
    }
    srv_containers_release(d, v, n);
    return out;
}

int srv_container_stats(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err)
{
    const Runtime__V1__ContainerStatsRequest *in = (const Runtime__V1__ContainerStatsRequest *)req;
    if (!in->container_id || !*in->container_id)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "ContainerStats: no container id");
    size_t n = 0;
    srv_container **v = srv_containers_snapshot(d, &n);
    srv_container *c = NULL;
    size_t matches = 0;
    size_t idlen = strlen(in->container_id);
    for (size_t i = 0; v && i < n; i++)
        if (!strncmp(v[i]->id, in->container_id, idlen)) {
            matches++;
            c = v[i];
            if (idlen == 64)
                break;
        }
    int r = 0;
    if (!v) {
        r = cr_err_set(err, CR_RESOURCE_EXHAUSTED, "ContainerStats: out of memory");
    } else if (!c) {
        r = cr_err_set(err, CR_NOT_FOUND, "container %s not found", in->container_id);
    } else if (matches > 1) {
        r = cr_err_set(err, CR_INVALID_ARGUMENT, "container id prefix %s matches %zu containers", in->container_id,
                       matches);
    } else if (c->state != RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING) {
        r = cr_err_set(err, CR_NOT_FOUND, "container %s is not running: no stats", c->id);
    } else {
        bool oom = false;
        cr_err *e = NULL;
        Runtime__V1__ContainerStats *s = container_stats(d, c, NULL, &oom, &e);
        if (!s && e && e->code == CR_NOT_FOUND) {
            r = cr_err_set(err, CR_NOT_FOUND, "container %s is not running: no stats", c->id);
        } else if (!s || oom) {
            r = e ? cr_err_set(err, e->code, "container %s: %s", c->id, e->msg)
                  : cr_err_set(err, CR_RESOURCE_EXHAUSTED, "ContainerStats: out of memory");
            if (s)
                protobuf_c_message_free_unpacked(&s->base, NULL);
        } else {
            Runtime__V1__ContainerStatsResponse *rs =
                NEW(Runtime__V1__ContainerStatsResponse, runtime__v1__container_stats_response__init, &oom);
            if (rs) {
                rs->stats = s;
                *resp = &rs->base;
            } else {
                protobuf_c_message_free_unpacked(&s->base, NULL);
                r = cr_err_set(err, CR_RESOURCE_EXHAUSTED, "ContainerStats: out of memory");
            }
        }
        cr_err_free(e);
    }
    srv_containers_release(d, v, n);
    return r;
}

int srv_list_container_stats(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err)
{
    const Runtime__V1__ListContainerStatsRequest *in = (const Runtime__V1__ListContainerStatsRequest *)req;
    prune_samples(d);
    bool oom = false;
    Runtime__V1__ListContainerStatsResponse *r =
        NEW(Runtime__V1__ListContainerStatsResponse, runtime__v1__list_container_stats_response__init, &oom);
    if (!r)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "ListContainerStats: out of memory");
    *resp = &r->base;
    r->stats = list_container_stats(d, in->filter, &r->n_stats, &oom);
    return oom ? cr_err_set(err, CR_RESOURCE_EXHAUSTED, "ListContainerStats: out of memory") : 0;
}

int srv_stream_container_stats(srv_daemon *d, const ProtobufCMessage *req, srv_stream *st, cr_err **err)
{
    const Runtime__V1__StreamContainerStatsRequest *in = (const Runtime__V1__StreamContainerStatsRequest *)req;
    bool oom = false;
    size_t n = 0;
    Runtime__V1__ContainerStats **v = list_container_stats(d, in->filter, &n, &oom);
    int rc = 0;
    for (size_t i = 0; v && i < n; i++) {
        Runtime__V1__StreamContainerStatsResponse m = RUNTIME__V1__STREAM_CONTAINER_STATS_RESPONSE__INIT;
        m.container_stats = &v[i];
        m.n_container_stats = 1;
        if (rc == 0 && srv_stream_send(st, &m.base) < 0)
            rc = -1;
        protobuf_c_message_free_unpacked(&v[i]->base, NULL);
    }
    free(v);
    if (oom && rc == 0)
        rc = cr_err_set(err, CR_RESOURCE_EXHAUSTED, "StreamContainerStats: out of memory");
    return rc;
}

/* ---- pods ---- */

static Runtime__V1__PodSandboxAttributes *pod_attributes(bool *oom, const srv_sandbox *sb)
{
    const Runtime__V1__PodSandboxConfig *cfg = sb->config;
    Runtime__V1__PodSandboxAttributes *a =
        NEW(Runtime__V1__PodSandboxAttributes, runtime__v1__pod_sandbox_attributes__init, oom);
    Runtime__V1__PodSandboxMetadata *md =
        NEW(Runtime__V1__PodSandboxMetadata, runtime__v1__pod_sandbox_metadata__init, oom);
    if (!a || !md) {
        free(a);
        free(md);
        return NULL;
    }
    a->id = strdup(sb->id);
    md->name = strdup(cfg->metadata->name);
    md->uid = strdup(cfg->metadata->uid ? cfg->metadata->uid : "");
    md->namespace_ = strdup(cfg->metadata->namespace_ ? cfg->metadata->namespace_ : "");
    md->attempt = cfg->metadata->attempt;
    a->metadata = md;
    a->labels = srv_copy_map(oom, cfg->n_labels, (void *const *)cfg->labels,
                             &runtime__v1__pod_sandbox_attributes__labels_entry__descriptor, &a->n_labels);
    a->annotations = srv_copy_map(oom, cfg->n_annotations, (void *const *)cfg->annotations,
                                  &runtime__v1__pod_sandbox_attributes__annotations_entry__descriptor,
                                  &a->n_annotations);
    *oom |= !a->id || !md->name || !md->uid || !md->namespace_;
    return a;
}

static Runtime__V1__NetworkInterfaceUsage *iface(bool *oom, const net_if_stats *s)
{
    Runtime__V1__NetworkInterfaceUsage *x =
        NEW(Runtime__V1__NetworkInterfaceUsage, runtime__v1__network_interface_usage__init, oom);
    if (!x)
        return NULL;
    x->name = strdup(s->name);
    *oom |= !x->name;
    x->rx_bytes = u64(oom, s->rx_bytes);
    x->rx_errors = u64(oom, s->rx_errors);
    x->tx_bytes = u64(oom, s->tx_bytes);
    x->tx_errors = u64(oom, s->tx_errors);
    return x;
}

static Runtime__V1__NetworkUsage *network_usage(bool *oom, const srv_sandbox *sb, net_stats *ns_out)
{
    if (sb->host_network || !sb->netns || !*sb->netns)
        return NULL;
    net_stats ns = { 0 };
    cr_err *err = NULL;
    if (net_stats_read(sb->netns, &ns, &err) < 0) {
        cr_err_free(err);
        return NULL;
    }
    Runtime__V1__NetworkUsage *u = NEW(Runtime__V1__NetworkUsage, runtime__v1__network_usage__init, oom);
    if (u) {
        u->timestamp = ns.timestamp_ns;
        const net_if_stats *def = net_stats_find(&ns, "eth0");
        if (!def && ns.n)
            def = &ns.ifs[0];
        if (def)
            u->default_interface = iface(oom, def);
        u->interfaces = ns.n ? calloc(ns.n, sizeof(*u->interfaces)) : NULL;
        for (size_t i = 0; u->interfaces && i < ns.n; i++)
            if ((u->interfaces[u->n_interfaces] = iface(oom, &ns.ifs[i])))
                u->n_interfaces++;
        *oom |= ns.n && !u->interfaces;
    }
    if (ns_out)
        *ns_out = ns;
    else
        net_stats_free(&ns);
    return u;
}

/* The pod's own cgroup: the cgroup_parent the kubelet gives (containers sit
 * below it); without one, the infra container's cgroup plus the sums of its
 * containers' figures. */
static void pod_cgroup_stats(const srv_sandbox *sb, const oci_cg_stats *ctr_raw, size_t n_ctrs, oci_cg_stats *out)
{
    const char *parent = sb->config->linux ? sb->config->linux->cgroup_parent : NULL;
    cr_err *err = NULL;
    if (parent && *parent && oci_cg_read_stats_path(NULL, layout(), parent, out, &err) == 0)
        return;
    cr_err_free(err);
    err = NULL;
    if (!sb->cgroups_path || oci_cg_read_stats_path(NULL, layout(), sb->cgroups_path, out, &err) < 0) {
        cr_err_free(err);
        memset(out, 0, sizeof(*out));
        out->timestamp_ns = srv_now_ns();
    }
    for (size_t i = 0; i < n_ctrs; i++) {
        const oci_cg_stats *c = &ctr_raw[i];
        out->cpu_usage_ns += c->cpu_usage_ns;
        out->mem_usage += c->mem_usage;
        out->mem_working_set += c->mem_working_set;
        out->mem_rss += c->mem_rss;
        out->mem_page_faults += c->mem_page_faults;
        out->mem_major_page_faults += c->mem_major_page_faults;
        out->pids_current += c->pids_current;
        out->has_pids |= c->has_pids;
    }
    out->has_mem_limit = false; /* no pod-wide limit known */
}

static Runtime__V1__PodSandboxStats *pod_stats(srv_daemon *d, srv_sandbox *sb, bool *oom)
{
    Runtime__V1__PodSandboxStats *ps = NEW(Runtime__V1__PodSandboxStats, runtime__v1__pod_sandbox_stats__init, oom);
    Runtime__V1__LinuxPodSandboxStats *lx =
        NEW(Runtime__V1__LinuxPodSandboxStats, runtime__v1__linux_pod_sandbox_stats__init, oom);
    if (!ps || !lx) {
        free(ps);
        free(lx);
        return NULL;
    }
    ps->attributes = pod_attributes(oom, sb);
    ps->linux = lx;
    /* containers first: the pod's sums may need their raw figures */
    size_t n = 0;
    srv_container **v = srv_containers_snapshot(d, &n);
    lx->containers = calloc(n + 1, sizeof(*lx->containers));
    oci_cg_stats *raw = calloc(n + 1, sizeof(*raw));
    *oom |= !lx->containers || !raw;
    for (size_t i = 0; lx->containers && raw && i < n; i++) {
        pthread_mutex_lock(&d->ctr_mu);
        bool mine = !strcmp(v[i]->sandbox_id, sb->id) &&
                    v[i]->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING;
        pthread_mutex_unlock(&d->ctr_mu);
        if (!mine)
            continue;
        cr_err *err = NULL;
        Runtime__V1__ContainerStats *cs = container_stats(d, v[i], &raw[lx->n_containers], oom, &err);
        cr_err_free(err);
        if (cs)
            lx->containers[lx->n_containers++] = cs;
    }
    srv_containers_release(d, v, n);
    oci_cg_stats st;
    pod_cgroup_stats(sb, raw, raw ? lx->n_containers : 0, &st);
    free(raw);
    lx->cpu = cpu_usage(oom, sb->id, &st);
    lx->memory = memory_usage(oom, &st);
    lx->io = io_usage(oom, &st);
    lx->network = network_usage(oom, sb, NULL);
    if (st.has_pids) {
        Runtime__V1__ProcessUsage *pu = NEW(Runtime__V1__ProcessUsage, runtime__v1__process_usage__init, oom);
        if (pu) {
            pu->timestamp = st.timestamp_ns;
            pu->process_count = u64(oom, st.pids_current);
        }
        lx->process = pu;
    }
    return ps;
}

static bool pod_filter_match(const srv_sandbox *sb, const Runtime__V1__PodSandboxStatsFilter *f)
{
    if (!sb->ready)
        return false;
    if (!f)
        return true;
    if (f->id && *f->id && strncmp(sb->id, f->id, strlen(f->id)))
        return false;
    return labels_match(f->n_label_selector, (void *const *)f->label_selector, sb->config->n_labels,
                        (void *const *)sb->config->labels);
}

/* Ready pods matching f, each with a reference. */
static srv_sandbox **select_pods(srv_daemon *d, const Runtime__V1__PodSandboxStatsFilter *f, size_t *n)
{
    pthread_mutex_lock(&d->sb_mu);
    srv_sandbox **v = calloc(d->n_sandboxes + 1, sizeof(*v));
    *n = 0;
    for (size_t i = 0; v && i < d->n_sandboxes; i++)
        if (pod_filter_match(d->sandboxes[i], f)) {
            d->sandboxes[i]->refs++;
            v[(*n)++] = d->sandboxes[i];
        }
    pthread_mutex_unlock(&d->sb_mu);
    return v;
}

static void put_pods(srv_daemon *d, srv_sandbox **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        srv_sandbox_put(d, v[i]);
    free(v);
}

int srv_pod_sandbox_stats(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err)
{
    const Runtime__V1__PodSandboxStatsRequest *in = (const Runtime__V1__PodSandboxStatsRequest *)req;
    if (!in->pod_sandbox_id || !*in->pod_sandbox_id)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "PodSandboxStats: no pod sandbox id");
    cr_err *gerr = NULL;
    srv_sandbox *sb = srv_sandbox_get(d, in->pod_sandbox_id, &gerr);
    if (!sb) {
        if (gerr) {
            cr_err_set(err, gerr->code, "%s", gerr->msg);
            cr_err_free(gerr);
            return -1;
        }
        return cr_err_set(err, CR_NOT_FOUND, "pod sandbox %s not found", in->pod_sandbox_id);
    }
    int r = 0;
    if (!sb->ready) {
        r = cr_err_set(err, CR_NOT_FOUND, "pod sandbox %s is not ready: no stats", sb->id);
    } else {
        bool oom = false;
        Runtime__V1__PodSandboxStatsResponse *rs =
            NEW(Runtime__V1__PodSandboxStatsResponse, runtime__v1__pod_sandbox_stats_response__init, &oom);
        if (rs) {
            *resp = &rs->base;
            rs->stats = pod_stats(d, sb, &oom);
        }
        if (oom)
            r = cr_err_set(err, CR_RESOURCE_EXHAUSTED, "PodSandboxStats: out of memory");
    }
    srv_sandbox_put(d, sb);
    return r;
}

int srv_list_pod_sandbox_stats(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err)
{
    const Runtime__V1__ListPodSandboxStatsRequest *in = (const Runtime__V1__ListPodSandboxStatsRequest *)req;
    prune_samples(d);
    bool oom = false;
    Runtime__V1__ListPodSandboxStatsResponse *r =
        NEW(Runtime__V1__ListPodSandboxStatsResponse, runtime__v1__list_pod_sandbox_stats_response__init, &oom);
    if (!r)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "ListPodSandboxStats: out of memory");
    *resp = &r->base;
    size_t n = 0;
    srv_sandbox **v = select_pods(d, in->filter, &n);
    r->stats = calloc(n + 1, sizeof(*r->stats));
    oom |= !v || !r->stats;
    for (size_t i = 0; r->stats && i < n; i++)
        if ((r->stats[r->n_stats] = pod_stats(d, v[i], &oom)))
            r->n_stats++;
    put_pods(d, v, n);
    return oom ? cr_err_set(err, CR_RESOURCE_EXHAUSTED, "ListPodSandboxStats: out of memory") : 0;
}

int srv_stream_pod_sandbox_stats(srv_daemon *d, const ProtobufCMessage *req, srv_stream *st, cr_err **err)
{
    const Runtime__V1__StreamPodSandboxStatsRequest *in = (const Runtime__V1__StreamPodSandboxStatsRequest *)req;
    size_t n = 0;
    srv_sandbox **v = select_pods(d, in->filter, &n);
    int rc = v ? 0 : cr_err_set(err, CR_RESOURCE_EXHAUSTED, "StreamPodSandboxStats: out of memory");
    for (size_t i = 0; v && i < n && rc == 0; i++) {
        bool oom = false;
        Runtime__V1__StreamPodSandboxStatsResponse m = RUNTIME__V1__STREAM_POD_SANDBOX_STATS_RESPONSE__INIT;
        Runtime__V1__PodSandboxStats *ps = pod_stats(d, v[i], &oom);
        m.pod_sandbox_stats = &ps;
        m.n_pod_sandbox_stats = 1;
        if (ps && srv_stream_send(st, &m.base) < 0)
            rc = -1;
        if (ps)
            protobuf_c_message_free_unpacked(&ps->base, NULL);
    }
    put_pods(d, v, n);
    return rc;
}

/* ---- metrics (cAdvisor names; values are integers: seconds are whole) ---- */

typedef struct metric_def {
    const char *name, *help;
    Runtime__V1__MetricType type;
    bool pod_level; /* network metrics: labels interface; else container labels */
} metric_def;

static const char *const container_labels[] = { "container", "id", "image", "name", "namespace", "pod", NULL };
static const char *const network_labels[] = { "interface", "namespace", "pod", NULL };

static const metric_def metric_defs[] = {
    { "container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds (whole seconds).",
      RUNTIME__V1__METRIC_TYPE__COUNTER, false },
    { "container_cpu_usage_nanoseconds_total", "Cumulative cpu time consumed in nanoseconds.",
      RUNTIME__V1__METRIC_TYPE__COUNTER, false },
    { "container_memory_working_set_bytes", "Current working set in bytes.", RUNTIME__V1__METRIC_TYPE__GAUGE,
      false },
    { "container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed.",
      RUNTIME__V1__METRIC_TYPE__GAUGE, false },
    { "container_memory_rss", "Size of RSS in bytes.", RUNTIME__V1__METRIC_TYPE__GAUGE, false },
    { "container_memory_failures_total", "Cumulative count of page faults.", RUNTIME__V1__METRIC_TYPE__COUNTER,
      false },
    { "container_spec_memory_limit_bytes", "Memory limit for the container (0: none).",
      RUNTIME__V1__METRIC_TYPE__GAUGE, false },
    { "container_fs_usage_bytes", "Bytes used by the container's writable layer.",
      RUNTIME__V1__METRIC_TYPE__GAUGE, false },
    { "container_fs_inodes_total", "Inodes used by the container's writable layer.",
      RUNTIME__V1__METRIC_TYPE__GAUGE, false },
    { "container_network_receive_bytes_total", "Cumulative count of bytes received.",
      RUNTIME__V1__METRIC_TYPE__COUNTER, true },
    { "container_network_receive_errors_total", "Cumulative count of errors encountered while receiving.",
      RUNTIME__V1__METRIC_TYPE__COUNTER, true },
    { "container_network_transmit_bytes_total", "Cumulative count of bytes transmitted.",
      RUNTIME__V1__METRIC_TYPE__COUNTER, true },
    { "container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting.",
      RUNTIME__V1__METRIC_TYPE__COUNTER, true },
};
#define N_METRICS (sizeof(metric_defs) / sizeof(metric_defs[0]))

static char **strv_of(bool *oom, const char *const *v, size_t *n)
{
    *n = 0;
    while (v[*n])
        (*n)++;
    char **out = calloc(*n + 1, sizeof(char *));
    for (size_t i = 0; out && i < *n; i++)
        *oom |= !(out[i] = strdup(v[i]));
    *oom |= !out;
    return out;
}

int srv_list_metric_descriptors(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err)
{
    bool oom = false;
    Runtime__V1__ListMetricDescriptorsResponse *r =
        NEW(Runtime__V1__ListMetricDescriptorsResponse, runtime__v1__list_metric_descriptors_response__init, &oom);
    if (!r)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "ListMetricDescriptors: out of memory");
    *resp = &r->base;
    r->descriptors = calloc(N_METRICS, sizeof(*r->descriptors));
    for (size_t i = 0; r->descriptors && i < N_METRICS; i++) {
        Runtime__V1__MetricDescriptor *m =
            NEW(Runtime__V1__MetricDescriptor, runtime__v1__metric_descriptor__init, &oom);
        if (!m)
            break;
        m->name = strdup(metric_defs[i].name);
        m->help = strdup(metric_defs[i].help);
        m->label_keys = strv_of(&oom, metric_defs[i].pod_level ? network_labels : container_labels, &m->n_label_keys);
        oom |= !m->name || !m->help;
        r->descriptors[r->n_descriptors++] = m;
    }
    oom |= !r->descriptors;
    return oom ? cr_err_set(err, CR_RESOURCE_EXHAUSTED, "ListMetricDescriptors: out of memory") : 0;
}

static Runtime__V1__Metric *metric(bool *oom, const metric_def *def, int64_t ts, const char *const *labels,
                                   uint64_t value)
{
    Runtime__V1__Metric *m = NEW(Runtime__V1__Metric, runtime__v1__metric__init, oom);
    if (!m)
        return NULL;
    m->name = strdup(def->name);
    m->timestamp = ts;
    m->metric_type = def->type;
    m->label_values = strv_of(oom, labels, &m->n_label_values);
    m->value = u64(oom, value);
    *oom |= !m->name;
    return m;
}

static const metric_def *def_named(const char *name)
{
    for (size_t i = 0; i < N_METRICS; i++)
        if (!strcmp(metric_defs[i].name, name))
            return &metric_defs[i];
    return NULL;
}

static Runtime__V1__ContainerMetrics *container_metrics(bool *oom, const Runtime__V1__ContainerStats *cs,
                                                        const oci_cg_stats *raw, const srv_sandbox *sb,
                                                        const char *image)
{
    Runtime__V1__ContainerMetrics *cm = NEW(Runtime__V1__ContainerMetrics, runtime__v1__container_metrics__init, oom);
    if (!cm)
        return NULL;
    const Runtime__V1__PodSandboxMetadata *pmd = sb->config->metadata;
    const char *labels[] = { cs->attributes->metadata->name, cs->attributes->id, image ? image : "",
                             cs->attributes->metadata->name, pmd->namespace_ ? pmd->namespace_ : "",
                             pmd->name, NULL };
    cm->container_id = strdup(cs->attributes->id);
    cm->metrics = calloc(N_METRICS, sizeof(*cm->metrics));
    *oom |= !cm->container_id || !cm->metrics;
    if (!cm->metrics)
        return cm;
    int64_t ts = raw->timestamp_ns;
    struct {
        const char *name;
        uint64_t v;
        bool have;
    } vals[] = {
        { "container_cpu_usage_seconds_total", raw->cpu_usage_ns / 1000000000ull, true },
        { "container_cpu_usage_nanoseconds_total", raw->cpu_usage_ns, true },
        { "container_memory_working_set_bytes", raw->mem_working_set, true },
        { "container_memory_usage_bytes", raw->mem_usage, true },
        { "container_memory_rss", raw->mem_rss, true },
        { "container_memory_failures_total", raw->mem_page_faults, true },
        { "container_spec_memory_limit_bytes", raw->has_mem_limit ? raw->mem_limit : 0, true },
        { "container_fs_usage_bytes", cs->writable_layer && cs->writable_layer->used_bytes
                                          ? cs->writable_layer->used_bytes->value : 0, cs->writable_layer != NULL },
        { "container_fs_inodes_total", cs->writable_layer && cs->writable_layer->inodes_used
                                           ? cs->writable_layer->inodes_used->value : 0, cs->writable_layer != NULL },
    };
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        if (!vals[i].have)
            continue;
        Runtime__V1__Metric *m = metric(oom, def_named(vals[i].name), ts, labels, vals[i].v);
        if (m)
            cm->metrics[cm->n_metrics++] = m;
    }
    return cm;
}

static Runtime__V1__PodSandboxMetrics *pod_metrics(srv_daemon *d, srv_sandbox *sb, bool *oom)
{
    Runtime__V1__PodSandboxMetrics *pm = NEW(Runtime__V1__PodSandboxMetrics, runtime__v1__pod_sandbox_metrics__init, oom);
    if (!pm)
        return NULL;
    pm->pod_sandbox_id = strdup(sb->id);
    *oom |= !pm->pod_sandbox_id;
    /* network, per interface */
    net_stats ns = { 0 };
    Runtime__V1__NetworkUsage *nu = network_usage(oom, sb, &ns);
    if (nu) {
        const Runtime__V1__PodSandboxMetadata *pmd = sb->config->metadata;
        pm->metrics = calloc(ns.n * 4 + 1, sizeof(*pm->metrics));
        *oom |= !pm->metrics;
        for (size_t i = 0; pm->metrics && i < ns.n; i++) {
            const char *labels[] = { ns.ifs[i].name, pmd->namespace_ ? pmd->namespace_ : "", pmd->name, NULL };
            const struct { const char *name; uint64_t v; } vals[] = {
                { "container_network_receive_bytes_total", ns.ifs[i].rx_bytes },
                { "container_network_receive_errors_total", ns.ifs[i].rx_errors },
                { "container_network_transmit_bytes_total", ns.ifs[i].tx_bytes },
                { "container_network_transmit_errors_total", ns.ifs[i].tx_errors },
            };
            for (size_t k = 0; k < 4; k++) {
                Runtime__V1__Metric *m = metric(oom, def_named(vals[k].name), ns.timestamp_ns, labels, vals[k].v);
                if (m)
                    pm->metrics[pm->n_metrics++] = m;
            }
        }
        net_stats_free(&ns);
        protobuf_c_message_free_unpacked(&nu->base, NULL);
    }
    /* containers */
    size_t n = 0;
    srv_container **v = srv_containers_snapshot(d, &n);
    pm->container_metrics = calloc(n + 1, sizeof(*pm->container_metrics));
    *oom |= !pm->container_metrics;
    for (size_t i = 0; pm->container_metrics && i < n; i++) {
        pthread_mutex_lock(&d->ctr_mu);
        bool mine = !strcmp(v[i]->sandbox_id, sb->id) &&
                    v[i]->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING;
        pthread_mutex_unlock(&d->ctr_mu);
        if (!mine)
            continue;
        oci_cg_stats raw;
        cr_err *err = NULL;
        Runtime__V1__ContainerStats *cs = container_stats(d, v[i], &raw, oom, &err);
        cr_err_free(err);
        if (!cs)
            continue;
        Runtime__V1__ContainerMetrics *cm = container_metrics(oom, cs, &raw, sb, v[i]->config->image->image);
        if (cm)
            pm->container_metrics[pm->n_container_metrics++] = cm;
        protobuf_c_message_free_unpacked(&cs->base, NULL);
    }
    srv_containers_release(d, v, n);
    return pm;
}

int srv_list_pod_sandbox_metrics(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err)
{
    bool oom = false;
    Runtime__V1__ListPodSandboxMetricsResponse *r =
        NEW(Runtime__V1__ListPodSandboxMetricsResponse, runtime__v1__list_pod_sandbox_metrics_response__init, &oom);
    if (!r)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "ListPodSandboxMetrics: out of memory");
    *resp = &r->base;
    size_t n = 0;
    srv_sandbox **v = select_pods(d, NULL, &n);
    r->pod_metrics = calloc(n + 1, sizeof(*r->pod_metrics));
    oom |= !v || !r->pod_metrics;
    for (size_t i = 0; r->pod_metrics && i < n; i++)
        if ((r->pod_metrics[r->n_pod_metrics] = pod_metrics(d, v[i], &oom)))
            r->n_pod_metrics++;
    put_pods(d, v, n);
    return oom ? cr_err_set(err, CR_RESOURCE_EXHAUSTED, "ListPodSandboxMetrics: out of memory") : 0;
}

int srv_stream_pod_sandbox_metrics(srv_daemon *d, const ProtobufCMessage *req, srv_stream *st, cr_err **err)
{
    size_t n = 0;
    srv_sandbox **v = select_pods(d, NULL, &n);
    int rc = v ? 0 : cr_err_set(err, CR_RESOURCE_EXHAUSTED, "StreamPodSandboxMetrics: out of memory");
    for (size_t i = 0; v && i < n && rc == 0; i++) {
        bool oom = false;
        Runtime__V1__StreamPodSandboxMetricsResponse m = RUNTIME__V1__STREAM_POD_SANDBOX_METRICS_RESPONSE__INIT;
        Runtime__V1__PodSandboxMetrics *pm = pod_metrics(d, v[i], &oom);
        m.pod_sandbox_metrics = &pm;
        m.n_pod_sandbox_metrics = 1;
        if (pm && srv_stream_send(st, &m.base) < 0)
            rc = -1;
        if (pm)
            protobuf_c_message_free_unpacked(&pm->base, NULL);
    }
    put_pods(d, v, n);
    return rc;
}
