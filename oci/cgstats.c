/* Cgroup statistics readers (see cgstats.h for the figures and their sources).
 * Every cgroup folder is opened once (O_PATH) and its files read with openat
 * into a stack buffer: no allocation per file, and a cgroup removed halfway
 * is told apart from a missing file by looking at its folder again. */
#include "cgstats.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/cleanup.h"

/* memory.limit_in_bytes reads PAGE_COUNTER_MAX pages (9223372036854771712 on
 * 4 KiB pages) when unlimited; anything this large is "no limit". */
#define CG_V1_UNLIMITED (UINT64_C(1) << 62)

/* Largest cgroup file read here: memory.stat (under 2 KiB today). */
#define CG_FILE_MAX 16384

const char *oci_cg_layout_name(oci_cg_layout l)
{
    switch (l) {
    case OCI_CG_V1: return "v1";
    case OCI_CG_HYBRID: return "hybrid";
    case OCI_CG_V2: return "v2";
    default: return "unknown";
    }
}

static const char *root_or_default(const char *root)
{
    return root && *root ? root : OCI_CG_DEFAULT_ROOT;
}

static bool path_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool path_exists_at(const char *root, const char *a, const char *b)
{
    char p[PATH_MAX];
    if (snprintf(p, sizeof(p), "%s/%s%s%s", root, a, b ? "/" : "", b ? b : "") >= (int)sizeof(p))
        return false;
    return access(p, F_OK) == 0;
}

/* Names a v1 controller may be mounted under (cpu and cpuacct are often
 * co-mounted, with symlinks for the single names). */
static const char *const v1_memory_names[] = {"memory", NULL};
static const char *const v1_cpuacct_names[] = {"cpuacct", "cpu,cpuacct", "cpuacct,cpu", NULL};
static const char *const v1_cpu_names[] = {"cpu", "cpu,cpuacct", "cpuacct,cpu", NULL};
static const char *const v1_pids_names[] = {"pids", NULL};

/* The folder name under root of a v1 controller's hierarchy, or NULL. */
static const char *v1_controller(const char *root, const char *const *names)
{
    for (; *names; names++) {
        char p[PATH_MAX];
        if (snprintf(p, sizeof(p), "%s/%s", root, *names) < (int)sizeof(p) && path_is_dir(p))
            return *names;
    }
    return NULL;
}

int oci_cg_detect(const char *root, oci_cg_layout *out, cr_err **err)
{
    root = root_or_default(root);
    *out = OCI_CG_UNKNOWN;
    if (path_exists_at(root, "cgroup.controllers", NULL)) {
        *out = OCI_CG_V2;
        return 0;
    }
    if (path_exists_at(root, "unified", "cgroup.controllers")) {
        *out = OCI_CG_HYBRID;
        return 0;
    }
    if (v1_controller(root, v1_memory_names) || v1_controller(root, v1_cpuacct_names) ||
        v1_controller(root, v1_pids_names)) {
        *out = OCI_CG_V1;
        return 0;
    }
    return cr_err_set(err, CR_FAILED_PRECONDITION,
                      "no cgroup hierarchy at %s (neither cgroup.controllers nor a v1 controller folder)",
                      root);
}

/* ---- cgroups path resolution ---- */

static int append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t nc = (*cap ? *cap : 64);
        while (nc < *len + n + 1)
            nc *= 2;
        char *nb = realloc(*buf, nc);
        if (!nb)
            return -1;
        *buf = nb;
        *cap = nc;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

/* "a-b-c.slice" -> "a.slice/a-b.slice/a-b-c.slice" appended to buf (with a
 * leading '/' when buf is not empty); "-.slice" is the root (nothing). */
static int expand_slice(const char *slice, char **buf, size_t *len, size_t *cap, cr_err **err)
{
    size_t n = strlen(slice);
    const size_t sfx = strlen(".slice");
    if (n <= sfx || strcmp(slice + n - sfx, ".slice") || strchr(slice, '/'))
        return cr_err_set(err, CR_INVALID_ARGUMENT, "invalid systemd slice name \"%s\"", slice);
    if (!strcmp(slice, "-.slice"))
        return 0;
    size_t name_len = n - sfx;
    /* Components between dashes must be non-empty: "-a", "a--b", "a-" are invalid. */
    if (slice[0] == '-' || slice[name_len - 1] == '-' || memmem(slice, name_len, "--", 2))
        return cr_err_set(err, CR_INVALID_ARGUMENT, "invalid systemd slice name \"%s\"", slice);
    for (size_t i = 0; i <= name_len; i++) {
        if (i < name_len && slice[i] != '-')
            continue;
        if ((*len && append(buf, len, cap, "/", 1) < 0) || append(buf, len, cap, slice, i) < 0 ||
            append(buf, len, cap, ".slice", sfx) < 0)
            return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "expand slice %s: out of memory", slice);
    }
    return 0;
}

static int resolve_systemd(const char *path, const char *c1, const char *c2, char **rel, cr_err **err)
{
    _cleanup_free_ char *slice = strndup(path, (size_t)(c1 - path));
    _cleanup_free_ char *prefix = strndup(c1 + 1, (size_t)(c2 - c1 - 1));
    const char *name = c2 + 1;
    if (!slice || !prefix)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "resolve %s: out of memory", path);
    if (!*name || strchr(name, '/') || strchr(prefix, '/'))
        return cr_err_set(err, CR_INVALID_ARGUMENT, "invalid systemd cgroups path \"%s\"", path);
    _cleanup_free_ char *buf = NULL;
    size_t len = 0, cap = 0;
    if (expand_slice(*slice ? slice : "system.slice", &buf, &len, &cap, err) < 0)
        return cr_err_prefix(err, "cgroups path %s", path);
    /* runc: a name ending in .slice is a slice unit; anything else becomes
     * the scope "<prefix>-<name>.scope". */
    size_t nl = strlen(name);
    bool is_slice = nl > 6 && !strcmp(name + nl - 6, ".slice");
    if ((len && append(&buf, &len, &cap, "/", 1) < 0) ||
        (!is_slice && *prefix &&
         (append(&buf, &len, &cap, prefix, strlen(prefix)) < 0 || append(&buf, &len, &cap, "-", 1) < 0)) ||
        append(&buf, &len, &cap, name, nl) < 0 ||
        (!is_slice && append(&buf, &len, &cap, ".scope", 6) < 0))
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "resolve %s: out of memory", path);
    *rel = cr_steal(&buf);
    return 0;
}

int oci_cg_resolve(const char *cgroups_path, char **rel, cr_err **err)
{
    *rel = NULL;
    const char *p = cgroups_path ? cgroups_path : "";
    const char *c1 = strchr(p, ':');
    const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (p[0] != '/' && c1 && c2 && !strchr(c2 + 1, ':'))
        return resolve_systemd(p, c1, c2, rel, err);

    /* cgroupfs: drop leading, trailing and doubled slashes; refuse "..". */
    size_t n = strlen(p);
    _cleanup_free_ char *out = malloc(n + 1);
    if (!out)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "resolve %s: out of memory", p);
    size_t o = 0;
    for (const char *s = p; *s;) {
        while (*s == '/')
            s++;
        if (!*s)
            break;
        const char *e = strchrnul(s, '/');
        size_t cl = (size_t)(e - s);
        if ((cl == 2 && !memcmp(s, "..", 2)))
            return cr_err_set(err, CR_INVALID_ARGUMENT, "cgroups path \"%s\": \"..\" is not allowed", p);
        if (!(cl == 1 && *s == '.')) {
            if (o)
                out[o++] = '/';
            memcpy(out + o, s, cl);
            o += cl;
        }
        s = e;
    }
    out[o] = '\0';
    *rel = cr_steal(&out);
    return 0;
}

/* ---- file reading ---- */

/* One opened cgroup folder. */
typedef struct cg_dir {
    int fd;
    char path[PATH_MAX];
} cg_dir;

static void cg_dir_close(cg_dir *d)
{
    if (d->fd >= 0)
        close(d->fd);
    d->fd = -1;
}

/* Open <root>/<ctrl>/<rel> (ctrl NULL: <root>/<rel>).  0, or a negative errno. */
static int cg_dir_open(cg_dir *d, const char *root, const char *ctrl, const char *rel)
{
    d->fd = -1;
    int n = snprintf(d->path, sizeof(d->path), "%s%s%s%s%s", root, ctrl ? "/" : "", ctrl ? ctrl : "",
                     *rel ? "/" : "", rel);
    if (n < 0 || n >= (int)sizeof(d->path))
        return -ENAMETOOLONG;
    d->fd = open(d->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    return d->fd < 0 ? -errno : 0;
}

/* Reading context: what to say in errors, and how to tell "gone". */
typedef struct cg_ctx {
    const char *rel;
    const cg_dir *anchor;   /* the folder whose absence means the cgroup is gone */
} cg_ctx;

static bool cg_gone(const cg_ctx *c)
{
    return access(c->anchor->path, F_OK) < 0 && errno == ENOENT;
}

static int err_gone(const cg_ctx *c, cr_err **err)
{
    return cr_err_set(err, CR_NOT_FOUND, "cgroup %s: not found (%s is gone)", *c->rel ? c->rel : "/",
                      c->anchor->path);
}

enum { CG_REQUIRED = 0, CG_OPTIONAL = 1 };

/* Read dir/name into buf (NUL-terminated).  1 when read; 0 when an optional
 * file is absent (or its feature off: PSI disabled reads EOPNOTSUPP); -1 with
 * err set otherwise (NOT_FOUND when the cgroup itself went away). */
static int cg_read(const cg_ctx *c, const cg_dir *d, const char *name, int optional, char *buf,
                   size_t size, cr_err **err)
{
    int fd = openat(d->fd, name, O_RDONLY | O_CLOEXEC);
    int e = fd < 0 ? errno : 0;
    size_t len = 0;
    if (fd >= 0) {
        while (len + 1 < size) {
            ssize_t r = read(fd, buf + len, size - 1 - len);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0) {
                e = errno;
                break;
            }
            if (r == 0)
                break;
            len += (size_t)r;
        }
        close(fd);
    }
    buf[len] = '\0';
    if (!e)
        return 1;
    /* kernfs answers ENODEV for a file of a removed cgroup still open. */
    if (e == ENODEV || ((e == ENOENT) && cg_gone(c)))
        return err_gone(c, err);
    if (optional && (e == ENOENT || e == EOPNOTSUPP))
        return 0;
    if (e == ENOENT)
        return cr_err_set(err, CR_FAILED_PRECONDITION, "cgroup %s: %s/%s is missing (controller not enabled?)",
                          *c->rel ? c->rel : "/", d->path, name);
    return cr_err_errno(err, CR_INTERNAL, e, "cgroup %s: read %s/%s", *c->rel ? c->rel : "/", d->path, name);
}

/* Strict unsigned decimal, trailing whitespace allowed.  0 or -1. */
static int parse_u64(const char *s, const char **end, uint64_t *out)
{
    if (*s < '0' || *s > '9')
        return -1;
    uint64_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    if (end)
        *end = s;
    return 0;
}

static bool only_space(const char *s)
{
    while (*s == ' ' || *s == '\n' || *s == '\t')
        s++;
    return !*s;
}

static int bad_format(const cg_ctx *c, const cg_dir *d, const char *name, cr_err **err)
{
    return cr_err_set(err, CR_INTERNAL, "cgroup %s: %s/%s: unexpected content", *c->rel ? c->rel : "/",
                      d->path, name);
}

/* A file holding one number, or "max" (*unlimited = true; NULL refuses it).
 * Returns like cg_read. */
static int cg_read_u64(const cg_ctx *c, const cg_dir *d, const char *name, int optional, uint64_t *out,
                       bool *unlimited, cr_err **err)
{
    char buf[128];
    int r = cg_read(c, d, name, optional, buf, sizeof(buf), err);
    if (r <= 0)
        return r;
    if (unlimited)
        *unlimited = false;
    const char *end;
    if (unlimited && !strncmp(buf, "max", 3) && only_space(buf + 3)) {
        *unlimited = true;
        *out = 0;
        return 1;
    }
    if (parse_u64(buf, &end, out) < 0 || !only_space(end))
        return bad_format(c, d, name, err);
    return 1;
}

/* "key value" lines (memory.stat, cpu.stat, cpuacct.stat). */
typedef struct kv_want {
    const char *key;
    uint64_t *dst;
    bool found;
} kv_want;

static int parse_kv(const cg_ctx *c, const cg_dir *d, const char *name, char *buf, kv_want *w, size_t nw,
                    cr_err **err)
{
    for (char *line = buf; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        char *sp = strchr(line, ' ');
        if (sp) {
            *sp = '\0';
            for (size_t i = 0; i < nw; i++) {
                if (w[i].found || strcmp(line, w[i].key))
                    continue;
                const char *end;
                if (parse_u64(sp + 1, &end, w[i].dst) < 0 || !only_space(end))
                    return bad_format(c, d, name, err);
                w[i].found = true;
                break;
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    return 0;
}

/* Every wanted key found, or INTERNAL naming the first missing one. */
static int kv_require(const cg_ctx *c, const cg_dir *d, const char *name, const kv_want *w, size_t nw,
                      cr_err **err)
{
    for (size_t i = 0; i < nw; i++)
        if (!w[i].found)
            return cr_err_set(err, CR_INTERNAL, "cgroup %s: %s/%s has no %s", *c->rel ? c->rel : "/",
                              d->path, name, w[i].key);
    return 0;
}

/* Kernel PSI averages are fixed point "12.34": parsed by hand, so the
 * process locale's decimal separator cannot matter. */
static int parse_fixed(const char *s, const char **end, double *out)
{
    uint64_t ip;
    if (parse_u64(s, &s, &ip) < 0)
        return -1;
    double v = (double)ip, scale = 0.1;
    if (*s == '.') {
        s++;
        if (*s < '0' || *s > '9')
            return -1;
        for (; *s >= '0' && *s <= '9'; s++, scale /= 10)
            v += (*s - '0') * scale;
    }
    *out = v;
    *end = s;
    return 0;
}

/* "some avg10=0.00 avg60=0.00 avg300=0.00 total=0" (+ a "full" line). */
static int parse_psi_line(const char *s, oci_cg_psi_data *out)
{
    static const char *const keys[] = {"avg10=", "avg60=", "avg300=", "total="};
    double *dst[] = {&out->avg10, &out->avg60, &out->avg300};
    for (int i = 0; i < 4; i++) {
        while (*s == ' ')
            s++;
        size_t kl = strlen(keys[i]);
        if (strncmp(s, keys[i], kl))
            return -1;
        s += kl;
        if (i < 3) {
            if (parse_fixed(s, &s, dst[i]) < 0)
                return -1;
        } else {
            uint64_t us;
            if (parse_u64(s, &s, &us) < 0)
                return -1;
            /* The kernel counts microseconds; CRI's PsiData.Total is nanoseconds. */
            out->total_ns = us > UINT64_MAX / 1000 ? UINT64_MAX : us * 1000;
        }
    }
    return only_space(s) ? 0 : -1;
}

static int cg_read_psi(const cg_ctx *c, const cg_dir *d, const char *name, oci_cg_psi *out, cr_err **err)
{
    memset(out, 0, sizeof(*out));
    char buf[512];
    int r = cg_read(c, d, name, CG_OPTIONAL, buf, sizeof(buf), err);
    if (r <= 0)
        return r;
    bool some = false;
    for (char *line = buf; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (!strncmp(line, "some ", 5)) {
            if (parse_psi_line(line + 5, &out->some) < 0)
                return bad_format(c, d, name, err);
            some = true;
        } else if (!strncmp(line, "full ", 5)) {
            if (parse_psi_line(line + 5, &out->full) < 0)
                return bad_format(c, d, name, err);
            out->has_full = true;
        } else if (*line) {
            return bad_format(c, d, name, err);
        }
        line = nl ? nl + 1 : NULL;
    }
    if (!some)
        return bad_format(c, d, name, err);
    out->present = true;
    return 1;
}

static int cg_read_all_psi(const cg_ctx *c, const cg_dir *d, oci_cg_stats *s, cr_err **err)
{
    if (cg_read_psi(c, d, "cpu.pressure", &s->cpu_psi, err) < 0 ||
        cg_read_psi(c, d, "memory.pressure", &s->memory_psi, err) < 0 ||
        cg_read_psi(c, d, "io.pressure", &s->io_psi, err) < 0)
        return -1;
    return 0;
}

static void stamp(oci_cg_stats *s)
{
    struct timespec rt, mono;
    clock_gettime(CLOCK_REALTIME, &rt);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    s->timestamp_ns = (int64_t)rt.tv_sec * 1000000000 + rt.tv_nsec;
    s->monotonic_ns = (int64_t)mono.tv_sec * 1000000000 + mono.tv_nsec;
}

static uint64_t sub0(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

/* Figures derived the same way in both layouts. */
static void derive(oci_cg_stats *s)
{
    s->mem_working_set = sub0(s->mem_usage, s->mem_inactive_file);
    s->mem_available = s->has_mem_limit ? sub0(s->mem_limit, s->mem_working_set) : 0;
    s->swap_available = s->has_swap && s->has_swap_limit ? sub0(s->swap_limit, s->swap_usage) : 0;
}

/* ---- v2 ---- */

static int read_v2(const char *root, const char *rel, oci_cg_stats *s, cr_err **err)
{
    cg_dir d __attribute__((cleanup(cg_dir_close))) = {.fd = -1};
    int r = cg_dir_open(&d, root, NULL, rel);
    cg_ctx c = {.rel = rel, .anchor = &d};
    if (r == -ENOENT || r == -ENOTDIR)
        return err_gone(&c, err);
    if (r < 0)
        return cr_err_errno(err, CR_INTERNAL, -r, "cgroup %s: open %s", *rel ? rel : "/", d.path);

    char buf[CG_FILE_MAX];
    /* cpu.stat: usage_usec, user_usec, system_usec always; nr_periods,
     * nr_throttled, throttled_usec only with the cpu controller enabled. */
    uint64_t usage_us = 0, user_us = 0, sys_us = 0, periods = 0, throttled = 0, throttled_us = 0;
    kv_want cpu[] = {{"usage_usec", &usage_us}, {"user_usec", &user_us}, {"system_usec", &sys_us},
                     {"nr_periods", &periods}, {"nr_throttled", &throttled}, {"throttled_usec", &throttled_us}};
    stamp(s);
    if (cg_read(&c, &d, "cpu.stat", CG_REQUIRED, buf, sizeof(buf), err) < 0 ||
        parse_kv(&c, &d, "cpu.stat", buf, cpu, 6, err) < 0 || kv_require(&c, &d, "cpu.stat", cpu, 1, err) < 0)
        return -1;
    s->cpu_usage_ns = usage_us * 1000;
    if (cpu[1].found && cpu[2].found) {
        s->has_cpu_user_system = true;
        s->cpu_user_ns = user_us * 1000;
        s->cpu_system_ns = sys_us * 1000;
    }
    if (cpu[3].found && cpu[4].found && cpu[5].found) {
        s->has_cpu_throttling = true;
        s->cpu_periods = periods;
        s->cpu_throttled_periods = throttled;
        s->cpu_throttled_ns = throttled_us * 1000;
    }

    bool unlimited;
    if (cg_read_u64(&c, &d, "memory.current", CG_REQUIRED, &s->mem_usage, NULL, err) < 0)
        return -1;
    kv_want mem[] = {{"anon", &s->mem_rss}, {"file", &s->mem_cache}, {"inactive_file", &s->mem_inactive_file},
                     {"pgfault", &s->mem_page_faults}, {"pgmajfault", &s->mem_major_page_faults}};
    if (cg_read(&c, &d, "memory.stat", CG_REQUIRED, buf, sizeof(buf), err) < 0 ||
        parse_kv(&c, &d, "memory.stat", buf, mem, 5, err) < 0 || kv_require(&c, &d, "memory.stat", mem, 5, err) < 0)
        return -1;
    if (cg_read_u64(&c, &d, "memory.max", CG_REQUIRED, &s->mem_limit, &unlimited, err) < 0)
        return -1;
    s->has_mem_limit = !unlimited;

    r = cg_read_u64(&c, &d, "memory.swap.current", CG_OPTIONAL, &s->swap_usage, NULL, err);
    if (r < 0)
        return -1;
    if (r > 0) {
        s->has_swap = true;
        r = cg_read_u64(&c, &d, "memory.swap.max", CG_OPTIONAL, &s->swap_limit, &unlimited, err);
        if (r < 0)
            return -1;
        s->has_swap_limit = r > 0 && !unlimited;
    }

    r = cg_read_u64(&c, &d, "pids.current", CG_OPTIONAL, &s->pids_current, NULL, err);
    if (r < 0)
        return -1;
    if (r > 0) {
        s->has_pids = true;
        r = cg_read_u64(&c, &d, "pids.max", CG_OPTIONAL, &s->pids_limit, &unlimited, err);
        if (r < 0)
            return -1;
        s->has_pids_limit = r > 0 && !unlimited;
    }
    return cg_read_all_psi(&c, &d, s, err);
}

/* ---- v1 and hybrid ---- */

/* Open a controller's folder for rel: 1 opened; 0 the controller is not
 * mounted or the cgroup is not in it; -1 (err) on other failures. */
static int open_v1(cg_dir *d, const char *root, const char *ctrl, const char *rel, cr_err **err)
{
    if (!ctrl)
        return 0;
    int r = cg_dir_open(d, root, ctrl, rel);
    if (r == -ENOENT || r == -ENOTDIR)
        return 0;
    if (r < 0)
        return cr_err_errno(err, CR_INTERNAL, -r, "cgroup %s: open %s", *rel ? rel : "/", d->path);
    return 1;
}

static int read_v1(const char *root, oci_cg_layout layout, const char *rel, oci_cg_stats *s, cr_err **err)
{
    const char *mem_ctrl = v1_controller(root, v1_memory_names);
    const char *acct_ctrl = v1_controller(root, v1_cpuacct_names);
    if (!mem_ctrl)
        return cr_err_set(err, CR_FAILED_PRECONDITION, "no memory cgroup controller mounted under %s", root);
    if (!acct_ctrl)
        return cr_err_set(err, CR_FAILED_PRECONDITION, "no cpuacct cgroup controller mounted under %s", root);

    cg_dir mem __attribute__((cleanup(cg_dir_close))) = {.fd = -1};
    cg_dir acct __attribute__((cleanup(cg_dir_close))) = {.fd = -1};
    cg_dir cpu __attribute__((cleanup(cg_dir_close))) = {.fd = -1};
    cg_dir pids __attribute__((cleanup(cg_dir_close))) = {.fd = -1};
    cg_dir uni __attribute__((cleanup(cg_dir_close))) = {.fd = -1};
    cg_ctx c = {.rel = rel, .anchor = &mem};

    int r = open_v1(&mem, root, mem_ctrl, rel, err);
    if (r < 0)
        return -1;
    if (r == 0)
        return err_gone(&c, err);
    r = open_v1(&acct, root, acct_ctrl, rel, err);
    if (r < 0)
        return -1;
    if (r == 0) {
        if (cg_gone(&c))
            return err_gone(&c, err);
        return cr_err_set(err, CR_FAILED_PRECONDITION, "cgroup %s: not in the cpuacct hierarchy (no %s)",
                          *rel ? rel : "/", acct.path);
    }

    char buf[CG_FILE_MAX];
    stamp(s);
    if (cg_read_u64(&c, &acct, "cpuacct.usage", CG_REQUIRED, &s->cpu_usage_ns, NULL, err) < 0)
        return -1;
    /* User and system time: nanoseconds in cpuacct.usage_user/usage_sys
     * (Linux 4.7+), else USER_HZ ticks in cpuacct.stat. */
    int ru = cg_read_u64(&c, &acct, "cpuacct.usage_user", CG_OPTIONAL, &s->cpu_user_ns, NULL, err);
    if (ru < 0)
        return -1;
    int rs = ru > 0 ? cg_read_u64(&c, &acct, "cpuacct.usage_sys", CG_OPTIONAL, &s->cpu_system_ns, NULL, err) : 0;
    if (rs < 0)
        return -1;
    if (ru > 0 && rs > 0) {
        s->has_cpu_user_system = true;
    } else {
        uint64_t user = 0, sys = 0;
        kv_want st[] = {{"user", &user}, {"system", &sys}};
        r = cg_read(&c, &acct, "cpuacct.stat", CG_OPTIONAL, buf, sizeof(buf), err);
        if (r < 0 || (r > 0 && parse_kv(&c, &acct, "cpuacct.stat", buf, st, 2, err) < 0))
            return -1;
        long hz = sysconf(_SC_CLK_TCK);
        if (r > 0 && st[0].found && st[1].found && hz > 0) {
            s->has_cpu_user_system = true;
            s->cpu_user_ns = user * (1000000000 / (uint64_t)hz);
            s->cpu_system_ns = sys * (1000000000 / (uint64_t)hz);
        }
    }
    r = open_v1(&cpu, root, v1_controller(root, v1_cpu_names), rel, err);
    if (r < 0)
        return -1;
    if (r > 0) {
        uint64_t periods = 0, throttled = 0, throttled_ns = 0;
        kv_want st[] = {{"nr_periods", &periods}, {"nr_throttled", &throttled}, {"throttled_time", &throttled_ns}};
        r = cg_read(&c, &cpu, "cpu.stat", CG_OPTIONAL, buf, sizeof(buf), err);
        if (r < 0 || (r > 0 && parse_kv(&c, &cpu, "cpu.stat", buf, st, 3, err) < 0))
            return -1;
        if (r > 0 && st[0].found && st[1].found && st[2].found) {
            s->has_cpu_throttling = true;
            s->cpu_periods = periods;
            s->cpu_throttled_periods = throttled;
            s->cpu_throttled_ns = throttled_ns;
        }
    }

    if (cg_read_u64(&c, &mem, "memory.usage_in_bytes", CG_REQUIRED, &s->mem_usage, NULL, err) < 0)
        return -1;
    /* The total_ figures include descendant cgroups (a pod's containers). */
    kv_want mst[] = {{"total_rss", &s->mem_rss}, {"total_cache", &s->mem_cache},
                     {"total_inactive_file", &s->mem_inactive_file}, {"total_pgfault", &s->mem_page_faults},
                     {"total_pgmajfault", &s->mem_major_page_faults}};
    if (cg_read(&c, &mem, "memory.stat", CG_REQUIRED, buf, sizeof(buf), err) < 0 ||
        parse_kv(&c, &mem, "memory.stat", buf, mst, 5, err) < 0 ||
        kv_require(&c, &mem, "memory.stat", mst, 5, err) < 0)
        return -1;
    if (cg_read_u64(&c, &mem, "memory.limit_in_bytes", CG_REQUIRED, &s->mem_limit, NULL, err) < 0)
        return -1;
    s->has_mem_limit = s->mem_limit < CG_V1_UNLIMITED;
    if (!s->has_mem_limit)
        s->mem_limit = 0;

    /* memsw.* (memory + swap) exist only with swap accounting on. */
    uint64_t memsw_usage = 0, memsw_limit = 0;
    r = cg_read_u64(&c, &mem, "memory.memsw.usage_in_bytes", CG_OPTIONAL, &memsw_usage, NULL, err);
    if (r < 0)
        return -1;
    if (r > 0) {
        s->has_swap = true;
        s->swap_usage = sub0(memsw_usage, s->mem_usage);
        r = cg_read_u64(&c, &mem, "memory.memsw.limit_in_bytes", CG_OPTIONAL, &memsw_limit, NULL, err);
        if (r < 0)
            return -1;
        if (r > 0 && memsw_limit < CG_V1_UNLIMITED && s->has_mem_limit) {
            s->has_swap_limit = true;
            s->swap_limit = sub0(memsw_limit, s->mem_limit);
        }
    }

    r = open_v1(&pids, root, v1_controller(root, v1_pids_names), rel, err);
    if (r < 0)
        return -1;
    if (r > 0) {
        bool unlimited;
        r = cg_read_u64(&c, &pids, "pids.current", CG_OPTIONAL, &s->pids_current, NULL, err);
        if (r < 0)
            return -1;
        if (r > 0) {
            s->has_pids = true;
            r = cg_read_u64(&c, &pids, "pids.max", CG_OPTIONAL, &s->pids_limit, &unlimited, err);
            if (r < 0)
                return -1;
            s->has_pids_limit = r > 0 && !unlimited;
        }
    }

    /* Hybrid: runc and systemd mirror the cgroup in the unified tree, where
     * the kernel keeps its pressure figures. */
    if (layout == OCI_CG_HYBRID) {
        r = open_v1(&uni, root, "unified", rel, err);
        if (r < 0)
            return -1;
        if (r > 0 && cg_read_all_psi(&c, &uni, s, err) < 0)
            return -1;
    }
    return 0;
}

int oci_cg_read_stats(const char *root, oci_cg_layout layout, const char *rel, oci_cg_stats *out,
                      cr_err **err)
{
    memset(out, 0, sizeof(*out));
    root = root_or_default(root);
    rel = rel ? rel : "";
    while (*rel == '/')
        rel++;
    /* rel comes from oci_cg_resolve; still, never climb out of the hierarchy. */
    for (const char *s = rel; *s; s = strchrnul(s, '/'), s += *s == '/')
        if (s[0] == '.' && s[1] == '.' && (s[2] == '/' || !s[2]))
            return cr_err_set(err, CR_INVALID_ARGUMENT, "cgroup %s: \"..\" is not allowed", rel);
    if (layout == OCI_CG_UNKNOWN && oci_cg_detect(root, &layout, err) < 0)
        return -1;
    out->layout = layout;
    int r = layout == OCI_CG_V2 ? read_v2(root, rel, out, err) : read_v1(root, layout, rel, out, err);
    if (r < 0) {
        memset(out, 0, sizeof(*out));
        return -1;
    }
    derive(out);
    return 0;
}

int oci_cg_read_stats_path(const char *root, oci_cg_layout layout, const char *cgroups_path,
                           oci_cg_stats *out, cr_err **err)
{
    _cleanup_free_ char *rel = NULL;
    if (oci_cg_resolve(cgroups_path, &rel, err) < 0) {
        memset(out, 0, sizeof(*out));
        return -1;
    }
    return oci_cg_read_stats(root, layout, rel, out, err);
}

bool oci_cg_nano_cores(uint64_t prev_usage_ns, int64_t prev_ts_ns, uint64_t cur_usage_ns, int64_t cur_ts_ns,
                       uint64_t *out)
{
    *out = 0;
    if (cur_ts_ns <= prev_ts_ns || cur_usage_ns < prev_usage_ns)
        return false;
    unsigned __int128 v = (unsigned __int128)(cur_usage_ns - prev_usage_ns) * 1000000000u /
                          (uint64_t)(cur_ts_ns - prev_ts_ns);
    *out = v > UINT64_MAX ? UINT64_MAX : (uint64_t)v;
    return true;
}

bool oci_cg_stats_nano_cores(const oci_cg_stats *prev, const oci_cg_stats *cur, uint64_t *out)
{
    return oci_cg_nano_cores(prev->cpu_usage_ns, prev->monotonic_ns, cur->cpu_usage_ns, cur->monotonic_ns, out);
}
