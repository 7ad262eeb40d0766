/* Unit tests for oci/runtime.c against the real runtimes: runc and crun each
 * run a busybox container from a bundle written by oci_spec_write, through
 * create/start/state/kill/delete; plus error, timeout and unknown-container
 * paths.
 *
 * crun 1.8 refuses a hybrid cgroup layout whose v2 hierarchy has controllers
 * ("cgroups in hybrid mode not supported").  The crun test case therefore
 * runs in a private mount namespace where an empty file is bound over
 * /sys/fs/cgroup/unified/cgroup.controllers; the test case's teardown undoes
 * the mount and returns to the original namespace.  If crun still cannot run
 * a container, its tests print why and pass without checking anything. */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "lib/err.h"
#include "lib/fs.h"
#include "oci/oci.h"

#define CONTROLLERS "/sys/fs/cgroup/unified/cgroup.controllers"

/* Set by each test case's unchecked setup, in the parent; the forked tests
 * inherit them. */
static char g_tmp[256];          /* everything the tests create lives here */
static char g_rt_name[16];       /* "runc" / "crun" */
static char g_rt_path[256];
static char g_rt_root[300];
static char g_cg_parent[64];     /* test-only cgroup parent, "/crisp-test-<pid>" */
static char g_skip[512];         /* non-empty: this runtime cannot run here, why */
static int g_orig_mntns = -1;    /* crun: the namespace to return to */
static bool g_hid_controllers;

static oci_runtime current_rt(void)
{
    return (oci_runtime){ .name = g_rt_name, .path = g_rt_path, .root = g_rt_root };
}

static bool skipped(void)
{
    if (!g_skip[0])
        return false;
    printf("SKIP %s: %s\n", g_rt_name, g_skip);
    fflush(stdout);
    return true;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(int ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };
    nanosleep(&ts, NULL);
}

static void copy_file(const char *from, const char *to, mode_t mode)
{
    cr_err *e = NULL;
    size_t len = 0;
    char *data = cr_read_file(from, &len, &e);
    ck_assert_msg(data != NULL, "read %s: %s", from, e ? e->msg : "?");
    ck_assert_msg(cr_write_file_atomic(to, data, len, mode, &e) == 0, "write %s: %s", to, e ? e->msg : "?");
    free(data);
}

static void write_text(const char *path, const char *text, mode_t mode)
{
    cr_err *e = NULL;
    ck_assert_msg(cr_write_file_atomic(path, text, strlen(text), mode, &e) == 0, "write %s: %s", path,
                  e ? e->msg : "?");
}

/* A unique container id for this test process. */
static void make_id(char *buf, size_t n, const char *tag)
{
    snprintf(buf, n, "crisp-%s-%s-%d", g_rt_name, tag, (int)getpid());
}

/* bundle = g_tmp/<id>, with a busybox rootfs and a spec from oci_spec_write;
 * tweak, when set, changes the input before it is written. */
static void make_bundle_in(const char *id, char *bundle, size_t n, const char *const *args, bool privileged,
                           void (*tweak)(oci_spec_input *in))
{
    cr_err *e = NULL;
    snprintf(bundle, n, "%s/%s", g_tmp, id);
    char path[512];
    snprintf(path, sizeof(path), "%s/rootfs/bin", bundle);
    ck_assert_int_eq(cr_mkdir_p(path, 0755, &e), 0);
    const char *dirs[] = { "proc", "dev", "sys", "tmp", "etc", NULL };
    for (const char **d = dirs; *d; d++) {
        snprintf(path, sizeof(path), "%s/rootfs/%s", bundle, *d);
        ck_assert_int_eq(cr_mkdir_p(path, 0755, &e), 0);
    }
    snprintf(path, sizeof(path), "%s/rootfs/bin/busybox", bundle);
    copy_file("/bin/busybox", path, 0755);

    char rootfs[512], cgpath[256];
    snprintf(rootfs, sizeof(rootfs), "%s/rootfs", bundle);
    snprintf(cgpath, sizeof(cgpath), "%s/%s", g_cg_parent, id);
    const char *sysctls[] = { "net.ipv4.ping_group_range=0 1000", "kernel.shmmax=1048576", NULL };
    oci_spec_input in = { 0 };
    in.args = args;
    in.rootfs = rootfs;
    in.readonly_rootfs = true;
    in.hostname = "crisp-box";
    in.sysctls = sysctls;
    in.seccomp = "runtime/default";
    in.cgroups_path = cgpath;
    in.pids_limit = 64;
    in.privileged = privileged;
    if (tweak)
        tweak(&in);
    ck_assert_msg(oci_spec_write(&in, bundle, &e) == 0, "spec: %s", e ? e->msg : "?");
}

static void make_bundle_ex(const char *id, char *bundle, size_t n, const char *const *args, bool privileged)
{
    make_bundle_in(id, bundle, n, args, privileged, NULL);
}

static void make_bundle(const char *id, char *bundle, size_t n, const char *const *args)
{
    make_bundle_ex(id, bundle, n, args, false);
}

/* Poll the runtime's state until it is want, within timeout_ms. */
static void wait_status(const oci_runtime *rt, const char *id, const char *want, int timeout_ms, oci_state *st)
{
    long long deadline = now_ms() + timeout_ms;
    char last[64] = "";
    for (;;) {
        cr_err *e = NULL;
        int r = oci_state_get(rt, id, st, &e);
        if (r == 0 && strcmp(st->status, want) == 0)
            return;
        snprintf(last, sizeof(last), "%s", r == 0 ? st->status : (e ? e->msg : "?"));
        cr_err_free(e);
        ck_assert_msg(now_ms() < deadline, "%s: status %s, not %s after %d ms", id, last, want, timeout_ms);
        pause_ms(20);
    }
}

/* Read, inside the container's namespaces, its hostname and two sysctls:
 * procfs answers for the namespaces of the reader, so a child joins them. */
static void read_inside(int pid, char *host, char *ping, char *shmmax, size_t n)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        close(p[0]);
        char path[64], out[512] = "";
        const char *ns[] = { "uts", "net", "ipc" };
        int types[] = { CLONE_NEWUTS, CLONE_NEWNET, CLONE_NEWIPC };
        for (int i = 0; i < 3; i++) {
            snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, ns[i]);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0 || setns(fd, types[i]) < 0)
                _exit(2);
            close(fd);
        }
        struct utsname u;
        if (uname(&u) < 0)
            _exit(3);
        char a[128] = "", b[128] = "";
        int fd = open("/proc/sys/net/ipv4/ping_group_range", O_RDONLY);
        if (fd < 0 || read(fd, a, sizeof(a) - 1) < 0)
            _exit(4);
        close(fd);
        fd = open("/proc/sys/kernel/shmmax", O_RDONLY);
        if (fd < 0 || read(fd, b, sizeof(b) - 1) < 0)
            _exit(5);
        close(fd);
        a[strcspn(a, "\n")] = '\0';
        b[strcspn(b, "\n")] = '\0';
        int len = snprintf(out, sizeof(out), "%s\n%s\n%s\n", u.nodename, a, b);
        if (write(p[1], out, (size_t)len) != len)
            _exit(6);
        _exit(0);
    }
    close(p[1]);
    char buf[512] = "";
    size_t got = 0;
    ssize_t r;
    while (got < sizeof(buf) - 1 && (r = read(p[0], buf + got, sizeof(buf) - 1 - got)) > 0)
        got += (size_t)r;
    close(p[0]);
    int status = 0;
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "namespace reader failed (status %d)", status);
    char *save = NULL;
    char *l1 = strtok_r(buf, "\n", &save), *l2 = strtok_r(NULL, "\n", &save), *l3 = strtok_r(NULL, "\n", &save);
    ck_assert(l1 && l2 && l3);
    snprintf(host, n, "%s", l1);
    snprintf(ping, n, "%s", l2);
    snprintf(shmmax, n, "%s", l3);
}

/* ---- fixtures (unchecked: in the parent, once per test case) ---- */

static void rmdir_cgroups(void)
{
    /* Containers are deleted by now; their cgroups are gone or empty. */
    DIR *d = opendir("/sys/fs/cgroup");
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char parent[512];
        snprintf(parent, sizeof(parent), "/sys/fs/cgroup/%s%s", de->d_name, g_cg_parent);
        DIR *p = opendir(parent);
        if (!p)
            continue;
        struct dirent *ce;
        while ((ce = readdir(p))) {
            if (ce->d_type != DT_DIR || ce->d_name[0] == '.')
                continue;
            char child[1024];
            snprintf(child, sizeof(child), "%s/%s", parent, ce->d_name);
            if (rmdir(child) < 0)
                fprintf(stderr, "teardown: rmdir %s: %s\n", child, strerror(errno));
        }
        closedir(p);
        if (rmdir(parent) < 0)
            fprintf(stderr, "teardown: rmdir %s: %s\n", parent, strerror(errno));
    }
    closedir(d);
    /* The unified hierarchy of a hybrid layout is not listed as a folder of its own name. */
    char unified[512];
    snprintf(unified, sizeof(unified), "/sys/fs/cgroup/unified%s", g_cg_parent);
    rmdir(unified);
}

/* Force-delete every container left under the runtime's root. */
static void delete_leftovers(void)
{
    oci_runtime rt = current_rt();
    DIR *d = opendir(g_rt_root);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        cr_err *e = NULL;
        if (oci_delete(&rt, de->d_name, true, &e) < 0)
            fprintf(stderr, "teardown: delete %s: %s\n", de->d_name, e ? e->msg : "?");
        cr_err_free(e);
    }
    closedir(d);
}

static void common_setup(const char *name)
{
    snprintf(g_rt_name, sizeof(g_rt_name), "%s", name);
    snprintf(g_tmp, sizeof(g_tmp), "/tmp/crisp-test-rt-%s-XXXXXX", name);
    if (!mkdtemp(g_tmp)) {
        snprintf(g_skip, sizeof(g_skip), "mkdtemp: %s", strerror(errno));
        g_tmp[0] = '\0';
        return;
    }
    snprintf(g_rt_root, sizeof(g_rt_root), "%s/root", g_tmp);
    snprintf(g_cg_parent, sizeof(g_cg_parent), "/crisp-test-%s-%d", name, (int)getpid());
    g_skip[0] = '\0';
    char *path = cr_find_executable(name);
    if (!path) {
        snprintf(g_skip, sizeof(g_skip), "%s is not installed", name);
        return;
    }
    snprintf(g_rt_path, sizeof(g_rt_path), "%s", path);
    free(path);
}

static void common_teardown(void)
{
    if (g_tmp[0]) {
        delete_leftovers();
        rmdir_cgroups();
        cr_err *e = NULL;
        if (cr_remove_tree(g_tmp, &e) < 0)
            fprintf(stderr, "teardown: %s\n", e ? e->msg : "?");
        cr_err_free(e);
        g_tmp[0] = '\0';
    }
}

/* Run one throwaway container to see whether the runtime works here. */
static void probe(void)
{
    if (g_skip[0])
        return;
    char id[64], bundle[512];
    snprintf(id, sizeof(id), "crisp-probe-%d", (int)getpid());
    snprintf(bundle, sizeof(bundle), "%s/%s", g_tmp, id);
    cr_err *e = NULL;
    char rootfs[600];
    snprintf(rootfs, sizeof(rootfs), "%s/rootfs/bin", bundle);
    if (cr_mkdir_p(rootfs, 0755, &e) < 0) {
        snprintf(g_skip, sizeof(g_skip), "probe: %s", e->msg);
        cr_err_free(e);
        return;
    }
    snprintf(rootfs, sizeof(rootfs), "%s/rootfs/bin/busybox", bundle);
    size_t len = 0;
    char *data = cr_read_file("/bin/busybox", &len, &e);
    if (!data || cr_write_file_atomic(rootfs, data, len, 0755, &e) < 0) {
        snprintf(g_skip, sizeof(g_skip), "probe: %s", e ? e->msg : "?");
        free(data);
        cr_err_free(e);
        return;
    }
    free(data);
    snprintf(rootfs, sizeof(rootfs), "%s/rootfs", bundle);
    char cgpath[256];
    snprintf(cgpath, sizeof(cgpath), "%s/%s", g_cg_parent, id);
    const char *args[] = { "/bin/busybox", "true", NULL };
    oci_spec_input in = { 0 };
    in.args = args;
    in.rootfs = rootfs;
    in.cgroups_path = cgpath;
    oci_runtime rt = current_rt();
    if (oci_spec_write(&in, bundle, &e) < 0 || oci_create(&rt, id, bundle, NULL, 30, &e) < 0)
        snprintf(g_skip, sizeof(g_skip), "cannot run a container: %s", e ? e->msg : "?");
    cr_err_free(e);
    e = NULL;
    if (oci_delete(&rt, id, true, &e) < 0)
        fprintf(stderr, "probe: delete %s: %s\n", id, e ? e->msg : "?");
    cr_err_free(e);
}

static void runc_setup(void)
{
    common_setup("runc");
    probe();
}

/* crun: a private mount namespace where the hybrid layout's v2 controllers
 * are hidden, so crun sees a plain v1 layout. */
static void crun_setup(void)
{
    common_setup("crun");
    if (g_skip[0])
        return;
    if (access(CONTROLLERS, F_OK) == 0) {
        char empty[512];
        snprintf(empty, sizeof(empty), "%s/empty", g_tmp);
        int fd = open(empty, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0)
            close(fd);
        g_orig_mntns = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
        if (g_orig_mntns < 0 || unshare(CLONE_NEWNS) < 0 ||
            mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
            snprintf(g_skip, sizeof(g_skip), "cannot make a private mount namespace: %s", strerror(errno));
            return;
        }
        if (mount(empty, CONTROLLERS, NULL, MS_BIND, NULL) < 0) {
            snprintf(g_skip, sizeof(g_skip), "cannot hide %s: %s", CONTROLLERS, strerror(errno));
            return;
        }
        g_hid_controllers = true;
    }
    probe();
}

static void crun_teardown(void)
{
    common_teardown();
    if (g_hid_controllers && umount2(CONTROLLERS, MNT_DETACH) < 0)
        fprintf(stderr, "teardown: umount %s: %s\n", CONTROLLERS, strerror(errno));
    g_hid_controllers = false;
    if (g_orig_mntns >= 0) {
        if (setns(g_orig_mntns, CLONE_NEWNS) < 0)
            fprintf(stderr, "teardown: back to the original mount namespace: %s\n", strerror(errno));
        close(g_orig_mntns);
        g_orig_mntns = -1;
    }
}

/* ---- tests ---- */

START_TEST(test_lifecycle)
{
    if (skipped())
        return;
    oci_runtime rt = current_rt();
    char id[128], bundle[512], pid_file[600];
    make_id(id, sizeof(id), "life");
    const char *args[] = { "/bin/busybox", "sleep", "1000", NULL };
    make_bundle(id, bundle, sizeof(bundle), args);
    snprintf(pid_file, sizeof(pid_file), "%s/pid", bundle);

    cr_err *e = NULL;
    ck_assert_msg(oci_create(&rt, id, bundle, pid_file, 60, &e) == 0, "create: %s", e ? e->msg : "?");
    oci_state st;
    ck_assert_msg(oci_state_get(&rt, id, &st, &e) == 0, "state: %s", e ? e->msg : "?");
    ck_assert_str_eq(st.status, "created");
    ck_assert_int_gt(st.pid, 0);
    char *pid_text = cr_read_file(pid_file, NULL, &e);
    ck_assert_ptr_nonnull(pid_text);
    ck_assert_int_eq(atoi(pid_text), st.pid);
    free(pid_text);
    char log[600];
    snprintf(log, sizeof(log), "%s/runtime.log", bundle);
    ck_assert_int_eq(access(log, F_OK), 0);

    ck_assert_msg(oci_start(&rt, id, 60, &e) == 0, "start: %s", e ? e->msg : "?");
    wait_status(&rt, id, "running", 10000, &st);
    ck_assert_int_gt(st.pid, 0);

    char host[128], ping[128], shmmax[128];
    read_inside(st.pid, host, ping, shmmax, sizeof(host));
    ck_assert_str_eq(host, "crisp-box");
    ck_assert_str_eq(ping, "0\t1000");
    ck_assert_str_eq(shmmax, "1048576");
    /* Read-only rootfs, seen from the host through the container's root. */
    char probe_path[128];
    snprintf(probe_path, sizeof(probe_path), "/proc/%d/root/tmp/x", st.pid);
    ck_assert_int_lt(open(probe_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644), 0);
    ck_assert_int_eq(errno, EROFS);

    ck_assert_msg(oci_kill(&rt, id, SIGKILL, false, &e) == 0, "kill: %s", e ? e->msg : "?");
    wait_status(&rt, id, "stopped", 10000, &st);
    ck_assert_msg(oci_delete(&rt, id, false, &e) == 0, "delete: %s", e ? e->msg : "?");
    ck_assert_int_eq(oci_state_get(&rt, id, &st, &e), -1);
    ck_assert_int_eq(e->code, CR_NOT_FOUND);
    ck_assert_msg(strstr(e->msg, id) != NULL, "<<%s>>", e->msg);
    cr_err_free(e);
    e = NULL;
    ck_assert_int_eq(oci_delete(&rt, id, true, &e), 0); /* again: nothing to do */
    /* Every runtime process was reaped. */
    errno = 0;
    ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
    ck_assert_int_eq(errno, ECHILD);
}
END_TEST

START_TEST(test_kill_all_and_force_delete)
{
    if (skipped())
        return;
    oci_runtime rt = current_rt();
    char id[128], bundle[512];
    make_id(id, sizeof(id), "force");
    const char *args[] = { "/bin/busybox", "sleep", "1000", NULL };
    make_bundle(id, bundle, sizeof(bundle), args);
    cr_err *e = NULL;
    ck_assert_msg(oci_create(&rt, id, bundle, NULL, 60, &e) == 0, "create: %s", e ? e->msg : "?");
    ck_assert_msg(oci_start(&rt, id, 60, &e) == 0, "start: %s", e ? e->msg : "?");
    oci_state st;
    wait_status(&rt, id, "running", 10000, &st);
    ck_assert_msg(oci_kill(&rt, id, SIGTERM, true, &e) == 0, "kill --all: %s", e ? e->msg : "?");
    /* sleep as pid 1 ignores SIGTERM (no handler): still running; force delete kills it. */
    ck_assert_msg(oci_delete(&rt, id, true, &e) == 0, "delete --force: %s", e ? e->msg : "?");
    ck_assert_int_eq(oci_state_get(&rt, id, &st, &e), -1);
    ck_assert_int_eq(e->code, CR_NOT_FOUND);
    cr_err_free(e);
}
END_TEST

/* All capabilities, no seccomp, all devices, writable /sys: the runtime
 * accepts it (every capability named is one crisp itself holds). */
START_TEST(test_privileged)
{
    if (skipped())
        return;
    oci_runtime rt = current_rt();
    char id[128], bundle[512];
    make_id(id, sizeof(id), "priv");
    const char *args[] = { "/bin/busybox", "sleep", "1000", NULL };
    make_bundle_ex(id, bundle, sizeof(bundle), args, true);
    cr_err *e = NULL;
    ck_assert_msg(oci_create(&rt, id, bundle, NULL, 60, &e) == 0, "create: %s", e ? e->msg : "?");
    ck_assert_msg(oci_start(&rt, id, 60, &e) == 0, "start: %s", e ? e->msg : "?");
    oci_state st;
    wait_status(&rt, id, "running", 10000, &st);
    /* The container holds CAP_SYS_ADMIN (bit 21) in its effective set. */
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/status", st.pid);
    char *status = cr_read_file(path, NULL, &e);
    ck_assert_ptr_nonnull(status);
    char *eff = strstr(status, "CapEff:");
    ck_assert_ptr_nonnull(eff);
    unsigned long long caps = strtoull(eff + 7, NULL, 16);
    free(status);
    ck_assert_msg((caps >> 21) & 1, "CapEff %llx lacks CAP_SYS_ADMIN", caps);
    ck_assert_msg(oci_delete(&rt, id, true, &e) == 0, "delete --force: %s", e ? e->msg : "?");
}
END_TEST

START_TEST(test_bad_args_error)
{
    if (skipped())
        return;
    oci_runtime rt = current_rt();
    char id[128], bundle[512];
    make_id(id, sizeof(id), "bad");
    const char *args[] = { "/nonexistent-binary", NULL };
    make_bundle(id, bundle, sizeof(bundle), args);
    cr_err *e = NULL;
    ck_assert_int_eq(oci_create(&rt, id, bundle, NULL, 60, &e), -1);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->code, CR_INTERNAL);
    char head[256];
    snprintf(head, sizeof(head), "%s create %s: ", g_rt_name, id);
    ck_assert_msg(strncmp(e->msg, head, strlen(head)) == 0, "<<%s>> lacks <<%s>>", e->msg, head);
    ck_assert_msg(strstr(e->msg, "nonexistent-binary") != NULL, "<<%s>> lacks the runtime's message", e->msg);
    printf("%s bad args: %s\n", g_rt_name, e->msg);
    cr_err_free(e);
    e = NULL;
    ck_assert_int_eq(oci_delete(&rt, id, true, &e), 0);
}
END_TEST

START_TEST(test_unknown_container)
{
    if (skipped())
        return;
    oci_runtime rt = current_rt();
    char id[128];
    make_id(id, sizeof(id), "nope");
    cr_err *e = NULL;
    ck_assert_int_eq(oci_delete(&rt, id, false, &e), 0);
    ck_assert_int_eq(oci_delete(&rt, id, true, &e), 0);
    ck_assert_ptr_null(e);
    oci_state st;
    ck_assert_int_eq(oci_state_get(&rt, id, &st, &e), -1);
    ck_assert_int_eq(e->code, CR_NOT_FOUND);
    cr_err_free(e);
    e = NULL;
    ck_assert_int_eq(oci_kill(&rt, id, SIGKILL, false, &e), -1);
    ck_assert_int_eq(e->code, CR_NOT_FOUND);
    cr_err_free(e);
    e = NULL;
    ck_assert_int_eq(oci_start(&rt, id, 30, &e), -1);
    ck_assert_int_eq(e->code, CR_NOT_FOUND);
    cr_err_free(e);
    e = NULL;
    /* Ids that would read as options or paths are refused before any call. */
    ck_assert_int_eq(oci_state_get(&rt, "--help", &st, &e), -1);
    ck_assert_int_eq(e->code, CR_INVALID_ARGUMENT);
    cr_err_free(e);
    e = NULL;
    ck_assert_int_eq(oci_delete(&rt, "../x", true, &e), -1);
    ck_assert_int_eq(e->code, CR_INVALID_ARGUMENT);
    cr_err_free(e);
}
END_TEST

/* The process's state letter, or 0 when it is gone. */
static char proc_state(int pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' ? p[2] : 0;
}

START_TEST(test_timeout)
{
    if (skipped())
        return;
    /* A "runtime" that never answers; its child sleep must die with it. */
    char dir[512], script[600], pidfile[600], text[2200];
    snprintf(dir, sizeof(dir), "%s/slow-%d", g_tmp, (int)getpid());
    cr_err *e = NULL;
    ck_assert_int_eq(cr_mkdir_p(dir, 0755, &e), 0);
    snprintf(script, sizeof(script), "%s/slow-runtime", dir);
    snprintf(pidfile, sizeof(pidfile), "%s/sleep.pid", dir);
    snprintf(text, sizeof(text), "#!/bin/sh\nsleep 60 &\necho $! > %s.tmp\nmv %s.tmp %s\nwait\n", pidfile,
             pidfile, pidfile);
    write_text(script, text, 0755);
    char root[600];
    snprintf(root, sizeof(root), "%s/root", dir);
    oci_runtime slow = { .name = "slow", .path = script, .root = root };

    const char *cmds[] = { "start", "create" };
    for (int i = 0; i < 2; i++) {
        unlink(pidfile);
        long long t0 = now_ms();
        int r = i == 0 ? oci_start(&slow, "c1", 1, &e) : oci_create(&slow, "c1", dir, NULL, 1, &e);
        long long took = now_ms() - t0;
        ck_assert_int_eq(r, -1);
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(e->code, CR_DEADLINE_EXCEEDED);
        char head[64];
        snprintf(head, sizeof(head), "slow %s c1: ", cmds[i]);
        ck_assert_msg(strncmp(e->msg, head, strlen(head)) == 0, "<<%s>>", e->msg);
        ck_assert_msg(strstr(e->msg, "timed out") != NULL, "<<%s>>", e->msg);
        cr_err_free(e);
        e = NULL;
        ck_assert_msg(took >= 900 && took < 10000, "took %lld ms", took);
        /* The whole process group was killed: the sleep is gone (or a zombie
         * waiting for init). */
        char *pid_text = NULL;
        long long deadline = now_ms() + 5000;
        while (!(pid_text = cr_read_file(pidfile, NULL, NULL)) && now_ms() < deadline)
            pause_ms(10);
        ck_assert_msg(pid_text != NULL, "the slow runtime never started its sleep");
        int sleep_pid = atoi(pid_text);
        free(pid_text);
        ck_assert_int_gt(sleep_pid, 0);
        char s;
        while ((s = proc_state(sleep_pid)) != 0 && s != 'Z' && now_ms() < deadline)
            pause_ms(10);
        ck_assert_msg(s == 0 || s == 'Z', "sleep %d survived the timeout (state %c)", sleep_pid, s);
    }
    errno = 0;
    ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
    ck_assert_int_eq(errno, ECHILD);

    /* A runtime binary that is not there. */
    oci_runtime missing = { .name = "ghost", .path = "/nonexistent/runtime", .root = root };
    oci_state st;
    ck_assert_int_eq(oci_state_get(&missing, "c1", &st, &e), -1);
    ck_assert_int_eq(e->code, CR_FAILED_PRECONDITION);
    ck_assert_msg(strstr(e->msg, "/nonexistent/runtime") != NULL, "<<%s>>", e->msg);
    cr_err_free(e);
}
END_TEST

/* Several threads call the runtime at once; each waits for its own child. */
static void *state_thread(void *arg)
{
    oci_runtime rt = current_rt();
    char id[128];
    snprintf(id, sizeof(id), "crisp-%s-thread-%d-%d", g_rt_name, (int)getpid(), (int)(intptr_t)arg);
    intptr_t bad = 0;
    for (int i = 0; i < 5; i++) {
        oci_state st;
        cr_err *e = NULL;
        if (oci_state_get(&rt, id, &st, &e) != -1 || !e || e->code != CR_NOT_FOUND)
            bad++;
        cr_err_free(e);
    }
    return (void *)bad;
}

START_TEST(test_threads)
{
    if (skipped())
        return;
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, state_thread, (void *)(intptr_t)i), 0);
    for (int i = 0; i < 4; i++) {
        void *bad = NULL;
        ck_assert_int_eq(pthread_join(t[i], &bad), 0);
        ck_assert_int_eq((intptr_t)bad, 0);
    }
    errno = 0;
    ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
    ck_assert_int_eq(errno, ECHILD);
}
END_TEST

/* ---- exec, update, pause ---- */

/* Create and start a `sleep 1000` container (tweak: see make_bundle_in);
 * its state in *st. */
static void run_sleeper(const char *tag, char *id, size_t id_n, void (*tweak)(oci_spec_input *in), oci_state *st)
{
    oci_runtime rt = current_rt();
    char bundle[512];
    make_id(id, id_n, tag);
    const char *args[] = { "/bin/busybox", "sleep", "1000", NULL };
    make_bundle_in(id, bundle, sizeof(bundle), args, false, tweak);
    cr_err *e = NULL;
    ck_assert_msg(oci_create(&rt, id, bundle, NULL, 60, &e) == 0, "create: %s", e ? e->msg : "?");
    ck_assert_msg(oci_start(&rt, id, 60, &e) == 0, "start: %s", e ? e->msg : "?");
    wait_status(&rt, id, "running", 10000, st);
}

static void exec_ok(const char *id, const char *const *args, const char *const *env, size_t cap,
                    oci_exec_result *res)
{
    oci_runtime rt = current_rt();
    cr_err *e = NULL;
    int r = oci_exec_sync(&rt, id, args, env, 30, cap, res, &e);
    ck_assert_msg(r == 0, "exec %s: %s", args[0], e ? e->msg : "?");
    ck_assert_ptr_null(e);
    ck_assert_ptr_nonnull(res->out);
    ck_assert_ptr_nonnull(res->err);
}

static void kill_delete(const char *id)
{
    oci_runtime rt = current_rt();
    cr_err *e = NULL;
    ck_assert_msg(oci_delete(&rt, id, true, &e) == 0, "delete --force: %s", e ? e->msg : "?");
}

START_TEST(test_exec_sync)
{
    if (skipped())
        return;
    oci_runtime rt = current_rt();
    char id[128];
    oci_state st;
    run_sleeper("exec", id, sizeof(id), NULL, &st);
    oci_exec_result res;

    const char *echo[] = { "/bin/busybox", "echo", "hi", NULL };
    exec_ok(id, echo, NULL, 0, &res);
    ck_assert_int_eq(res.exit_code, 0);
    ck_assert_str_eq(res.out, "hi\n");
    ck_assert_uint_eq(res.out_len, 3);
    ck_assert_str_eq(res.err, "");
    ck_assert(!res.out_truncated && !res.err_truncated);
    oci_exec_result_clear(&res);

    const char *exit3[] = { "/bin/busybox", "sh", "-c", "exit 3", NULL };
    exec_ok(id, exit3, NULL, 0, &res);
    ck_assert_int_eq(res.exit_code, 3);
    oci_exec_result_clear(&res);

    const char *to_err[] = { "/bin/busybox", "sh", "-c", "echo oops >&2; echo out", NULL };
    exec_ok(id, to_err, NULL, 0, &res);
    ck_assert_int_eq(res.exit_code, 0);
    ck_assert_str_eq(res.err, "oops\n");
    ck_assert_str_eq(res.out, "out\n");
    oci_exec_result_clear(&res);

    /* Extra environment on top of the container's (PATH from the spec). */
    const char *show_env[] = { "/bin/busybox", "sh", "-c", "echo $FOO:$PATH", NULL };
    const char *env[] = { "FOO=bar baz", NULL };
    exec_ok(id, show_env, env, 0, &res);
    ck_assert_str_eq(res.out, "bar baz:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n");
    oci_exec_result_clear(&res);

    /* A signal: 128 + its number. */
    const char *killself[] = { "/bin/busybox", "sh", "-c", "kill -9 $$", NULL };
    exec_ok(id, killself, NULL, 0, &res);
    ck_assert_int_eq(res.exit_code, 128 + SIGKILL);
    oci_exec_result_clear(&res);

    /* 1 MB on stdout and 200 KB on stderr, kept up to the cap; the process
     * is not blocked by what is not kept. */
    const char *big[] = { "/bin/busybox", "sh", "-c",
                          "/bin/busybox yes abcdefgh | /bin/busybox head -c 1000000; "
                          "/bin/busybox yes 12345 | /bin/busybox head -c 200000 >&2; exit 7",
                          NULL };
    long long t0 = now_ms();
    exec_ok(id, big, NULL, 1000, &res);
    ck_assert_int_lt(now_ms() - t0, 20000);
    ck_assert_int_eq(res.exit_code, 7);
    ck_assert_uint_eq(res.out_len, 1000);
    ck_assert_uint_eq(strlen(res.out), 1000);
    ck_assert(res.out_truncated);
    ck_assert_int_eq(strncmp(res.out, "abcdefgh\nabcdefgh\n", 18), 0);
    ck_assert_uint_eq(res.err_len, 1000);
    ck_assert(res.err_truncated);
    oci_exec_result_clear(&res);
    /* Exactly the cap: not truncated. */
    const char *ten[] = { "/bin/busybox", "sh", "-c", "echo 123456789", NULL };
    exec_ok(id, ten, NULL, 10, &res);
    ck_assert_uint_eq(res.out_len, 10);
    ck_assert(!res.out_truncated);
    oci_exec_result_clear(&res);

    /* A command that is not in the container: the runtime's error, or the
     * shell convention's 126/127, but never success. */
    const char *missing[] = { "/no-such-binary", NULL };
    cr_err *e = NULL;
    int r = oci_exec_sync(&rt, id, missing, NULL, 30, 0, &res, &e);
    if (r < 0) {
        ck_assert_msg(strstr(e->msg, "no-such-binary") != NULL, "<<%s>>", e->msg);
        printf("%s exec of a missing binary: %s (%s)\n", g_rt_name, e->msg, cr_code_name(e->code));
        cr_err_free(e);
        e = NULL;
    } else {
        printf("%s exec of a missing binary: exit %d, stderr %s\n", g_rt_name, res.exit_code, res.err);
        ck_assert_int_ne(res.exit_code, 0);
    }
    oci_exec_result_clear(&res);

    /* Bad input is refused before any call. */
    const char *no_args[] = { NULL };
    ck_assert_int_eq(oci_exec_sync(&rt, id, no_args, NULL, 30, 0, &res, &e), -1);
    ck_assert_int_eq(e->code, CR_INVALID_ARGUMENT);
    cr_err_free(e);
    e = NULL;
    const char *bad_env[] = { "NOEQUALS", NULL };
    ck_assert_int_eq(oci_exec_sync(&rt, id, echo, bad_env, 30, 0, &res, &e), -1);
    ck_assert_int_eq(e->code, CR_INVALID_ARGUMENT);
    cr_err_free(e);
    oci_exec_result_clear(&res);

    kill_delete(id);
    errno = 0;
    ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
    ck_assert_int_eq(errno, ECHILD);
}
END_TEST

/* The pid namespace inode of pid, or 0. */
static unsigned long pidns_of(int pid)
{
    char path[64];
    struct stat st;
    snprintf(path, sizeof(path), "/proc/%d/ns/pid", pid);
    return stat(path, &st) == 0 ? (unsigned long)st.st_ino : 0;
}

/* Processes in the pid namespace ns whose arguments are exactly want
 * (NUL-separated, want_len bytes); the first one's state letter in *state. */
static int count_in_ns(unsigned long ns, const char *want, size_t want_len, char *state)
{
    int found = 0;
    *state = 0;
    DIR *d = opendir("/proc");
    ck_assert_ptr_nonnull(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        int pid = atoi(de->d_name);
        if (pid <= 0 || pidns_of(pid) != ns)
            continue;
        char path[64], buf[256];
        snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof(buf));
        close(fd);
        char s = proc_state(pid);
        /* A zombie has no cmdline any more: match it by name through stat. */
        if ((n == (ssize_t)want_len && memcmp(buf, want, want_len) == 0) || (n == 0 && s == 'Z')) {
            if (n == 0) {
                char stat_path[64], sbuf[256] = "";
                snprintf(stat_path, sizeof(stat_path), "/proc/%d/stat", pid);
                int sfd = open(stat_path, O_RDONLY | O_CLOEXEC);
                ssize_t sn = sfd >= 0 ? read(sfd, sbuf, sizeof(sbuf) - 1) : -1;
                if (sfd >= 0)
                    close(sfd);
                if (sn <= 0 || (!strstr(sbuf, "(busybox)") && !strstr(sbuf, "(sleep)")))
                    continue;
            }
            if (!found)
                *state = s;
            found++;
        }
    }
    closedir(d);
    return found;
}

START_TEST(test_exec_timeout)
{
    if (skipped())
        return;
    oci_runtime rt = current_rt();
    char id[128];
    oci_state st;
    run_sleeper("exto", id, sizeof(id), NULL, &st);
    unsigned long ns = pidns_of(st.pid);
    ck_assert_uint_ne(ns, 0);

    const char *sleep_args[] = { "/bin/busybox", "sleep", "100", NULL };
    static const char sleep_cmdline[] = "/bin/busybox\0sleep\0" "100";
    oci_exec_result res;
    cr_err *e = NULL;
    long long t0 = now_ms();
    ck_assert_int_eq(oci_exec_sync(&rt, id, sleep_args, NULL, 1, 0, &res, &e), -1);
    long long took = now_ms() - t0;
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->code, CR_DEADLINE_EXCEEDED);
    char want[256];
    snprintf(want, sizeof(want), "exec in %s timed out after 1s", id);
    ck_assert_str_eq(e->msg, want);
    cr_err_free(e);
    e = NULL;
    ck_assert_msg(took >= 900 && took < 10000, "took %lld ms", took);
    printf("%s exec timeout of 1s returned after %lld ms\n", g_rt_name, took);
    ck_assert_ptr_nonnull(res.out);
    oci_exec_result_clear(&res);
    /* The sleep is gone from the container, not even a zombie: the runtime reaped it. */
    char state;
    long long deadline = now_ms() + 5000;
    int left;
    while ((left = count_in_ns(ns, sleep_cmdline, sizeof(sleep_cmdline), &state)) > 0 && now_ms() < deadline)
        pause_ms(20);
    ck_assert_msg(left == 0, "%d sleep 100 left in the container (state %c)", left, state);

    /* A shell with a child: the partial output is kept and the child dies
     * too (a zombie at most: the container's init, a plain sleep, does not reap). */
    const char *sh_args[] = { "/bin/busybox", "sh", "-c", "echo started; /bin/busybox sleep 101; echo never",
                              NULL };
    static const char child_cmdline[] = "/bin/busybox\0sleep\0" "101";
    ck_assert_int_eq(oci_exec_sync(&rt, id, sh_args, NULL, 1, 0, &res, &e), -1);
    ck_assert_int_eq(e->code, CR_DEADLINE_EXCEEDED);
    cr_err_free(e);
    e = NULL;
    ck_assert_str_eq(res.out, "started\n");
    oci_exec_result_clear(&res);
    deadline = now_ms() + 5000;
    while ((left = count_in_ns(ns, child_cmdline, sizeof(child_cmdline), &state)) > 0 && state != 'Z' &&
           now_ms() < deadline)
        pause_ms(20);
    ck_assert_msg(left == 0 || state == 'Z', "sleep 101 survived (state %c)", state);

    /* The container itself is untouched. */
    ck_assert_int_eq(oci_state_get(&rt, id, &st, &e), 0);
    ck_assert_str_eq(st.status, "running");
    kill_delete(id);
    errno = 0;
    ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
    ck_assert_int_eq(errno, ECHILD);
}
END_TEST

/* Read fd to EOF into buf (NUL-terminated); bytes read. */
static size_t read_all(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || (n += (size_t)r) == cap - 1)
            break;
    }
    buf[n] = '\0';
    return n;
}

START_TEST(test_exec_start)
{
    if (skipped())
        return;
    oci_runtime rt = current_rt();
    char id[128];
    oci_state st;
    run_sleeper("exst", id, sizeof(id), NULL, &st);
    unsigned long ns = pidns_of(st.pid);
    cr_err *e = NULL;
    oci_exec_proc *p = NULL;
    int in, out, er, code;

    /* stdin through, stdout and stderr apart, the exit status. */
    const char *cat[] = { "/bin/busybox", "sh", "-c", "cat; echo warn >&2; exit 5", NULL };
    ck_assert_msg(oci_exec_start(&rt, id, cat, true, true, true, &p, &in, &out, &er, &e) == 0, "%s",
                  e ? e->msg : "");
    ck_assert(in >= 0 && out >= 0 && er >= 0);
    ck_assert_int_eq(write(in, "ping\n", 5), 5);
    close(in);
    char buf[256];
    read_all(out, buf, sizeof(buf));
    ck_assert_str_eq(buf, "ping\n");
    read_all(er, buf, sizeof(buf));
    ck_assert_str_eq(buf, "warn\n");
    if (oci_exec_pidfd(p) >= 0) {
        struct pollfd pf = { oci_exec_pidfd(p), POLLIN, 0 };
        ck_assert_int_eq(poll(&pf, 1, 10000), 1);
    }
    ck_assert_int_eq(oci_exec_wait(p, &code, &e), 0);
    ck_assert_int_eq(code, 5);
    oci_exec_free(p);
    close(out);
    close(er);

    /* Streams not wanted are not there. */
    const char *echo[] = { "/bin/busybox", "echo", "only", NULL };
    ck_assert_int_eq(oci_exec_start(&rt, id, echo, false, true, false, &p, &in, &out, &er, &e), 0);
    ck_assert(in == -1 && out >= 0 && er == -1);
    read_all(out, buf, sizeof(buf));
    ck_assert_str_eq(buf, "only\n");
    ck_assert_int_eq(oci_exec_wait(p, &code, &e), 0);
    ck_assert_int_eq(code, 0);
    oci_exec_free(p);
    close(out);

    /* Freed while running: the process is killed, in the container too. */
    const char *sleeper[] = { "/bin/busybox", "sleep", "102", NULL };
    static const char sleep_cmdline[] = "/bin/busybox\0sleep\0" "102";
    ck_assert_int_eq(oci_exec_start(&rt, id, sleeper, false, true, false, &p, &in, &out, &er, &e), 0);
    char state;
    long long deadline = now_ms() + 10000;
    while (count_in_ns(ns, sleep_cmdline, sizeof(sleep_cmdline), &state) == 0 && now_ms() < deadline)
        pause_ms(20);
    ck_assert_int_eq(count_in_ns(ns, sleep_cmdline, sizeof(sleep_cmdline), &state), 1);
    oci_exec_free(p);
    close(out);
    int left;
    deadline = now_ms() + 5000;
    while ((left = count_in_ns(ns, sleep_cmdline, sizeof(sleep_cmdline), &state)) > 0 && state != 'Z' &&
           now_ms() < deadline)
        pause_ms(20);
    ck_assert_msg(left == 0 || state == 'Z', "sleep 102 survived (state %c)", state);

    /* A binary the container lacks: an error from wait naming it, or a
     * failing status, never success. */
    const char *missing[] = { "/no-such-binary", NULL };
    ck_assert_int_eq(oci_exec_start(&rt, id, missing, false, true, true, &p, &in, &out, &er, &e), 0);
    read_all(out, buf, sizeof(buf));
    read_all(er, buf, sizeof(buf));
    int r = oci_exec_wait(p, &code, &e);
    if (r < 0) {
        ck_assert_msg(strstr(e->msg, "no-such-binary") != NULL, "<<%s>>", e->msg);
        cr_err_free(e);
        e = NULL;
    } else {
        ck_assert_int_ne(code, 0);
    }
    oci_exec_free(p);
    close(out);
    close(er);

    /* Bad input. */
    const char *none[] = { NULL };
    ck_assert_int_eq(oci_exec_start(&rt, id, none, false, true, false, &p, &in, &out, &er, &e), -1);
    ck_assert_int_eq(e->code, CR_INVALID_ARGUMENT);
    cr_err_free(e);
    e = NULL;
    ck_assert_int_eq(oci_exec_start(&rt, "../x", echo, false, true, false, &p, &in, &out, &er, &e), -1);
    ck_assert_int_eq(e->code, CR_INVALID_ARGUMENT);
    cr_err_free(e);
    e = NULL;
    kill_delete(id);
    errno = 0;
    ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
    ck_assert_int_eq(errno, ECHILD);
}
END_TEST

START_TEST(test_exec_not_running)
{
    if (skipped())
        return;
    oci_runtime rt = current_rt();
    char id[128], bundle[512];
    make_id(id, sizeof(id), "exnr");
    const char *args[] = { "/bin/busybox", "sleep", "1000", NULL };
    make_bundle(id, bundle, sizeof(bundle), args);
    const char *echo[] = { "/bin/busybox", "echo", "hi", NULL };
    oci_exec_result res;
    cr_err *e = NULL;

    /* Unknown. */
    ck_assert_int_eq(oci_exec_sync(&rt, id, echo, NULL, 30, 0, &res, &e), -1);
    ck_assert_int_eq(e->code, CR_NOT_FOUND);
    ck_assert_msg(strstr(e->msg, id) != NULL, "<<%s>>", e->msg);
    cr_err_free(e);
    e = NULL;
    oci_exec_result_clear(&res);

    /* Created, not started. */
    ck_assert_msg(oci_create(&rt, id, bundle, NULL, 60, &e) == 0, "create: %s", e ? e->msg : "?");
    ck_assert_int_eq(oci_exec_sync(&rt, id, echo, NULL, 30, 0, &res, &e), -1);
    ck_assert_msg(e->code == CR_FAILED_PRECONDITION, "%s: %s", cr_code_name(e->code), e->msg);
    printf("%s exec in a created container: %s\n", g_rt_name, e->msg);
    cr_err_free(e);
    e = NULL;
    oci_exec_result_clear(&res);

    /* Stopped. */
    ck_assert_msg(oci_start(&rt, id, 60, &e) == 0, "start: %s", e ? e->msg : "?");
    oci_state st;
    wait_status(&rt, id, "running", 10000, &st);
    ck_assert_msg(oci_kill(&rt, id, SIGKILL, false, &e) == 0, "kill: %s", e ? e->msg : "?");
    wait_status(&rt, id, "stopped", 10000, &st);
    ck_assert_int_eq(oci_exec_sync(&rt, id, echo, NULL, 30, 0, &res, &e), -1);
    ck_assert_msg(e->code == CR_FAILED_PRECONDITION, "%s: %s", cr_code_name(e->code), e->msg);
    ck_assert_msg(strstr(e->msg, "stopped") != NULL, "<<%s>>", e->msg);
    cr_err_free(e);
    e = NULL;
    oci_exec_result_clear(&res);
    kill_delete(id);
}
END_TEST

/* The container's cgroup folder for controller (v1), from /proc/<pid>/cgroup. */
static void cgroup_dir(int pid, const char *controller, char *out, size_t n)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
    cr_err *e = NULL;
    char *text = cr_read_file(path, NULL, &e);
    ck_assert_msg(text != NULL, "%s: %s", path, e ? e->msg : "?");
    out[0] = '\0';
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        /* "7:memory:/crisp-test-runc-1/id" or "4:cpu,cpuacct:/..." */
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = '\0';
        char *ctl_save = NULL;
        for (char *ctl = strtok_r(c1 + 1, ",", &ctl_save); ctl; ctl = strtok_r(NULL, ",", &ctl_save))
            if (strcmp(ctl, controller) == 0)
                snprintf(out, n, "/sys/fs/cgroup/%s%s", controller, c2 + 1);
    }
    free(text);
    ck_assert_msg(out[0], "no %s cgroup for pid %d", controller, pid);
}

static long long read_ll(const char *path)
{
    cr_err *e = NULL;
    char *text = cr_read_file(path, NULL, &e);
    ck_assert_msg(text != NULL, "%s: %s", path, e ? e->msg : "?");
    long long v = strtoll(text, NULL, 10);
    free(text);
    return v;
}

START_TEST(test_update)
{
    if (skipped())
        return;
    oci_runtime rt = current_rt();
    char id[128];
    oci_state st;
    run_sleeper("upd", id, sizeof(id), NULL, &st);
    char mem[512], pids[512], file[600];
    cgroup_dir(st.pid, "memory", mem, sizeof(mem));
    cgroup_dir(st.pid, "pids", pids, sizeof(pids));
    ck_assert_msg(strstr(mem, g_cg_parent) != NULL, "%s is not under %s", mem, g_cg_parent);
    snprintf(file, sizeof(file), "%s/pids.max", pids);
    ck_assert_int_eq(read_ll(file), 64);

    oci_spec_input res = { 0 };
    res.memory_limit = 64 << 20;
    res.pids_limit = 32;
    res.cpu_shares = 256;
    cr_err *e = NULL;
    ck_assert_msg(oci_update(&rt, id, &res, &e) == 0, "update: %s", e ? e->msg : "?");
    snprintf(file, sizeof(file), "%s/memory.limit_in_bytes", mem);
    ck_assert_int_eq(read_ll(file), 64 << 20);
    snprintf(file, sizeof(file), "%s/pids.max", pids);
    ck_assert_int_eq(read_ll(file), 32);

    /* Again, larger: only what is set changes. */
    oci_spec_input more = { 0 };
    more.memory_limit = 96 << 20;
    ck_assert_msg(oci_update(&rt, id, &more, &e) == 0, "update: %s", e ? e->msg : "?");
    snprintf(file, sizeof(file), "%s/memory.limit_in_bytes", mem);
    ck_assert_int_eq(read_ll(file), 96 << 20);
    snprintf(file, sizeof(file), "%s/pids.max", pids);
    ck_assert_int_eq(read_ll(file), 32);

    /* Invalid input and an unknown container. */
    oci_spec_input bad = { 0 };
    bad.cpu_shares = -5;
    ck_assert_int_eq(oci_update(&rt, id, &bad, &e), -1);
    ck_assert_int_eq(e->code, CR_INVALID_ARGUMENT);
    cr_err_free(e);
    e = NULL;
    char other[160];
    snprintf(other, sizeof(other), "%s-none", id);
    ck_assert_int_eq(oci_update(&rt, other, &res, &e), -1);
    ck_assert_int_eq(e->code, CR_NOT_FOUND);
    cr_err_free(e);
    kill_delete(id);
}
END_TEST

START_TEST(test_pause_resume)
{
    if (skipped())
        return;
    oci_runtime rt = current_rt();
    char id[128];
    oci_state st;
    run_sleeper("pause", id, sizeof(id), NULL, &st);
    cr_err *e = NULL;
    ck_assert_msg(oci_pause(&rt, id, &e) == 0, "pause: %s", e ? e->msg : "?");
    ck_assert_msg(oci_state_get(&rt, id, &st, &e) == 0, "state: %s", e ? e->msg : "?");
    ck_assert_str_eq(st.status, "paused");
    /* Frozen from the kernel's side too. */
    char freezer[512], file[600];
    cgroup_dir(st.pid, "freezer", freezer, sizeof(freezer));
    snprintf(file, sizeof(file), "%s/freezer.state", freezer);
    char *fs = cr_read_file(file, NULL, &e);
    ck_assert_msg(fs != NULL, "%s: %s", file, e ? e->msg : "?");
    ck_assert_str_eq(fs, "FROZEN\n");
    free(fs);
    /* Again: already done, with either runtime. */
    ck_assert_msg(oci_pause(&rt, id, &e) == 0, "pause again: %s", e ? e->msg : "?");
    ck_assert_msg(oci_resume(&rt, id, &e) == 0, "resume: %s", e ? e->msg : "?");
    ck_assert_msg(oci_state_get(&rt, id, &st, &e) == 0, "state: %s", e ? e->msg : "?");
    ck_assert_str_eq(st.status, "running");
    fs = cr_read_file(file, NULL, &e);
    ck_assert_msg(fs != NULL, "%s: %s", file, e ? e->msg : "?");
    ck_assert_str_eq(fs, "THAWED\n");
    free(fs);
    ck_assert_msg(oci_resume(&rt, id, &e) == 0, "resume again: %s", e ? e->msg : "?");
    /* A stopped container can be neither paused nor resumed. */
    ck_assert_msg(oci_kill(&rt, id, SIGKILL, false, &e) == 0, "kill: %s", e ? e->msg : "?");
    wait_status(&rt, id, "stopped", 10000, &st);
    ck_assert_int_eq(oci_pause(&rt, id, &e), -1);
    ck_assert_msg(e->code == CR_FAILED_PRECONDITION, "%s: %s", cr_code_name(e->code), e->msg);
    ck_assert_msg(strstr(e->msg, "stopped") != NULL, "<<%s>>", e->msg);
    printf("%s pause of a stopped container: %s\n", g_rt_name, e->msg);
    cr_err_free(e);
    e = NULL;
    ck_assert_int_eq(oci_resume(&rt, id, &e), -1);
    ck_assert_msg(e->code == CR_FAILED_PRECONDITION, "%s: %s", cr_code_name(e->code), e->msg);
    cr_err_free(e);
    e = NULL;
    char other[160];
    snprintf(other, sizeof(other), "%s-none", id);
    ck_assert_int_eq(oci_pause(&rt, other, &e), -1);
    ck_assert_int_eq(e->code, CR_NOT_FOUND);
    cr_err_free(e);
    kill_delete(id);
}
END_TEST

/* A host device and a hook, as the real runtimes read them. */
static char g_hooks_dir[600], g_hook_mark[600];

static void tweak_device_hook(oci_spec_input *in)
{
    static const oci_device devs[] = { { "/dev/mydev", "/dev/null", "rw" } };
    in->devices = devs;
    in->n_devices = 1;
    in->hooks_dir = g_hooks_dir;
}

START_TEST(test_device_and_hook)
{
    if (skipped())
        return;
    cr_err *e = NULL;
    snprintf(g_hooks_dir, sizeof(g_hooks_dir), "%s/hooks.d", g_tmp);
    snprintf(g_hook_mark, sizeof(g_hook_mark), "%s/hook-ran", g_tmp);
    ck_assert_int_eq(cr_mkdir_p(g_hooks_dir, 0755, &e), 0);
    char path[700], text[2048];
    snprintf(path, sizeof(path), "%s/10-mark.json", g_hooks_dir);
    snprintf(text, sizeof(text),
             "{\"version\": \"1.0.0\", \"hook\": {\"path\": \"/bin/busybox\", \"args\": [\"busybox\", \"sh\", "
             "\"-c\", \"cat > %s\"], \"timeout\": 10}, \"when\": {\"always\": true}, \"stages\": [\"prestart\"]}",
             g_hook_mark);
    write_text(path, text, 0644);
    unlink(g_hook_mark);

    char id[128];
    oci_state st;
    run_sleeper("devhook", id, sizeof(id), tweak_device_hook, &st);
    /* The hook ran, with the container's state on its stdin. */
    char *mark = cr_read_file(g_hook_mark, NULL, &e);
    ck_assert_msg(mark != NULL, "the prestart hook did not run: %s", e ? e->msg : "?");
    ck_assert_msg(strstr(mark, id) != NULL, "hook stdin <<%s>> lacks the id", mark);
    free(mark);

    /* The device is there, readable and writable through the device cgroup. */
    const char *check[] = { "/bin/busybox", "sh", "-c",
                            "test -c /dev/mydev && echo x > /dev/mydev && /bin/busybox stat -c '%t:%T' /dev/mydev",
                            NULL };
    oci_exec_result res;
    exec_ok(id, check, NULL, 0, &res);
    ck_assert_msg(res.exit_code == 0, "exit %d: %s", res.exit_code, res.err);
    ck_assert_str_eq(res.out, "1:3\n");
    oci_exec_result_clear(&res);
    kill_delete(id);
}
END_TEST

static TCase *runtime_tcase(const char *name, void (*setup)(void), void (*teardown)(void))
{
    TCase *tc = tcase_create(name);
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_lifecycle);
    tcase_add_test(tc, test_kill_all_and_force_delete);
    tcase_add_test(tc, test_privileged);
    tcase_add_test(tc, test_bad_args_error);
    tcase_add_test(tc, test_unknown_container);
    tcase_add_test(tc, test_timeout);
    tcase_add_test(tc, test_threads);
    tcase_add_test(tc, test_exec_sync);
    tcase_add_test(tc, test_exec_timeout);
    tcase_add_test(tc, test_exec_not_running);
    tcase_add_test(tc, test_exec_start);
    tcase_add_test(tc, test_update);
    tcase_add_test(tc, test_pause_resume);
    tcase_add_test(tc, test_device_and_hook);
    return tc;
}

int main(void)
{
    Suite *s = suite_create("oci-runtime");
    suite_add_tcase(s, runtime_tcase("runc", runc_setup, common_teardown));
    suite_add_tcase(s, runtime_tcase("crun", crun_setup, crun_teardown));
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
