/* Unit tests for the OCI spec builder (oci/spec.c, oci/seccomp.c): every
 * input turns into the expected config.json, parsed back with yajl_tree. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <yajl/yajl_tree.h>

#include "lib/err.h"
#include "lib/fs.h"
#include "oci/oci.h"

/* ---- helpers ---- */

static const char *const ARGS[] = { "/bin/sh", "-c", "true", NULL };

static oci_spec_input base_input(void)
{
    oci_spec_input in = { 0 };
    in.args = ARGS;
    in.rootfs = "/var/lib/crisp/test/rootfs";
    return in;
}

static yajl_val spec_ok(const oci_spec_input *in)
{
    cr_err *e = NULL;
    char *json = oci_spec_json(in, &e);
    if (!json) {
        char msg[512];
        snprintf(msg, sizeof(msg), "oci_spec_json failed: %s", e ? e->msg : "(no error)");
        cr_err_free(e);
        ck_abort_msg("%s", msg);
    }
    ck_assert_ptr_null(e);
    char ebuf[256] = "";
    yajl_val v = yajl_tree_parse(json, ebuf, sizeof(ebuf));
    ck_assert_msg(v != NULL, "output is not JSON: %s\n%s", ebuf, json);
    ck_assert(YAJL_IS_OBJECT(v));
    free(json);
    return v;
}

/* The error (caller frees) of an input that must fail with code. */
static cr_err *spec_fail(const oci_spec_input *in, int code)
{
    cr_err *e = NULL;
    char *json = oci_spec_json(in, &e);
    if (json) {
        free(json);
        ck_abort_msg("oci_spec_json succeeded, expected an error");
    }
    ck_assert_ptr_nonnull(e);
    ck_assert_msg(e->code == code, "code %d (%s), want %d: %s", e->code, cr_code_name(e->code), code,
                  e->msg);
    return e;
}

#define FAIL_WITH(in, code, phrase)                                                                 \
    do {                                                                                            \
        cr_err *e_ = spec_fail((in), (code));                                                       \
        ck_assert_msg(strstr(e_->msg, (phrase)) != NULL, "error <<%s>> lacks <<%s>>", e_->msg,      \
                      (phrase));                                                                    \
        cr_err_free(e_);                                                                            \
    } while (0)

/* Dotted path lookup: "process.capabilities.bounding". */
static yajl_val get(yajl_val v, const char *path, yajl_type type)
{
    const char *parts[16];
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    size_t n = 0;
    char *save = NULL;
    for (char *p = strtok_r(buf, ".", &save); p && n < 15; p = strtok_r(NULL, ".", &save))
        parts[n++] = p;
    parts[n] = NULL;
    return yajl_tree_get(v, parts, type);
}

static const char *gstr(yajl_val v, const char *path)
{
    yajl_val s = get(v, path, yajl_t_string);
    ck_assert_msg(s != NULL, "%s: missing or not a string", path);
    return s->u.string;
}

static long long gint(yajl_val v, const char *path)
{
    yajl_val s = get(v, path, yajl_t_number);
    ck_assert_msg(s != NULL && YAJL_IS_INTEGER(s), "%s: missing or not an integer", path);
    return YAJL_GET_INTEGER(s);
}

static bool gbool(yajl_val v, const char *path)
{
    yajl_val t = get(v, path, yajl_t_true), f = get(v, path, yajl_t_false);
    ck_assert_msg(t || f, "%s: missing or not a boolean", path);
    return t != NULL;
}

static yajl_val garr(yajl_val v, const char *path)
{
    yajl_val a = get(v, path, yajl_t_array);
    ck_assert_msg(a != NULL, "%s: missing or not an array", path);
    return a;
}

static bool arr_has(yajl_val arr, const char *s)
{
    for (size_t i = 0; arr && i < arr->u.array.len; i++)
        if (YAJL_IS_STRING(arr->u.array.values[i]) && strcmp(arr->u.array.values[i]->u.string, s) == 0)
            return true;
    return false;
}

static size_t arr_len(yajl_val arr) { return arr ? arr->u.array.len : 0; }

static const char *field(yajl_val obj, const char *key)
{
    const char *p[] = { key, NULL };
    yajl_val s = yajl_tree_get(obj, p, yajl_t_string);
    return s ? s->u.string : NULL;
}

/* The mounts with destination dst: count, and the first one. */
static size_t find_mount(yajl_val spec, const char *dst, yajl_val *first)
{
    yajl_val mounts = garr(spec, "mounts");
    size_t n = 0;
    if (first)
        *first = NULL;
    for (size_t i = 0; i < mounts->u.array.len; i++) {
        yajl_val m = mounts->u.array.values[i];
        const char *d = field(m, "destination");
        if (d && strcmp(d, dst) == 0) {
            if (first && !*first)
                *first = m;
            n++;
        }
    }
    return n;
}

static bool mount_opt(yajl_val m, const char *opt)
{
    const char *p[] = { "options", NULL };
    return arr_has(yajl_tree_get(m, p, yajl_t_array), opt);
}

/* The namespace entry of type, or NULL. */
static yajl_val find_ns(yajl_val spec, const char *type)
{
    yajl_val ns = garr(spec, "linux.namespaces");
    for (size_t i = 0; i < ns->u.array.len; i++) {
        const char *t = field(ns->u.array.values[i], "type");
        if (t && strcmp(t, type) == 0)
            return ns->u.array.values[i];
    }
    return NULL;
}

/* Whether the seccomp section allows name unconditionally. */
static bool seccomp_allows(yajl_val spec, const char *name)
{
    yajl_val rules = garr(spec, "linux.seccomp.syscalls");
    for (size_t i = 0; i < rules->u.array.len; i++) {
        yajl_val r = rules->u.array.values[i];
        const char *pa[] = { "args", NULL }, *pn[] = { "names", NULL };
        const char *action = field(r, "action");
        if (!action || strcmp(action, "SCMP_ACT_ALLOW") != 0 || yajl_tree_get(r, pa, yajl_t_array))
            continue;
        if (arr_has(yajl_tree_get(r, pn, yajl_t_array), name))
            return true;
    }
    return false;
}

/* Whether any seccomp rule names name. */
static bool seccomp_mentions(yajl_val spec, const char *name)
{
    yajl_val rules = garr(spec, "linux.seccomp.syscalls");
    for (size_t i = 0; i < rules->u.array.len; i++) {
        const char *pn[] = { "names", NULL };
        if (arr_has(yajl_tree_get(rules->u.array.values[i], pn, yajl_t_array), name))
            return true;
    }
    return false;
}

static int own_oom_score_adj(void)
{
    FILE *f = fopen("/proc/self/oom_score_adj", "re");
    ck_assert_ptr_nonnull(f);
    int v = 0;
    ck_assert_int_eq(fscanf(f, "%d", &v), 1);
    fclose(f);
    return v;
}

static bool have_cap_sys_resource(void)
{
    cap_t c = cap_get_proc();
    ck_assert_ptr_nonnull(c);
    cap_flag_value_t v = CAP_CLEAR;
    ck_assert_int_eq(cap_get_flag(c, CAP_SYS_RESOURCE, CAP_EFFECTIVE, &v), 0);
    cap_free(c);
    return v == CAP_SET;
}

/* Number of capabilities libcap can name on this kernel and this process's
 * bounding set holds: "all capabilities" for a container. */
static size_t named_caps(void)
{
    size_t n = 0;
    for (int c = 0; c < cap_max_bits() && c < 64; c++) {
        char *name = cap_to_name(c);
        if (name && strncmp(name, "cap_", 4) == 0 && cap_get_bound(c) == 1)
            n++;
        cap_free(name);
    }
    return n;
}

/* A temporary folder, removed by rm_tmp. */
static char *mk_tmp(void)
{
    char *d = strdup("/tmp/crisp-test-spec-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(d));
    return d;
}

static void rm_tmp(char *d)
{
    cr_err *e = NULL;
    ck_assert_int_eq(cr_remove_tree(d, &e), 0);
    free(d);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "we");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fputs(text, f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
}

/* ---- tests ---- */

START_TEST(test_defaults)
{
    oci_spec_input in = base_input();
    yajl_val s = spec_ok(&in);

    ck_assert_str_eq(gstr(s, "ociVersion"), "1.0.2");
    ck_assert_str_eq(gstr(s, "process.cwd"), "/");
    ck_assert(!gbool(s, "process.terminal"));
    ck_assert(!gbool(s, "process.noNewPrivileges"));
    ck_assert_int_eq(gint(s, "process.user.uid"), 0);
    ck_assert_int_eq(gint(s, "process.user.gid"), 0);
    ck_assert_ptr_null(get(s, "process.user.additionalGids", yajl_t_any));
    ck_assert_ptr_null(get(s, "process.oomScoreAdj", yajl_t_any));
    yajl_val args = garr(s, "process.args");
    ck_assert_int_eq(arr_len(args), 3);
    ck_assert_str_eq(args->u.array.values[0]->u.string, "/bin/sh");
    ck_assert(arr_has(garr(s, "process.env"),
                      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));

    /* CRI-O's default capability set, the same in every set but ambient/inheritable. */
    static const char *const want[] = { "CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FSETID",
                                        "CAP_FOWNER", "CAP_SETGID",       "CAP_SETUID",
                                        "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_KILL" };
    const char *sets[] = { "process.capabilities.bounding", "process.capabilities.effective",
                           "process.capabilities.permitted" };
    for (size_t k = 0; k < 3; k++) {
        yajl_val caps = garr(s, sets[k]);
        ck_assert_int_eq(arr_len(caps), 9);
        for (size_t i = 0; i < 9; i++)
            ck_assert_msg(arr_has(caps, want[i]), "%s lacks %s", sets[k], want[i]);
        ck_assert(!arr_has(caps, "CAP_SYS_ADMIN"));
        ck_assert(!arr_has(caps, "CAP_NET_RAW"));
    }
    ck_assert_int_eq(arr_len(garr(s, "process.capabilities.ambient")), 0);
    ck_assert_int_eq(arr_len(garr(s, "process.capabilities.inheritable")), 0);

    ck_assert_str_eq(gstr(s, "root.path"), "/var/lib/crisp/test/rootfs");
    ck_assert(!gbool(s, "root.readonly"));
    ck_assert_ptr_null(get(s, "hostname", yajl_t_any));

    /* Default mounts, in order. */
    static const char *const dst[] = { "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys",
                                       "/sys/fs/cgroup" };
    static const char *const type[] = { "proc", "tmpfs", "devpts", "tmpfs", "mqueue", "sysfs", "cgroup" };
    yajl_val mounts = garr(s, "mounts");
    ck_assert_int_eq(arr_len(mounts), 7);
    for (size_t i = 0; i < 7; i++) {
        ck_assert_str_eq(field(mounts->u.array.values[i], "destination"), dst[i]);
        ck_assert_str_eq(field(mounts->u.array.values[i], "type"), type[i]);
    }
    yajl_val m;
    find_mount(s, "/dev", &m);
    ck_assert(mount_opt(m, "mode=755") && mount_opt(m, "size=65536k") && mount_opt(m, "strictatime"));
    find_mount(s, "/dev/pts", &m);
    ck_assert(mount_opt(m, "newinstance") && mount_opt(m, "ptmxmode=0666") && mount_opt(m, "gid=5"));
    find_mount(s, "/dev/shm", &m);
    ck_assert(mount_opt(m, "mode=1777") && mount_opt(m, "size=65536k"));
    find_mount(s, "/sys", &m);
    ck_assert(mount_opt(m, "ro") && mount_opt(m, "nosuid") && mount_opt(m, "noexec") && mount_opt(m, "nodev"));
    find_mount(s, "/sys/fs/cgroup", &m);
    ck_assert(mount_opt(m, "ro"));

    /* Namespaces: all new, mount always. */
    const char *types[] = { "pid", "network", "ipc", "uts", "mount" };
    for (size_t i = 0; i < 5; i++) {
        yajl_val ns = find_ns(s, types[i]);
        ck_assert_msg(ns != NULL, "no %s namespace", types[i]);
        ck_assert_ptr_null(field(ns, "path"));
    }
    ck_assert_ptr_null(get(s, "linux.cgroupsPath", yajl_t_any));
    ck_assert_ptr_null(get(s, "linux.sysctl", yajl_t_any));

    ck_assert(arr_has(garr(s, "linux.maskedPaths"), "/proc/kcore"));
    ck_assert(arr_has(garr(s, "linux.maskedPaths"), "/sys/firmware"));
    ck_assert(arr_has(garr(s, "linux.readonlyPaths"), "/proc/sys"));
    ck_assert(arr_has(garr(s, "linux.readonlyPaths"), "/proc/sysrq-trigger"));

    /* Devices: deny all first, then the standard list. */
    yajl_val dev = garr(s, "linux.resources.devices");
    ck_assert(arr_len(dev) > 5);
    yajl_val d0 = dev->u.array.values[0];
    ck_assert(yajl_tree_get(d0, (const char *[]){ "allow", NULL }, yajl_t_false) != NULL);
    ck_assert_str_eq(field(d0, "access"), "rwm");
    bool null_dev = false;
    for (size_t i = 1; i < arr_len(dev); i++) {
        yajl_val d = dev->u.array.values[i];
        yajl_val maj = yajl_tree_get(d, (const char *[]){ "major", NULL }, yajl_t_number);
        yajl_val min = yajl_tree_get(d, (const char *[]){ "minor", NULL }, yajl_t_number);
        if (maj && min && YAJL_GET_INTEGER(maj) == 1 && YAJL_GET_INTEGER(min) == 3)
            null_dev = yajl_tree_get(d, (const char *[]){ "allow", NULL }, yajl_t_true) != NULL;
    }
    ck_assert_msg(null_dev, "/dev/null (c 1:3) not allowed");
    ck_assert_ptr_nonnull(get(s, "linux.seccomp", yajl_t_object));
    ck_assert_ptr_null(get(s, "annotations", yajl_t_any));
    yajl_tree_free(s);
}
END_TEST

START_TEST(test_process_fields)
{
    oci_spec_input in = base_input();
    const char *env[] = { "PATH=/custom/bin", "FOO=bar", NULL };
    const uint32_t gids[] = { 10, 20 };
    const char *ann[] = { "io.kubernetes.pod.name", "web", "x", "", NULL };
    in.env = env;
    in.cwd = "/work";
    in.terminal = true;
    in.uid = 1000;
    in.gid = 1001;
    in.additional_gids = gids;
    in.n_additional_gids = 2;
    in.no_new_privileges = true;
    in.annotations = ann;
    yajl_val s = spec_ok(&in);
    ck_assert_str_eq(gstr(s, "process.cwd"), "/work");
    ck_assert(gbool(s, "process.terminal"));
    ck_assert(gbool(s, "process.noNewPrivileges"));
    ck_assert_int_eq(gint(s, "process.user.uid"), 1000);
    ck_assert_int_eq(gint(s, "process.user.gid"), 1001);
    yajl_val g = garr(s, "process.user.additionalGids");
    ck_assert_int_eq(arr_len(g), 2);
    ck_assert_int_eq(YAJL_GET_INTEGER(g->u.array.values[1]), 20);
    yajl_val e = garr(s, "process.env");
    ck_assert_int_eq(arr_len(e), 2); /* no second PATH */
    ck_assert(arr_has(e, "PATH=/custom/bin") && arr_has(e, "FOO=bar"));
    yajl_val a = get(s, "annotations", yajl_t_object);
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->u.object.len, 2);
    ck_assert_str_eq(a->u.object.keys[0], "io.kubernetes.pod.name");
    ck_assert_str_eq(a->u.object.values[0]->u.string, "web");
    yajl_tree_free(s);

    /* Bad inputs. */
    in = base_input();
    const char *no_args[] = { NULL };
    in.args = no_args;
    FAIL_WITH(&in, CR_INVALID_ARGUMENT, "no command");
    in = base_input();
    in.rootfs = NULL;
    FAIL_WITH(&in, CR_INVALID_ARGUMENT, "root");
    in = base_input();
    const char *bad_env[] = { "NOEQUALS", NULL };
    in.env = bad_env;
    FAIL_WITH(&in, CR_INVALID_ARGUMENT, "NOEQUALS");
    in = base_input();
    const char *odd_ann[] = { "lonely", NULL };
    in.annotations = odd_ann;
    FAIL_WITH(&in, CR_INVALID_ARGUMENT, "lonely");
    in = base_input();
    const char *bad_utf8[] = { "/bin/sh", "\xff\xfe", NULL };
    in.args = bad_utf8;
    FAIL_WITH(&in, CR_INVALID_ARGUMENT, "UTF-8");
}
END_TEST

START_TEST(test_mount_replaces_default)
{
    oci_spec_input in = base_input();
    const char *shm_opts[] = { "rbind", "rw", NULL };
    oci_mount mounts[] = {
        { .destination = "/data", .type = "bind", .source = "/srv/data", .options = NULL },
        { .destination = "/dev/shm/", .type = "bind", .source = "/run/pod/shm", .options = shm_opts },
        { .destination = "/scratch", .type = "tmpfs", .source = NULL, .options = NULL },
    };
    in.mounts = mounts;
    in.n_mounts = 3;
    yajl_val s = spec_ok(&in);
    yajl_val m;
    ck_assert_int_eq(find_mount(s, "/dev/shm/", &m) + find_mount(s, "/dev/shm", NULL), 1);
    ck_assert_ptr_nonnull(m);
    ck_assert_str_eq(field(m, "type"), "bind");
    ck_assert_str_eq(field(m, "source"), "/run/pod/shm");
    ck_assert(mount_opt(m, "rbind") && mount_opt(m, "rw"));
    /* The replacement keeps the default's place (after /dev/pts, before /dev/mqueue). */
    yajl_val all = garr(s, "mounts");
    ck_assert_int_eq(arr_len(all), 9);
    ck_assert_str_eq(field(all->u.array.values[3], "destination"), "/dev/shm/");
    ck_assert_str_eq(field(all->u.array.values[7], "destination"), "/data");
    ck_assert_str_eq(field(all->u.array.values[8], "destination"), "/scratch");
    /* A bind without options still binds. */
    find_mount(s, "/data", &m);
    ck_assert(mount_opt(m, "rbind"));
    find_mount(s, "/scratch", &m);
    ck_assert_str_eq(field(m, "type"), "tmpfs");
    ck_assert_str_eq(field(m, "source"), "tmpfs");
    yajl_tree_free(s);

    oci_mount rel[] = { { .destination = "data", .type = "bind", .source = "/srv" } };
    in.mounts = rel;
    in.n_mounts = 1;
    FAIL_WITH(&in, CR_INVALID_ARGUMENT, "absolute");
    oci_mount nosrc[] = { { .destination = "/x", .type = "bind" } };
    in.mounts = nosrc;
    FAIL_WITH(&in, CR_INVALID_ARGUMENT, "source");
}
END_TEST

START_TEST(test_caps_add_drop)
{
    oci_spec_input in = base_input();
    const char *add[] = { "NET_ADMIN", "cap_sys_time", "Cap_Net_Raw", NULL };
    const char *drop[] = { "CHOWN", "CAP_KILL", "net_raw", NULL };
    in.cap_add = add;
    in.cap_drop = drop;
    yajl_val s = spec_ok(&in);
    yajl_val b = garr(s, "process.capabilities.bounding");
    ck_assert(arr_has(b, "CAP_NET_ADMIN"));
    ck_assert(arr_has(b, "CAP_SYS_TIME"));
    ck_assert(!arr_has(b, "CAP_NET_RAW")); /* added and dropped: dropped */
    ck_assert(!arr_has(b, "CAP_CHOWN"));
    ck_assert(!arr_has(b, "CAP_KILL"));
    ck_assert(arr_has(b, "CAP_SETUID"));
    ck_assert_int_eq(arr_len(b), 9 + 2 - 2);
    ck_assert_int_eq(arr_len(garr(s, "process.capabilities.effective")), 9);
    /* CAP_SYS_TIME opens the clock syscalls in the default seccomp profile. */
    ck_assert(seccomp_allows(s, "settimeofday"));
    ck_assert(!seccomp_allows(s, "mount"));
    yajl_tree_free(s);
}
END_TEST

START_TEST(test_caps_all_and_privileged)
{
    size_t all = named_caps();
    ck_assert(all > 9);

    oci_spec_input in = base_input();
    const char *drop_all[] = { "ALL", NULL }, *add_raw[] = { "NET_RAW", NULL };
    in.cap_drop = drop_all;
    in.cap_add = add_raw;
    yajl_val s = spec_ok(&in);
    yajl_val b = garr(s, "process.capabilities.bounding");
    ck_assert_int_eq(arr_len(b), 1);
    ck_assert(arr_has(b, "CAP_NET_RAW"));
    yajl_tree_free(s);

    in = base_input();
    const char *add_all[] = { "all", NULL }, *drop_chown[] = { "CHOWN", NULL };
    in.cap_add = add_all;
    in.cap_drop = drop_chown;
    s = spec_ok(&in);
    b = garr(s, "process.capabilities.bounding");
    ck_assert_int_eq(arr_len(b), all - 1);
    ck_assert(!arr_has(b, "CAP_CHOWN"));
    ck_assert(arr_has(b, "CAP_SYS_ADMIN"));
    /* Non-privileged with SYS_ADMIN: still confined, but mount is open. */
    ck_assert(seccomp_allows(s, "mount"));
    ck_assert(seccomp_allows(s, "unshare"));
    ck_assert(seccomp_allows(s, "clone"));
    ck_assert(arr_has(garr(s, "linux.maskedPaths"), "/proc/kcore"));
    yajl_tree_free(s);

    in = base_input();
    in.privileged = true;
    in.cap_drop = drop_chown; /* ignored when privileged */
    s = spec_ok(&in);
    b = garr(s, "process.capabilities.bounding");
    ck_assert_int_eq(arr_len(b), all);
    ck_assert(arr_has(b, "CAP_SYS_ADMIN") && arr_has(b, "CAP_CHOWN"));
    ck_assert_int_eq(arr_len(garr(s, "process.capabilities.effective")), all);
    /* Nothing outside this process's bounding set (CAP_SYS_RESOURCE on this VM). */
    for (int c = 0; c < cap_max_bits() && c < 64; c++) {
        char *name = cap_to_name(c);
        if (name && cap_get_bound(c) == 0) {
            char up[64];
            snprintf(up, sizeof(up), "%s", name);
            for (char *p = up; *p; p++)
                *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
            ck_assert_msg(!arr_has(b, up), "%s is not in our bounding set", up);
        }
        cap_free(name);
    }
    ck_assert_ptr_null(get(s, "linux.seccomp", yajl_t_any));
    ck_assert_ptr_null(get(s, "linux.maskedPaths", yajl_t_any));
    ck_assert_ptr_null(get(s, "linux.readonlyPaths", yajl_t_any));
    yajl_val dev = garr(s, "linux.resources.devices");
    ck_assert_int_eq(arr_len(dev), 1);
    ck_assert(yajl_tree_get(dev->u.array.values[0], (const char *[]){ "allow", NULL }, yajl_t_true));
    yajl_val m;
    find_mount(s, "/sys", &m);
    ck_assert(!mount_opt(m, "ro"));
    yajl_tree_free(s);
}
END_TEST

START_TEST(test_caps_unknown)
{
    oci_spec_input in = base_input();
    const char *add[] = { "NET_ADMIN", "FOO", NULL };
    const char *drop[] = { "CAP_BAR", "12", NULL };
    in.cap_add = add;
    in.cap_drop = drop;
    cr_err *e = spec_fail(&in, CR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(e->msg, "FOO") && strstr(e->msg, "CAP_BAR") && strstr(e->msg, "12"),
                  "message <<%s>> does not name every unknown capability", e->msg);
    ck_assert_ptr_null(strstr(e->msg, "NET_ADMIN"));
    cr_err_free(e);
    /* Even a privileged container's lists are checked. */
    in.privileged = true;
    FAIL_WITH(&in, CR_INVALID_ARGUMENT, "FOO");
}
END_TEST

START_TEST(test_sysctls)
{
    ck_assert(oci_sysctl_namespaced("net.ipv4.ip_forward"));
    ck_assert(oci_sysctl_namespaced("net.core.somaxconn"));
    ck_assert(oci_sysctl_namespaced("net/ipv4/ping_group_range"));
    ck_assert(oci_sysctl_namespaced("kernel.shmmax"));
    ck_assert(oci_sysctl_namespaced("kernel.shm_rmid_forced"));
    ck_assert(oci_sysctl_namespaced("kernel.msgmnb"));
    ck_assert(oci_sysctl_namespaced("kernel.sem"));
    ck_assert(oci_sysctl_namespaced("fs.mqueue.msg_max"));
    ck_assert(!oci_sysctl_namespaced("kernel.hostname"));
    ck_assert(!oci_sysctl_namespaced("kernel.domainname"));
    ck_assert(!oci_sysctl_namespaced("vm.swappiness"));
    ck_assert(!oci_sysctl_namespaced("kernel.semx"));
    ck_assert(!oci_sysctl_namespaced("net."));
    ck_assert(!oci_sysctl_namespaced(""));
    ck_assert(!oci_sysctl_namespaced(NULL));

    oci_spec_input in = base_input();
    const char *ok[] = { "net.ipv4.ip_forward=1", "kernel.shmmax=4096",
                         "net/ipv4/conf/eth0.100/forwarding=0", "kernel.shmmax=8192", NULL };
    in.sysctls = ok;
    yajl_val s = spec_ok(&in);
    yajl_val m = get(s, "linux.sysctl", yajl_t_object);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(m->u.object.len, 3);
    const char *p1[] = { "linux", "sysctl", "net.ipv4.ip_forward", NULL };
    const char *p2[] = { "linux", "sysctl", "kernel.shmmax", NULL };
    const char *p3[] = { "linux", "sysctl", "net.ipv4.conf.eth0/100.forwarding", NULL };
    ck_assert_str_eq(yajl_tree_get(s, p1, yajl_t_string)->u.string, "1");
    ck_assert_str_eq(yajl_tree_get(s, p2, yajl_t_string)->u.string, "8192"); /* last wins */
    ck_assert_ptr_nonnull(yajl_tree_get(s, p3, yajl_t_string));
    yajl_tree_free(s);

    const char *net[] = { "net.ipv4.ip_forward=1", NULL };
    in = base_input();
    in.sysctls = net;
    in.net.mode = OCI_NS_HOST;
    FAIL_WITH(&in, CR_INVALID_ARGUMENT, "sysctl net.ipv4.ip_forward is not allowed with the host network");
    in.net.mode = OCI_NS_PATH;
    in.net.path = "/run/crisp/netns/pod1";
    yajl_tree_free(spec_ok(&in)); /* a pod netns of its own: fine */

    const char *shm[] = { "kernel.shmmax=4096", NULL };
    in = base_input();
    in.sysctls = shm;
    in.net.mode = OCI_NS_HOST; /* fine for IPC keys */
    yajl_tree_free(spec_ok(&in));
    in.ipc.mode = OCI_NS_HOST;
    FAIL_WITH(&in, CR_INVALID_ARGUMENT, "host IPC");

    const char *host[] = { "kernel.hostname=evil", NULL };
    in = base_input();
    in.sysctls = host;
    FAIL_WITH(&in, CR_INVALID_ARGUMENT, "sysctl kernel.hostname is not allowed");
    const char *vm[] = { "vm.swappiness=10", NULL };
    in.sysctls = vm;
    FAIL_WITH(&in, CR_INVALID_ARGUMENT, "sysctl vm.swappiness is not namespaced");
    const char *noeq[] = { "net.ipv4.ip_forward", NULL };
    in.sysctls = noeq;
    FAIL_WITH(&in, CR_INVALID_ARGUMENT, "not key=value");
}
END_TEST

START_TEST(test_namespaces_and_hostname)
{
    oci_spec_input in = base_input();
    in.hostname = "pod-a";
    in.net.mode = OCI_NS_HOST;
    in.ipc.mode = OCI_NS_PATH;
    in.ipc.path = "/proc/1234/ns/ipc";
    in.pid.mode = OCI_NS_HOST;
    in.cgroups_path = "/kubepods/podx/c1";
    yajl_val s = spec_ok(&in);
    ck_assert_ptr_null(find_ns(s, "network"));
    ck_assert_ptr_null(find_ns(s, "pid"));
    yajl_val ipc = find_ns(s, "ipc");
    ck_assert_ptr_nonnull(ipc);
    ck_assert_str_eq(field(ipc, "path"), "/proc/1234/ns/ipc");
    ck_assert_ptr_nonnull(find_ns(s, "uts"));
    ck_assert_ptr_nonnull(find_ns(s, "mount"));
    ck_assert_str_eq(gstr(s, "hostname"), "pod-a");
    ck_assert_str_eq(gstr(s, "linux.cgroupsPath"), "/kubepods/podx/c1");
    /* Host network: /sys is the host's, bound read-only. */
    yajl_val m;
    ck_assert_int_eq(find_mount(s, "/sys", &m), 1);
    ck_assert_str_eq(field(m, "type"), "bind");
    ck_assert_str_eq(field(m, "source"), "/sys");
    ck_assert(mount_opt(m, "rbind") && mount_opt(m, "ro"));
    yajl_tree_free(s);

    /* Joined or host UTS namespace: no hostname (runtimes refuse one). */
    in.uts.mode = OCI_NS_PATH;
    in.uts.path = "/proc/1234/ns/uts";
    s = spec_ok(&in);
    ck_assert_ptr_null(get(s, "hostname", yajl_t_any));
    ck_assert_str_eq(field(find_ns(s, "uts"), "path"), "/proc/1234/ns/uts");
    yajl_tree_free(s);
    in.uts.mode = OCI_NS_HOST;
    s = spec_ok(&in);
    ck_assert_ptr_null(get(s, "hostname", yajl_t_any));
    ck_assert_ptr_null(find_ns(s, "uts"));
    yajl_tree_free(s);

    /* Host IPC: the host's mqueue is bound. */
    in = base_input();
    in.ipc.mode = OCI_NS_HOST;
    s = spec_ok(&in);
    find_mount(s, "/dev/mqueue", &m);
    ck_assert_str_eq(field(m, "type"), "bind");
    yajl_tree_free(s);

    in = base_input();
    in.net.mode = OCI_NS_PATH;
    in.net.path = NULL;
    FAIL_WITH(&in, CR_INVALID_ARGUMENT, "network namespace");
    in.net.path = "relative/netns";
    FAIL_WITH(&in, CR_INVALID_ARGUMENT, "relative/netns");
}
END_TEST

START_TEST(test_readonly_rootfs)
{
    oci_spec_input in = base_input();
    in.readonly_rootfs = true;
    yajl_val s = spec_ok(&in);
    ck_assert(gbool(s, "root.readonly"));
    yajl_tree_free(s);
}
END_TEST

START_TEST(test_seccomp_default)
{
    oci_spec_input in = base_input();
    yajl_val s = spec_ok(&in);
    ck_assert_str_eq(gstr(s, "linux.seccomp.defaultAction"), "SCMP_ACT_ERRNO");
    ck_assert_int_eq(gint(s, "linux.seccomp.defaultErrnoRet"), EPERM);
    struct utsname u;
    ck_assert_int_eq(uname(&u), 0);
    yajl_val arches = garr(s, "linux.seccomp.architectures");
    if (strcmp(u.machine, "x86_64") == 0) {
        ck_assert(arr_has(arches, "SCMP_ARCH_X86_64"));
        ck_assert(arr_has(arches, "SCMP_ARCH_X86"));
        ck_assert(arr_has(arches, "SCMP_ARCH_X32"));
    } else if (strcmp(u.machine, "aarch64") == 0) {
        ck_assert(arr_has(arches, "SCMP_ARCH_AARCH64"));
        ck_assert(arr_has(arches, "SCMP_ARCH_ARM"));
    }
    const char *allowed[] = { "read", "write", "openat", "execve", "exit_group", "futex", "capset",
                              "prctl", "setgroups", "ptrace", NULL };
    for (const char **p = allowed; *p; p++)
        ck_assert_msg(seccomp_allows(s, *p), "%s not allowed", *p);
    const char *denied[] = { "kexec_load", "init_module", "finit_module", "delete_module", "mount",
                             "umount2", "swapon", "reboot", "bpf", "perf_event_open", "userfaultfd",
                             "keyctl", "add_key", "request_key", "unshare", "setns",
                             "open_by_handle_at", "acct", "settimeofday", "pivot_root", "syslog",
                             "io_uring_setup", NULL };
    for (const char **p = denied; *p; p++)
        ck_assert_msg(!seccomp_mentions(s, *p), "%s is in the default profile", *p);
    /* Conditional rules. */
    ck_assert(!seccomp_allows(s, "clone"));
    ck_assert(seccomp_mentions(s, "clone"));
    ck_assert(seccomp_mentions(s, "personality"));
    yajl_val rules = garr(s, "linux.seccomp.syscalls");
    bool clone3_enosys = false;
    for (size_t i = 0; i < arr_len(rules); i++) {
        yajl_val r = rules->u.array.values[i];
        if (arr_has(yajl_tree_get(r, (const char *[]){ "names", NULL }, yajl_t_array), "clone3")) {
            ck_assert_str_eq(field(r, "action"), "SCMP_ACT_ERRNO");
            yajl_val e = yajl_tree_get(r, (const char *[]){ "errnoRet", NULL }, yajl_t_number);
            clone3_enosys = e && YAJL_GET_INTEGER(e) == ENOSYS;
        }
    }
    ck_assert(clone3_enosys);
    yajl_tree_free(s);

    /* runtime/default and docker/default are the same profile. */
    in.seccomp = "runtime/default";
    s = spec_ok(&in);
    ck_assert_str_eq(gstr(s, "linux.seccomp.defaultAction"), "SCMP_ACT_ERRNO");
    yajl_tree_free(s);
    in.seccomp = "docker/default";
    s = spec_ok(&in);
    ck_assert(seccomp_allows(s, "read"));
    yajl_tree_free(s);
}
END_TEST

START_TEST(test_seccomp_unconfined_and_unknown)
{
    oci_spec_input in = base_input();
    in.seccomp = "unconfined";
    yajl_val s = spec_ok(&in);
    ck_assert_ptr_null(get(s, "linux.seccomp", yajl_t_any));
    ck_assert_ptr_nonnull(get(s, "linux.maskedPaths", yajl_t_array));
    yajl_tree_free(s);
    in.seccomp = "bogus/profile";
    FAIL_WITH(&in, CR_INVALID_ARGUMENT, "bogus/profile");
}
END_TEST

START_TEST(test_seccomp_localhost)
{
    char *dir = mk_tmp();
    char path[512], prof[600];
    snprintf(path, sizeof(path), "%s/profile.json", dir);
    write_text(path, "{\"defaultAction\": \"SCMP_ACT_LOG\", \"architectures\": [\"SCMP_ARCH_X86_64\"],"
                     " \"syscalls\": [{\"names\": [\"getpid\"], \"action\": \"SCMP_ACT_ERRNO\","
                     " \"errnoRet\": 1}], \"x\": 1.5e3}");
    snprintf(prof, sizeof(prof), "localhost/%s", path);
    oci_spec_input in = base_input();
    in.seccomp = prof;
    yajl_val s = spec_ok(&in);
    ck_assert_str_eq(gstr(s, "linux.seccomp.defaultAction"), "SCMP_ACT_LOG");
    ck_assert(arr_has(garr(s, "linux.seccomp.architectures"), "SCMP_ARCH_X86_64"));
    yajl_val rules = garr(s, "linux.seccomp.syscalls");
    ck_assert_int_eq(arr_len(rules), 1);
    ck_assert_str_eq(field(rules->u.array.values[0], "action"), "SCMP_ACT_ERRNO");
    yajl_val x = get(s, "linux.seccomp.x", yajl_t_number);
    ck_assert_ptr_nonnull(x);
    ck_assert(YAJL_IS_DOUBLE(x) && YAJL_GET_DOUBLE(x) == 1500.0);
    yajl_tree_free(s);

    /* Missing file: NOT_FOUND naming the path. */
    char missing[600];
    snprintf(missing, sizeof(missing), "localhost/%s/nope.json", dir);
    in.seccomp = missing;
    cr_err *e = spec_fail(&in, CR_NOT_FOUND);
    ck_assert_msg(strstr(e->msg, "nope.json") != NULL, "<<%s>>", e->msg);
    cr_err_free(e);
    /* Not JSON, not an object, relative path. */
    write_text(path, "{ not json");
    in.seccomp = prof;
    FAIL_WITH(&in, CR_INVALID_ARGUMENT, path);
    write_text(path, "[1, 2]");
    FAIL_WITH(&in, CR_INVALID_ARGUMENT, "not a JSON object");
    in.seccomp = "localhost/relative/profile.json";
    FAIL_WITH(&in, CR_INVALID_ARGUMENT, "absolute");
    /* Privileged: no seccomp at all, the file is not even read. */
    in.seccomp = missing;
    in.privileged = true;
    s = spec_ok(&in);
    ck_assert_ptr_null(get(s, "linux.seccomp", yajl_t_any));
    yajl_tree_free(s);
    rm_tmp(dir);
}
END_TEST

START_TEST(test_privileged_devices_and_cri_paths)
{
    oci_spec_input in = base_input();
    /* The kubelet's lists replace the defaults; an empty list masks nothing. */
    const char *masked[] = { "/proc/keys", NULL }, *ro[] = { NULL };
    in.masked_paths = masked;
    in.readonly_paths = ro;
    yajl_val s = spec_ok(&in);
    ck_assert_int_eq(arr_len(garr(s, "linux.maskedPaths")), 1);
    ck_assert(arr_has(garr(s, "linux.maskedPaths"), "/proc/keys"));
    ck_assert_int_eq(arr_len(garr(s, "linux.readonlyPaths")), 0);
    ck_assert_ptr_null(get(s, "linux.devices", yajl_t_any)); /* no host devices */
    yajl_tree_free(s);
    /* Privileged: nothing masked, every host device node passed through. */
    in.privileged = true;
    s = spec_ok(&in);
    ck_assert_ptr_null(get(s, "linux.maskedPaths", yajl_t_any));
    yajl_val devs = garr(s, "linux.devices");
    bool null_dev = false, pts = false, console = false;
    for (size_t i = 0; i < arr_len(devs); i++) {
        const char *p = gstr(devs->u.array.values[i], "path");
        null_dev |= !strcmp(p, "/dev/null");
        pts |= !strncmp(p, "/dev/pts/", 9);
        console |= !strcmp(p, "/dev/console");
    }
    ck_assert_msg(null_dev, "privileged: /dev/null not among %zu devices", arr_len(devs));
    ck_assert(!pts && !console);
    yajl_tree_free(s);
}
END_TEST

START_TEST(test_oom_clamp)
{
    int own = own_oom_score_adj();
    int got = oci_clamp_oom_score_adj(-998);
    ck_assert_int_ge(got, -998);
    if (!have_cap_sys_resource()) {
        ck_assert_int_ge(got, own);
        ck_assert_int_eq(got, own > -998 ? own : -998);
    } else {
        ck_assert_int_eq(got, -998);
    }
    ck_assert_int_eq(oci_clamp_oom_score_adj(1000), 1000);
    ck_assert_int_eq(oci_clamp_oom_score_adj(5000), 1000);
    ck_assert_int_ge(oci_clamp_oom_score_adj(-5000), -1000);

    oci_spec_input in = base_input();
    in.set_oom_score_adj = true;
    in.oom_score_adj = -998;
    yajl_val s = spec_ok(&in);
    ck_assert_int_eq(gint(s, "process.oomScoreAdj"), got);
    yajl_tree_free(s);
    in.oom_score_adj = 0; /* set to 0 is still emitted */
    s = spec_ok(&in);
    ck_assert_int_eq(gint(s, "process.oomScoreAdj"), oci_clamp_oom_score_adj(0));
    yajl_tree_free(s);
}
END_TEST

START_TEST(test_resources)
{
    oci_spec_input in = base_input();
    yajl_val s = spec_ok(&in);
    yajl_val r = get(s, "linux.resources", yajl_t_object);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->u.object.len, 1); /* devices only */
    ck_assert_ptr_null(get(s, "linux.resources.memory", yajl_t_any));
    ck_assert_ptr_null(get(s, "linux.resources.cpu", yajl_t_any));
    ck_assert_ptr_null(get(s, "linux.resources.pids", yajl_t_any));
    yajl_tree_free(s);

    in.memory_limit = 64 << 20;
    in.cpu_shares = 512;
    in.pids_limit = 100;
    s = spec_ok(&in);
    ck_assert_int_eq(gint(s, "linux.resources.memory.limit"), 64 << 20);
    ck_assert_ptr_null(get(s, "linux.resources.memory.swap", yajl_t_any));
    ck_assert_int_eq(gint(s, "linux.resources.cpu.shares"), 512);
    ck_assert_ptr_null(get(s, "linux.resources.cpu.quota", yajl_t_any));
    ck_assert_ptr_null(get(s, "linux.resources.cpu.period", yajl_t_any));
    ck_assert_ptr_null(get(s, "linux.resources.cpu.cpus", yajl_t_any));
    ck_assert_int_eq(gint(s, "linux.resources.pids.limit"), 100);
    yajl_tree_free(s);

    in = base_input();
    in.memory_swap = 128 << 20;
    in.cpu_quota = 50000;
    in.cpu_period = 100000;
    in.cpuset_cpus = "0-1";
    in.cpuset_mems = "0";
    s = spec_ok(&in);
    ck_assert_ptr_null(get(s, "linux.resources.memory.limit", yajl_t_any));
    ck_assert_int_eq(gint(s, "linux.resources.memory.swap"), 128 << 20);
    ck_assert_int_eq(gint(s, "linux.resources.cpu.quota"), 50000);
    ck_assert_int_eq(gint(s, "linux.resources.cpu.period"), 100000);
    ck_assert_str_eq(gstr(s, "linux.resources.cpu.cpus"), "0-1");
    ck_assert_str_eq(gstr(s, "linux.resources.cpu.mems"), "0");
    ck_assert_ptr_null(get(s, "linux.resources.cpu.shares", yajl_t_any));
    ck_assert_ptr_null(get(s, "linux.resources.pids", yajl_t_any));
    yajl_tree_free(s);

    in = base_input();
    in.cpu_shares = -1;
    FAIL_WITH(&in, CR_INVALID_ARGUMENT, "cpu shares");
}
END_TEST

START_TEST(test_spec_write)
{
    char *dir = mk_tmp();
    oci_spec_input in = base_input();
    cr_err *e = NULL;
    ck_assert_int_eq(oci_spec_write(&in, dir, &e), 0);
    ck_assert_ptr_null(e);
    char path[512];
    snprintf(path, sizeof(path), "%s/config.json", dir);
    char *text = cr_read_file(path, NULL, &e);
    ck_assert_ptr_nonnull(text);
    yajl_val v = yajl_tree_parse(text, NULL, 0);
    ck_assert_ptr_nonnull(v);
    ck_assert_str_eq(gstr(v, "ociVersion"), "1.0.2");
    yajl_tree_free(v);
    free(text);
    /* A failing spec writes nothing. */
    ck_assert_int_eq(unlink(path), 0);
    const char *vm[] = { "vm.swappiness=1", NULL };
    in.sysctls = vm;
    ck_assert_int_eq(oci_spec_write(&in, dir, &e), -1);
    ck_assert_ptr_nonnull(e);
    cr_err_free(e);
    ck_assert_int_ne(access(path, F_OK), 0);
    rm_tmp(dir);
}
END_TEST

START_TEST(test_hugepages_unified)
{
    oci_spec_input in = base_input();
    const oci_hugepage hp[] = { { "2MB", 1ULL << 30 }, { "1GB", 0 } };
    const char *unified[] = { "memory.high", "1073741824", "io.weight", "default 100", NULL };
    in.hugepages = hp;
    in.n_hugepages = 2;
    in.unified = unified;
    yajl_val s = spec_ok(&in);
    yajl_val h = garr(s, "linux.resources.hugepageLimits");
    ck_assert_int_eq(arr_len(h), 2);
    ck_assert_str_eq(field(h->u.array.values[0], "pageSize"), "2MB");
    ck_assert_int_eq(YAJL_GET_INTEGER(yajl_tree_get(h->u.array.values[0], (const char *[]){ "limit", NULL },
                                                    yajl_t_number)),
                     1LL << 30);
    ck_assert_str_eq(field(h->u.array.values[1], "pageSize"), "1GB");
    ck_assert_int_eq(YAJL_GET_INTEGER(yajl_tree_get(h->u.array.values[1], (const char *[]){ "limit", NULL },
                                                    yajl_t_number)),
                     0);
    /* The dotted lookup cannot name "memory.high": look at the object itself. */
    yajl_val u = get(s, "linux.resources.unified", yajl_t_object);
    ck_assert_ptr_nonnull(u);
    ck_assert_int_eq(u->u.object.len, 2);
    ck_assert_str_eq(u->u.object.keys[0], "memory.high");
    ck_assert_str_eq(u->u.object.values[0]->u.string, "1073741824");
    ck_assert_str_eq(u->u.object.keys[1], "io.weight");
    ck_assert_str_eq(u->u.object.values[1]->u.string, "default 100");
    yajl_tree_free(s);

    /* Unset: neither key. */
    in = base_input();
    s = spec_ok(&in);
    ck_assert_ptr_null(get(s, "linux.resources.hugepageLimits", yajl_t_any));
    ck_assert_ptr_null(get(s, "linux.resources.unified", yajl_t_any));
    yajl_tree_free(s);

    const oci_hugepage bad_hp[] = { { "2M", 1 } };
    in.hugepages = bad_hp;
    in.n_hugepages = 1;
    FAIL_WITH(&in, CR_INVALID_ARGUMENT, "hugepage size 2M");
    const oci_hugepage huge_hp[] = { { "2MB", UINT64_MAX } };
    in.hugepages = huge_hp;
    FAIL_WITH(&in, CR_INVALID_ARGUMENT, "too large");
    in = base_input();
    const char *odd[] = { "memory.high", "1", "memory.max", NULL };
    in.unified = odd;
    FAIL_WITH(&in, CR_INVALID_ARGUMENT, "unified memory.max: no value");
}
END_TEST

/* The linux.devices entry at path, or NULL. */
static yajl_val find_device(yajl_val spec, const char *path)
{
    yajl_val devs = get(spec, "linux.devices", yajl_t_array);
    for (size_t i = 0; devs && i < devs->u.array.len; i++) {
        const char *p = field(devs->u.array.values[i], "path");
        if (p && strcmp(p, path) == 0)
            return devs->u.array.values[i];
    }
    return NULL;
}

static long long ifield(yajl_val obj, const char *key)
{
    yajl_val v = yajl_tree_get(obj, (const char *[]){ key, NULL }, yajl_t_number);
    ck_assert_msg(v && YAJL_IS_INTEGER(v), "%s: missing or not an integer", key);
    return YAJL_GET_INTEGER(v);
}

START_TEST(test_devices)
{
    oci_spec_input in = base_input();
    struct stat st;
    ck_assert_int_eq(stat("/dev/null", &st), 0);
    const oci_device devs[] = { { "/dev/mydev", "/dev/null", "rw" }, { NULL, "/dev/zero", NULL } };
    in.devices = devs;
    in.n_devices = 2;
    yajl_val s = spec_ok(&in);
    ck_assert_int_eq(arr_len(garr(s, "linux.devices")), 2);
    yajl_val d = find_device(s, "/dev/mydev");
    ck_assert_ptr_nonnull(d);
    ck_assert_str_eq(field(d, "type"), "c");
    ck_assert_int_eq(ifield(d, "major"), 1);
    ck_assert_int_eq(ifield(d, "minor"), 3);
    ck_assert_int_eq(ifield(d, "fileMode"), st.st_mode & 07777);
    ck_assert_int_eq(ifield(d, "uid"), st.st_uid);
    ck_assert_int_eq(ifield(d, "gid"), st.st_gid);
    d = find_device(s, "/dev/zero"); /* no container path: the host's */
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(ifield(d, "minor"), 5);
    /* The cgroup rules end with the devices, with their permissions. */
    yajl_val rules = garr(s, "linux.resources.devices");
    size_t n = arr_len(rules);
    ck_assert(n > 3);
    yajl_val r1 = rules->u.array.values[n - 2], r2 = rules->u.array.values[n - 1];
    ck_assert(yajl_tree_get(r1, (const char *[]){ "allow", NULL }, yajl_t_true) != NULL);
    ck_assert_str_eq(field(r1, "type"), "c");
    ck_assert_int_eq(ifield(r1, "major"), 1);
    ck_assert_int_eq(ifield(r1, "minor"), 3);
    ck_assert_str_eq(field(r1, "access"), "rw");
    ck_assert_int_eq(ifield(r2, "minor"), 5);
    ck_assert_str_eq(field(r2, "access"), "rwm");
    yajl_tree_free(s);

    /* None: no linux.devices at all. */
    in = base_input();
    s = spec_ok(&in);
    ck_assert_ptr_null(get(s, "linux.devices", yajl_t_any));
    yajl_tree_free(s);

    /* A regular file, a missing path, bad permissions, a relative container path. */
    char *dir = mk_tmp();
    char file[512], missing[512];
    snprintf(file, sizeof(file), "%s/plain", dir);
    snprintf(missing, sizeof(missing), "%s/no-such-device", dir);
    write_text(file, "x");
    oci_device bad = { "/dev/x", file, NULL };
    in.devices = &bad;
    in.n_devices = 1;
    {
        cr_err *e = spec_fail(&in, CR_INVALID_ARGUMENT);
        ck_assert_msg(strstr(e->msg, file) && strstr(e->msg, "not a character or block device"), "<<%s>>",
                      e->msg);
        cr_err_free(e);
    }
    bad.host_path = missing;
    {
        cr_err *e = spec_fail(&in, CR_NOT_FOUND);
        ck_assert_msg(strstr(e->msg, missing) != NULL, "<<%s>>", e->msg);
        cr_err_free(e);
    }
    bad.host_path = "/dev/null";
    bad.permissions = "rwx";
    FAIL_WITH(&in, CR_INVALID_ARGUMENT, "permissions rwx");
    bad.permissions = "r";
    bad.container_path = "dev/x";
    FAIL_WITH(&in, CR_INVALID_ARGUMENT, "not absolute");
    rm_tmp(dir);
}
END_TEST

START_TEST(test_rootfs_propagation)
{
    oci_spec_input in = base_input();
    yajl_val s = spec_ok(&in);
    ck_assert_ptr_null(get(s, "linux.rootfsPropagation", yajl_t_any));
    yajl_tree_free(s);

    const char *names[] = { "private", "rslave", "rshared" };
    for (int i = 0; i < 3; i++) {
        in.rootfs_propagation = names[i];
        s = spec_ok(&in);
        ck_assert_str_eq(gstr(s, "linux.rootfsPropagation"), names[i]);
        yajl_tree_free(s);
    }
    in.rootfs_propagation = "sideways";
    FAIL_WITH(&in, CR_INVALID_ARGUMENT, "rootfs propagation sideways");

    /* From the mounts: a slave mount needs rslave, a shared one rshared. */
    const char *o_slave[] = { "rbind", "rslave", NULL }, *o_shared[] = { "rbind", "rshared", NULL },
               *o_plain[] = { "rbind", "ro", NULL };
    oci_mount m[] = { { "/a", "bind", "/tmp", o_plain }, { "/b", "bind", "/tmp", o_slave },
                      { "/c", "bind", "/tmp", o_shared } };
    in = base_input();
    in.mounts = m;
    in.n_mounts = 1;
    s = spec_ok(&in);
    ck_assert_ptr_null(get(s, "linux.rootfsPropagation", yajl_t_any));
    yajl_tree_free(s);
    in.n_mounts = 2;
    s = spec_ok(&in);
    ck_assert_str_eq(gstr(s, "linux.rootfsPropagation"), "rslave");
    yajl_tree_free(s);
    in.n_mounts = 3;
    s = spec_ok(&in);
    ck_assert_str_eq(gstr(s, "linux.rootfsPropagation"), "rshared");
    yajl_tree_free(s);
    /* The caller's choice wins. */
    in.rootfs_propagation = "private";
    s = spec_ok(&in);
    ck_assert_str_eq(gstr(s, "linux.rootfsPropagation"), "private");
    yajl_tree_free(s);
}
END_TEST

static bool host_apparmor(void)
{
    char buf[8] = "";
    FILE *f = fopen("/sys/module/apparmor/parameters/enabled", "re");
    bool on = f && fgets(buf, sizeof(buf), f) && buf[0] == 'Y';
    if (f)
        fclose(f);
    return on;
}

START_TEST(test_apparmor)
{
    oci_spec_input in = base_input();
    yajl_val s;
    const char *none[] = { NULL, "" };
    for (int i = 0; i < 2; i++) {
        in.apparmor_profile = none[i];
        s = spec_ok(&in);
        ck_assert_ptr_null(get(s, "process.apparmorProfile", yajl_t_any));
        yajl_tree_free(s);
    }
    if (!host_apparmor()) {
        printf("apparmor: not enabled on this host\n");
        /* The default and unconfined mean nothing here: dropped. */
        const char *dropped[] = { "runtime/default", "unconfined" };
        for (int i = 0; i < 2; i++) {
            in.apparmor_profile = dropped[i];
            s = spec_ok(&in);
            ck_assert_ptr_null(get(s, "process.apparmorProfile", yajl_t_any));
            yajl_tree_free(s);
        }
        /* A named profile cannot be honoured. */
        in.apparmor_profile = "localhost/my-profile";
        FAIL_WITH(&in, CR_INVALID_ARGUMENT, "apparmor is not enabled on this host");
        in.apparmor_profile = "my-profile";
        FAIL_WITH(&in, CR_INVALID_ARGUMENT, "apparmor is not enabled on this host");
        return;
    }
    printf("apparmor: enabled on this host\n");
    in.apparmor_profile = "unconfined";
    s = spec_ok(&in);
    ck_assert_str_eq(gstr(s, "process.apparmorProfile"), "unconfined");
    yajl_tree_free(s);
    if (access("/sys/kernel/security/apparmor/profiles", R_OK) == 0) {
        in.apparmor_profile = "localhost/crisp-test-no-such-profile";
        FAIL_WITH(&in, CR_INVALID_ARGUMENT, "is not loaded");
    }
    in.apparmor_profile = "runtime/default";
    cr_err *e = NULL;
    char *json = oci_spec_json(&in, &e);
    if (json) {
        yajl_val v = yajl_tree_parse(json, NULL, 0);
        ck_assert_str_eq(gstr(v, "process.apparmorProfile"), OCI_APPARMOR_DEFAULT_PROFILE);
        yajl_tree_free(v);
        free(json);
    } else {
        ck_assert_int_eq(e->code, CR_FAILED_PRECONDITION);
        cr_err_free(e);
    }
    /* Privileged: the default profile is not applied. */
    in.privileged = true;
    s = spec_ok(&in);
    ck_assert_ptr_null(get(s, "process.apparmorProfile", yajl_t_any));
    yajl_tree_free(s);
}
END_TEST

static void write_in(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    write_text(path, text);
}

/* The paths of the hooks of stage, joined with ","; "" when none. */
static void stage_paths(yajl_val spec, const char *stage, char *out, size_t n)
{
    out[0] = '\0';
    const char *p[] = { "hooks", stage, NULL };
    yajl_val a = yajl_tree_get(spec, p, yajl_t_array);
    for (size_t i = 0; a && i < a->u.array.len; i++) {
        size_t len = strlen(out);
        snprintf(out + len, n - len, "%s%s", len ? "," : "", field(a->u.array.values[i], "path"));
    }
}

START_TEST(test_hooks)
{
    char *dir = mk_tmp();
    char text[2048];
    snprintf(text, sizeof(text),
             "{\"version\": \"1.0.0\", \"hook\": {\"path\": \"/bin/true\", \"args\": [\"true\", \"-x\"], "
             "\"env\": [\"A=1\"], \"timeout\": 5}, \"when\": {\"always\": true}, "
             "\"stages\": [\"prestart\", \"poststop\"]}");
    write_in(dir, "01-always.json", text);
    write_in(dir, "02-Annotated.json",
             "{\"version\": \"1.0.0\", \"hook\": {\"path\": \"/bin/sh\"}, "
             "\"when\": {\"annotations\": {\"^io\\\\.crisp\\\\.hook$\": \"^(yes|on)$\"}}, "
             "\"stages\": [\"createRuntime\", \"prestart\"]}");
    write_in(dir, "03-commands.json",
             "{\"version\": \"1.0.0\", \"hook\": {\"path\": \"/bin/echo\"}, "
             "\"when\": {\"commands\": [\"^/usr/bin/nothing$\"]}, \"stages\": [\"poststart\"]}");
    write_in(dir, "04-binds.json",
             "{\"version\": \"1.0.0\", \"hook\": {\"path\": \"/bin/ls\"}, "
             "\"when\": {\"hasBindMounts\": true, \"always\": true}, \"stages\": [\"startContainer\"]}");
    write_in(dir, "05-sh.json",
             "{\"version\": \"1.0.0\", \"hook\": {\"path\": \"/bin/cat\"}, "
             "\"when\": {\"commands\": [\"/sh$\"]}, \"stages\": [\"createContainer\"]}");
    write_in(dir, "notes.txt", "not a hook");

    oci_spec_input in = base_input();
    in.hooks_dir = dir;
    yajl_val s = spec_ok(&in);
    char got[512];
    stage_paths(s, "prestart", got, sizeof(got));
    ck_assert_str_eq(got, "/bin/true");
    stage_paths(s, "poststop", got, sizeof(got));
    ck_assert_str_eq(got, "/bin/true");
    stage_paths(s, "createRuntime", got, sizeof(got));
    ck_assert_str_eq(got, "");            /* no annotation */
    stage_paths(s, "poststart", got, sizeof(got));
    ck_assert_str_eq(got, "");            /* the command does not match */
    stage_paths(s, "startContainer", got, sizeof(got));
    ck_assert_str_eq(got, "");            /* no bind mount */
    stage_paths(s, "createContainer", got, sizeof(got));
    ck_assert_str_eq(got, "/bin/cat");    /* args[0] is /bin/sh */
    yajl_val h = garr(s, "hooks.prestart")->u.array.values[0];
    yajl_val args = yajl_tree_get(h, (const char *[]){ "args", NULL }, yajl_t_array);
    ck_assert_int_eq(arr_len(args), 2);
    ck_assert(arr_has(args, "-x"));
    ck_assert(arr_has(yajl_tree_get(h, (const char *[]){ "env", NULL }, yajl_t_array), "A=1"));
    ck_assert_int_eq(ifield(h, "timeout"), 5);
    yajl_tree_free(s);

    /* The annotation and a bind mount bring their hooks, in file name order. */
    const char *ann[] = { "other", "x", "io.crisp.hook", "yes", NULL };
    oci_mount m = { "/data", "bind", "/tmp", NULL };
    in.annotations = ann;
    in.mounts = &m;
    in.n_mounts = 1;
    s = spec_ok(&in);
    stage_paths(s, "prestart", got, sizeof(got));
    ck_assert_str_eq(got, "/bin/true,/bin/sh");
    stage_paths(s, "createRuntime", got, sizeof(got));
    ck_assert_str_eq(got, "/bin/sh");
    stage_paths(s, "startContainer", got, sizeof(got));
    ck_assert_str_eq(got, "/bin/ls");
    yajl_tree_free(s);
    const char *ann_no[] = { "io.crisp.hook", "no", NULL };
    in.annotations = ann_no;
    s = spec_ok(&in);
    stage_paths(s, "createRuntime", got, sizeof(got));
    ck_assert_str_eq(got, "");
    yajl_tree_free(s);

    /* A missing folder: no hooks; NULL: none either. */
    char missing[512];
    snprintf(missing, sizeof(missing), "%s/none", dir);
    in.hooks_dir = missing;
    s = spec_ok(&in);
    ck_assert_ptr_null(get(s, "hooks", yajl_t_any));
    yajl_tree_free(s);
    in.hooks_dir = NULL;
    s = spec_ok(&in);
    ck_assert_ptr_null(get(s, "hooks", yajl_t_any));
    yajl_tree_free(s);

    /* Bad files, each named in the error. */
    static const char *const bad[][2] = {
        { "{", "not valid JSON" },
        { "{\"version\": \"2.0.0\", \"hook\": {\"path\": \"/bin/true\"}, \"when\": {\"always\": true}, "
          "\"stages\": [\"prestart\"]}", "unexpected hook version" },
        { "{\"version\": \"1.0.0\", \"hook\": {\"path\": \"/bin/true\"}, \"when\": {\"always\": true}, "
          "\"stages\": [\"prestop\"]}", "unknown stage \"prestop\"" },
        { "{\"version\": \"1.0.0\", \"hook\": {\"path\": \"/no/such/hook\"}, \"when\": {\"always\": true}, "
          "\"stages\": [\"prestart\"]}", "/no/such/hook" },
        { "{\"version\": \"1.0.0\", \"hook\": {\"path\": \"/bin/true\"}, \"when\": {}, "
          "\"stages\": [\"prestart\"]}", "no condition" },
        { "{\"version\": \"1.0.0\", \"hook\": {\"path\": \"/bin/true\"}, \"when\": {\"commands\": [\"(\"]}, "
          "\"stages\": [\"prestart\"]}", "invalid command" },
    };
    char *bad_dir = mk_tmp();
    char bad_path[512];
    snprintf(bad_path, sizeof(bad_path), "%s/50-bad.json", bad_dir);
    in = base_input();
    in.hooks_dir = bad_dir;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_in(bad_dir, "50-bad.json", bad[i][0]);
        cr_err *e = spec_fail(&in, CR_INVALID_ARGUMENT);
        ck_assert_msg(strstr(e->msg, bad_path) && strstr(e->msg, bad[i][1]), "case %zu: <<%s>>", i, e->msg);
        cr_err_free(e);
    }
    rm_tmp(bad_dir);
    rm_tmp(dir);
}
END_TEST

static Suite *spec_suite(void)
{
    Suite *s = suite_create("oci-spec");
    TCase *tc = tcase_create("spec");
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_process_fields);
    tcase_add_test(tc, test_mount_replaces_default);
    tcase_add_test(tc, test_caps_add_drop);
    tcase_add_test(tc, test_caps_all_and_privileged);
    tcase_add_test(tc, test_privileged_devices_and_cri_paths);
    tcase_add_test(tc, test_caps_unknown);
    tcase_add_test(tc, test_sysctls);
    tcase_add_test(tc, test_namespaces_and_hostname);
    tcase_add_test(tc, test_readonly_rootfs);
    tcase_add_test(tc, test_seccomp_default);
    tcase_add_test(tc, test_seccomp_unconfined_and_unknown);
    tcase_add_test(tc, test_seccomp_localhost);
    tcase_add_test(tc, test_oom_clamp);
    tcase_add_test(tc, test_resources);
    tcase_add_test(tc, test_spec_write);
    tcase_add_test(tc, test_hugepages_unified);
    tcase_add_test(tc, test_devices);
    tcase_add_test(tc, test_rootfs_propagation);
    tcase_add_test(tc, test_apparmor);
    tcase_add_test(tc, test_hooks);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(spec_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
