/* crispd configuration: defaults, strict TOML loading, validation and output.
 *
 * One table of fields drives everything: loading (type and value checks with
 * file:line), cr_config_validate (the same checks, for values set by flags),
 * the commented TOML dump and the JSON dump, so the four cannot drift apart. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "config.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>

#include "cleanup.h"
#include "toml.h"

#ifndef CRISP_LIBEXECDIR
#define CRISP_LIBEXECDIR "/usr/local/libexec/crisp"
#endif

/* ---- the field table ---- */

enum field_kind { F_STR, F_INT, F_STRV, F_BOOL };

enum field_check {
    C_ANY,
    C_ABS,          /* absolute path */
    C_ABS_OR_EMPTY, /* absolute path or "" */
    C_LOG_LEVEL,
    C_CGROUP,
    C_IP,
    C_NAME,         /* runtime handler name */
    C_OCI,          /* runtime type */
    C_RANGE,        /* integer in [min, max] */
};

struct field {
    const char *key;
    enum field_kind kind;
    enum field_check check;
    size_t off; /* in cr_config, or in cr_runtime_handler for handler fields */
    int64_t min, max;
    const char *doc;
};

#define STR(k, m, c, d) { k, F_STR, c, offsetof(cr_config, m), 0, 0, d }
#define INT(k, m, lo, hi, d) { k, F_INT, C_RANGE, offsetof(cr_config, m), lo, hi, d }
#define STRV(k, m, c, d) { k, F_STRV, c, offsetof(cr_config, m), 0, 0, d }
#define BOOL(k, m, d) { k, F_BOOL, C_ANY, offsetof(cr_config, m), 0, 0, d }
#define HSTR(k, m, c, d) { k, F_STR, c, offsetof(cr_runtime_handler, m), 0, 0, d }

static const struct field crisp_fields[] = {
    STR("listen", listen, C_ABS,
        "Unix socket serving the CRI gRPC API (what kubelet's --container-runtime-endpoint points at)."),
    STR("root", root, C_ABS,
        "Directory for state kept across reboots: image layers, image records, pod and container records."),
    STR("runroot", runroot, C_ABS,
        "Directory for state that dies with the boot: exit files, pinned network namespaces, monitor sockets."),
    STR("log_level", log_level, C_LOG_LEVEL,
        "Least severe messages that get logged: error, warn, info or debug."),
    INT("threads", threads, 1, 256, "Threads serving gRPC calls, 1 to 256."),
    INT("shutdown_timeout", shutdown_timeout, 1, 86400,
        "Seconds calls still in flight get to finish after SIGTERM before crispd exits."),
};

static const struct field stream_fields[] = {
    STR("address", stream_address, C_IP,
        "IP address of the exec/attach/port-forward streaming server."),
    INT("port", stream_port, 0, 65535, "TCP port of the streaming server; 0 takes a free port at start."),
    INT("token_ttl", stream_token_ttl, 1, 86400,
        "Seconds the URL an Exec, Attach or PortForward call returns stays usable (each is single-use)."),
    INT("idle_timeout", stream_idle_timeout, 1, 604800,
        "Seconds a streaming session may pass with no data either way before it is closed."),
};

static const struct field metrics_fields[] = {
    BOOL("enable", metrics_enable, "Serve crispd's own Prometheus metrics over HTTP at /metrics."),
    STR("address", metrics_address, C_IP, "IP address of the metrics endpoint."),
    INT("port", metrics_port, 0, 65535, "TCP port of the metrics endpoint; 0 takes a free port at start."),
};

static const struct field runtime_fields[] = {
    STR("default_runtime", default_runtime, C_NAME,
        "Runtime handler used for pods that do not name one (must be one of the handlers below)."),
    STR("cgroup_manager", cgroup_manager, C_CGROUP,
        "Who creates container cgroups: cgroupfs (crisp writes the cgroup tree itself) or systemd."),
    STR("monitor_path", monitor_path, C_ABS,
        "crisp-monitor binary: one runs beside each container and holds its stdio, log and exit code."),
    STR("pause_image", pause_image, C_ANY,
        "Image for the pod infra container; empty uses the built-in pause process, which needs no pull."),
    STR("pause_command", pause_command, C_ABS,
        "Built-in pause binary, run as the pod infra process when pause_image is empty."),
    STR("hooks_dir", hooks_dir, C_ABS_OR_EMPTY,
        "Folder of OCI hook files (oci-hooks(5) JSON) added to every container whose conditions match; empty: none."),
};

static const struct field handler_fields[] = {
    HSTR("runtime_path", runtime_path, C_ABS_OR_EMPTY,
         "OCI runtime binary; empty looks the handler's name up in PATH when crispd starts."),
    HSTR("runtime_root", runtime_root, C_ABS_OR_EMPTY,
         "State directory handed to the runtime as --root; empty means <runroot>/<handler name>."),
    HSTR("runtime_type", runtime_type, C_OCI,
         "How the runtime is driven; \"oci\" (a runc-compatible command line) is the only type."),
};

static const struct field image_fields[] = {
    STR("registries_conf", registries_conf, C_ABS,
        "containers-registries.conf(5) file: unqualified-search registries, mirrors, blocked registries."),
    STR("registries_conf_dir", registries_conf_dir, C_ABS,
        "Directory of registries.conf drop-ins, applied after registries_conf."),
    STR("signature_policy", signature_policy, C_ABS,
        "containers-policy.json(5) file deciding which images may be pulled."),
    STR("auth_file", auth_file, C_ABS_OR_EMPTY,
        "Registry credentials in containers-auth.json(5) format; empty uses only those sent with a pull."),
    INT("max_parallel_downloads", max_parallel_downloads, 1, 256,
        "Layers of one image downloaded at the same time."),
    INT("pull_progress_timeout", pull_progress_timeout, 1, 86400,
        "Seconds a pull may go without receiving any data before it fails."),
};

static const struct field network_fields[] = {
    STR("cni_config_dir", cni_config_dir, C_ABS, "Directory holding the CNI network configuration for pods."),
    STRV("cni_plugin_dirs", cni_plugin_dirs, C_ABS, "Directories searched, in order, for CNI plugin binaries."),
};

struct section {
    const char *path;   /* dotted TOML path */
    const char *key;    /* key inside [crisp]; NULL for [crisp] itself */
    const struct field *fields;
    size_t n;
    const char *doc;
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct section sections[] = {
    { "crisp", NULL, crisp_fields, N(crisp_fields), "The daemon." },
    { "crisp.stream", "stream", stream_fields, N(stream_fields),
      "Streaming server for exec, attach and port-forward sessions." },
    { "crisp.metrics", "metrics", metrics_fields, N(metrics_fields),
      "crispd's own Prometheus metrics endpoint." },
    { "crisp.runtime", "runtime", runtime_fields, N(runtime_fields),
      "Container execution.  Runtime handlers follow as [crisp.runtime.runtimes.<name>] tables." },
    { "crisp.image", "image", image_fields, N(image_fields), "Image pulls and storage." },
    { "crisp.network", "network", network_fields, N(network_fields), "Pod networking through CNI." },
};

#define RUNTIMES_PATH "crisp.runtime.runtimes"

/* ---- small helpers ---- */

static char **field_str(void *base, const struct field *f) { return (char **)((char *)base + f->off); }
static const char *field_cstr(const void *base, const struct field *f)
{
    const char *s = *(char *const *)((const char *)base + f->off);
    return s ? s : "";
}
static int64_t *field_int(void *base, const struct field *f) { return (int64_t *)((char *)base + f->off); }
static char ***field_strv(void *base, const struct field *f) { return (char ***)((char *)base + f->off); }
static bool *field_bool(void *base, const struct field *f) { return (bool *)((char *)base + f->off); }
static bool field_cbool(const void *base, const struct field *f) { return *(const bool *)((const char *)base + f->off); }

static bool valid_name(const char *s)
{
    return cr_toml_bare_key(s); /* [A-Za-z0-9_-]+ */
}

/* Why s is not acceptable for check, or NULL when it is. */
static const char *str_problem(enum field_check check, const char *s)
{
    switch (check) {
    case C_ABS:
        return s[0] == '/' ? NULL : "is not an absolute path";
    case C_ABS_OR_EMPTY:
        return !s[0] || s[0] == '/' ? NULL : "is not an absolute path (or empty)";
    case C_LOG_LEVEL:
        return !strcmp(s, "error") || !strcmp(s, "warn") || !strcmp(s, "info") || !strcmp(s, "debug")
                   ? NULL
                   : "is not one of error, warn, info, debug";
    case C_CGROUP:
        return !strcmp(s, "cgroupfs") || !strcmp(s, "systemd") ? NULL : "is not one of cgroupfs, systemd";
    case C_IP: {
        unsigned char addr[16];
        return inet_pton(AF_INET, s, addr) == 1 || inet_pton(AF_INET6, s, addr) == 1 ? NULL
                                                                                         : "is not an IP address";
    }
    case C_NAME:
        return valid_name(s) ? NULL : "is not a valid runtime handler name (letters, digits, '_' and '-' only)";
    case C_OCI:
        return !strcmp(s, "oci") ? NULL : "is not a supported runtime type (only \"oci\")";
    default:
        return NULL;
    }
}

/* prefix + "." + key, the key quoted when it cannot be bare (as a literal
 * string when possible: messages put the whole path in double quotes). */
static char *join_key(const char *prefix, const char *key)
{
    char *out = NULL;
    int r;
    const char *dot = *prefix ? "." : "";
    if (cr_toml_bare_key(key)) {
        r = asprintf(&out, "%s%s%s", prefix, dot, key);
    } else if (!strchr(key, '\'')) {
        r = asprintf(&out, "%s%s'%s'", prefix, dot, key);
    } else {
        size_t n = strlen(key);
        _cleanup_free_ char *q = malloc(2 * n + 1);
        if (!q)
            return NULL;
        char *w = q;
        for (const char *p = key; *p; p++) {
            if (*p == '"' || *p == '\\')
                *w++ = '\\';
            *w++ = *p;
        }
        *w = '\0';
        r = asprintf(&out, "%s%s\"%s\"", prefix, dot, q);
    }
    return r < 0 ? NULL : out;
}

static char **strv_dup(char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    char **out = calloc(n + 1, sizeof(*out));
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        out[i] = strdup(v[i]);
        if (!out[i]) {
            cr_strvfree(out);
            return NULL;
        }
    }
    return out;
}

int cr_config_set_str(char **field, const char *value)
{
    char *s = strdup(value ? value : "");
    if (!s)
        return -1;
    free(*field);
    *field = s;
    return 0;
}

/* ---- handlers ---- */

static cr_runtime_handler *find_runtime(const cr_config *c, const char *name)
{
    for (size_t i = 0; i < c->n_runtimes; i++)
        if (c->runtimes[i].name && strcmp(c->runtimes[i].name, name) == 0)
            return &c->runtimes[i];
    return NULL;
}

const cr_runtime_handler *cr_config_runtime(const cr_config *c, const char *name)
{
    return c && name ? find_runtime(c, name) : NULL;
}

static void handler_clear(cr_runtime_handler *h)
{
    free(h->name);
    free(h->runtime_path);
    free(h->runtime_root);
    free(h->runtime_type);
}

int cr_config_set_runtime(cr_config *c, const char *name, const char *path, const char *root,
                          const char *type)
{
    if (!c || !name)
        return -1;
    cr_runtime_handler h = {
        .name = strdup(name),
        .runtime_path = strdup(path ? path : ""),
        .runtime_root = strdup(root ? root : ""),
        .runtime_type = strdup(type ? type : "oci"),
    };
    if (!h.name || !h.runtime_path || !h.runtime_root || !h.runtime_type) {
        handler_clear(&h);
        return -1;
    }
    cr_runtime_handler *old = find_runtime(c, name);
    if (old) {
        handler_clear(old);
        *old = h;
        return 0;
    }
    cr_runtime_handler *v = realloc(c->runtimes, (c->n_runtimes + 1) * sizeof(*v));
    if (!v) {
        handler_clear(&h);
        return -1;
    }
    c->runtimes = v;
    c->runtimes[c->n_runtimes++] = h;
    return 0;
}

/* Handlers ordered by name, for output; heap array of pointers into c. */
static int cmp_handler(const void *a, const void *b)
{
    const cr_runtime_handler *x = *(const cr_runtime_handler *const *)a;
    const cr_runtime_handler *y = *(const cr_runtime_handler *const *)b;
    return strcmp(x->name ? x->name : "", y->name ? y->name : "");
}

static const cr_runtime_handler **sorted_handlers(const cr_config *c)
{
    const cr_runtime_handler **v = calloc(c->n_runtimes + 1, sizeof(*v));
    if (!v)
        return NULL;
    for (size_t i = 0; i < c->n_runtimes; i++)
        v[i] = &c->runtimes[i];
    qsort(v, c->n_runtimes, sizeof(*v), cmp_handler);
    return v;
}

/* ---- defaults ---- */

cr_config *cr_config_new_default(void)
{
    cr_config *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    static const char *const plugin_dirs[] = { "/opt/cni/bin", "/usr/lib/cni", NULL };
    bool ok = cr_config_set_str(&c->listen, "/run/crisp/crisp.sock") == 0 &&
              cr_config_set_str(&c->root, "/var/lib/crisp") == 0 &&
              cr_config_set_str(&c->runroot, "/run/crisp") == 0 &&
              cr_config_set_str(&c->log_level, "info") == 0 &&
              cr_config_set_str(&c->stream_address, "127.0.0.1") == 0 &&
              cr_config_set_str(&c->metrics_address, "127.0.0.1") == 0 &&
              cr_config_set_str(&c->default_runtime, "runc") == 0 &&
              cr_config_set_str(&c->cgroup_manager, "cgroupfs") == 0 &&
              cr_config_set_str(&c->monitor_path, CRISP_LIBEXECDIR "/crisp-monitor") == 0 &&
              cr_config_set_str(&c->pause_image, "") == 0 &&
              cr_config_set_str(&c->pause_command, CRISP_LIBEXECDIR "/crisp-pause") == 0 &&
              cr_config_set_str(&c->hooks_dir, "/usr/share/containers/oci/hooks.d") == 0 &&
              cr_config_set_str(&c->registries_conf, "/etc/containers/registries.conf") == 0 &&
              cr_config_set_str(&c->registries_conf_dir, "/etc/containers/registries.conf.d") == 0 &&
              cr_config_set_str(&c->signature_policy, "/etc/containers/policy.json") == 0 &&
              cr_config_set_str(&c->auth_file, "") == 0 &&
              cr_config_set_str(&c->cni_config_dir, "/etc/cni/net.d") == 0 &&
              (c->cni_plugin_dirs = strv_dup((char *const *)plugin_dirs)) != NULL &&
              cr_config_set_runtime(c, "runc", "", "", "oci") == 0;
    c->threads = 8;
    c->shutdown_timeout = 10;
    c->stream_port = 0;
    c->stream_token_ttl = 60;
    c->stream_idle_timeout = 14400;
    c->metrics_enable = false;
    c->metrics_port = 9090;
    c->max_parallel_downloads = 3;
    c->pull_progress_timeout = 60;

    /* crun is offered when installed; its path is recorded since the
     * directory it was found in need not be on crispd's PATH. */
    static const char *const crun_paths[] = {
        "/usr/bin/crun", "/usr/sbin/crun", "/usr/local/bin/crun", "/usr/local/sbin/crun",
    };
    for (size_t i = 0; ok && i < N(crun_paths); i++) {
        struct stat st;
        if (stat(crun_paths[i], &st) == 0 && S_ISREG(st.st_mode) && access(crun_paths[i], X_OK) == 0) {
            ok = cr_config_set_runtime(c, "crun", crun_paths[i], "", "oci") == 0;
            break;
        }
    }
    if (!ok) {
        cr_config_free(c);
        return NULL;
    }
    return c;
}

void cr_config_free(cr_config *c)
{
    if (!c)
        return;
    for (size_t s = 0; s < N(sections); s++) {
        for (size_t i = 0; i < sections[s].n; i++) {
            const struct field *f = &sections[s].fields[i];
            if (f->kind == F_STR)
                free(*field_str(c, f));
            else if (f->kind == F_STRV)
                cr_strvfree(*field_strv(c, f));
        }
    }
    for (size_t i = 0; i < c->n_runtimes; i++)
        handler_clear(&c->runtimes[i]);
    free(c->runtimes);
    free(c);
}

/* ---- loading ---- */

/* Files are applied in two passes over the parsed tree: the first only
 * checks, the second only writes, so a bad file leaves the config as it was. */
struct loader {
    cr_config *c;
    const char *file;
    bool apply;
    cr_err **err;
};

static int lerr(struct loader *L, const cr_toml *v, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int lerr(struct loader *L, const cr_toml *v, const char *fmt, ...)
{
    char *what = NULL;
    va_list ap;
    va_start(ap, fmt);
    int r = vasprintf(&what, fmt, ap);
    va_end(ap);
    cr_err_set(L->err, CR_INVALID_ARGUMENT, "%s:%d: %s", L->file, cr_toml_line(v), r < 0 ? "out of memory" : what);
    if (r >= 0)
        free(what);
    return -1;
}

static int lerr_oom(struct loader *L) { return cr_err_set(L->err, CR_RESOURCE_EXHAUSTED, "%s: out of memory", L->file); }

static int expect_type(struct loader *L, const cr_toml *v, const char *path, cr_toml_type t)
{
    if (cr_toml_type_of(v) == t)
        return 0;
    return lerr(L, v, "%s: expected %s, got %s", path, cr_toml_type_name(t), cr_toml_type_name(cr_toml_type_of(v)));
}

/* One key's value: check it, and in the apply pass store it in base. */
static int load_field(struct loader *L, void *base, const struct field *f, const char *path, const cr_toml *v)
{
    if (f->kind == F_STR) {
        if (expect_type(L, v, path, CR_TOML_STRING) < 0)
            return -1;
        const char *s = cr_toml_string(v);
        const char *why = str_problem(f->check, s);
        if (why)
            return lerr(L, v, "%s: \"%s\" %s", path, s, why);
        if (L->apply && cr_config_set_str(field_str(base, f), s) < 0)
            return lerr_oom(L);
        return 0;
    }
    if (f->kind == F_INT) {
        if (expect_type(L, v, path, CR_TOML_INT) < 0)
            return -1;
        int64_t n = cr_toml_int(v);
        if (n < f->min || n > f->max)
            return lerr(L, v, "%s: %" PRId64 " is out of range (%" PRId64 "..%" PRId64 ")", path, n, f->min, f->max);
        if (L->apply)
            *field_int(base, f) = n;
        return 0;
    }
    if (f->kind == F_BOOL) {
        if (expect_type(L, v, path, CR_TOML_BOOL) < 0)
            return -1;
        if (L->apply)
            *field_bool(base, f) = cr_toml_bool(v);
        return 0;
    }
    /* F_STRV */
    if (cr_toml_type_of(v) != CR_TOML_ARRAY)
        return lerr(L, v, "%s: expected an array of strings, got %s", path, cr_toml_type_name(cr_toml_type_of(v)));
    size_t n = cr_toml_array_len(v);
    if (n == 0)
        return lerr(L, v, "%s: must list at least one directory", path);
    for (size_t i = 0; i < n; i++) {
        const cr_toml *item = cr_toml_array_at(v, i);
        char ipath[256];
        snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
        if (expect_type(L, item, ipath, CR_TOML_STRING) < 0)
            return -1;
        const char *why = str_problem(f->check, cr_toml_string(item));
        if (why)
            return lerr(L, item, "%s: \"%s\" %s", ipath, cr_toml_string(item), why);
    }
    if (!L->apply)
        return 0;
    char **strv = calloc(n + 1, sizeof(*strv));
    if (!strv)
        return lerr_oom(L);
    for (size_t i = 0; i < n; i++) {
        strv[i] = strdup(cr_toml_string(cr_toml_array_at(v, i)));
        if (!strv[i]) {
            cr_strvfree(strv);
            return lerr_oom(L);
        }
    }
    char ***dst = field_strv(base, f);
    cr_strvfree(*dst);
    *dst = strv;
    return 0;
}

static const struct field *find_field(const struct field *fields, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(fields[i].key, key) == 0)
            return &fields[i];
    return NULL;
}

static int unknown_key(struct loader *L, const char *prefix, const char *key, const cr_toml *v)
{
    _cleanup_free_ char *path = join_key(prefix, key);
    if (!path)
        return lerr_oom(L);
    return lerr(L, v, "unknown key \"%s\"", path);
}

/* [crisp.runtime.runtimes]: one table per handler. */
static int load_runtimes(struct loader *L, const cr_toml *t)
{
    if (expect_type(L, t, RUNTIMES_PATH, CR_TOML_TABLE) < 0)
        return -1;
    for (size_t i = 0; i < cr_toml_table_size(t); i++) {
        const char *name = cr_toml_table_key(t, i);
        const cr_toml *ht = cr_toml_table_value(t, i);
        _cleanup_free_ char *hpath = join_key(RUNTIMES_PATH, name);
        if (!hpath)
            return lerr_oom(L);
        if (!valid_name(name))
            return lerr(L, ht, "%s: \"%s\" %s", RUNTIMES_PATH, name, str_problem(C_NAME, name));
        if (expect_type(L, ht, hpath, CR_TOML_TABLE) < 0)
            return -1;
        cr_runtime_handler *h = NULL;
        if (L->apply) {
            h = find_runtime(L->c, name);
            if (!h) {
                if (cr_config_set_runtime(L->c, name, "", "", "oci") < 0)
                    return lerr_oom(L);
                h = find_runtime(L->c, name);
            }
        }
        for (size_t j = 0; j < cr_toml_table_size(ht); j++) {
            const char *key = cr_toml_table_key(ht, j);
            const cr_toml *v = cr_toml_table_value(ht, j);
            const struct field *f = find_field(handler_fields, N(handler_fields), key);
            if (!f)
                return unknown_key(L, hpath, key, v);
            _cleanup_free_ char *path = join_key(hpath, key);
            if (!path)
                return lerr_oom(L);
            if (load_field(L, h, f, path, v) < 0)
                return -1;
        }
    }
    return 0;
}

static int load_section(struct loader *L, const struct section *sec, const cr_toml *t)
{
    if (expect_type(L, t, sec->path, CR_TOML_TABLE) < 0)
        return -1;
    for (size_t i = 0; i < cr_toml_table_size(t); i++) {
        const char *key = cr_toml_table_key(t, i);
        const cr_toml *v = cr_toml_table_value(t, i);
        const struct field *f = find_field(sec->fields, sec->n, key);
        if (f) {
            _cleanup_free_ char *path = join_key(sec->path, key);
            if (!path)
                return lerr_oom(L);
            if (load_field(L, L->c, f, path, v) < 0)
                return -1;
            continue;
        }
        if (sec == &sections[0]) {
            const struct section *sub = NULL;
            for (size_t s = 1; s < N(sections); s++)
                if (strcmp(sections[s].key, key) == 0)
                    sub = &sections[s];
            if (sub) {
                if (load_section(L, sub, v) < 0)
                    return -1;
                continue;
            }
        }
        if (sec->key && strcmp(sec->key, "runtime") == 0 && strcmp(key, "runtimes") == 0) {
            if (load_runtimes(L, v) < 0)
                return -1;
            continue;
        }
        return unknown_key(L, sec->path, key, v);
    }
    return 0;
}

static int load_root(struct loader *L, const cr_toml *root)
{
    for (size_t i = 0; i < cr_toml_table_size(root); i++) {
        const char *key = cr_toml_table_key(root, i);
        const cr_toml *v = cr_toml_table_value(root, i);
        if (strcmp(key, "crisp") != 0)
            return unknown_key(L, "", key, v);
        if (load_section(L, &sections[0], v) < 0)
            return -1;
    }
    return 0;
}

int cr_config_load_file(cr_config *c, const char *path, bool missing_ok, cr_err **err)
{
    cr_err *perr = NULL;
    cr_toml *root = cr_toml_parse_file(path, &perr);
    if (!root) {
        if (missing_ok && perr && perr->code == CR_NOT_FOUND) {
            cr_err_free(perr);
            return 0;
        }
        if (err && !*err)
            *err = perr;
        else
            cr_err_free(perr);
        return -1;
    }
    struct loader L = { .c = c, .file = path, .apply = false, .err = err };
    int r = load_root(&L, root);
    if (r == 0) {
        L.apply = true;
        r = load_root(&L, root);
    }
    cr_toml_free(root);
    return r;
}

static int errno_code(int e)
{
    if (e == ENOENT)
        return CR_NOT_FOUND;
    if (e == EACCES || e == EPERM)
        return CR_PERMISSION_DENIED;
    return CR_INTERNAL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int cr_config_load_dir(cr_config *c, const char *dir, cr_err **err)
{
    _cleanup_closedir_ DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        return cr_err_errno(err, errno_code(errno), errno, "open config directory %s", dir);
    }
    _cleanup_strv_ char **names = NULL;
    size_t n = 0;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno)
                return cr_err_errno(err, errno_code(errno), errno, "read config directory %s", dir);
            break;
        }
        size_t len = strlen(de->d_name);
        /* like the shell glob *.conf: no hidden files */
        if (de->d_name[0] == '.' || len <= 5 || strcmp(de->d_name + len - 5, ".conf") != 0)
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, 0) < 0) {
            if (errno == ENOENT) /* removed meanwhile, or a dangling link */
                continue;
            return cr_err_errno(err, errno_code(errno), errno, "stat %s/%s", dir, de->d_name);
        }
        if (!S_ISREG(st.st_mode))
            continue;
        char **nv = realloc(names, (n + 2) * sizeof(*nv));
        if (!nv)
            return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "read config directory %s: out of memory", dir);
        names = nv;
        names[n] = strdup(de->d_name);
        names[n + 1] = NULL;
        if (!names[n])
            return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "read config directory %s: out of memory", dir);
        n++;
    }
    if (n)
        qsort(names, n, sizeof(*names), cmp_str);
    for (size_t i = 0; i < n; i++) {
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/%s", dir, names[i]) < 0) {
            path = NULL;
            return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "read config directory %s: out of memory", dir);
        }
        if (cr_config_load_file(c, path, true, err) < 0)
            return -1;
    }
    return 0;
}

int cr_config_load(cr_config *c, const char *path, const char *dir, cr_err **err)
{
    if (path && cr_config_load_file(c, path, true, err) < 0)
        return -1;
    if (dir && cr_config_load_dir(c, dir, err) < 0)
        return -1;
    return 0;
}

/* ---- validation ---- */

static int check_value(const void *base, const struct field *f, const char *path, cr_err **err)
{
    if (f->kind == F_STR) {
        const char *s = *(char *const *)((const char *)base + f->off);
        if (!s)
            return cr_err_set(err, CR_INVALID_ARGUMENT, "%s: not set", path);
        const char *why = str_problem(f->check, s);
        return why ? cr_err_set(err, CR_INVALID_ARGUMENT, "%s: \"%s\" %s", path, s, why) : 0;
    }
    if (f->kind == F_INT) {
        int64_t n = *(const int64_t *)((const char *)base + f->off);
        if (n < f->min || n > f->max)
            return cr_err_set(err, CR_INVALID_ARGUMENT, "%s: %" PRId64 " is out of range (%" PRId64 "..%" PRId64 ")",
                              path, n, f->min, f->max);
        return 0;
    }
    if (f->kind == F_BOOL)
        return 0; /* any value is valid */
    char *const *v = *(char **const *)((const char *)base + f->off);
    if (!v || !v[0])
        return cr_err_set(err, CR_INVALID_ARGUMENT, "%s: must list at least one directory", path);
    for (size_t i = 0; v[i]; i++) {
        const char *why = str_problem(f->check, v[i]);
        if (why)
            return cr_err_set(err, CR_INVALID_ARGUMENT, "%s[%zu]: \"%s\" %s", path, i, v[i], why);
    }
    return 0;
}

int cr_config_validate(cr_config *c, cr_err **err)
{
    for (size_t s = 0; s < N(sections); s++) {
        for (size_t i = 0; i < sections[s].n; i++) {
            const struct field *f = &sections[s].fields[i];
            _cleanup_free_ char *path = join_key(sections[s].path, f->key);
            if (!path)
                return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "validate config: out of memory");
            if (check_value(c, f, path, err) < 0)
                return -1;
        }
    }
    for (size_t i = 0; i < c->n_runtimes; i++) {
        const cr_runtime_handler *h = &c->runtimes[i];
        if (!h->name || !valid_name(h->name))
            return cr_err_set(err, CR_INVALID_ARGUMENT, "%s: \"%s\" %s", RUNTIMES_PATH, h->name ? h->name : "",
                              str_problem(C_NAME, h->name ? h->name : ""));
        for (size_t j = 0; j < N(handler_fields); j++) {
            _cleanup_free_ char *hpath = join_key(RUNTIMES_PATH, h->name);
            _cleanup_free_ char *path = hpath ? join_key(hpath, handler_fields[j].key) : NULL;
            if (!path)
                return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "validate config: out of memory");
            if (check_value(h, &handler_fields[j], path, err) < 0)
                return -1;
        }
    }
    if (!find_runtime(c, c->default_runtime)) {
        _cleanup_free_ const cr_runtime_handler **sorted = sorted_handlers(c);
        size_t len = 1;
        for (size_t i = 0; i < c->n_runtimes; i++)
            len += strlen(c->runtimes[i].name) + 2;
        _cleanup_free_ char *known = calloc(1, len);
        if (!sorted || !known)
            return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "validate config: out of memory");
        for (size_t i = 0; i < c->n_runtimes; i++) {
            if (i)
                strcat(known, ", ");
            strcat(known, sorted[i]->name);
        }
        return cr_err_set(err, CR_INVALID_ARGUMENT,
                          "crisp.runtime.default_runtime: \"%s\" is not a configured runtime handler (known: %s)",
                          c->default_runtime, c->n_runtimes ? known : "none");
    }
    /* derived values, only once everything is known to be valid */
    size_t rlen = strlen(c->runroot);
    while (rlen > 1 && c->runroot[rlen - 1] == '/')
        rlen--;
    for (size_t i = 0; i < c->n_runtimes; i++) {
        cr_runtime_handler *h = &c->runtimes[i];
        if (h->runtime_root[0])
            continue;
        char *root = NULL;
        if (asprintf(&root, "%.*s/%s", (int)(rlen == 1 ? 0 : rlen), c->runroot, h->name) < 0)
            return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "validate config: out of memory");
        free(h->runtime_root);
        h->runtime_root = root;
    }
    return 0;
}

/* ---- output ---- */

static void toml_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\b': fputs("\\b", out); break;
        case '\t': fputs("\\t", out); break;
        case '\n': fputs("\\n", out); break;
        case '\f': fputs("\\f", out); break;
        case '\r': fputs("\\r", out); break;
        default:
            if (*p < 0x20 || *p == 0x7F)
                fprintf(out, "\\u%04X", *p);
            else
                fputc(*p, out);
        }
    }
    fputc('"', out);
}

static void toml_field(FILE *out, const void *base, const struct field *f)
{
    fprintf(out, "# %s\n%s = ", f->doc, f->key);
    if (f->kind == F_STR) {
        toml_string(out, field_cstr(base, f));
    } else if (f->kind == F_INT) {
        fprintf(out, "%" PRId64, *(const int64_t *)((const char *)base + f->off));
    } else if (f->kind == F_BOOL) {
        fputs(field_cbool(base, f) ? "true" : "false", out);
    } else {
        char *const *v = *(char **const *)((const char *)base + f->off);
        fputc('[', out);
        for (size_t i = 0; v && v[i]; i++) {
            if (i)
                fputs(", ", out);
            toml_string(out, v[i]);
        }
        fputc(']', out);
    }
    fputc('\n', out);
}

int cr_config_write_toml(const cr_config *c, FILE *out)
{
    _cleanup_free_ const cr_runtime_handler **sorted = sorted_handlers(c);
    if (!sorted)
        return -1;
    fputs("# crisp configuration (effective values).  Every key is optional; crispd reads\n"
          "# " CR_DEFAULT_CONFIG ", then " CR_DEFAULT_CONFIG_DIR "/*.conf in name order.\n",
          out);
    for (size_t s = 0; s < N(sections); s++) {
        const struct section *sec = &sections[s];
        fprintf(out, "\n# %s\n[%s]\n", sec->doc, sec->path);
        for (size_t i = 0; i < sec->n; i++)
            toml_field(out, c, &sec->fields[i]);
        if (sec->key && strcmp(sec->key, "runtime") == 0) {
            for (size_t i = 0; i < c->n_runtimes; i++) {
                const cr_runtime_handler *h = sorted[i];
                fputs("\n# Runtime handler selected by a pod's RuntimeHandler ", out);
                toml_string(out, h->name);
                fprintf(out, ".\n[%s.", RUNTIMES_PATH);
                if (cr_toml_bare_key(h->name))
                    fputs(h->name, out);
                else
                    toml_string(out, h->name);
                fputs("]\n", out);
                for (size_t j = 0; j < N(handler_fields); j++)
                    toml_field(out, h, &handler_fields[j]);
            }
        }
    }
    fflush(out);
    return ferror(out) ? -1 : 0;
}

static bool gen_str(yajl_gen g, const char *s)
{
    s = s ? s : "";
    return yajl_gen_string(g, (const unsigned char *)s, strlen(s)) == yajl_gen_status_ok;
}

static bool gen_field(yajl_gen g, const void *base, const struct field *f)
{
    if (!gen_str(g, f->key))
        return false;
    if (f->kind == F_STR)
        return gen_str(g, field_cstr(base, f));
    if (f->kind == F_INT)
        return yajl_gen_integer(g, *(const int64_t *)((const char *)base + f->off)) == yajl_gen_status_ok;
    if (f->kind == F_BOOL)
        return yajl_gen_bool(g, field_cbool(base, f)) == yajl_gen_status_ok;
    char *const *v = *(char **const *)((const char *)base + f->off);
    if (yajl_gen_array_open(g) != yajl_gen_status_ok)
        return false;
    for (size_t i = 0; v && v[i]; i++)
        if (!gen_str(g, v[i]))
            return false;
    return yajl_gen_array_close(g) == yajl_gen_status_ok;
}

static bool gen_section(yajl_gen g, const cr_config *c, const struct section *sec,
                        const cr_runtime_handler **sorted)
{
    if (yajl_gen_map_open(g) != yajl_gen_status_ok)
        return false;
    for (size_t i = 0; i < sec->n; i++)
        if (!gen_field(g, c, &sec->fields[i]))
            return false;
    if (sec == &sections[0]) {
        for (size_t s = 1; s < N(sections); s++)
            if (!gen_str(g, sections[s].key) || !gen_section(g, c, &sections[s], sorted))
                return false;
    }
    if (sec->key && strcmp(sec->key, "runtime") == 0) {
        if (!gen_str(g, "runtimes") || yajl_gen_map_open(g) != yajl_gen_status_ok)
            return false;
        for (size_t i = 0; i < c->n_runtimes; i++) {
            if (!gen_str(g, sorted[i]->name) || yajl_gen_map_open(g) != yajl_gen_status_ok)
                return false;
            for (size_t j = 0; j < N(handler_fields); j++)
                if (!gen_field(g, sorted[i], &handler_fields[j]))
                    return false;
            if (yajl_gen_map_close(g) != yajl_gen_status_ok)
                return false;
        }
        if (yajl_gen_map_close(g) != yajl_gen_status_ok)
            return false;
    }
    return yajl_gen_map_close(g) == yajl_gen_status_ok;
}

char *cr_config_to_json(const cr_config *c)
{
    _cleanup_free_ const cr_runtime_handler **sorted = sorted_handlers(c);
    if (!sorted)
        return NULL;
    yajl_gen g = yajl_gen_alloc(NULL);
    if (!g)
        return NULL;
    yajl_gen_config(g, yajl_gen_validate_utf8, 1);
    char *out = NULL;
    if (yajl_gen_map_open(g) == yajl_gen_status_ok && gen_str(g, "crisp") &&
        gen_section(g, c, &sections[0], sorted) && yajl_gen_map_close(g) == yajl_gen_status_ok) {
        const unsigned char *buf;
        size_t len;
        if (yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok)
            out = strndup((const char *)buf, len);
    }
    yajl_gen_free(g);
    return out;
}
