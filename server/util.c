/* Small helpers shared by the server's RPC handlers. */
#include "internal.h"
#include "sandbox.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/cleanup.h"
#include "lib/fs.h"
#include "oci/oci.h"

char *srv_pathf(const char *fmt, ...)
{
    char *p = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&p, fmt, ap) < 0)
        p = NULL;
    va_end(ap);
    return p;
}

int64_t srv_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void srv_sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

const char *srv_map_get(size_t n, void *const *entries, const char *key)
{
    /* Map entries all have the layout { base; key; value }. */
    for (size_t i = 0; i < n; i++) {
        const Runtime__V1__PodSandboxConfig__LabelsEntry *e = entries[i];
        if (e->key && strcmp(e->key, key) == 0)
            return e->value;
    }
    return NULL;
}

void *srv_copy_map(bool *oom, size_t n, void *const *entries, const ProtobufCMessageDescriptor *desc,
                   size_t *n_out)
{
    *n_out = 0;
    if (!n)
        return NULL;
    void **out = calloc(n, sizeof(void *));
    if (!out) {
        *oom = true;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const Runtime__V1__PodSandboxConfig__LabelsEntry *src = entries[i];
        Runtime__V1__PodSandboxConfig__LabelsEntry *e = calloc(1, desc->sizeof_message);
        if (!e) {
            *oom = true;
            break;
        }
        desc->message_init((ProtobufCMessage *)e);
        e->key = strdup(src->key ? src->key : "");
        e->value = strdup(src->value ? src->value : "");
        if (!e->key || !e->value)
            *oom = true;
        out[(*n_out)++] = e;
    }
    return out;
}

int srv_empty_response(const ProtobufCMessageDescriptor *desc, ProtobufCMessage **resp, cr_err **err)
{
    ProtobufCMessage *m = calloc(1, desc->sizeof_message);
    if (!m)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    desc->message_init(m);
    *resp = m;
    return 0;
}

uint64_t srv_proc_start_time(int pid)
{
    if (pid <= 0)
        return 0;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    _cleanup_free_ char *text = cr_read_file(path, NULL, NULL);
    if (!text)
        return 0;
    char *p = strrchr(text, ')'); /* comm may hold spaces */
    if (!p || p[1] != ' ' || p[2] == 'Z')
        return 0; /* a zombie has ended */
    unsigned long long v = 0;
    int field = 2;
    char *save = NULL;
    for (char *tok = strtok_r(p + 1, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
        if (++field == 22) {
            v = strtoull(tok, NULL, 10);
            break;
        }
    return v;
}

const oci_runtime *srv_handler_runtime(srv_daemon *d, const char *name, oci_runtime *out)
{
    const cr_runtime_handler *h = cr_config_runtime(d->cfg, name);
    if (!h)
        return NULL;
    out->name = h->name;
    out->path = *h->runtime_path ? h->runtime_path : h->name;
    out->root = h->runtime_root;
    return out;
}

char *srv_cgroups_path(srv_daemon *d, const char *parent, const char *id)
{
    if (!strcmp(d->cfg->cgroup_manager, "systemd"))
        return srv_pathf("%s:crisp:%s", parent && *parent ? parent : "system.slice", id);
    if (!parent || !*parent)
        return srv_pathf("/crisp/crisp-%s", id);
    return srv_pathf("%s%s/crisp-%s", parent[0] == '/' ? "" : "/", parent, id);
}

/* A CRI SecurityProfile (or the deprecated string field it replaced) in
 * oci_spec_input's form: "runtime/default", "unconfined", "localhost/<ref>". */
char *srv_security_profile(const Runtime__V1__SecurityProfile *p, const char *deprecated)
{
    if (p) {
        switch (p->profile_type) {
        case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined:
            return strdup("unconfined");
        case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost:
            return srv_pathf("localhost/%s", p->localhost_ref ? p->localhost_ref : "");
        default:
            return strdup("runtime/default");
        }
    }
    if (deprecated && *deprecated)
        return strdup(!strcmp(deprecated, "docker/default") ? "runtime/default" : deprecated);
    return strdup("runtime/default");
}
