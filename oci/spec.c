/* OCI runtime-spec builder: oci_spec_input -> config.json.
 *
 * Defaults follow CRI-O/containerd: the capability set below, the usual
 * /proc, /dev, /sys mounts, masked and read-only /proc and /sys paths, a
 * deny-all device cgroup with the standard character devices allowed, and
 * crisp's RuntimeDefault seccomp profile (seccomp.c). */
#include "oci.h"
#include "internal.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/capability.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>

#include "lib/cleanup.h"
#include "lib/fs.h"

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static const int default_caps[] = {
    CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FSETID,           CAP_FOWNER, CAP_SETGID,
    CAP_SETUID, CAP_SETPCAP,     CAP_NET_BIND_SERVICE, CAP_KILL,
};

static const char *const masked_paths[] = {
    "/proc/acpi",          "/proc/asound",     "/proc/kcore",       "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/proc/scsi",          "/sys/firmware",    "/sys/devices/virtual/powercap", NULL,
};

static const char *const readonly_paths[] = {
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL,
};

/* ---- capabilities ---- */

/* "NET_ADMIN", "cap_net_admin", "CAP_NET_ADMIN" -> CAP_NET_ADMIN. */
static bool parse_cap(const char *name, int *out)
{
    const char *s = name;
    if (strncasecmp(s, "cap_", 4) == 0)
        s += 4;
    char buf[64] = "cap_";
    size_t n = 4;
    bool digits_only = true;
    if (!*s)
        return false;
    for (; *s; s++) {
        if (!isalnum((unsigned char)*s) && *s != '_')
            return false;
        if (!isdigit((unsigned char)*s))
            digits_only = false;
        if (n + 1 >= sizeof(buf))
            return false;
        buf[n++] = (char)tolower((unsigned char)*s);
    }
    buf[n] = '\0';
    if (digits_only) /* libcap takes numbers too; CRI wants names */
        return false;
    cap_value_t v;
    if (cap_from_name(buf, &v) != 0 || v < 0 || v >= 64)
        return false;
    *out = v;
    return true;
}

/* The OCI name of cap, or NULL when libcap has no name for it. */
static char *cap_oci_name(int cap)
{
    char *lc = cap_to_name(cap);
    if (!lc)
        return NULL;
    char *r = NULL;
    if (strncmp(lc, "cap_", 4) == 0) {
        r = strdup(lc);
        for (char *p = r; p && *p; p++)
            *p = (char)toupper((unsigned char)*p);
    }
    cap_free(lc);
    return r;
}

/* "All capabilities": those libcap names on this kernel, less any this
 * process's bounding set lacks (as containerd does for privileged
 * containers): the runtime cannot grant what crispd itself cannot hold, and
 * would fail with "unable to apply caps" (a VM or a nested container often
 * runs without CAP_SYS_RESOURCE or CAP_SYS_MODULE). */
static uint64_t all_caps_mask(void)
{
    int max = cap_max_bits();
    uint64_t m = 0;
    for (int c = 0; c < max && c < 64; c++) {
        if (cap_get_bound(c) == 0)
            continue;
        char *name = cap_oci_name(c);
        if (name)
            m |= 1ULL << c;
        free(name);
    }
    return m;
}

static bool is_all(const char *s) { return strcasecmp(s, "ALL") == 0; }

/* Append name to a ", "-separated list in *list (heap). */
static void list_append(char **list, const char *name)
{
    char *n = NULL;
    if (asprintf(&n, "%s%s%s", *list ? *list : "", *list ? ", " : "", name) >= 0) {
        free(*list);
        *list = n;
    }
}

static int compute_caps(const oci_spec_input *in, uint64_t *out, cr_err **err)
{
    _cleanup_free_ char *unknown = NULL;
    const char *const *lists[2] = { in->cap_add, in->cap_drop };
    for (int l = 0; l < 2; l++)
        for (const char *const *p = lists[l]; p && *p; p++) {
            int c;
            if (!is_all(*p) && !parse_cap(*p, &c))
                list_append(&unknown, *p);
        }
    if (unknown)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "unknown capabilities: %s", unknown);

    uint64_t all = all_caps_mask();
    if (in->privileged) {
        *out = all;
        return 0;
    }
    uint64_t caps = 0;
    for (size_t i = 0; i < sizeof(default_caps) / sizeof(default_caps[0]); i++)
        caps |= 1ULL << default_caps[i];
    /* ALL first, so that "add ALL, drop CHOWN" and "drop ALL, add CHOWN" work. */
    for (const char *const *p = in->cap_add; p && *p; p++)
        if (is_all(*p))
            caps = all;
    for (const char *const *p = in->cap_drop; p && *p; p++)
        if (is_all(*p))
            caps = 0;
    int c;
    for (const char *const *p = in->cap_add; p && *p; p++)
        if (!is_all(*p) && parse_cap(*p, &c))
            caps |= 1ULL << c;
    for (const char *const *p = in->cap_drop; p && *p; p++)
        if (!is_all(*p) && parse_cap(*p, &c))
            caps &= ~(1ULL << c);
    *out = caps;
    return 0;
}

static void emit_cap_list(oci_jw *w, const char *key, uint64_t caps)
{
    oci_jw_str(w, key);
    oci_jw_arr(w);
    for (int c = 0; c < 64; c++) {
        if (!((caps >> c) & 1))
            continue;
        char *name = cap_oci_name(c);
        if (name)
            oci_jw_str(w, name);
        free(name);
    }
    oci_jw_arr_end(w);
}

/* ---- sysctls ---- */

/* "net/ipv4/ip_forward" -> "net.ipv4.ip_forward" (a key whose first
 * separator is '/' uses '/' between parts and may hold '.' in a part, like
 * Kubernetes' "net/ipv4/conf/eth0.100/forwarding"). */
static void sysctl_normalize(char *key)
{
    size_t first = strcspn(key, "./");
    if (key[first] != '/')
        return;
    for (char *p = key; *p; p++) {
        if (*p == '/')
            *p = '.';
        else if (*p == '.')
            *p = '/';
    }
}

static bool sysctl_is_ipc(const char *key)
{
    return strncmp(key, "kernel.shm", 10) == 0 || strncmp(key, "kernel.msg", 10) == 0 ||
           strcmp(key, "kernel.sem") == 0 || strncmp(key, "fs.mqueue.", 10) == 0;
}

bool oci_sysctl_namespaced(const char *key)
{
    if (!key || !*key)
        return false;
    _cleanup_free_ char *k = strdup(key);
    if (!k)
        return false;
    sysctl_normalize(k);
    if (strncmp(k, "net.", 4) == 0)
        return k[4] != '\0';
    if (strncmp(k, "kernel.shm", 10) == 0 || strncmp(k, "kernel.msg", 10) == 0)
        return k[10] != '\0';
    if (strcmp(k, "kernel.sem") == 0)
        return true;
    if (strncmp(k, "fs.mqueue.", 10) == 0)
        return k[10] != '\0';
    return false;
}

typedef struct sysctl_kv {
    char *key;
    const char *value;
} sysctl_kv;

static void sysctls_free(sysctl_kv *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].key);
    free(v);
}

static int parse_sysctls(const oci_spec_input *in, sysctl_kv **out, size_t *n_out, cr_err **err)
{
    size_t n = 0;
    for (const char *const *p = in->sysctls; p && *p; p++)
        n++;
    *out = NULL;
    *n_out = 0;
    if (!n)
        return 0;
    sysctl_kv *v = calloc(n, sizeof(*v));
    if (!v)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "sysctls: out of memory");
    size_t k = 0;
    for (const char *const *p = in->sysctls; *p; p++) {
        const char *eq = strchr(*p, '=');
        if (!eq || eq == *p) {
            sysctls_free(v, k);
            return cr_err_set(err, CR_INVALID_ARGUMENT, "sysctl %s: not key=value", *p);
        }
        char *key = strndup(*p, (size_t)(eq - *p));
        if (!key) {
            sysctls_free(v, k);
            return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "sysctls: out of memory");
        }
        sysctl_normalize(key);
        const char *why = NULL;
        if (strcmp(key, "kernel.hostname") == 0 || strcmp(key, "kernel.domainname") == 0)
            why = "is not allowed: the hostname comes from the hostname field";
        else if (!oci_sysctl_namespaced(key))
            why = "is not namespaced";
        else if (strncmp(key, "net.", 4) == 0 && in->net.mode == OCI_NS_HOST)
            why = "is not allowed with the host network namespace";
        else if (sysctl_is_ipc(key) && in->ipc.mode == OCI_NS_HOST)
            why = "is not allowed with the host IPC namespace";
        if (why) {
            int r = cr_err_set(err, CR_INVALID_ARGUMENT, "sysctl %s %s", key, why);
            free(key);
            sysctls_free(v, k);
            return r;
        }
        /* A later setting of the same key wins. */
        size_t i;
        for (i = 0; i < k; i++)
            if (strcmp(v[i].key, key) == 0)
                break;
        if (i < k) {
            free(key);
            v[i].value = eq + 1;
        } else {
            v[k].key = key;
            v[k].value = eq + 1;
            k++;
        }
    }
    *out = v;
    *n_out = k;
    return 0;
}

/* ---- mounts ---- */

/* Paths equal up to repeated and trailing slashes. */
static bool path_eq(const char *a, const char *b)
{
    for (;;) {
        while (a[0] == '/' && (a[1] == '/' || a[1] == '\0'))
            a++;
        while (b[0] == '/' && (b[1] == '/' || b[1] == '\0'))
            b++;
        if (*a != *b)
            return false;
        if (!*a)
            return true;
        a++;
        b++;
    }
}

static bool opts_have(const char *const *opts, const char *o)
{
    for (const char *const *p = opts; p && *p; p++)
        if (strcmp(*p, o) == 0)
            return true;
    return false;
}

static void emit_mount(oci_jw *w, const char *dst, const char *type, const char *src,
                       const char *const *opts)
{
    oci_jw_map(w);
    oci_jw_kstr(w, "destination", dst);
    oci_jw_kstr(w, "type", type);
    oci_jw_kstr(w, "source", src);
    oci_jw_str(w, "options");
    oci_jw_arr(w);
    bool bind = strcmp(type, "bind") == 0;
    /* A bind without "bind"/"rbind" would be handed to mount(2) as fs type "bind". */
    if (bind && !opts_have(opts, "bind") && !opts_have(opts, "rbind"))
        oci_jw_str(w, "rbind");
    for (const char *const *p = opts; p && *p; p++)
        oci_jw_str(w, *p);
    oci_jw_arr_end(w);
    oci_jw_map_end(w);
}

static void emit_caller_mount(oci_jw *w, const oci_mount *m)
{
    const char *type = m->type && *m->type ? m->type : "bind";
    const char *src = m->source && *m->source ? m->source : type;
    emit_mount(w, m->destination, type, src, m->options);
}

static int check_mounts(const oci_spec_input *in, cr_err **err)
{
    if (in->n_mounts && !in->mounts)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "mounts: %zu mounts but no array", in->n_mounts);
    for (size_t i = 0; i < in->n_mounts; i++) {
        const oci_mount *m = &in->mounts[i];
        if (!m->destination || m->destination[0] != '/')
            return cr_err_set(err, CR_INVALID_ARGUMENT, "mount %s: destination must be an absolute path",
                              m->destination ? m->destination : "(null)");
        bool bind = !m->type || !*m->type || strcmp(m->type, "bind") == 0;
        if (bind && (!m->source || !*m->source))
            return cr_err_set(err, CR_INVALID_ARGUMENT, "mount %s: a bind mount needs a source",
                              m->destination);
    }
    return 0;
}

/* Index of the first caller mount on dst, or n_mounts. */
static size_t first_mount_on(const oci_spec_input *in, const char *dst)
{
    for (size_t i = 0; i < in->n_mounts; i++)
        if (path_eq(in->mounts[i].destination, dst))
            return i;
    return in->n_mounts;
}

typedef struct default_mount {
    const char *dst, *type, *src;
    const char *const *opts;
} default_mount;

static void emit_mounts(oci_jw *w, const oci_spec_input *in)
{
    static const char *const o_proc[] = { "nosuid", "noexec", "nodev", NULL };
    static const char *const o_dev[] = { "nosuid", "strictatime", "mode=755", "size=65536k", NULL };
    static const char *const o_pts[] = { "nosuid", "noexec", "newinstance", "ptmxmode=0666",
                                         "mode=0620", "gid=5", NULL };
    static const char *const o_shm[] = { "nosuid", "noexec", "nodev", "mode=1777", "size=65536k", NULL };
    static const char *const o_mqueue[] = { "nosuid", "noexec", "nodev", NULL };
    static const char *const o_mqueue_bind[] = { "rbind", "nosuid", "noexec", "nodev", NULL };
    static const char *const o_sys_ro[] = { "nosuid", "noexec", "nodev", "ro", NULL };
    static const char *const o_sys_rw[] = { "nosuid", "noexec", "nodev", NULL };
    static const char *const o_sys_bind[] = { "rbind", "nosuid", "noexec", "nodev", "ro", NULL };
    static const char *const o_cg_ro[] = { "nosuid", "noexec", "nodev", "relatime", "ro", NULL };
    static const char *const o_cg_rw[] = { "nosuid", "noexec", "nodev", "relatime", NULL };

    default_mount defs[7];
    size_t nd = 0;
    defs[nd++] = (default_mount){ "/proc", "proc", "proc", o_proc };
    defs[nd++] = (default_mount){ "/dev", "tmpfs", "tmpfs", o_dev };
    defs[nd++] = (default_mount){ "/dev/pts", "devpts", "devpts", o_pts };
    defs[nd++] = (default_mount){ "/dev/shm", "tmpfs", "shm", o_shm };
    /* The host's IPC namespace: its mqueue, as CRI-O does. */
    if (in->ipc.mode == OCI_NS_HOST)
        defs[nd++] = (default_mount){ "/dev/mqueue", "bind", "/dev/mqueue", o_mqueue_bind };
    else
        defs[nd++] = (default_mount){ "/dev/mqueue", "mqueue", "mqueue", o_mqueue };
    /* A new sysfs shows the network devices of the mounter's netns and
     * needs privilege over it: with the host's netns an unprivileged
     * container gets a read-only bind of the host's /sys instead. */
    if (in->privileged)
        defs[nd++] = (default_mount){ "/sys", "sysfs", "sysfs", o_sys_rw };
    else if (in->net.mode == OCI_NS_HOST)
        defs[nd++] = (default_mount){ "/sys", "bind", "/sys", o_sys_bind };
    else
        defs[nd++] = (default_mount){ "/sys", "sysfs", "sysfs", o_sys_ro };
    defs[nd++] = (default_mount){ "/sys/fs/cgroup", "cgroup", "cgroup", in->privileged ? o_cg_rw : o_cg_ro };

    oci_jw_str(w, "mounts");
    oci_jw_arr(w);
    /* The first caller mount on a default's destination takes its place
     * (so a replaced /dev still comes before /dev/pts); the rest follow. */
    for (size_t d = 0; d < nd; d++) {
        size_t i = first_mount_on(in, defs[d].dst);
        if (i < in->n_mounts)
            emit_caller_mount(w, &in->mounts[i]);
        else
            emit_mount(w, defs[d].dst, defs[d].type, defs[d].src, defs[d].opts);
    }
    for (size_t i = 0; i < in->n_mounts; i++) {
        bool replaced_default = false;
        for (size_t d = 0; d < nd && !replaced_default; d++)
            replaced_default = first_mount_on(in, defs[d].dst) == i;
        if (!replaced_default)
            emit_caller_mount(w, &in->mounts[i]);
    }
    oci_jw_arr_end(w);
}

/* ---- namespaces ---- */

static int check_ns(const char *name, const oci_ns *ns, cr_err **err)
{
    switch (ns->mode) {
    case OCI_NS_NEW:
    case OCI_NS_HOST:
        return 0;
    case OCI_NS_PATH:
        if (!ns->path || ns->path[0] != '/')
            return cr_err_set(err, CR_INVALID_ARGUMENT, "%s namespace: the path must be absolute, not %s",
                              name, ns->path ? ns->path : "(null)");
        return 0;
    }
    return cr_err_set(err, CR_INVALID_ARGUMENT, "%s namespace: unknown mode %d", name, (int)ns->mode);
}

static void emit_ns(oci_jw *w, const char *type, const oci_ns *ns)
{
    if (ns->mode == OCI_NS_HOST)
        return;
    oci_jw_map(w);
    oci_jw_kstr(w, "type", type);
    if (ns->mode == OCI_NS_PATH)
        oci_jw_kstr(w, "path", ns->path);
    oci_jw_map_end(w);
}

static bool cgroup2_unified(void)
{
    struct statfs sfs;
    return statfs("/sys/fs/cgroup", &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC;
}

/* ---- devices and resources ---- */

static void emit_device_rule(oci_jw *w, bool allow, const char *type, long major, long minor,
                             const char *access)
{
    oci_jw_map(w);
    oci_jw_kbool(w, "allow", allow);
    if (type)
        oci_jw_kstr(w, "type", type);
    if (major >= 0)
        oci_jw_kint(w, "major", major);
    if (minor >= 0)
        oci_jw_kint(w, "minor", minor);
    oci_jw_kstr(w, "access", access);
    oci_jw_map_end(w);
}

static void emit_device_list(oci_jw *w, bool privileged)
{
    if (privileged) {
        emit_device_rule(w, true, NULL, -1, -1, "rwm");
    } else {
        emit_device_rule(w, false, NULL, -1, -1, "rwm");
        emit_device_rule(w, true, "c", -1, -1, "m");   /* mknod of any device */
        emit_device_rule(w, true, "b", -1, -1, "m");
        emit_device_rule(w, true, "c", 1, 3, "rwm");   /* /dev/null */
        emit_device_rule(w, true, "c", 1, 5, "rwm");   /* /dev/zero */
        emit_device_rule(w, true, "c", 1, 7, "rwm");   /* /dev/full */
        emit_device_rule(w, true, "c", 1, 8, "rwm");   /* /dev/random */
        emit_device_rule(w, true, "c", 1, 9, "rwm");   /* /dev/urandom */
        emit_device_rule(w, true, "c", 5, 0, "rwm");   /* /dev/tty */
        emit_device_rule(w, true, "c", 5, 1, "rwm");   /* /dev/console */
        emit_device_rule(w, true, "c", 5, 2, "rwm");   /* /dev/ptmx */
        emit_device_rule(w, true, "c", 136, -1, "rwm"); /* /dev/pts/N */
    }
}

/* A host device, resolved. */
typedef struct dev_info {
    const char *path;       /* in the container */
    const char *type;       /* "c" or "b" */
    long major, minor;
    unsigned mode;
    uid_t uid;
    gid_t gid;
    const char *access;     /* cgroup permissions */
} dev_info;

static int resolve_devices(const oci_spec_input *in, dev_info **out, cr_err **err)
{
    *out = NULL;
    if (!in->n_devices)
        return 0;
    if (!in->devices)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "devices: %zu devices but no array", in->n_devices);
    dev_info *v = calloc(in->n_devices, sizeof(*v));
    if (!v)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "devices: out of memory");
    for (size_t i = 0; i < in->n_devices; i++) {
        const oci_device *d = &in->devices[i];
        const char *host = d->host_path;
        if (!host || !*host) {
            free(v);
            return cr_err_set(err, CR_INVALID_ARGUMENT, "device %s: no host path",
                              d->container_path ? d->container_path : "(null)");
        }
        const char *ctr = d->container_path && *d->container_path ? d->container_path : host;
        if (ctr[0] != '/') {
            free(v);
            return cr_err_set(err, CR_INVALID_ARGUMENT, "device %s: the container path %s is not absolute",
                              host, ctr);
        }
        const char *perm = d->permissions && *d->permissions ? d->permissions : "rwm";
        if (strspn(perm, "rwm") != strlen(perm)) {
            free(v);
            return cr_err_set(err, CR_INVALID_ARGUMENT, "device %s: permissions %s: not a subset of rwm", host,
                              perm);
        }
        struct stat st;
        if (stat(host, &st) < 0) {
            int e = errno;
            free(v);
            if (e == ENOENT || e == ENOTDIR)
                return cr_err_set(err, CR_NOT_FOUND, "device %s: not found", host);
            return cr_err_errno(err, CR_INTERNAL, e, "device %s", host);
        }
        if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode)) {
            free(v);
            return cr_err_set(err, CR_INVALID_ARGUMENT, "device %s: not a character or block device", host);
        }
        v[i] = (dev_info){ .path = ctr, .type = S_ISCHR(st.st_mode) ? "c" : "b",
                           .major = (long)major(st.st_rdev), .minor = (long)minor(st.st_rdev),
                           .mode = st.st_mode & 07777, .uid = st.st_uid, .gid = st.st_gid,
                           .access = perm };
    }
    *out = v;
    return 0;
}

typedef struct spec_ctx {
    uint64_t caps;
    sysctl_kv *sysctls;
    size_t n_sysctls;
    oci_seccomp_profile seccomp;
    dev_info *devs;
    size_t n_devs;
    char **host_dev_paths;  /* owned paths of the host devices in devs */
    const char *apparmor;
    oci_hooks hooks;
} spec_ctx;

/* Device folders a container has its own of, or that hold no device nodes
 * worth passing (the host's pseudo-terminals, shm, mqueue, fd links). */
static bool skip_dev_dir(const char *name)
{
    static const char *const skip[] = { "pts", "shm", "mqueue", "fd", ".lxc", ".udev", NULL };
    for (const char *const *p = skip; *p; p++)
        if (!strcmp(name, *p))
            return true;
    return false;
}

static int collect_host_devices(spec_ctx *cx, const char *dir, size_t *cap, int depth, cr_err **err)
{
    _cleanup_closedir_ DIR *d = opendir(dir);
    if (!d)
        return 0; /* vanished or unreadable: nothing to pass */
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
            continue;
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/%s", dir, de->d_name) < 0)
            return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "devices: out of memory");
        struct stat st;
        if (lstat(path, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (depth < 8 && !(depth == 0 && skip_dev_dir(de->d_name)) &&
                collect_host_devices(cx, path, cap, depth + 1, err) < 0)
                return -1;
            continue;
        }
        if ((!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode)) || !strcmp(path, "/dev/console"))
            continue;
        bool have = false; /* a device the config passes already */
        for (size_t i = 0; i < cx->n_devs && !have; i++)
            have = !strcmp(cx->devs[i].path, path);
        if (have)
            continue;
        if (cx->n_devs == *cap) {
            size_t ncap = *cap ? *cap * 2 : 64;
            dev_info *nv = realloc(cx->devs, ncap * sizeof(*nv));
            char **np = realloc(cx->host_dev_paths, (ncap + 1) * sizeof(char *));
            if (nv)
                cx->devs = nv;
            if (np)
                cx->host_dev_paths = np;
            if (!nv || !np)
                return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "devices: out of memory");
            *cap = ncap;
        }
        size_t k = 0;
        while (cx->host_dev_paths[k])
            k++;
        cx->host_dev_paths[k] = cr_steal(&path);
        cx->host_dev_paths[k + 1] = NULL;
        cx->devs[cx->n_devs++] = (dev_info){
            .path = cx->host_dev_paths[k], .type = S_ISCHR(st.st_mode) ? "c" : "b",
            .major = (long)major(st.st_rdev), .minor = (long)minor(st.st_rdev),
            .mode = st.st_mode & 07777, .uid = st.st_uid, .gid = st.st_gid, .access = "rwm" };
    }
    return 0;
}

/* A privileged container gets every device node of the host's /dev, as
 * with containerd and CRI-O (the device cgroup already allows them all). */
static int add_host_devices(spec_ctx *cx, cr_err **err)
{
    size_t cap = cx->n_devs;
    /* devs and host_dev_paths grow together; host_dev_paths stays NULL-terminated */
    if (!(cx->host_dev_paths = calloc(1, sizeof(char *))))
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "devices: out of memory");
    if (cap == 0) {
        free(cx->devs);
        cx->devs = NULL;
    }
    return collect_host_devices(cx, "/dev", &cap, 0, err);
}

static void emit_devices(oci_jw *w, const dev_info *devs, size_t n)
{
    if (!n)
        return;
    oci_jw_str(w, "devices");
    oci_jw_arr(w);
    for (size_t i = 0; i < n; i++) {
        oci_jw_map(w);
        oci_jw_kstr(w, "path", devs[i].path);
        oci_jw_kstr(w, "type", devs[i].type);
        oci_jw_kint(w, "major", devs[i].major);
        oci_jw_kint(w, "minor", devs[i].minor);
        oci_jw_kint(w, "fileMode", devs[i].mode);
        oci_jw_kint(w, "uid", devs[i].uid);
        oci_jw_kint(w, "gid", devs[i].gid);
        oci_jw_map_end(w);
    }
    oci_jw_arr_end(w);
}

/* The members of a linux.resources object; with_devices: the device cgroup
 * rules too (the spec; `update` leaves them as they are). */
static void emit_resource_fields(oci_jw *w, const oci_spec_input *in, bool with_devices, const dev_info *devs,
                                 size_t n_devs)
{
    if (with_devices) {
        oci_jw_str(w, "devices");
        oci_jw_arr(w);
        emit_device_list(w, in->privileged);
        for (size_t i = 0; !in->privileged && i < n_devs; i++) /* privileged: all allowed already */
            emit_device_rule(w, true, devs[i].type, devs[i].major, devs[i].minor, devs[i].access);
        oci_jw_arr_end(w);
    }
    if (in->memory_limit || in->memory_swap) {
        oci_jw_str(w, "memory");
        oci_jw_map(w);
        if (in->memory_limit)
            oci_jw_kint(w, "limit", in->memory_limit);
        if (in->memory_swap)
            oci_jw_kint(w, "swap", in->memory_swap);
        oci_jw_map_end(w);
    }
    bool cpus = in->cpuset_cpus && *in->cpuset_cpus, mems = in->cpuset_mems && *in->cpuset_mems;
    if (in->cpu_shares || in->cpu_quota || in->cpu_period || cpus || mems) {
        oci_jw_str(w, "cpu");
        oci_jw_map(w);
        if (in->cpu_shares)
            oci_jw_kint(w, "shares", in->cpu_shares);
        if (in->cpu_quota)
            oci_jw_kint(w, "quota", in->cpu_quota);
        if (in->cpu_period)
            oci_jw_kint(w, "period", in->cpu_period);
        if (cpus)
            oci_jw_kstr(w, "cpus", in->cpuset_cpus);
        if (mems)
            oci_jw_kstr(w, "mems", in->cpuset_mems);
        oci_jw_map_end(w);
    }
    if (in->pids_limit) {
        oci_jw_str(w, "pids");
        oci_jw_map(w);
        oci_jw_kint(w, "limit", in->pids_limit);
        oci_jw_map_end(w);
    }
    if (in->n_hugepages) {
        oci_jw_str(w, "hugepageLimits");
        oci_jw_arr(w);
        for (size_t i = 0; i < in->n_hugepages; i++) {
            oci_jw_map(w);
            oci_jw_kstr(w, "pageSize", in->hugepages[i].page_size);
            oci_jw_kint(w, "limit", (long long)in->hugepages[i].limit);
            oci_jw_map_end(w);
        }
        oci_jw_arr_end(w);
    }
    if (in->unified && in->unified[0]) {
        oci_jw_str(w, "unified");
        oci_jw_map(w);
        for (const char *const *p = in->unified; p[0] && p[1]; p += 2)
            oci_jw_kstr(w, p[0], p[1]);
        oci_jw_map_end(w);
    }
}

static void emit_resources(oci_jw *w, const oci_spec_input *in, const dev_info *devs, size_t n_devs)
{
    oci_jw_str(w, "resources");
    oci_jw_map(w);
    emit_resource_fields(w, in, true, devs, n_devs);
    oci_jw_map_end(w);
}

/* "2MB", "64KB", "1GB": how the kernel names a huge page size. */
static bool page_size_valid(const char *s)
{
    size_t d = strspn(s, "0123456789");
    return d > 0 && s[0] != '0' && strchr("KMGTP", s[d]) && s[d] != '\0' && s[d + 1] == 'B' &&
           s[d + 2] == '\0';
}

static int check_resources(const oci_spec_input *in, cr_err **err)
{
    if (in->cpu_shares < 0)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "cpu shares %lld: must not be negative",
                          (long long)in->cpu_shares);
    if (in->cpu_period < 0)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "cpu period %lld: must not be negative",
                          (long long)in->cpu_period);
    if (in->n_hugepages && !in->hugepages)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "hugepages: %zu limits but no array", in->n_hugepages);
    for (size_t i = 0; i < in->n_hugepages; i++) {
        const char *ps = in->hugepages[i].page_size;
        if (!ps || !page_size_valid(ps))
            return cr_err_set(err, CR_INVALID_ARGUMENT, "hugepage size %s: not a size like 2MB or 1GB",
                              ps ? ps : "(null)");
        if (in->hugepages[i].limit > (uint64_t)INT64_MAX)
            return cr_err_set(err, CR_INVALID_ARGUMENT, "hugepage %s limit %llu: too large", ps,
                              (unsigned long long)in->hugepages[i].limit);
    }
    size_t n = 0;
    for (const char *const *p = in->unified; p && *p; p++) {
        if (n % 2 == 0 && !**p)
            return cr_err_set(err, CR_INVALID_ARGUMENT, "unified: an empty cgroup file name");
        n++;
    }
    if (n % 2)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "unified %s: no value", in->unified[n - 1]);
    return 0;
}

static void emit_strv(oci_jw *w, const char *key, const char *const *v)
{
    oci_jw_str(w, key);
    oci_jw_arr(w);
    for (const char *const *p = v; p && *p; p++)
        oci_jw_str(w, *p);
    oci_jw_arr_end(w);
}

/* ---- rootfs propagation ---- */

static const char *const propagations[] = { "private", "rprivate", "slave", "rslave", "shared", "rshared", NULL };

static int check_propagation(const oci_spec_input *in, cr_err **err)
{
    const char *p = in->rootfs_propagation;
    if (!p || !*p)
        return 0;
    for (const char *const *k = propagations; *k; k++)
        if (strcmp(*k, p) == 0)
            return 0;
    return cr_err_set(err, CR_INVALID_ARGUMENT,
                      "rootfs propagation %s: not one of private, rprivate, slave, rslave, shared, rshared", p);
}

/* The caller's, or what a mount's propagation needs (as CRI-O does): a
 * shared mount only propagates from a shared root, a slave one from a
 * shared or slave root. */
static const char *rootfs_propagation(const oci_spec_input *in)
{
    if (in->rootfs_propagation && *in->rootfs_propagation)
        return in->rootfs_propagation;
    bool slave = false;
    for (size_t i = 0; i < in->n_mounts; i++) {
        const char *const *o = in->mounts[i].options;
        if (opts_have(o, "rshared") || opts_have(o, "shared"))
            return "rshared";
        if (opts_have(o, "rslave") || opts_have(o, "slave"))
            slave = true;
    }
    return slave ? "rslave" : NULL;
}

/* ---- AppArmor ---- */

static bool apparmor_enabled(void)
{
    char buf[8] = "";
    _cleanup_fclose_ FILE *f = fopen("/sys/module/apparmor/parameters/enabled", "re");
    return f && fgets(buf, sizeof(buf), f) && buf[0] == 'Y';
}

/* Whether the kernel has a profile named name loaded (lines "name (mode)");
 * true when that cannot be read (securityfs not mounted): the runtime will tell. */
static bool apparmor_loaded(const char *name)
{
    _cleanup_fclose_ FILE *f = fopen("/sys/kernel/security/apparmor/profiles", "re");
    if (!f)
        return true;
    _cleanup_free_ char *line = NULL;
    size_t cap = 0, n = strlen(name);
    while (getline(&line, &cap, f) >= 0)
        if (strncmp(line, name, n) == 0 && (line[n] == ' ' || line[n] == '\n'))
            return true;
    return false;
}

/* The process.apparmorProfile for in (NULL: none). */
static int resolve_apparmor(const oci_spec_input *in, const char **out, cr_err **err)
{
    const char *p = in->apparmor_profile;
    *out = NULL;
    if (!p || !*p)
        return 0;
    bool enabled = apparmor_enabled();
    if (strcmp(p, "runtime/default") == 0) {
        /* Privileged containers run unconfined unless a profile is named. */
        if (!enabled || in->privileged)
            return 0;
        if (!apparmor_loaded(OCI_APPARMOR_DEFAULT_PROFILE))
            return cr_err_set(err, CR_FAILED_PRECONDITION,
                              "apparmor profile %s (runtime/default) is not loaded",
                              OCI_APPARMOR_DEFAULT_PROFILE);
        *out = OCI_APPARMOR_DEFAULT_PROFILE;
        return 0;
    }
    if (strcmp(p, "unconfined") == 0) {
        *out = enabled ? "unconfined" : NULL;
        return 0;
    }
    const char *name = strncmp(p, "localhost/", 10) == 0 ? p + 10 : p;
    if (!*name)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "apparmor profile %s: no profile name", p);
    if (!enabled)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "apparmor profile %s: apparmor is not enabled on this host",
                          p);
    if (!apparmor_loaded(name))
        return cr_err_set(err, CR_INVALID_ARGUMENT, "apparmor profile %s is not loaded", name);
    *out = name;
    return 0;
}

/* ---- the whole spec ---- */

/* What the spec needs beyond the input, resolved before any JSON is written. */

static int check_input(const oci_spec_input *in, cr_err **err)
{
    if (!in)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "spec: no input");
    if (!in->args || !in->args[0] || !in->args[0][0])
        return cr_err_set(err, CR_INVALID_ARGUMENT, "spec: no command (args is empty)");
    if (!in->rootfs || !in->rootfs[0])
        return cr_err_set(err, CR_INVALID_ARGUMENT, "spec: no root filesystem path");
    for (const char *const *p = in->env; p && *p; p++)
        if (!strchr(*p, '=') || (*p)[0] == '=')
            return cr_err_set(err, CR_INVALID_ARGUMENT, "environment variable %s: not KEY=VALUE", *p);
    if (in->n_additional_gids && !in->additional_gids)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "spec: %zu additional gids but no array",
                          in->n_additional_gids);
    size_t n = 0;
    for (const char *const *p = in->annotations; p && *p; p++)
        n++;
    if (n % 2)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "annotation %s: no value", in->annotations[n - 1]);
    if (check_ns("network", &in->net, err) < 0 || check_ns("ipc", &in->ipc, err) < 0 ||
        check_ns("uts", &in->uts, err) < 0 || check_ns("pid", &in->pid, err) < 0)
        return -1;
    if (check_mounts(in, err) < 0 || check_resources(in, err) < 0 || check_propagation(in, err) < 0)
        return -1;
    return 0;
}

static void emit_process(oci_jw *w, const oci_spec_input *in, const spec_ctx *cx)
{
    uint64_t caps = cx->caps;
    oci_jw_str(w, "process");
    oci_jw_map(w);
    oci_jw_kbool(w, "terminal", in->terminal);
    oci_jw_str(w, "user");
    oci_jw_map(w);
    oci_jw_kint(w, "uid", in->uid);
    oci_jw_kint(w, "gid", in->gid);
    if (in->n_additional_gids) {
        oci_jw_str(w, "additionalGids");
        oci_jw_arr(w);
        for (size_t i = 0; i < in->n_additional_gids; i++)
            oci_jw_int(w, in->additional_gids[i]);
        oci_jw_arr_end(w);
    }
    oci_jw_map_end(w);
    emit_strv(w, "args", in->args);

    oci_jw_str(w, "env");
    oci_jw_arr(w);
    bool has_path = false;
    for (const char *const *p = in->env; p && *p; p++)
        if (strncmp(*p, "PATH=", 5) == 0)
            has_path = true;
    if (!has_path)
        oci_jw_str(w, DEFAULT_PATH);
    for (const char *const *p = in->env; p && *p; p++)
        oci_jw_str(w, *p);
    oci_jw_arr_end(w);

    oci_jw_kstr(w, "cwd", in->cwd && *in->cwd ? in->cwd : "/");

    oci_jw_str(w, "capabilities");
    oci_jw_map(w);
    emit_cap_list(w, "bounding", caps);
    emit_cap_list(w, "effective", caps);
    emit_cap_list(w, "permitted", caps);
    emit_cap_list(w, "inheritable", 0);
    emit_cap_list(w, "ambient", 0);
    oci_jw_map_end(w);

    oci_jw_kbool(w, "noNewPrivileges", in->no_new_privileges);
    if (in->set_oom_score_adj)
        oci_jw_kint(w, "oomScoreAdj", oci_clamp_oom_score_adj(in->oom_score_adj));
    if (cx->apparmor)
        oci_jw_kstr(w, "apparmorProfile", cx->apparmor);
    oci_jw_map_end(w);
}

static void emit_linux(oci_jw *w, const oci_spec_input *in, const spec_ctx *cx)
{
    oci_jw_str(w, "linux");
    oci_jw_map(w);

    oci_jw_str(w, "namespaces");
    oci_jw_arr(w);
    emit_ns(w, "pid", &in->pid);
    emit_ns(w, "network", &in->net);
    emit_ns(w, "ipc", &in->ipc);
    emit_ns(w, "uts", &in->uts);
    oci_jw_map(w);
    oci_jw_kstr(w, "type", "mount");
    oci_jw_map_end(w);
    if (cgroup2_unified()) {
        oci_jw_map(w);
        oci_jw_kstr(w, "type", "cgroup");
        oci_jw_map_end(w);
    }
    oci_jw_arr_end(w);

    if (in->cgroups_path && *in->cgroups_path)
        oci_jw_kstr(w, "cgroupsPath", in->cgroups_path);

    if (cx->n_sysctls) {
        oci_jw_str(w, "sysctl");
        oci_jw_map(w);
        for (size_t i = 0; i < cx->n_sysctls; i++)
            oci_jw_kstr(w, cx->sysctls[i].key, cx->sysctls[i].value);
        oci_jw_map_end(w);
    }

    emit_devices(w, cx->devs, cx->n_devs);
    emit_resources(w, in, cx->devs, cx->n_devs);

    const char *prop = rootfs_propagation(in);
    if (prop)
        oci_jw_kstr(w, "rootfsPropagation", prop);

    if (!in->privileged) {
        emit_strv(w, "maskedPaths", in->masked_paths ? in->masked_paths : masked_paths);
        emit_strv(w, "readonlyPaths", in->readonly_paths ? in->readonly_paths : readonly_paths);
    }
    oci_seccomp_emit(w, &cx->seccomp, cx->caps);
    oci_jw_map_end(w);
}

static void spec_ctx_clear(spec_ctx *cx)
{
    oci_seccomp_profile_clear(&cx->seccomp);
    sysctls_free(cx->sysctls, cx->n_sysctls);
    free(cx->devs);
    cr_strvfree(cx->host_dev_paths);
    oci_hooks_clear(&cx->hooks);
}

static yajl_gen new_gen(void)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    if (!g)
        return NULL;
    yajl_gen_config(g, yajl_gen_beautify, 1);
    yajl_gen_config(g, yajl_gen_indent_string, "  ");
    yajl_gen_config(g, yajl_gen_validate_utf8, 1);
    return g;
}

/* The generator's text (heap), or NULL with err set. */
static char *gen_result(oci_jw *w, const char *what, cr_err **err)
{
    if (w->bad) {
        /* Every call is well nested, so only a string that is not UTF-8 gets here. */
        cr_err_set(err, CR_INVALID_ARGUMENT, "%s: a string in the container config is not valid UTF-8", what);
        return NULL;
    }
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(w->g, &buf, &len);
    char *r = strndup((const char *)buf, len);
    if (!r)
        cr_err_set(err, CR_RESOURCE_EXHAUSTED, "%s: out of memory", what);
    return r;
}

char *oci_spec_json(const oci_spec_input *in, cr_err **err)
{
    if (check_input(in, err) < 0)
        return NULL;
    spec_ctx cx = { 0 };
    if (compute_caps(in, &cx.caps, err) < 0)
        return NULL;
    if (parse_sysctls(in, &cx.sysctls, &cx.n_sysctls, err) < 0)
        return NULL;
    if (oci_seccomp_resolve(in->seccomp, in->privileged, &cx.seccomp, err) < 0) {
        sysctls_free(cx.sysctls, cx.n_sysctls);
        return NULL;
    }

    char *result = NULL;
    oci_jw w = { .g = NULL };
    if (resolve_devices(in, &cx.devs, err) < 0)
        goto out;
    cx.n_devs = in->n_devices;
    if ((in->privileged && add_host_devices(&cx, err) < 0) || resolve_apparmor(in, &cx.apparmor, err) < 0 ||
        oci_hooks_load(in->hooks_dir, in, &cx.hooks, err) < 0)
        goto out;
    if (!(w.g = new_gen())) {
        cr_err_set(err, CR_RESOURCE_EXHAUSTED, "spec: out of memory");
        goto out;
    }

    oci_jw_map(&w);
    oci_jw_kstr(&w, "ociVersion", "1.0.2");
    emit_process(&w, in, &cx);

    oci_jw_str(&w, "root");
    oci_jw_map(&w);
    oci_jw_kstr(&w, "path", in->rootfs);
    oci_jw_kbool(&w, "readonly", in->readonly_rootfs);
    oci_jw_map_end(&w);

    if (in->uts.mode == OCI_NS_NEW && in->hostname && *in->hostname)
        oci_jw_kstr(&w, "hostname", in->hostname);

    emit_mounts(&w, in);
    emit_linux(&w, in, &cx);
    oci_hooks_emit(&w, &cx.hooks);

    if (in->annotations && in->annotations[0]) {
        oci_jw_str(&w, "annotations");
        oci_jw_map(&w);
        for (const char *const *p = in->annotations; p[0] && p[1]; p += 2)
            oci_jw_kstr(&w, p[0], p[1]);
        oci_jw_map_end(&w);
    }
    oci_jw_map_end(&w);
    result = gen_result(&w, "spec", err);
out:
    if (w.g)
        yajl_gen_free(w.g);
    spec_ctx_clear(&cx);
    return result;
}

char *oci_resources_json(const oci_spec_input *in, cr_err **err)
{
    if (!in)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "resources: no input"), NULL;
    if (check_resources(in, err) < 0)
        return NULL;
    oci_jw w = { .g = new_gen() };
    if (!w.g)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "resources: out of memory"), NULL;
    oci_jw_map(&w);
    emit_resource_fields(&w, in, false, NULL, 0);
    oci_jw_map_end(&w);
    char *r = gen_result(&w, "resources", err);
    yajl_gen_free(w.g);
    return r;
}

int oci_spec_write(const oci_spec_input *in, const char *bundle_dir, cr_err **err)
{
    _cleanup_free_ char *json = oci_spec_json(in, err);
    if (!json)
        return -1;
    _cleanup_free_ char *path = NULL;
    if (asprintf(&path, "%s/config.json", bundle_dir) < 0)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "write spec: out of memory");
    return cr_write_file_atomic(path, json, strlen(json), 0600, err);
}

/* ---- oom_score_adj ---- */

static bool have_sys_resource(void)
{
    cap_t c = cap_get_proc();
    if (!c)
        return false;
    cap_flag_value_t v = CAP_CLEAR;
    bool ok = cap_get_flag(c, CAP_SYS_RESOURCE, CAP_EFFECTIVE, &v) == 0 && v == CAP_SET;
    cap_free(c);
    return ok;
}

int oci_clamp_oom_score_adj(int wanted)
{
    if (wanted < -1000)
        wanted = -1000;
    if (wanted > 1000)
        wanted = 1000;
    if (have_sys_resource())
        return wanted;
    _cleanup_fclose_ FILE *f = fopen("/proc/self/oom_score_adj", "re");
    int own;
    if (!f || fscanf(f, "%d", &own) != 1)
        return wanted;
    return wanted < own ? own : wanted;
}
