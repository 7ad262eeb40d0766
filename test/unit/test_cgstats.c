/* Cgroup statistics readers: every figure from fixture trees in both layouts
 * (test/unit/fixtures/cgroup-v1 is this machine's hybrid layout: v1
 * controllers plus the unified tree; cgroup-v2 is a unified tree with a
 * systemd-driver and a cgroupfs-driver container), the error cases on
 * altered copies, and one live read of a real v1 cgroup holding a child that
 * touches 50 MiB. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "oci/cgstats.h"

#define MiB (UINT64_C(1) << 20)

static char fixtures[1024];   /* .../test/unit/fixtures */
static char tmp[1024];      /* this run's scratch folder */
static pid_t runner;              /* the check runner: names the live cgroups */

/* The fixtures folder: $CRISP_SRC_DIR, the working folder, or a parent of
 * the test binary's folder (build dirs sit inside the source tree). */
static void find_fixtures(void)
{
    const char *src = getenv("CRISP_SRC_DIR");
    if (src && snprintf(fixtures, sizeof(fixtures), "%s/test/unit/fixtures", src) < (int)sizeof(fixtures) &&
        access(fixtures, F_OK) == 0)
        return;
    if (access("test/unit/fixtures/cgroup-v1", F_OK) == 0 && realpath("test/unit/fixtures", fixtures))
        return;
    char exe[1024];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        for (char *slash; (slash = strrchr(exe, '/')) && slash != exe;) {
            *slash = '\0';
            char cand[PATH_MAX];
            if (snprintf(cand, sizeof(cand), "%s/test/unit/fixtures/cgroup-v1", exe) < (int)sizeof(cand) &&
                access(cand, F_OK) == 0) {
                if (snprintf(fixtures, sizeof(fixtures), "%s/test/unit/fixtures", exe) < (int)sizeof(fixtures))
                    return;
            }
        }
    }
    fprintf(stderr, "test_cgstats: cannot find test/unit/fixtures (set CRISP_SRC_DIR)\n");
    exit(1);
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[4 * PATH_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void live_cleanup(void);

static void setup(void)
{
    runner = getpid();
    find_fixtures();
    snprintf(tmp, sizeof(tmp), "/tmp/crispstats-cg-XXXXXX");
    if (!mkdtemp(tmp))
        exit(1);
}

static void teardown(void)
{
    live_cleanup();
    sh("rm -rf '%s'", tmp);
}

/* A private copy of a fixture tree under tmp, for tests that alter it. */
static const char *copy_fixture(const char *name, const char *as)
{
    static char dst[PATH_MAX];
    snprintf(dst, sizeof(dst), "%s/%s", tmp, as);
    ck_assert_int_eq(sh("rm -rf '%s' && cp -a '%s/%s' '%s'", dst, fixtures, name, dst), 0);
    return dst;
}

static const char *fixture(const char *name)
{
    static char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/%s", fixtures, name);
    return p;
}

static void put(const char *root, const char *rel, const char *content)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/%s", root, rel);
    FILE *f = fopen(p, "we");
    ck_assert_msg(f, "open %s: %s", p, strerror(errno));
    fputs(content, f);
    fclose(f);
}

static void rm(const char *root, const char *rel)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/%s", root, rel);
    ck_assert_msg(unlink(p) == 0, "unlink %s: %s", p, strerror(errno));
}

#define V1_POD "kubepods/burstable/podabc"
#define V1_C1 V1_POD "/crisp-c1"
#define V1_C2 V1_POD "/crisp-c2"
#define V2_C1 "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podabc.slice/crisp-c1.scope"
#define V2_C2 "kubepods/besteffort/poddef/crisp-c2"

/* Read, expecting failure with code; the message must contain want. */
static void expect_err(const char *root, oci_cg_layout l, const char *rel, int code, const char *want)
{
    _cleanup_err_ cr_err *err = NULL;
    oci_cg_stats st;
    ck_assert_int_lt(oci_cg_read_stats(root, l, rel, &st, &err), 0);
    ck_assert_ptr_nonnull(err);
    ck_assert_msg(err->code == code, "%s: code %s, want %s: %s", rel, cr_code_name(err->code), cr_code_name(code),
                  err->msg);
    ck_assert_msg(strstr(err->msg, want), "%s: message \"%s\" lacks \"%s\"", rel, err->msg, want);
    ck_assert_uint_eq(st.mem_usage, 0);   /* nothing half-filled */
}

static void read_ok(const char *root, oci_cg_layout l, const char *rel, oci_cg_stats *st)
{
    _cleanup_err_ cr_err *err = NULL;
    int r = oci_cg_read_stats(root, l, rel, st, &err);
    ck_assert_msg(r == 0, "read %s under %s: %s", rel, root, err ? err->msg : "?");
}

static void psi_eq(const oci_cg_psi_data *d, double a10, double a60, double a300, uint64_t total_ns)
{
    ck_assert_double_eq_tol(d->avg10, a10, 1e-9);
    ck_assert_double_eq_tol(d->avg60, a60, 1e-9);
    ck_assert_double_eq_tol(d->avg300, a300, 1e-9);
    ck_assert_uint_eq(d->total_ns, total_ns);
}

/* ---- layout detection and path resolution ---- */

START_TEST(detect_layouts)
{
    _cleanup_err_ cr_err *err = NULL;
    oci_cg_layout l;
    ck_assert_int_eq(oci_cg_detect(fixture("cgroup-v1"), &l, &err), 0);
    ck_assert_int_eq(l, OCI_CG_HYBRID);
    ck_assert_int_eq(oci_cg_detect(fixture("cgroup-v2"), &l, &err), 0);
    ck_assert_int_eq(l, OCI_CG_V2);
    const char *pure = copy_fixture("cgroup-v1", "pure-v1");
    ck_assert_int_eq(sh("rm -rf '%s/unified'", pure), 0);
    ck_assert_int_eq(oci_cg_detect(pure, &l, &err), 0);
    ck_assert_int_eq(l, OCI_CG_V1);
    ck_assert_str_eq(oci_cg_layout_name(OCI_CG_V1), "v1");
    ck_assert_str_eq(oci_cg_layout_name(OCI_CG_HYBRID), "hybrid");
    ck_assert_str_eq(oci_cg_layout_name(OCI_CG_V2), "v2");

    /* A folder without any hierarchy. */
    char empty[PATH_MAX];
    snprintf(empty, sizeof(empty), "%s/empty", tmp);
    ck_assert_int_eq(mkdir(empty, 0755), 0);
    ck_assert_int_lt(oci_cg_detect(empty, &l, &err), 0);
    ck_assert_int_eq(err->code, CR_FAILED_PRECONDITION);
    ck_assert_ptr_nonnull(strstr(err->msg, empty));
    ck_assert_int_eq(l, OCI_CG_UNKNOWN);
    cr_err_free(err);
    err = NULL;

    /* This machine, by the default root: whatever the mounts say. */
    oci_cg_layout want = access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0           ? OCI_CG_V2
                         : access("/sys/fs/cgroup/unified/cgroup.controllers", F_OK) == 0 ? OCI_CG_HYBRID
                                                                                          : OCI_CG_V1;
    ck_assert_int_eq(oci_cg_detect(NULL, &l, &err), 0);
    ck_assert_int_eq(l, want);
}
END_TEST

static void resolves(const char *in, const char *want)
{
    _cleanup_err_ cr_err *err = NULL;
    _cleanup_free_ char *rel = NULL;
    int r = oci_cg_resolve(in, &rel, &err);
    ck_assert_msg(r == 0, "resolve \"%s\": %s", in ? in : "(null)", err ? err->msg : "?");
    ck_assert_msg(!strcmp(rel, want), "resolve \"%s\": \"%s\", want \"%s\"", in ? in : "(null)", rel, want);
}

static void refused(const char *in)
{
    _cleanup_err_ cr_err *err = NULL;
    char *rel = (char *)"untouched";
    ck_assert_int_lt(oci_cg_resolve(in, &rel, &err), 0);
    ck_assert_ptr_null(rel);
    ck_assert_msg(err && err->code == CR_INVALID_ARGUMENT, "resolve \"%s\": want INVALID_ARGUMENT", in);
    ck_assert_msg(strstr(err->msg, in), "message \"%s\" does not name \"%s\"", err->msg, in);
}

START_TEST(resolve_paths)
{
    /* cgroupfs, as server/util.c srv_cgroups_path makes them */
    resolves("/kubepods/burstable/podabc/crisp-c1", "kubepods/burstable/podabc/crisp-c1");
    resolves("/crisp/crisp-0123abcd", "crisp/crisp-0123abcd");
    resolves("kubepods//besteffort/./pod1/", "kubepods/besteffort/pod1");
    resolves("/", "");
    resolves("", "");
    resolves(NULL, "");
    refused("/kubepods/../etc");
    refused("..");
    /* systemd driver: slice:prefix:name */
    resolves("kubepods-burstable-podabc.slice:crisp:c1",
             "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podabc.slice/crisp-c1.scope");
    resolves("system.slice:crisp:0123abcd", "system.slice/crisp-0123abcd.scope");
    resolves(":crisp:0123abcd", "system.slice/crisp-0123abcd.scope");
    resolves("-.slice:crisp:x", "crisp-x.scope");
    resolves("machine.slice::x", "machine.slice/x.scope");
    resolves("kubepods.slice:crisp:kubepods-besteffort.slice", "kubepods.slice/kubepods-besteffort.slice");
    refused("kubepods--burstable.slice:crisp:x");
    refused("-kubepods.slice:crisp:x");
    refused("kubepods-.slice:crisp:x");
    refused("kubepods:crisp:x");
    refused("kube/pods.slice:crisp:x");
    refused("kubepods.slice:crisp:");
    refused("kubepods.slice:crisp:a/b");
}
END_TEST

/* ---- v1 (hybrid fixture) ---- */

START_TEST(v1_container_all_figures)
{
    oci_cg_stats st;
    /* Through the cgroups path and with the layout detected. */
    _cleanup_err_ cr_err *err = NULL;
    ck_assert_int_eq(oci_cg_read_stats_path(fixture("cgroup-v1"), OCI_CG_UNKNOWN, "/" V1_C1, &st, &err), 0);
    ck_assert_int_eq(st.layout, OCI_CG_HYBRID);
    ck_assert_int_gt(st.timestamp_ns, 1600000000LL * 1000000000LL);
    ck_assert_int_gt(st.monotonic_ns, 0);

    ck_assert_uint_eq(st.cpu_usage_ns, 5123456789ULL);               /* cpuacct.usage */
    ck_assert(st.has_cpu_user_system);
    ck_assert_uint_eq(st.cpu_user_ns, 4000000000ULL);                 /* cpuacct.usage_user */
    ck_assert_uint_eq(st.cpu_system_ns, 1123456789ULL);               /* cpuacct.usage_sys */
    ck_assert(st.has_cpu_throttling);
    ck_assert_uint_eq(st.cpu_periods, 1000);
    ck_assert_uint_eq(st.cpu_throttled_periods, 25);
    ck_assert_uint_eq(st.cpu_throttled_ns, 987654321ULL);             /* throttled_time is ns in v1 */

    ck_assert_uint_eq(st.mem_usage, 100 * MiB);
    ck_assert_uint_eq(st.mem_inactive_file, 20 * MiB);
    ck_assert_uint_eq(st.mem_working_set, 80 * MiB);                  /* usage - total_inactive_file */
    ck_assert_uint_eq(st.mem_rss, 60 * MiB);                          /* total_rss */
    ck_assert_uint_eq(st.mem_cache, 40 * MiB);
    ck_assert_uint_eq(st.mem_page_faults, 123456);
    ck_assert_uint_eq(st.mem_major_page_faults, 78);
    ck_assert(st.has_mem_limit);
    ck_assert_uint_eq(st.mem_limit, 256 * MiB);
    ck_assert_uint_eq(st.mem_available, 176 * MiB);                   /* limit - working set */

    ck_assert(st.has_swap);
    ck_assert_uint_eq(st.swap_usage, 5 * MiB);                        /* memsw.usage - usage */
    ck_assert(st.has_swap_limit);
    ck_assert_uint_eq(st.swap_limit, 256 * MiB);                      /* memsw.limit - limit */
    ck_assert_uint_eq(st.swap_available, 251 * MiB);

    ck_assert(st.has_pids);
    ck_assert_uint_eq(st.pids_current, 7);
    ck_assert(st.has_pids_limit);
    ck_assert_uint_eq(st.pids_limit, 1024);

    /* PSI from the unified tree's mirror of the cgroup. */
    ck_assert(st.cpu_psi.present && st.cpu_psi.has_full);
    psi_eq(&st.cpu_psi.some, 12.50, 8.25, 3.10, 1234567000ULL);
    psi_eq(&st.cpu_psi.full, 0.40, 0.21, 0.05, 89012000ULL);
    ck_assert(st.memory_psi.present && st.memory_psi.has_full);
    psi_eq(&st.memory_psi.some, 0, 0.01, 0, 4567000ULL);
    psi_eq(&st.memory_psi.full, 0, 0, 0, 3210000ULL);
    ck_assert(st.io_psi.present && st.io_psi.has_full);
    psi_eq(&st.io_psi.some, 99.99, 50, 25, UINT64_MAX);   /* microseconds * 1000 saturates */
    psi_eq(&st.io_psi.full, 7.07, 6.06, 5.05, 42000ULL);
}
END_TEST

START_TEST(v1_unlimited_no_swap_accounting_no_psi)
{
    oci_cg_stats st;
    read_ok(fixture("cgroup-v1"), OCI_CG_HYBRID, V1_C2, &st);
    ck_assert_uint_eq(st.cpu_usage_ns, 38200000ULL);
    /* No cpuacct.usage_user/usage_sys: cpuacct.stat in USER_HZ ticks. */
    long hz = sysconf(_SC_CLK_TCK);
    ck_assert(st.has_cpu_user_system);
    ck_assert_uint_eq(st.cpu_user_ns, 3 * (1000000000ULL / (uint64_t)hz));
    ck_assert_uint_eq(st.cpu_system_ns, 1 * (1000000000ULL / (uint64_t)hz));
    ck_assert(!st.has_cpu_throttling);   /* not in the cpu hierarchy */

    ck_assert_uint_eq(st.mem_usage, 5386240);
    ck_assert_uint_eq(st.mem_working_set, 5386240 - 4096000);
    ck_assert_uint_eq(st.mem_rss, 1150976);
    ck_assert_uint_eq(st.mem_cache, 4096000);
    ck_assert_uint_eq(st.mem_page_faults, 2211);
    ck_assert_uint_eq(st.mem_major_page_faults, 3);
    ck_assert(!st.has_mem_limit);          /* 9223372036854771712 */
    ck_assert_uint_eq(st.mem_limit, 0);
    ck_assert_uint_eq(st.mem_available, 0);
    ck_assert(!st.has_swap && !st.has_swap_limit);
    ck_assert_uint_eq(st.swap_usage, 0);
    ck_assert(st.has_pids && !st.has_pids_limit);
    ck_assert_uint_eq(st.pids_current, 1);
    ck_assert(!st.cpu_psi.present && !st.memory_psi.present && !st.io_psi.present);
}
END_TEST

START_TEST(v1_pod_uses_hierarchical_totals)
{
    oci_cg_stats st;
    read_ok(fixture("cgroup-v1"), OCI_CG_HYBRID, V1_POD, &st);
    /* The pod's own (non-total) figures are all 0: the total_ ones count. */
    ck_assert_uint_eq(st.mem_usage, 110243840);
    ck_assert_uint_eq(st.mem_rss, 64065536);
    ck_assert_uint_eq(st.mem_working_set, 110243840 - 25067520);
    ck_assert_uint_eq(st.mem_page_faults, 125667);
    ck_assert_uint_eq(st.mem_major_page_faults, 81);
    ck_assert(st.has_mem_limit);
    ck_assert_uint_eq(st.mem_available, 536870912 - (110243840 - 25067520));
    ck_assert(st.has_swap && !st.has_swap_limit);   /* memsw unlimited */
    ck_assert_uint_eq(st.swap_usage, 5 * MiB);
    ck_assert_uint_eq(st.swap_available, 0);
    ck_assert_uint_eq(st.cpu_usage_ns, 5161656789ULL);
    ck_assert(st.has_pids && !st.has_pids_limit);
    ck_assert_uint_eq(st.pids_current, 8);
    ck_assert(!st.cpu_psi.present);   /* the pod has no unified mirror in the fixture */
}
END_TEST

START_TEST(v1_pure_has_no_psi)
{
    const char *root = copy_fixture("cgroup-v1", "pure");
    ck_assert_int_eq(sh("rm -rf '%s/unified'", root), 0);
    oci_cg_stats st;
    read_ok(root, OCI_CG_UNKNOWN, V1_C1, &st);
    ck_assert_int_eq(st.layout, OCI_CG_V1);
    ck_assert_uint_eq(st.mem_working_set, 80 * MiB);
    ck_assert(!st.cpu_psi.present && !st.memory_psi.present && !st.io_psi.present);
    /* The same tree read as hybrid by mistake: still no PSI, no error. */
    read_ok(root, OCI_CG_HYBRID, V1_C1, &st);
    ck_assert(!st.cpu_psi.present);
}
END_TEST

START_TEST(v1_errors)
{
    const char *root = copy_fixture("cgroup-v1", "v1err");
    /* Gone (or never there). */
    expect_err(root, OCI_CG_HYBRID, V1_POD "/crisp-gone", CR_NOT_FOUND, V1_POD "/crisp-gone");
    expect_err(fixture("cgroup-v1"), OCI_CG_UNKNOWN, "nope", CR_NOT_FOUND, "not found");
    expect_err(fixture("cgroup-v1"), OCI_CG_HYBRID, "kubepods/../../etc", CR_INVALID_ARGUMENT, "..");
    expect_err(fixture("cgroup-v2"), OCI_CG_V2, "..", CR_INVALID_ARGUMENT, "..");
    /* In the memory hierarchy but not in cpuacct's. */
    ck_assert_int_eq(sh("rm -rf '%s/cpuacct/" V1_C2 "'", root), 0);
    expect_err(root, OCI_CG_HYBRID, V1_C2, CR_FAILED_PRECONDITION, "cpuacct");
    /* A required file missing: named in the message. */
    rm(root, "memory/" V1_C1 "/memory.stat");
    expect_err(root, OCI_CG_HYBRID, V1_C1, CR_FAILED_PRECONDITION, "memory.stat");
    ck_assert_int_eq(sh("cp '%s/memory/" V1_C1 "/memory.stat' '%s/memory/" V1_C1 "/'", fixture("cgroup-v1"), root), 0);
    rm(root, "cpuacct/" V1_C1 "/cpuacct.usage");
    expect_err(root, OCI_CG_HYBRID, V1_C1, CR_FAILED_PRECONDITION, "cpuacct.usage");
    put(root, "cpuacct/" V1_C1 "/cpuacct.usage", "5123456789\n");
    /* Malformed content. */
    put(root, "memory/" V1_C1 "/memory.usage_in_bytes", "lots\n");
    expect_err(root, OCI_CG_HYBRID, V1_C1, CR_INTERNAL, "memory.usage_in_bytes");
    put(root, "memory/" V1_C1 "/memory.usage_in_bytes", "104857600\n");
    put(root, "memory/" V1_C1 "/memory.stat", "cache 1\ntotal_rss 2\ntotal_cache 3\ntotal_pgfault 4\ntotal_pgmajfault 5\n");
    expect_err(root, OCI_CG_HYBRID, V1_C1, CR_INTERNAL, "total_inactive_file");
    put(root, "memory/" V1_C1 "/memory.stat", "total_rss x\n");
    expect_err(root, OCI_CG_HYBRID, V1_C1, CR_INTERNAL, "memory.stat");
    ck_assert_int_eq(sh("cp '%s/memory/" V1_C1 "/memory.stat' '%s/memory/" V1_C1 "/'", fixture("cgroup-v1"), root), 0);
    put(root, "unified/" V1_C1 "/io.pressure", "some avg10=1,5 avg60=0.00 avg300=0.00 total=0\n");
    expect_err(root, OCI_CG_HYBRID, V1_C1, CR_INTERNAL, "io.pressure");
    /* Optional files missing: flags, not errors. */
    rm(root, "unified/" V1_C1 "/io.pressure");
    rm(root, "pids/" V1_C1 "/pids.current");
    rm(root, "memory/" V1_C1 "/memory.memsw.usage_in_bytes");
    oci_cg_stats st;
    read_ok(root, OCI_CG_HYBRID, V1_C1, &st);
    ck_assert(!st.io_psi.present && st.cpu_psi.present);
    ck_assert(!st.has_pids && !st.has_swap);
    ck_assert_uint_eq(st.mem_working_set, 80 * MiB);
    /* No memory controller at all. */
    ck_assert_int_eq(sh("rm -rf '%s/memory'", root), 0);
    expect_err(root, OCI_CG_HYBRID, V1_C1, CR_FAILED_PRECONDITION, "memory");
}
END_TEST

/* ---- v2 ---- */

START_TEST(v2_container_all_figures)
{
    oci_cg_stats st;
    _cleanup_err_ cr_err *err = NULL;
    /* The systemd driver's cgroups path, resolved to the slice folders. */
    ck_assert_int_eq(oci_cg_read_stats_path(fixture("cgroup-v2"), OCI_CG_UNKNOWN,
                                            "kubepods-burstable-podabc.slice:crisp:c1", &st, &err), 0);
    ck_assert_int_eq(st.layout, OCI_CG_V2);

    ck_assert_uint_eq(st.cpu_usage_ns, 5123456000ULL);   /* usage_usec * 1000 */
    ck_assert(st.has_cpu_user_system);
    ck_assert_uint_eq(st.cpu_user_ns, 4000000000ULL);
    ck_assert_uint_eq(st.cpu_system_ns, 1123456000ULL);
    ck_assert(st.has_cpu_throttling);
    ck_assert_uint_eq(st.cpu_periods, 1000);
    ck_assert_uint_eq(st.cpu_throttled_periods, 25);
    ck_assert_uint_eq(st.cpu_throttled_ns, 987654000ULL);

    ck_assert_uint_eq(st.mem_usage, 100 * MiB);                 /* memory.current */
    ck_assert_uint_eq(st.mem_inactive_file, 20 * MiB);
    ck_assert_uint_eq(st.mem_working_set, 80 * MiB);
    ck_assert_uint_eq(st.mem_rss, 60 * MiB);                    /* anon */
    ck_assert_uint_eq(st.mem_cache, 40 * MiB);                  /* file, not file_mapped */
    ck_assert_uint_eq(st.mem_page_faults, 123456);
    ck_assert_uint_eq(st.mem_major_page_faults, 78);
    ck_assert(st.has_mem_limit);
    ck_assert_uint_eq(st.mem_limit, 256 * MiB);
    ck_assert_uint_eq(st.mem_available, 176 * MiB);

    ck_assert(st.has_swap && st.has_swap_limit);
    ck_assert_uint_eq(st.swap_usage, 5 * MiB);                  /* memory.swap.current */
    ck_assert_uint_eq(st.swap_limit, 256 * MiB);                /* memory.swap.max */
    ck_assert_uint_eq(st.swap_available, 251 * MiB);

    ck_assert(st.has_pids && st.has_pids_limit);
    ck_assert_uint_eq(st.pids_current, 7);
    ck_assert_uint_eq(st.pids_limit, 1024);

    ck_assert(st.cpu_psi.present && st.cpu_psi.has_full);
    psi_eq(&st.cpu_psi.some, 12.50, 8.25, 3.10, 1234567000ULL);
    psi_eq(&st.cpu_psi.full, 0.40, 0.21, 0.05, 89012000ULL);
    ck_assert(st.memory_psi.present);
    psi_eq(&st.memory_psi.some, 0, 0.01, 0, 4567000ULL);
    psi_eq(&st.memory_psi.full, 0, 0, 0, 3210000ULL);
    ck_assert(st.io_psi.present);
    psi_eq(&st.io_psi.some, 99.99, 50, 25, UINT64_MAX);
    psi_eq(&st.io_psi.full, 7.07, 6.06, 5.05, 42000ULL);
}
END_TEST

START_TEST(v2_besteffort_partial)
{
    oci_cg_stats st;
    read_ok(fixture("cgroup-v2"), OCI_CG_V2, "/" V2_C2, &st);
    ck_assert_uint_eq(st.cpu_usage_ns, 38200000ULL);
    ck_assert(st.has_cpu_user_system);
    ck_assert_uint_eq(st.cpu_user_ns, 30000000ULL);
    ck_assert_uint_eq(st.cpu_system_ns, 8200000ULL);
    ck_assert(!st.has_cpu_throttling);     /* cpu controller off: no nr_periods */
    ck_assert_uint_eq(st.mem_usage, 5386240);
    ck_assert_uint_eq(st.mem_working_set, 5386240 - 4096000);
    ck_assert_uint_eq(st.mem_rss, 1150976);
    ck_assert_uint_eq(st.mem_page_faults, 2211);
    ck_assert_uint_eq(st.mem_major_page_faults, 3);
    ck_assert(!st.has_mem_limit);          /* "max" */
    ck_assert_uint_eq(st.mem_available, 0);
    ck_assert(!st.has_swap);
    ck_assert(!st.has_pids);
    ck_assert(st.cpu_psi.present && !st.cpu_psi.has_full);   /* pre-5.13 cpu.pressure */
    psi_eq(&st.cpu_psi.some, 0, 0, 0, 120000ULL);
    ck_assert(st.memory_psi.present && st.memory_psi.has_full);
    ck_assert(st.io_psi.present);
}
END_TEST

START_TEST(v2_errors)
{
    const char *root = copy_fixture("cgroup-v2", "v2err");
    expect_err(root, OCI_CG_V2, "kubepods/besteffort/poddef/crisp-gone", CR_NOT_FOUND, "crisp-gone");
    {
        _cleanup_err_ cr_err *err = NULL;
        oci_cg_stats st;
        ck_assert_int_lt(oci_cg_read_stats_path(root, OCI_CG_UNKNOWN, "kubepods-besteffort-podx.slice:crisp:y",
                                                &st, &err), 0);
        ck_assert_int_eq(err->code, CR_NOT_FOUND);
        ck_assert_ptr_nonnull(strstr(err->msg, "kubepods.slice/kubepods-besteffort.slice/"
                                               "kubepods-besteffort-podx.slice/crisp-y.scope"));
    }
    /* Memory controller not enabled: no memory.current. */
    rm(root, V2_C2 "/memory.current");
    expect_err(root, OCI_CG_V2, V2_C2, CR_FAILED_PRECONDITION, "memory.current");
    put(root, V2_C2 "/memory.current", "5386240\n");
    rm(root, V2_C2 "/cpu.stat");
    expect_err(root, OCI_CG_V2, V2_C2, CR_FAILED_PRECONDITION, "cpu.stat");
    put(root, V2_C2 "/cpu.stat", "user_usec 1\nsystem_usec 2\n");
    expect_err(root, OCI_CG_V2, V2_C2, CR_INTERNAL, "usage_usec");
    put(root, V2_C2 "/cpu.stat", "usage_usec 38200\n");
    put(root, V2_C2 "/memory.max", "unlimited\n");
    expect_err(root, OCI_CG_V2, V2_C2, CR_INTERNAL, "memory.max");
    put(root, V2_C2 "/memory.max", "max\n");
    put(root, V2_C2 "/memory.stat", "anon 1\nfile 2\ninactive_file 3\npgfault 4\n");
    expect_err(root, OCI_CG_V2, V2_C2, CR_INTERNAL, "pgmajfault");
    put(root, V2_C2 "/memory.stat", "anon 1\nfile 2\ninactive_file 3\npgfault 4\npgmajfault 99999999999999999999\n");
    expect_err(root, OCI_CG_V2, V2_C2, CR_INTERNAL, "memory.stat");
    put(root, V2_C2 "/memory.stat", "anon 1\nfile 2\ninactive_file 30000000\npgfault 4\npgmajfault 5\n");
    put(root, V2_C2 "/cpu.pressure", "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
    expect_err(root, OCI_CG_V2, V2_C2, CR_INTERNAL, "cpu.pressure");
    put(root, V2_C2 "/cpu.pressure", "some avg10=0.00 avg60=0.00 avg300=0.00\n");
    expect_err(root, OCI_CG_V2, V2_C2, CR_INTERNAL, "cpu.pressure");
    rm(root, V2_C2 "/cpu.pressure");
    oci_cg_stats st;
    read_ok(root, OCI_CG_V2, V2_C2, &st);
    ck_assert(!st.cpu_psi.present && st.memory_psi.present);
    ck_assert_uint_eq(st.mem_working_set, 0);   /* inactive_file above usage: clamped, not wrapped */
    ck_assert_uint_eq(st.cpu_usage_ns, 38200000ULL);
    ck_assert(!st.has_cpu_user_system);
}
END_TEST

START_TEST(nano_cores)
{
    uint64_t v = 42;
    /* 0.5 s of cpu in 1 s: half a core. */
    ck_assert(oci_cg_nano_cores(1000000000ULL, 5000000000LL, 1500000000ULL, 6000000000LL, &v));
    ck_assert_uint_eq(v, 500000000ULL);
    /* 2.5 cores over 250 ms. */
    ck_assert(oci_cg_nano_cores(0, 0, 625000000ULL, 250000000LL, &v));
    ck_assert_uint_eq(v, 2500000000ULL);
    /* Large deltas do not overflow: 1000 s of cpu in 10 s (100 cores). */
    ck_assert(oci_cg_nano_cores(7, 1, 1000000000007ULL, 10000000001LL, &v));
    ck_assert_uint_eq(v, 100000000000ULL);
    /* No rate: same instant, time backwards, counter reset. */
    ck_assert(!oci_cg_nano_cores(1, 10, 2, 10, &v));
    ck_assert_uint_eq(v, 0);
    ck_assert(!oci_cg_nano_cores(1, 10, 2, 5, &v));
    ck_assert(!oci_cg_nano_cores(100, 1, 5, 2, &v));
    oci_cg_stats a = {.cpu_usage_ns = 1000, .monotonic_ns = 1000}, b = {.cpu_usage_ns = 3000, .monotonic_ns = 5000};
    ck_assert(oci_cg_stats_nano_cores(&a, &b, &v));
    ck_assert_uint_eq(v, 500000000ULL);
}
END_TEST

/* ---- live: a real v1 cgroup on this machine ---- */

static const char *const live_ctrls[] = {"memory", "cpuacct", "unified"};

static void live_name(char *buf, size_t size)
{
    snprintf(buf, size, "crispstats-%d-live", (int)runner);
}

/* Kill what is left in our live cgroups (only our own child can be there)
 * and remove them; waits (with a deadline) for the kernel to let go. */
static void live_cleanup(void)
{
    char name[64];
    live_name(name, sizeof(name));
    for (size_t i = 0; i < sizeof(live_ctrls) / sizeof(*live_ctrls); i++) {
        char dir[PATH_MAX], procs[PATH_MAX + 16];
        snprintf(dir, sizeof(dir), "/sys/fs/cgroup/%s/%s", live_ctrls[i], name);
        if (access(dir, F_OK) < 0)
            continue;
        snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
        struct timespec start;
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
            FILE *f = fopen(procs, "re");
            int pid;
            while (f && fscanf(f, "%d", &pid) == 1)
                kill(pid, SIGKILL);
            if (f)
                fclose(f);
            if (rmdir(dir) == 0 || errno == ENOENT)
                break;
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec - start.tv_sec > 10) {
                fprintf(stderr, "test_cgstats: cannot remove %s: %s\n", dir, strerror(errno));
                break;
            }
            /* Wait for the killed task to be reaped before retrying. */
            struct pollfd none;
            poll(&none, 0, 10);
        }
    }
}

static bool write_file(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool ok = write(fd, s, strlen(s)) == (ssize_t)strlen(s);
    close(fd);
    return ok;
}

START_TEST(live_v1_cgroup)
{
    _cleanup_err_ cr_err *err = NULL;
    oci_cg_layout layout;
    ck_assert_int_eq(oci_cg_detect(NULL, &layout, &err), 0);
    if (layout == OCI_CG_V2) {
        fprintf(stderr, "test_cgstats: live v1 test skipped: this machine is cgroup v2 only\n");
        return;
    }
    char name[64];
    live_name(name, sizeof(name));
    size_t nctrl = layout == OCI_CG_HYBRID ? 3 : 2;

    int go[2], ready[2];
    ck_assert_int_eq(pipe2(go, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(ready, O_CLOEXEC), 0);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        char c;
        if (read(go[0], &c, 1) != 1)
            _exit(1);
        size_t size = 50 * MiB;
        volatile char *p = malloc(size);
        if (!p)
            _exit(2);
        for (size_t i = 0; i < size; i += 4096)
            p[i] = (char)(i >> 12);   /* fault in every page */
        if (write(ready[1], "r", 1) != 1)
            _exit(3);
        for (;;)
            pause();
    }
    close(go[0]);
    close(ready[1]);

    /* Everything up to the cleanup only records: assertions come after, so
     * a failure never leaves the cgroups or the child behind. */
    char problem[PATH_MAX + 512] = "";
    char pid_s[32];
    snprintf(pid_s, sizeof(pid_s), "%d\n", (int)child);
    for (size_t i = 0; i < nctrl && !*problem; i++) {
        char dir[256], procs[300];
        snprintf(dir, sizeof(dir), "/sys/fs/cgroup/%s/%s", live_ctrls[i], name);
        snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
        if (mkdir(dir, 0755) < 0)
            snprintf(problem, sizeof(problem), "mkdir %s: %s", dir, strerror(errno));
        else if (!write_file(procs, pid_s))
            snprintf(problem, sizeof(problem), "move child to %s: %s", procs, strerror(errno));
    }
    if (!*problem && write(go[1], "g", 1) != 1)
        snprintf(problem, sizeof(problem), "start child: %s", strerror(errno));
    if (!*problem) {
        struct pollfd p = {.fd = ready[0], .events = POLLIN};
        char c;
        if (poll(&p, 1, 30000) != 1 || read(ready[0], &c, 1) != 1)
            snprintf(problem, sizeof(problem), "child did not touch its 50 MiB within 30 s");
    }
    oci_cg_stats st = {0}, st2 = {0};
    uint64_t cores = 0;
    bool rate = false;
    char rel[80];
    snprintf(rel, sizeof(rel), "/%s", name);
    if (!*problem && (oci_cg_read_stats_path(NULL, OCI_CG_UNKNOWN, rel, &st, &err) < 0 ||
                      oci_cg_read_stats(NULL, layout, name, &st2, &err) < 0))
        snprintf(problem, sizeof(problem), "read: %s", err->msg);
    if (!*problem)
        rate = oci_cg_stats_nano_cores(&st, &st2, &cores);
    char memsw[PATH_MAX];
    snprintf(memsw, sizeof(memsw), "/sys/fs/cgroup/memory/%s/memory.memsw.usage_in_bytes", name);
    bool swap_accounting = access(memsw, F_OK) == 0;

    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    close(go[1]);
    close(ready[0]);
    live_cleanup();
    /* Gone now: NOT_FOUND. */
    _cleanup_err_ cr_err *gone = NULL;
    oci_cg_stats st3;
    int gone_r = oci_cg_read_stats(NULL, layout, name, &st3, &gone);

    ck_assert_msg(!*problem, "%s", problem);
    ck_assert_int_eq(st.layout, layout);
    ck_assert_msg(st.mem_working_set >= 50 * MiB, "working set %llu < 50 MiB",
                  (unsigned long long)st.mem_working_set);
    ck_assert_uint_ge(st.mem_usage, st.mem_working_set);
    ck_assert_msg(st.mem_rss >= 50 * MiB, "rss %llu < 50 MiB", (unsigned long long)st.mem_rss);
    ck_assert_uint_ge(st.mem_page_faults, 50 * MiB / 4096);
    ck_assert(!st.has_mem_limit);
    ck_assert_uint_gt(st.cpu_usage_ns, 0);
    ck_assert(st.has_cpu_user_system);
    ck_assert_uint_ge(st2.cpu_usage_ns, st.cpu_usage_ns);
    ck_assert(rate);
    ck_assert_uint_le(cores, 2ULL * 1000000000ULL * (uint64_t)sysconf(_SC_NPROCESSORS_ONLN));
    ck_assert_int_eq(st.has_swap, swap_accounting);
    if (layout == OCI_CG_HYBRID)
        ck_assert(st.cpu_psi.present && st.memory_psi.present && st.io_psi.present);
    ck_assert_int_lt(gone_r, 0);
    ck_assert_int_eq(gone->code, CR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(gone->msg, name));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("cgstats");
    TCase *tc = tcase_create("cgstats");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, detect_layouts);
    tcase_add_test(tc, resolve_paths);
    tcase_add_test(tc, v1_container_all_figures);
    tcase_add_test(tc, v1_unlimited_no_swap_accounting_no_psi);
    tcase_add_test(tc, v1_pod_uses_hierarchical_totals);
    tcase_add_test(tc, v1_pure_has_no_psi);
    tcase_add_test(tc, v1_errors);
    tcase_add_test(tc, v2_container_all_figures);
    tcase_add_test(tc, v2_besteffort_partial);
    tcase_add_test(tc, v2_errors);
    tcase_add_test(tc, nano_cores);
    tcase_add_test(tc, live_v1_cgroup);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
