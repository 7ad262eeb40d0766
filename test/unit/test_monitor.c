/* Tests for crisp-monitor (conmon/): the real binary from $CRISP_BIN_DIR
 * drives real runc (and crun where it can run) on busybox containers whose
 * bundles are built here.  Every wait polls with a deadline.  Each test runs in
 * its own folder under one base folder; an atexit hook in the test process
 * and a final sweep in main() delete the containers, end the monitors (by
 * pid) and remove the folders and cgroups, whatever way a test ended. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <regex.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conmon/monitor.h"

#define DEADLINE_MS 30000
#define RUNC "/usr/sbin/runc"
#define CRUN "/usr/bin/crun"
#define CGROUPS "/sys/fs/cgroup"
#define HYBRID_CONTROLLERS CGROUPS "/unified/cgroup.controllers"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

static char g_base[64];         /* made by main(), shared by all tests */
static char g_monitor[PATH_MAX]; /* the binary under test */
static char g_cgparent[64];      /* test-only cgroup parent, removed by main() */

/* ---- small helpers ---- */

/* A line for the reader of the test output (skips, measurements). */
static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The pause between two polls of a condition (never a synchronisation). */
static void poll_pause(void)
{
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static char *slurp(const char *path, size_t *len_out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    if (len_out)
        *len_out = len;
    return buf;
}

static void write_file(const char *path, const char *data)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ck_assert_msg(fd >= 0, "create %s: %s", path, strerror(errno));
    size_t len = strlen(data);
    ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static void copy_file(const char *src, const char *dst, mode_t mode)
{
    size_t len;
    char *data = slurp(src, &len);
    ck_assert_msg(data, "read %s: %s", src, strerror(errno));
    int fd = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    ck_assert_msg(fd >= 0, "create %s: %s", dst, strerror(errno));
    ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
    free(data);
}

static void json_escape(char *out, size_t outlen, const char *s)
{
    size_t o = 0;
    for (; *s && o + 7 < outlen; s++) {
        if (*s == '"' || *s == '\\') {
            out[o++] = '\\';
            out[o++] = *s;
        } else if (*s == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *s;
        }
    }
    out[o] = '\0';
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

static void rm_rf(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* cgroup folders can only be rmdir'ed, deepest first. */
static void rmdir_cgroup_tree(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char sub[PATH_MAX];
        snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
        rmdir_cgroup_tree(sub);
    }
    closedir(d);
    rmdir(path);
}

static void remove_test_cgroups(void)
{
    char path[PATH_MAX];
    DIR *d = opendir(CGROUPS);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            snprintf(path, sizeof(path), CGROUPS "/%s/%s", e->d_name, g_cgparent);
            rmdir_cgroup_tree(path);
        }
        closedir(d);
    }
    snprintf(path, sizeof(path), CGROUPS "/%s", g_cgparent);
    rmdir_cgroup_tree(path);
}

/* crun 1.8.1 refuses a hybrid cgroup layout; in a private mount namespace
 * (of this child process only) hide the v2 controllers list it checks. */
static void enter_crun_namespace(void)
{
    if (!exists(HYBRID_CONTROLLERS))
        return;
    char empty[128];
    snprintf(empty, sizeof(empty), "%s/empty", g_base);
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount(empty, HYBRID_CONTROLLERS, NULL, MS_BIND, NULL) < 0) {
        dprintf(2, "crun namespace: %s\n", strerror(errno));
        _exit(126);
    }
}

/* Run a command, its output in out (may be NULL); returns the wait status. */
static int run(const char *const argv[], bool crun_ns, char *out, size_t outlen)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        if (crun_ns)
            enter_crun_namespace();
        int null = open("/dev/null", O_RDONLY);
        dup2(null, 0);
        dup2(p[1], 1);
        dup2(p[1], 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    size_t len = 0;
    char sink[1024];
    for (;;) {
        char *dst = sink;
        size_t cap = sizeof(sink);
        if (out && len + 1 < outlen) {
            dst = out + len;
            cap = outlen - 1 - len;
        }
        ssize_t n = read(p[0], dst, cap);
        if (n <= 0)
            break;
        if (dst != sink)
            len += (size_t)n;
    }
    close(p[0]);
    if (out && outlen)
        out[len] = '\0';
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return status;
}

static bool process_alive_monitor(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')');
    if (!rp || rp[1] != ' ' || rp[2] == 'Z' || rp[2] == 'X')
        return false;
    return strstr(buf, "(crisp-monitor)") != NULL;
}

static pid_t proc_ppid(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')');
    char state;
    int ppid;
    if (!rp || sscanf(rp + 2, "%c %d", &state, &ppid) != 2)
        return -1;
    return ppid;
}

static long vm_rss_kb(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    char *s = slurp(path, NULL);
    if (!s)
        return -1;
    char *p = strstr(s, "VmRSS:");
    long kb = p ? strtol(p + 6, NULL, 10) : -1;
    free(s);
    return kb;
}

/* Wait until pid (not our child) is gone; true when it is. */
static bool wait_gone(pid_t pid, int ms)
{
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0)
        return errno == ESRCH;
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, ms);
    close(fd);
    return r == 1;
}

/* ---- containers ---- */

struct spec {
    const char *script;  /* busybox sh -c SCRIPT */
    const char *argv0;   /* or this alone */
    bool terminal;
    long long mem_limit; /* bytes; 0: none */
};

struct ctr {
    char dir[160], id[64], runtime[64];
    bool crun_ns;
    char bundle[256], root[256], state[256], log[256], exits[256];
    char exitfile[384], cgpath[160];
    pid_t monitor;
    int sync_fd;
    char sync[2048];
    pid_t cpid;
    pid_t exec_monitor; /* an exec session's monitor, swept with the container */
};

/* The folders this test process made: swept at exit, even after a failed
 * assertion (check's forked test calls exit). */
static char g_dirs[8][160];
static int g_ndirs;

/* Delete the container, end the monitor, remove the folder.  Reads only the
 * folder, so main() can sweep what a killed test left. */
static void sweep_dir(const char *dir)
{
    char path[PATH_MAX + 32], runtime[64] = "", id[64] = "";
    int crun_ns = 0, monitor = 0, exec_monitor = 0;
    snprintf(path, sizeof(path), "%s/info", dir);
    char *info = slurp(path, NULL);
    if (info) {
        sscanf(info, "%63s %63s %d %d %d", runtime, id, &crun_ns, &monitor, &exec_monitor);
        free(info);
    }
    if (runtime[0] && id[0]) {
        char root[PATH_MAX + 8];
        snprintf(root, sizeof(root), "%s/root", dir);
        const char *argv[] = {runtime, "--root", root, "delete", "-f", id, NULL};
        run(argv, crun_ns, NULL, 0);
    }
    /* An exec session's monitor ends with its process, which ends with the
     * container; one still waiting for its first client is ended here. */
    pid_t monitors[2] = {monitor, exec_monitor};
    for (int i = 0; i < 2; i++) {
        if (monitors[i] > 0 && process_alive_monitor(monitors[i]) && !wait_gone(monitors[i], 5000)) {
            kill(monitors[i], SIGKILL);
            wait_gone(monitors[i], 5000);
        }
    }
    rm_rf(dir);
}

static void sweep_mine(void)
{
    for (int i = 0; i < g_ndirs; i++)
        sweep_dir(g_dirs[i]);
    g_ndirs = 0;
}

static void ctr_save_info(struct ctr *c)
{
    char path[PATH_MAX + 8], info[256];
    snprintf(path, sizeof(path), "%s/info", c->dir);
    snprintf(info, sizeof(info), "%s %s %d %d %d\n", c->runtime, c->id, c->crun_ns, (int)c->monitor,
             (int)c->exec_monitor);
    write_file(path, info);
}

static void ctr_init(struct ctr *c, const char *name, const char *runtime, const struct spec *s)
{
    static bool hooked;
    if (!hooked) {
        atexit(sweep_mine);
        hooked = true;
    }
    memset(c, 0, sizeof(*c));
    c->sync_fd = -1;
    snprintf(c->id, sizeof(c->id), "%s-%d", name, (int)getpid());
    snprintf(c->dir, sizeof(c->dir), "%s/%s", g_base, c->id);
    snprintf(c->runtime, sizeof(c->runtime), "%s", runtime);
    c->crun_ns = strcmp(runtime, CRUN) == 0;
    ck_assert_int_lt(g_ndirs, 8);
    snprintf(g_dirs[g_ndirs++], sizeof(g_dirs[0]), "%s", c->dir);
    ck_assert_int_eq(mkdir(c->dir, 0700), 0);
    snprintf(c->bundle, sizeof(c->bundle), "%s/bundle", c->dir);
    snprintf(c->root, sizeof(c->root), "%s/root", c->dir);
    snprintf(c->state, sizeof(c->state), "%s/state", c->dir);
    snprintf(c->log, sizeof(c->log), "%s/logs/%s.log", c->dir, name);
    snprintf(c->exits, sizeof(c->exits), "%s/exits", c->dir);
    snprintf(c->exitfile, sizeof(c->exitfile), "%s/%s", c->exits, c->id);
    snprintf(c->cgpath, sizeof(c->cgpath), "/%s/%s", g_cgparent, c->id);
    ctr_save_info(c);

    /* rootfs: busybox and the applets the scripts use; read-only root. */
    char p[PATH_MAX + 64];
    mkdir(c->bundle, 0755);
    const char *dirs[] = {"rootfs", "rootfs/bin", "rootfs/proc", "rootfs/dev", "rootfs/sys", "rootfs/tmp"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", c->bundle, dirs[i]);
        ck_assert_int_eq(mkdir(p, 0755), 0);
    }
    snprintf(p, sizeof(p), "%s/rootfs/bin/busybox", c->bundle);
    copy_file("/bin/busybox", p, 0755);
    const char *applets[] = {"sh", "cat", "echo", "printf", "head", "tr", "sleep", "stty", "dd", "true", "wc"};
    for (size_t i = 0; i < sizeof(applets) / sizeof(applets[0]); i++) {
        snprintf(p, sizeof(p), "%s/rootfs/bin/%s", c->bundle, applets[i]);
        ck_assert_int_eq(symlink("busybox", p), 0);
    }

    char args[4096], esc[3500], res[160] = "";
    if (s->argv0) {
        json_escape(esc, sizeof(esc), s->argv0);
        snprintf(args, sizeof(args), "\"%s\"", esc);
    } else {
        json_escape(esc, sizeof(esc), s->script);
        snprintf(args, sizeof(args), "\"/bin/busybox\", \"sh\", \"-c\", \"%s\"", esc);
    }
    if (s->mem_limit)
        snprintf(res, sizeof(res), "\"resources\": {\"memory\": {\"limit\": %lld}},", s->mem_limit);
    char config[16384];
    snprintf(config, sizeof(config),
             "{\n"
             "  \"ociVersion\": \"1.0.2\",\n"
             "  \"process\": {\n"
             "    \"terminal\": %s,\n"
             "    \"user\": {\"uid\": 0, \"gid\": 0},\n"
             "    \"args\": [%s],\n"
             "    \"env\": [\"PATH=/bin\", \"TERM=xterm\"],\n"
             "    \"cwd\": \"/\",\n"
             "    \"capabilities\": {\n"
             "      \"bounding\": [\"CAP_KILL\", \"CAP_AUDIT_WRITE\"],\n"
             "      \"effective\": [\"CAP_KILL\", \"CAP_AUDIT_WRITE\"],\n"
             "      \"permitted\": [\"CAP_KILL\", \"CAP_AUDIT_WRITE\"]\n"
             "    },\n"
             "    \"rlimits\": [{\"type\": \"RLIMIT_NOFILE\", \"hard\": 1024, \"soft\": 1024}],\n"
             "    \"noNewPrivileges\": true\n"
             "  },\n"
             "  \"root\": {\"path\": \"rootfs\", \"readonly\": true},\n"
             "  \"hostname\": \"monitor-test\",\n"
             "  \"mounts\": [\n"
             "    {\"destination\": \"/proc\", \"type\": \"proc\", \"source\": \"proc\"},\n"
             "    {\"destination\": \"/dev\", \"type\": \"tmpfs\", \"source\": \"tmpfs\",\n"
             "     \"options\": [\"nosuid\", \"strictatime\", \"mode=755\", \"size=65536k\"]},\n"
             "    {\"destination\": \"/dev/pts\", \"type\": \"devpts\", \"source\": \"devpts\",\n"
             "     \"options\": [\"nosuid\", \"noexec\", \"newinstance\", \"ptmxmode=0666\", \"mode=0620\"]},\n"
             "    {\"destination\": \"/dev/shm\", \"type\": \"tmpfs\", \"source\": \"shm\",\n"
             "     \"options\": [\"nosuid\", \"noexec\", \"nodev\", \"mode=1777\", \"size=65536k\"]},\n"
             "    {\"destination\": \"/sys\", \"type\": \"sysfs\", \"source\": \"sysfs\",\n"
             "     \"options\": [\"nosuid\", \"noexec\", \"nodev\", \"ro\"]}\n"
             "  ],\n"
             "  \"linux\": {\n"
             "    \"cgroupsPath\": \"%s\",\n"
             "    %s\n"
             "    \"namespaces\": [{\"type\": \"pid\"}, {\"type\": \"ipc\"}, {\"type\": \"uts\"},\n"
             "                   {\"type\": \"mount\"}, {\"type\": \"network\"}],\n"
             "    \"maskedPaths\": [\"/proc/kcore\", \"/sys/firmware\"],\n"
             "    \"readonlyPaths\": [\"/proc/sys\", \"/proc/sysrq-trigger\"]\n"
             "  }\n"
             "}\n",
             s->terminal ? "true" : "false", args, c->cgpath, res);
    snprintf(p, sizeof(p), "%s/config.json", c->bundle);
    write_file(p, config);
}

/* Run a monitor launcher with its sync pipe on fd 3, as crispd would, in
 * crun's namespace for crun; returns its wait status once it exited (it must,
 * promptly) and the read end of the sync pipe.  Sanitizer reports of the
 * detached monitor go to files in dir, which monitor_done() checks. */
static int spawn_launcher(const char *const *argv, bool crun_ns, const char *dir, int *sync_fd)
{
    char asan[PATH_MAX + 256], ubsan[PATH_MAX + 256];
    const char *prev = getenv("ASAN_OPTIONS");
    snprintf(asan, sizeof(asan), "%s%slog_path=%s/sanitizer", prev ? prev : "", prev ? ":" : "", dir);
    prev = getenv("UBSAN_OPTIONS");
    snprintf(ubsan, sizeof(ubsan), "%s%slog_path=%s/sanitizer", prev ? prev : "", prev ? ":" : "", dir);

    int sp[2];
    ck_assert_int_eq(pipe2(sp, O_CLOEXEC), 0);
    int64_t t0 = now_ms();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (crun_ns)
            enter_crun_namespace();
        if (sp[1] == 3)
            fcntl(3, F_SETFD, 0);
        else
            dup2(sp[1], 3);
        setenv("ASAN_OPTIONS", asan, 1);
        setenv("UBSAN_OPTIONS", ubsan, 1);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(sp[1]);
    *sync_fd = sp[0];
    int status = 0;
    pid_t w;
    while ((w = waitpid(pid, &status, WNOHANG)) == 0 && now_ms() - t0 < DEADLINE_MS)
        poll_pause();
    ck_assert_msg(w == pid, "launcher %d did not exit", (int)pid);
    return status;
}

/* Launch the monitor as crispd would; the launcher must exit 0 promptly.
 * extra: more flags, NULL-terminated. */
static void ctr_launch(struct ctr *c, const char *const *extra)
{
    const char *argv[48];
    int a = 0;
    argv[a++] = g_monitor;
    argv[a++] = "--id";
    argv[a++] = c->id;
    argv[a++] = "--runtime";
    argv[a++] = c->runtime;
    argv[a++] = "--runtime-root";
    argv[a++] = c->root;
    argv[a++] = "--bundle";
    argv[a++] = c->bundle;
    argv[a++] = "--log-path";
    argv[a++] = c->log;
    argv[a++] = "--exit-dir";
    argv[a++] = c->exits;
    argv[a++] = "--state-dir";
    argv[a++] = c->state;
    argv[a++] = "--cgroup-path";
    argv[a++] = c->cgpath;
    argv[a++] = "--sync-fd";
    argv[a++] = "3";
    for (; extra && *extra && a < 46; extra++)
        argv[a++] = *extra;
    argv[a] = NULL;
    int status = spawn_launcher(argv, c->crun_ns, c->dir, &c->sync_fd);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "launcher status %d", status);

    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/" MON_PID_FILE, c->state);
    char *s = slurp(path, NULL);
    if (!s) {
        /* A create that fails fast: the monitor reports on the sync pipe and
         * removes its files, possibly before we look.  Then the answer is
         * already in the pipe. */
        struct pollfd p = {c->sync_fd, POLLIN, 0};
        ck_assert_msg(poll(&p, 1, 0) == 1, "no %s after the launcher exited", path);
        c->monitor = 0;
        return;
    }
    c->monitor = (pid_t)atoi(s);
    free(s);
    ck_assert_int_gt(c->monitor, 0);
    ctr_save_info(c);
    snprintf(path, sizeof(path), "%s/" MON_ATTACH_SOCKET, c->state);
    ck_assert_msg(exists(path), "no attach socket");
    snprintf(path, sizeof(path), "%s/" MON_CTL_FIFO, c->state);
    ck_assert_msg(exists(path), "no control fifo");
}

/* Read the one sync line (up to EOF) and close the pipe; returns the pid it
 * carries, or 0 for an error line. */
static pid_t read_sync(int *fd, char *sync, size_t cap)
{
    size_t len = 0;
    int64_t t0 = now_ms();
    while (len + 1 < cap) {
        struct pollfd p = {*fd, POLLIN, 0};
        int left = (int)(DEADLINE_MS - (now_ms() - t0));
        ck_assert_msg(left > 0 && poll(&p, 1, left) == 1, "no sync line from the monitor");
        ssize_t n = read(*fd, sync + len, cap - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    sync[len] = '\0';
    close(*fd);
    *fd = -1;
    ck_assert_msg(len > 0 && sync[len - 1] == '\n', "sync <<%s>> is not one line", sync);
    ck_assert_msg(strchr(sync, '\n') == sync + len - 1, "sync <<%s>> is not one line", sync);
    int pid;
    if (sscanf(sync, "{\"pid\": %d}", &pid) == 1) {
        ck_assert_int_gt(pid, 0);
        return pid;
    }
    ck_assert_msg(strncmp(sync, "{\"error\": \"", 11) == 0, "sync <<%s>> is neither pid nor error", sync);
    return 0;
}

/* Read the one sync line; true when it carries a pid. */
static bool ctr_sync(struct ctr *c)
{
    pid_t pid = read_sync(&c->sync_fd, c->sync, sizeof(c->sync));
    if (pid > 0)
        c->cpid = pid;
    return pid > 0;
}

static void ctr_create(struct ctr *c, const char *const *extra)
{
    ctr_launch(c, extra);
    ck_assert_msg(ctr_sync(c), "create failed: %s", c->sync);
    ck_assert_int_gt(c->cpid, 0);
}

static void ctr_start(struct ctr *c)
{
    char out[1024];
    const char *argv[] = {c->runtime, "--root", c->root, "start", c->id, NULL};
    int st = run(argv, c->crun_ns, out, sizeof(out));
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s start: %s", c->runtime, out);
}

static void ctr_kill(struct ctr *c, const char *sig)
{
    char out[1024];
    const char *argv[] = {c->runtime, "--root", c->root, "kill", c->id, sig, NULL};
    int st = run(argv, c->crun_ns, out, sizeof(out));
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s kill: %s", c->runtime, out);
}

/* The monitor must be gone soon after the exit, without a sanitizer report
 * (in dir), and without its files in state. */
static void monitor_done(const char *dir, const char *state, pid_t monitor)
{
    ck_assert_msg(wait_gone(monitor, DEADLINE_MS), "monitor %d still running", (int)monitor);
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "sanitizer", 9) == 0) {
            char path[PATH_MAX + 300];
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            char *report = slurp(path, NULL);
            closedir(d);
            ck_abort_msg("sanitizer report from the monitor:\n%s", report ? report : "?");
        }
    }
    closedir(d);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/" MON_ATTACH_SOCKET, state);
    ck_assert_msg(!exists(path), "attach socket left behind");
    snprintf(path, sizeof(path), "%s/" MON_CTL_FIFO, state);
    ck_assert_msg(!exists(path), "control fifo left behind");
    snprintf(path, sizeof(path), "%s/" MON_PID_FILE, state);
    ck_assert_msg(!exists(path), "monitor.pid left behind");
}

static void ctr_wait_monitor(struct ctr *c)
{
    monitor_done(c->dir, c->state, c->monitor);
}

static void wait_exit_file(const char *exitfile, struct mon_exit *e)
{
    int64_t t0 = now_ms();
    while (!exists(exitfile) && now_ms() - t0 < DEADLINE_MS)
        poll_pause();
    char *s = slurp(exitfile, NULL);
    ck_assert_msg(s, "no exit file %s", exitfile);
    int r = mon_exit_parse(s, e);
    ck_assert_msg(r == 0, "exit file <<%s>> does not parse", s);
    ck_assert_msg(e->exited_at > 1600000000LL * 1000000000LL, "exitedAt in <<%s>>", s);
    free(s);
}

static void ctr_wait_exit(struct ctr *c, struct mon_exit *e)
{
    wait_exit_file(c->exitfile, e);
    ctr_wait_monitor(c);
}

/* ---- the CRI log ---- */

struct logline {
    char stream[8];
    char tag;
    const char *text;
    size_t len;
};

struct log {
    char *buf;
    struct logline lines[512];
    int n;
};

/* Parse the whole log; every line must be "<RFC3339Nano> <stream> <F|P> <text>". */
static void log_read(const char *path, struct log *l)
{
    regex_t re;
    ck_assert_int_eq(regcomp(&re,
                             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?"
                             "(Z|[+-][0-9]{2}:[0-9]{2}) (stdout|stderr) [FP] ",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    size_t len = 0;
    l->buf = slurp(path, &len);
    l->n = 0;
    ck_assert_msg(l->buf, "no log %s", path);
    ck_assert_msg(len == 0 || l->buf[len - 1] == '\n', "log does not end in a newline");
    for (char *line = l->buf, *nl; line < l->buf + len; line = nl + 1) {
        nl = memchr(line, '\n', (size_t)(l->buf + len - line));
        *nl = '\0';
        ck_assert_msg(regexec(&re, line, 0, NULL, 0) == 0, "bad log line <<%.200s>>", line);
        ck_assert_int_lt(l->n, 512);
        struct logline *ll = &l->lines[l->n++];
        char *sp = strchr(line, ' ');
        memcpy(ll->stream, sp + 1, 6);
        ll->stream[6] = '\0';
        ll->tag = sp[8];
        ll->text = sp + 10;
        ll->len = (size_t)(nl - ll->text);
    }
    regfree(&re);
}

static bool log_has(const char *path, const char *needle)
{
    char *s = slurp(path, NULL);
    bool r = s && strstr(s, needle);
    free(s);
    return r;
}

static void wait_log_has(const char *path, const char *needle)
{
    int64_t t0 = now_ms();
    while (!log_has(path, needle) && now_ms() - t0 < DEADLINE_MS)
        poll_pause();
    ck_assert_msg(log_has(path, needle), "log %s never got <<%s>>", path, needle);
}

#define ASSERT_LINE(l, i, strm, tg, txt)                                                                   \
    do {                                                                                               \
        ck_assert_int_gt((l)->n, (i));                                                                 \
        ck_assert_str_eq((l)->lines[i].stream, (strm));                                                \
        ck_assert_int_eq((l)->lines[i].tag, (tg));                                                     \
        ck_assert_msg((l)->lines[i].len == strlen(txt) && memcmp((l)->lines[i].text, (txt), strlen(txt)) == 0, \
                      "line %d is <<%.*s>>, want <<%s>>", (i), (int)(l)->lines[i].len, (l)->lines[i].text, (txt)); \
    } while (0)

/* ---- attach ---- */

static int attach_connect_to(const char *state)
{
    struct sockaddr_un sa;
    socklen_t salen;
    ck_assert_int_eq(mon_sockaddr(&sa, &salen, state, -1, MON_ATTACH_SOCKET), 0);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_msg(connect(fd, (struct sockaddr *)&sa, salen) == 0, "connect: %s", strerror(errno));
    return fd;
}

static int attach_connect(struct ctr *c)
{
    return attach_connect_to(c->state);
}

static void attach_send(int fd, int type, const char *data)
{
    char pkt[256];
    size_t n = data ? strlen(data) : 0;
    pkt[0] = (char)type;
    memcpy(pkt + 1, data ? data : "", n);
    ck_assert_int_eq(send(fd, pkt, n + 1, MSG_NOSIGNAL), (ssize_t)(n + 1));
}

/* Read packets until the stdout text contains want (or the exit packet when
 * want is NULL); returns the exit code seen, or -1. */
static int attach_read(int fd, const char *want, char *acc, size_t acclen)
{
    static char pkt[MON_ATTACH_MAX_PACKET];
    size_t len = strlen(acc);
    int64_t t0 = now_ms();
    for (;;) {
        if (want && strstr(acc, want))
            return -1;
        struct pollfd p = {fd, POLLIN, 0};
        int left = (int)(DEADLINE_MS - (now_ms() - t0));
        ck_assert_msg(left > 0 && poll(&p, 1, left) == 1, "attach: waited for <<%s>>, got <<%s>>",
                      want ? want : "exit", acc);
        ssize_t n = recv(fd, pkt, sizeof(pkt), 0);
        ck_assert_msg(n > 0, "attach closed; got <<%s>>", acc);
        if (pkt[0] == MON_ATTACH_EXIT) {
            pkt[n] = '\0';
            ck_assert_msg(!want, "exit before <<%s>>; got <<%s>>", want, acc);
            return atoi(pkt + 1);
        }
        ck_assert_int_eq(pkt[0], MON_ATTACH_STDOUT);
        size_t take = (size_t)n - 1 < acclen - 1 - len ? (size_t)n - 1 : acclen - 1 - len;
        memcpy(acc + len, pkt + 1, take);
        len += take;
        acc[len] = '\0';
    }
}

static void ctl_send_to(const char *state, const char *cmd)
{
    char path[PATH_MAX + 8];
    snprintf(path, sizeof(path), "%s/" MON_CTL_FIFO, state);
    int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
    ck_assert_int_eq(write(fd, cmd, strlen(cmd)), (ssize_t)strlen(cmd));
    close(fd);
}

static void ctl_send(struct ctr *c, const char *cmd)
{
    ctl_send_to(c->state, cmd);
}

/* ---- tests ---- */

START_TEST(test_stdout_stderr)
{
    struct ctr c;
    struct spec s = {.script = "echo hello; echo oops >&2"};
    ctr_init(&c, "std", RUNC, &s);
    ctr_create(&c, NULL);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/" MON_CONTAINER_PID_FILE, c.state);
    char *pidtext = slurp(path, NULL);
    ck_assert_ptr_nonnull(pidtext);
    ck_assert_int_eq(atoi(pidtext), c.cpid);
    free(pidtext);
    ctr_start(&c);
    struct mon_exit e;
    ctr_wait_exit(&c, &e);
    ck_assert_int_eq(e.exit_code, 0);
    ck_assert_int_eq(e.signal, 0);
    ck_assert(!e.oom_killed);
    struct log l;
    log_read(c.log, &l);
    ck_assert_int_eq(l.n, 2);
    /* Two pipes: their order in the log is not defined. */
    int o = strcmp(l.lines[0].stream, "stdout") == 0 ? 0 : 1;
    ASSERT_LINE(&l, o, "stdout", 'F', "hello");
    ASSERT_LINE(&l, 1 - o, "stderr", 'F', "oops");
    struct stat st;
    ck_assert_int_eq(stat(c.log, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0640);
    free(l.buf);
    sweep_mine();
}
END_TEST

START_TEST(test_long_line_split)
{
    struct ctr c;
    struct spec s = {.script = "head -c 40000 /dev/zero | tr '\\0' x; echo; echo next"};
    ctr_init(&c, "long", RUNC, &s);
    const char *extra[] = {"--log-max-line", "16384", NULL};
    ctr_create(&c, extra);
    ctr_start(&c);
    struct mon_exit e;
    ctr_wait_exit(&c, &e);
    ck_assert_int_eq(e.exit_code, 0);
    struct log l;
    log_read(c.log, &l);
    ck_assert_int_eq(l.n, 4);
    ck_assert_int_eq(l.lines[0].tag, 'P');
    ck_assert_int_eq(l.lines[0].len, 16384);
    ck_assert_int_eq(l.lines[1].tag, 'P');
    ck_assert_int_eq(l.lines[1].len, 16384);
    ck_assert_int_eq(l.lines[2].tag, 'F');
    ck_assert_int_eq(l.lines[2].len, 40000 - 2 * 16384);
    size_t total = 0;
    for (int i = 0; i < 3; i++) {
        for (size_t k = 0; k < l.lines[i].len; k++)
            ck_assert_int_eq(l.lines[i].text[k], 'x');
        total += l.lines[i].len;
    }
    ck_assert_int_eq(total, 40000);
    ASSERT_LINE(&l, 3, "stdout", 'F', "next");
    free(l.buf);
    sweep_mine();
}
END_TEST

START_TEST(test_no_trailing_newline)
{
    struct ctr c;
    struct spec s = {.script = "echo first; printf abc"};
    ctr_init(&c, "nonl", RUNC, &s);
    ctr_create(&c, NULL);
    ctr_start(&c);
    struct mon_exit e;
    ctr_wait_exit(&c, &e);
    struct log l;
    log_read(c.log, &l);
    ck_assert_int_eq(l.n, 2);
    ASSERT_LINE(&l, 0, "stdout", 'F', "first");
    ASSERT_LINE(&l, 1, "stdout", 'P', "abc");
    free(l.buf);
    sweep_mine();
}
END_TEST

/* A partial line reaches the log while the container still runs. */
START_TEST(test_partial_line_flushed_while_running)
{
    struct ctr c;
    struct spec s = {.script = "printf 'Password: '; read x; echo got $x"};
    ctr_init(&c, "prompt", RUNC, &s);
    const char *extra[] = {"--stdin", NULL};
    ctr_create(&c, extra);
    ctr_start(&c);
    wait_log_has(c.log, " stdout P Password: \n");
    int fd = attach_connect(&c);
    attach_send(fd, MON_ATTACH_STDIN, "secret\n");
    struct mon_exit e;
    ctr_wait_exit(&c, &e);
    close(fd);
    struct log l;
    log_read(c.log, &l);
    ck_assert_int_eq(l.n, 2);
    ASSERT_LINE(&l, 0, "stdout", 'P', "Password: ");
    ASSERT_LINE(&l, 1, "stdout", 'F', "got secret");
    free(l.buf);
    sweep_mine();
}
END_TEST

START_TEST(test_exit_code)
{
    struct ctr c;
    struct spec s = {.script = "exit 3"};
    ctr_init(&c, "exit3", RUNC, &s);
    ctr_create(&c, NULL);
    ctr_start(&c);
    struct mon_exit e;
    ctr_wait_exit(&c, &e);
    ck_assert_int_eq(e.exit_code, 3);
    ck_assert_int_eq(e.signal, 0);
    ck_assert(!e.oom_killed);
    /* Written atomically: no temp file left beside it. */
    DIR *d = opendir(c.exits);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    ck_assert_int_eq(n, 1);
    sweep_mine();
}
END_TEST

START_TEST(test_sigkill)
{
    struct ctr c;
    struct spec s = {.script = "echo up; exec sleep 1000"};
    ctr_init(&c, "kill", RUNC, &s);
    ctr_create(&c, NULL);
    ctr_start(&c);
    wait_log_has(c.log, " stdout F up\n");
    /* The container got its stdio and nothing else of the monitor's. */
    char fddir[64];
    snprintf(fddir, sizeof(fddir), "/proc/%d/fd", (int)c.cpid);
    DIR *d = opendir(fddir);
    ck_assert_ptr_nonnull(d);
    struct dirent *de;
    int nfd = 0;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.')
            nfd++;
    closedir(d);
    ck_assert_int_eq(nfd, 3);
    ctr_kill(&c, "KILL");
    struct mon_exit e;
    ctr_wait_exit(&c, &e);
    ck_assert_int_eq(e.exit_code, 137);
    ck_assert_int_eq(e.signal, 9);
    ck_assert(!e.oom_killed);
    sweep_mine();
}
END_TEST

/* The launcher exits while the container is only created (it never exits by
 * itself then); the monitor is nobody's child we know, and outlives the
 * process that launched it (a crispd stand-in, killed). */
START_TEST(test_detached_from_launcher)
{
    struct ctr c;
    struct spec s = {.script = "read x; echo after $x"};
    ctr_init(&c, "detach", RUNC, &s);
    int ready[2];
    ck_assert_int_eq(pipe(ready), 0);
    pid_t standin = fork();
    ck_assert_int_ge(standin, 0);
    if (standin == 0) {
        /* crispd stand-in: launch, report, then wait to be killed. */
        close(ready[0]);
        const char *extra[] = {"--stdin", NULL};
        ctr_launch(&c, extra);
        bool ok = ctr_sync(&c);
        char msg[64];
        int n = snprintf(msg, sizeof(msg), "%d %d\n", ok ? c.cpid : -1, (int)c.monitor);
        ck_assert_int_eq(write(ready[1], msg, (size_t)n), n);
        g_ndirs = 0; /* the parent test owns the cleanup */
        for (;;)
            pause();
    }
    close(ready[1]);
    char msg[64] = "";
    struct pollfd p = {ready[0], POLLIN, 0};
    ck_assert_int_eq(poll(&p, 1, DEADLINE_MS), 1);
    ck_assert_int_gt(read(ready[0], msg, sizeof(msg) - 1), 0);
    close(ready[0]);
    int cpid = 0, mpid = 0;
    ck_assert_int_eq(sscanf(msg, "%d %d", &cpid, &mpid), 2);
    ck_assert_int_gt(cpid, 0);
    c.monitor = mpid;
    c.cpid = cpid;
    ctr_save_info(&c);

    pid_t ppid = proc_ppid(mpid);
    ck_assert_int_ne(ppid, standin);
    const char *nofork = getenv("CK_FORK");
    if (!nofork || strcmp(nofork, "no") != 0)
        ck_assert_int_ne(ppid, getpid());
    ck_assert_int_eq(proc_ppid(cpid), mpid); /* the container's init is the monitor's */
    ck_assert_int_eq(kill(standin, SIGKILL), 0);
    int st;
    ck_assert_int_eq(waitpid(standin, &st, 0), standin);
    ck_assert(process_alive_monitor(mpid));

    ctr_start(&c);
    int fd = attach_connect(&c);
    attach_send(fd, MON_ATTACH_STDIN, "kill\n");
    char acc[256] = "";
    attach_read(fd, "after kill", acc, sizeof(acc));
    ck_assert_int_eq(attach_read(fd, NULL, acc, sizeof(acc)), 0);
    close(fd);
    struct mon_exit e;
    ctr_wait_exit(&c, &e);
    ck_assert_int_eq(e.exit_code, 0);
    sweep_mine();
}
END_TEST

START_TEST(test_create_fails)
{
    struct ctr c;
    struct spec s = {.argv0 = "/bin/nonexistent"};
    ctr_init(&c, "fail", RUNC, &s);
    ctr_launch(&c, NULL);
    ck_assert_msg(!ctr_sync(&c), "create of a missing executable succeeded: %s", c.sync);
    ck_assert_msg(strncmp(c.sync, "{\"error\": \"", 11) == 0, "sync <<%s>>", c.sync);
    ck_assert_msg(strstr(c.sync, "/bin/nonexistent") && strstr(c.sync, "no such file or directory"),
                  "sync <<%s>> lacks the runtime's message", c.sync);
    ck_assert_msg(wait_gone(c.monitor, DEADLINE_MS), "monitor still running after a failed create");
    ck_assert_msg(!exists(c.exitfile), "exit file written for a failed create");
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/" MON_ATTACH_SOCKET, c.state);
    ck_assert(!exists(path));
    sweep_mine();
}
END_TEST

START_TEST(test_bad_arguments)
{
    /* Missing required flags: the launcher fails with a message, nothing runs. */
    char out[1024];
    const char *argv[] = {g_monitor, "--id", "x", NULL};
    int st = run(argv, false, out, sizeof(out));
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    ck_assert_msg(strstr(out, "--runtime is required"), "output <<%s>>", out);
    const char *argv2[] = {g_monitor, "--id", "a/b", "--runtime", RUNC, "--runtime-root", "/r", "--bundle", "/b",
                           "--log-path", "/l", "--exit-dir", "/e", "--state-dir", "/s", NULL};
    st = run(argv2, false, out, sizeof(out));
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    ck_assert_msg(strstr(out, "not a valid container id"), "output <<%s>>", out);
}
END_TEST

START_TEST(test_attach_stdin_echo)
{
    struct ctr c;
    struct spec s = {.argv0 = "/bin/cat"};
    ctr_init(&c, "attach", RUNC, &s);
    const char *extra[] = {"--stdin", NULL};
    ctr_create(&c, extra);
    int a = attach_connect(&c);
    int b = attach_connect(&c);
    ctr_start(&c);
    attach_send(a, MON_ATTACH_STDIN, "hello\n");
    char acc_a[256] = "", acc_b[256] = "";
    attach_read(a, "hello\n", acc_a, sizeof(acc_a));
    attach_read(b, "hello\n", acc_b, sizeof(acc_b)); /* every client gets the output */
    attach_send(b, MON_ATTACH_STDIN, "world\n");
    attach_read(a, "world\n", acc_a, sizeof(acc_a));
    attach_send(a, MON_ATTACH_CLOSE_STDIN, NULL);
    ck_assert_int_eq(attach_read(a, NULL, acc_a, sizeof(acc_a)), 0);
    ck_assert_int_eq(attach_read(b, NULL, acc_b, sizeof(acc_b)), 0);
    /* Then the monitor closes the connection. */
    char pkt[16];
    ck_assert_int_eq(recv(a, pkt, sizeof(pkt), 0), 0);
    close(a);
    close(b);
    struct mon_exit e;
    ctr_wait_exit(&c, &e);
    ck_assert_int_eq(e.exit_code, 0);
    struct log l;
    log_read(c.log, &l);
    ck_assert_int_eq(l.n, 2);
    ASSERT_LINE(&l, 0, "stdout", 'F', "hello");
    ASSERT_LINE(&l, 1, "stdout", 'F', "world");
    free(l.buf);
    sweep_mine();
}
END_TEST

START_TEST(test_stdin_once)
{
    struct ctr c;
    struct spec s = {.argv0 = "/bin/cat"};
    ctr_init(&c, "once", RUNC, &s);
    const char *extra[] = {"--stdin", "--stdin-once", NULL};
    ctr_create(&c, extra);
    ctr_start(&c);
    int a = attach_connect(&c);
    attach_send(a, MON_ATTACH_STDIN, "only\n");
    char acc[64] = "";
    attach_read(a, "only\n", acc, sizeof(acc));
    close(a); /* the first client leaves: cat sees EOF */
    struct mon_exit e;
    ctr_wait_exit(&c, &e);
    ck_assert_int_eq(e.exit_code, 0);
    struct log l;
    log_read(c.log, &l);
    ck_assert_int_eq(l.n, 1);
    ASSERT_LINE(&l, 0, "stdout", 'F', "only");
    free(l.buf);
    sweep_mine();
}
END_TEST

/* A client that never reads is dropped; the container is not held back and
 * the log gets everything. */
START_TEST(test_slow_client_dropped)
{
    struct ctr c;
    struct spec s = {.script = "read x; head -c 4000000 /dev/zero | tr '\\0' y; echo; echo done"};
    ctr_init(&c, "slow", RUNC, &s);
    const char *extra[] = {"--stdin", NULL};
    ctr_create(&c, extra);
    ctr_start(&c);
    int fd = attach_connect(&c);
    /* Its stdin packet is read only once it is accepted: then the output starts. */
    attach_send(fd, MON_ATTACH_STDIN, "go\n");
    struct mon_exit e;
    ctr_wait_exit(&c, &e);
    ck_assert_int_eq(e.exit_code, 0);
    struct log l;
    log_read(c.log, &l);
    size_t ys = 0;
    for (int i = 0; i < l.n - 1; i++)
        ys += l.lines[i].len;
    ck_assert_int_eq(ys, 4000000);
    ASSERT_LINE(&l, l.n - 1, "stdout", 'F', "done");
    free(l.buf);
    /* What the client got is short of it all, and there was no exit packet. */
    static char pkt[MON_ATTACH_MAX_PACKET];
    size_t got = 0;
    ssize_t n;
    while ((n = recv(fd, pkt, sizeof(pkt), MSG_DONTWAIT)) > 0) {
        ck_assert_int_eq(pkt[0], MON_ATTACH_STDOUT);
        got += (size_t)n - 1;
    }
    ck_assert_int_eq(n, 0); /* EOF: dropped */
    ck_assert_msg(got < 4000000, "slow client got %zu bytes", got);
    close(fd);
    sweep_mine();
}
END_TEST

START_TEST(test_terminal_resize)
{
    struct ctr c;
    struct spec s = {.script = "read x; stty size; echo tty=$(tty)", .terminal = true};
    ctr_init(&c, "tty", RUNC, &s);
    const char *extra[] = {"--terminal", "--stdin", NULL};
    ctr_create(&c, extra);
    ctr_start(&c);
    char cmd[64];
    ck_assert_int_gt(mon_ctl_resize(cmd, sizeof(cmd), 40, 100), 0);
    ctl_send(&c, cmd);
    int fd = attach_connect(&c);
    attach_send(fd, MON_ATTACH_STDIN, "\n");
    char acc[512] = "";
    attach_read(fd, "40 100", acc, sizeof(acc));
    ck_assert_int_eq(attach_read(fd, NULL, acc, sizeof(acc)), 0);
    ck_assert_msg(strstr(acc, "tty=/dev/pts/"), "attach got <<%s>>", acc);
    close(fd);
    struct mon_exit e;
    ctr_wait_exit(&c, &e);
    ck_assert_int_eq(e.exit_code, 0);
    struct log l;
    log_read(c.log, &l);
    bool size_seen = false;
    for (int i = 0; i < l.n; i++) {
        ck_assert_str_eq(l.lines[i].stream, "stdout"); /* a tty has no stderr */
        if (l.lines[i].len >= 6 && memcmp(l.lines[i].text, "40 100", 6) == 0)
            size_seen = true;
    }
    ck_assert_msg(size_seen, "no \"40 100\" line in the log");
    free(l.buf);
    sweep_mine();
}
END_TEST

START_TEST(test_reopen_log)
{
    struct ctr c;
    struct spec s = {.script = "echo one; read x; echo two"};
    ctr_init(&c, "reopen", RUNC, &s);
    const char *extra[] = {"--stdin", NULL};
    ctr_create(&c, extra);
    ctr_start(&c);
    wait_log_has(c.log, " stdout F one\n");
    char rotated[PATH_MAX + 8];
    snprintf(rotated, sizeof(rotated), "%s.1", c.log);
    ck_assert_int_eq(rename(c.log, rotated), 0);
    ctl_send(&c, MON_CTL_REOPEN "\n");
    int64_t t0 = now_ms();
    while (!exists(c.log) && now_ms() - t0 < DEADLINE_MS)
        poll_pause();
    ck_assert_msg(exists(c.log), "reopen made no new log");
    int fd = attach_connect(&c);
    attach_send(fd, MON_ATTACH_STDIN, "go\n");
    struct mon_exit e;
    ctr_wait_exit(&c, &e);
    close(fd);
    struct log l;
    log_read(rotated, &l);
    ck_assert_int_eq(l.n, 1);
    ASSERT_LINE(&l, 0, "stdout", 'F', "one");
    free(l.buf);
    log_read(c.log, &l);
    ck_assert_int_eq(l.n, 1);
    ASSERT_LINE(&l, 0, "stdout", 'F', "two");
    free(l.buf);
    sweep_mine();
}
END_TEST

START_TEST(test_oom_killed)
{
    char probe[PATH_MAX];
    bool v1 = exists(CGROUPS "/memory/memory.oom_control");
    bool v2 = exists(CGROUPS "/cgroup.controllers");
    if (!v1 && !v2) {
        note("test_oom_killed: skipped: no memory cgroup controller here");
        return;
    }
    snprintf(probe, sizeof(probe), CGROUPS "%s/%s", v1 ? "/memory" : "", g_cgparent);
    if (mkdir(probe, 0755) < 0 && errno != EEXIST) {
        note("test_oom_killed: skipped: cannot make cgroup %s: %s", probe, strerror(errno));
        return;
    }
    struct ctr c;
    struct spec s = {.script = "echo start; exec dd if=/dev/zero of=/dev/null bs=100M count=1",
                     .mem_limit = 16 << 20};
    ctr_init(&c, "oom", RUNC, &s);
    ctr_create(&c, NULL);
    ctr_start(&c);
    struct mon_exit e;
    ctr_wait_exit(&c, &e);
    ck_assert_msg(e.oom_killed, "oomKilled false (exit %d, signal %d)", e.exit_code, e.signal);
    ck_assert_int_eq(e.exit_code, 137);
    sweep_mine();
}
END_TEST

START_TEST(test_crun)
{
    if (access(CRUN, X_OK) != 0) {
        note("test_crun: skipped: no %s", CRUN);
        return;
    }
    struct ctr c;
    struct spec s = {.script = "echo hello from crun; echo err >&2; exit 5"};
    ctr_init(&c, "crun", CRUN, &s);
    ctr_create(&c, NULL);
    ctr_start(&c);
    struct mon_exit e;
    ctr_wait_exit(&c, &e);
    ck_assert_int_eq(e.exit_code, 5);
    struct log l;
    log_read(c.log, &l);
    ck_assert_int_eq(l.n, 2);
    int o = strcmp(l.lines[0].stream, "stdout") == 0 ? 0 : 1;
    ASSERT_LINE(&l, o, "stdout", 'F', "hello from crun");
    ASSERT_LINE(&l, 1 - o, "stderr", 'F', "err");
    free(l.buf);
    sweep_mine();

    /* crun's own error reaches the sync line too (its JSON log format). */
    struct spec bad = {.argv0 = "/bin/nonexistent"};
    ctr_init(&c, "crunfail", CRUN, &bad);
    ctr_launch(&c, NULL);
    ck_assert(!ctr_sync(&c));
    ck_assert_msg(strstr(c.sync, "\"error\"") && strstr(c.sync, "/bin/nonexistent"), "sync <<%s>>", c.sync);
    sweep_mine();
}
END_TEST

/* ---- exec sessions (--exec) ---- */

/* Loop index of the exec tests: 0 runc (the "runc" case), 1 crun ("crun"). */
static const char *const g_exec_runtimes[] = {RUNC, CRUN};

/* An exec session: its own folder (state, exits, log) inside its
 * container's, so the container's sweep removes it; its monitor is recorded
 * in the container's info for the sweep. */
struct xec {
    struct ctr *c;
    char dir[200], state[256], exits[256], exitfile[384], log[256];
    pid_t monitor;
    int sync_fd;
    char sync[2048];
    pid_t pid;
};

/* A running container to exec in (sleeps); false when the runtime is not
 * installed (the test is skipped). */
static bool exec_container(struct ctr *c, const char *name, int runtime_idx)
{
    const char *runtime = g_exec_runtimes[runtime_idx];
    if (access(runtime, X_OK) != 0) {
        note("%s: skipped: no %s", name, runtime);
        return false;
    }
    struct spec s = {.script = "exec sleep 1000"};
    ctr_init(c, name, runtime, &s);
    ctr_create(c, NULL);
    ctr_start(c);
    return true;
}

/* Launch an exec monitor for cmd (NULL-terminated) with extra flags; the
 * launcher exits 0 as soon as the monitor is set up, and the monitor then
 * waits for its first attach client. */
static void exec_launch(struct xec *x, struct ctr *c, const char *const *extra, const char *const *cmd)
{
    memset(x, 0, sizeof(*x));
    x->c = c;
    x->sync_fd = -1;
    snprintf(x->dir, sizeof(x->dir), "%s/exec", c->dir);
    snprintf(x->state, sizeof(x->state), "%s/state", x->dir);
    snprintf(x->exits, sizeof(x->exits), "%s/exits", x->dir);
    snprintf(x->exitfile, sizeof(x->exitfile), "%s/%s", x->exits, c->id);
    snprintf(x->log, sizeof(x->log), "%s/exec.log", x->dir);
    ck_assert_int_eq(mkdir(x->dir, 0700), 0);

    const char *argv[48];
    int a = 0;
    argv[a++] = g_monitor;
    argv[a++] = "--exec";
    argv[a++] = "--id";
    argv[a++] = c->id;
    argv[a++] = "--runtime";
    argv[a++] = c->runtime;
    argv[a++] = "--runtime-root";
    argv[a++] = c->root;
    argv[a++] = "--exit-dir";
    argv[a++] = x->exits;
    argv[a++] = "--state-dir";
    argv[a++] = x->state;
    argv[a++] = "--sync-fd";
    argv[a++] = "3";
    for (; extra && *extra && a < 36; extra++)
        argv[a++] = *extra;
    argv[a++] = "--";
    for (; *cmd && a < 47; cmd++)
        argv[a++] = *cmd;
    argv[a] = NULL;
    int status = spawn_launcher(argv, c->crun_ns, x->dir, &x->sync_fd);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exec launcher status %d", status);

    /* Set up, and nothing runs yet: the monitor waits for a client. */
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/" MON_PID_FILE, x->state);
    char *s = slurp(path, NULL);
    ck_assert_msg(s, "no %s after the exec launcher exited", path);
    x->monitor = (pid_t)atoi(s);
    free(s);
    ck_assert_int_gt(x->monitor, 0);
    c->exec_monitor = x->monitor;
    ctr_save_info(c);
    snprintf(path, sizeof(path), "%s/" MON_CONTAINER_PID_FILE, x->state);
    ck_assert_msg(!exists(path), "the runtime ran before an attach client connected");
}

static bool exec_sync(struct xec *x)
{
    x->pid = read_sync(&x->sync_fd, x->sync, sizeof(x->sync));
    return x->pid > 0;
}

/* Nothing left in a folder (the exec state dir, the exit dir). */
static void assert_empty_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        ck_assert_msg(errno == ENOENT, "open %s: %s", path, strerror(errno));
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char name[256];
        snprintf(name, sizeof(name), "%s", e->d_name);
        closedir(d);
        ck_abort_msg("%s left in %s", name, path);
    }
    closedir(d);
}

/* The exec'd process ended: its exit file, and the monitor gone with all
 * of its files (the state dir is left empty in exec mode). */
static void exec_wait_exit(struct xec *x, struct mon_exit *e)
{
    wait_exit_file(x->exitfile, e);
    monitor_done(x->dir, x->state, x->monitor);
    assert_empty_dir(x->state);
    ck_assert(!e->oom_killed);
}

/* A monitor that ended without running anything: gone, its files removed,
 * no exit file. */
static void exec_wait_failed(struct xec *x)
{
    monitor_done(x->dir, x->state, x->monitor);
    assert_empty_dir(x->state);
    assert_empty_dir(x->exits);
}

START_TEST(test_exec_echo)
{
    struct ctr c;
    if (!exec_container(&c, "xecho", _i))
        return;
    struct xec x;
    char logarg[300];
    snprintf(logarg, sizeof(logarg), "%s/exec/exec.log", c.dir);
    const char *extra[] = {"--log-path", logarg, NULL};
    const char *cmd[] = {"echo", "hi", NULL};
    exec_launch(&x, &c, extra, cmd);
    int fd = attach_connect_to(x.state);
    ck_assert_msg(exec_sync(&x), "exec failed: %s", x.sync);
    char acc[256] = "";
    ck_assert_int_eq(attach_read(fd, NULL, acc, sizeof(acc)), 0);
    ck_assert_str_eq(acc, "hi\n");
    char pkt[16];
    ck_assert_int_eq(recv(fd, pkt, sizeof(pkt), 0), 0); /* then closed */
    close(fd);
    struct mon_exit e;
    exec_wait_exit(&x, &e);
    ck_assert_int_eq(e.exit_code, 0);
    ck_assert_int_eq(e.signal, 0);
    struct log l;
    log_read(x.log, &l);
    ck_assert_int_eq(l.n, 1);
    ASSERT_LINE(&l, 0, "stdout", 'F', "hi");
    free(l.buf);
    sweep_mine();
}
END_TEST

/* A resize sent before anything runs is applied to the pty the moment the
 * monitor receives it; the exit code of the command is the session's.
 * "The moment" cannot be before the command starts: crun releases the
 * command to execv before it sends the pty to the console socket, runc
 * sends it and goes on to exec without waiting, so a first `stty size` may
 * still see 0 0 (only a process.json consoleSize closes that window).  So
 * the command polls its size, with the test's deadline, and says what its
 * first look saw. */
START_TEST(test_exec_terminal)
{
    struct ctr c;
    if (!exec_container(&c, "xtty", _i))
        return;
    struct xec x;
    const char *extra[] = {"--terminal", NULL};
    const char *cmd[] = {"sh", "-c",
                         "first=$(stty size 2>&1); "
                         "until [ \"$(stty size 2>/dev/null)\" = \"30 100\" ]; do sleep 0.01; done; "
                         "echo \"first: $first\"; echo tty=$(tty); stty size; exit 3",
                         NULL};
    exec_launch(&x, &c, extra, cmd);
    char resize[64];
    ck_assert_int_gt(mon_ctl_resize(resize, sizeof(resize), 30, 100), 0);
    ctl_send_to(x.state, resize);
    int fd = attach_connect_to(x.state);
    ck_assert_msg(exec_sync(&x), "exec failed: %s", x.sync);
    char acc[512] = "";
    ck_assert_int_eq(attach_read(fd, NULL, acc, sizeof(acc)), 3);
    size_t n = strlen(acc);
    ck_assert_msg(n >= 8 && strcmp(acc + n - 8, "30 100\r\n") == 0, "attach got <<%s>>", acc);
    ck_assert_msg(strstr(acc, "tty=/dev/pts/"), "attach got <<%s>>", acc);
    if (!strstr(acc, "first: 30 100\r\n"))
        note("test_exec_terminal (%s): the command started before the pty had its size (%.40s)", c.runtime,
             strstr(acc, "first: ") ? strstr(acc, "first: ") : acc);
    close(fd);
    struct mon_exit e;
    exec_wait_exit(&x, &e);
    ck_assert_int_eq(e.exit_code, 3);
    sweep_mine();
}
END_TEST

START_TEST(test_exec_stdin_once)
{
    struct ctr c;
    if (!exec_container(&c, "xcat", _i))
        return;
    struct xec x;
    const char *extra[] = {"--stdin", "--stdin-once", NULL};
    const char *cmd[] = {"cat", NULL};
    exec_launch(&x, &c, extra, cmd);
    int fd = attach_connect_to(x.state);
    ck_assert_msg(exec_sync(&x), "exec failed: %s", x.sync);
    attach_send(fd, MON_ATTACH_STDIN, "ping\n");
    char acc[64] = "";
    attach_read(fd, "ping\n", acc, sizeof(acc));
    attach_send(fd, MON_ATTACH_CLOSE_STDIN, NULL);
    ck_assert_int_eq(attach_read(fd, NULL, acc, sizeof(acc)), 0);
    ck_assert_str_eq(acc, "ping\n");
    close(fd);
    struct mon_exit e;
    exec_wait_exit(&x, &e);
    ck_assert_int_eq(e.exit_code, 0);
    sweep_mine();
}
END_TEST

/* "kill" on the control fifo ends the exec'd process, which was the
 * monitor's child (reparented from the runtime). */
START_TEST(test_exec_kill)
{
    struct ctr c;
    if (!exec_container(&c, "xkill", _i))
        return;
    struct xec x;
    const char *cmd[] = {"sleep", "1000", NULL};
    exec_launch(&x, &c, NULL, cmd);
    int fd = attach_connect_to(x.state);
    ck_assert_msg(exec_sync(&x), "exec failed: %s", x.sync);
    ck_assert_int_eq(proc_ppid(x.pid), x.monitor);
    ctl_send_to(x.state, MON_CTL_KILL "\n");
    char acc[64] = "";
    ck_assert_int_eq(attach_read(fd, NULL, acc, sizeof(acc)), 137);
    close(fd);
    struct mon_exit e;
    exec_wait_exit(&x, &e);
    ck_assert_int_eq(e.exit_code, 137);
    ck_assert_int_eq(e.signal, 9);
    ck_assert_msg(wait_gone(x.pid, DEADLINE_MS), "exec'd process %d still there", (int)x.pid);
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d", (int)x.pid);
    ck_assert_msg(!exists(path), "%s still there", path);
    /* The container is untouched. */
    ck_assert(process_alive_monitor(c.monitor));
    sweep_mine();
}
END_TEST

/* The host pid of a child of pid, or 0. */
static pid_t child_of(pid_t pid)
{
    DIR *d = opendir("/proc");
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    pid_t found = 0;
    while (!found && (e = readdir(d))) {
        char *end;
        long p = strtol(e->d_name, &end, 10);
        if (*end == '\0' && p > 0 && proc_ppid((pid_t)p) == pid)
            found = (pid_t)p;
    }
    closedir(d);
    return found;
}

/* "kill" reaches the exec'd process's children too (its process group):
 * a shell's background job here. */
START_TEST(test_exec_kill_group)
{
    struct ctr c;
    if (!exec_container(&c, "xkillg", _i))
        return;
    struct xec x;
    const char *cmd[] = {"sh", "-c", "sleep 1000 & echo started; wait", NULL};
    exec_launch(&x, &c, NULL, cmd);
    int fd = attach_connect_to(x.state);
    ck_assert_msg(exec_sync(&x), "exec failed: %s", x.sync);
    char acc[64] = "";
    attach_read(fd, "started\n", acc, sizeof(acc));
    pid_t child = 0;
    int64_t t0 = now_ms();
    while ((child = child_of(x.pid)) == 0 && now_ms() - t0 < DEADLINE_MS)
        poll_pause();
    ck_assert_msg(child > 0, "no child of the exec'd shell %d", (int)x.pid);
    ctl_send_to(x.state, MON_CTL_KILL "\n");
    ck_assert_int_eq(attach_read(fd, NULL, acc, sizeof(acc)), 137);
    close(fd);
    struct mon_exit e;
    exec_wait_exit(&x, &e);
    ck_assert_int_eq(e.exit_code, 137);
    ck_assert_msg(wait_gone(x.pid, DEADLINE_MS), "exec'd shell %d still there", (int)x.pid);
    /* Orphaned, it would be reparented to the container's init and live on. */
    ck_assert_msg(wait_gone(child, DEADLINE_MS), "its child %d still there", (int)child);
    ck_assert(process_alive_monitor(c.monitor));
    sweep_mine();
}
END_TEST

/* The runtime's own error reaches the sync line; the launcher had already
 * exited 0 (setup was fine); nothing is left but the empty state dir. */
START_TEST(test_exec_missing_binary)
{
    struct ctr c;
    if (!exec_container(&c, "xmiss", _i))
        return;
    struct xec x;
    const char *cmd[] = {"/nonexistent", NULL};
    exec_launch(&x, &c, NULL, cmd);
    int fd = attach_connect_to(x.state);
    ck_assert_msg(!exec_sync(&x), "exec of a missing binary succeeded: %s", x.sync);
    ck_assert_msg(strstr(x.sync, "/nonexistent"), "sync <<%s>> does not name the binary", x.sync);
    note("test_exec_missing_binary (%s): %.*s", c.runtime, (int)strcspn(x.sync, "\n"), x.sync);
    /* The client sees the monitor go, without an exit packet. */
    struct pollfd p = {fd, POLLIN, 0};
    ck_assert_int_eq(poll(&p, 1, DEADLINE_MS), 1);
    char pkt[64];
    ck_assert_int_eq(recv(fd, pkt, sizeof(pkt), 0), 0);
    close(fd);
    exec_wait_failed(&x);
    ck_assert(process_alive_monitor(c.monitor));
    sweep_mine();
}
END_TEST

START_TEST(test_exec_attach_timeout)
{
    struct ctr c;
    if (!exec_container(&c, "xwait", _i))
        return;
    struct xec x;
    const char *extra[] = {"--attach-timeout", "1", NULL};
    const char *cmd[] = {"echo", "never", NULL};
    int64_t t0 = now_ms();
    exec_launch(&x, &c, extra, cmd);
    ck_assert(!exec_sync(&x));
    int64_t waited = now_ms() - t0;
    ck_assert_msg(strstr(x.sync, "no attach client within 1s"), "sync <<%s>>", x.sync);
    ck_assert_msg(waited >= 900, "gave up after %lld ms", (long long)waited);
    exec_wait_failed(&x);
    sweep_mine();
}
END_TEST

/* "kill" before the first client: the command never runs. */
START_TEST(test_exec_kill_before_start)
{
    struct ctr c;
    if (!exec_container(&c, "xkill0", 0))
        return;
    struct xec x;
    const char *cmd[] = {"echo", "never", NULL};
    exec_launch(&x, &c, NULL, cmd);
    ctl_send_to(x.state, MON_CTL_KILL "\n");
    ck_assert(!exec_sync(&x));
    ck_assert_msg(strstr(x.sync, "killed before it started"), "sync <<%s>>", x.sync);
    exec_wait_failed(&x);
    sweep_mine();
}
END_TEST

/* "kill" in container mode: the container's init, SIGKILLed. */
START_TEST(test_ctl_kill)
{
    struct ctr c;
    struct spec s = {.script = "echo up; exec sleep 1000"};
    ctr_init(&c, "ctlkill", RUNC, &s);
    ctr_create(&c, NULL);
    ctr_start(&c);
    wait_log_has(c.log, " stdout F up\n");
    int fd = attach_connect(&c);
    ctl_send(&c, MON_CTL_KILL "\n");
    char acc[64] = "";
    ck_assert_int_eq(attach_read(fd, NULL, acc, sizeof(acc)), 137);
    close(fd);
    struct mon_exit e;
    ctr_wait_exit(&c, &e);
    ck_assert_int_eq(e.exit_code, 137);
    ck_assert_int_eq(e.signal, 9);
    ck_assert(wait_gone(c.cpid, DEADLINE_MS));
    sweep_mine();
}
END_TEST

START_TEST(test_exec_bad_arguments)
{
    char out[2048];
    /* No command. */
    const char *argv[] = {g_monitor, "--exec", "--id", "x", "--runtime", RUNC, "--runtime-root", "/r",
                          "--exit-dir", "/e", "--state-dir", "/s", "--", NULL};
    int st = run(argv, false, out, sizeof(out));
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    ck_assert_msg(strstr(out, "--exec needs a command after --"), "output <<%s>>", out);
    ck_assert_msg(strstr(out, "--attach-timeout"), "no usage in <<%s>>", out);
    /* A command without "--". */
    const char *argv2[] = {g_monitor, "--exec", "--id", "x", "--runtime", RUNC, "--runtime-root", "/r",
                           "--exit-dir", "/e", "--state-dir", "/s", "echo", NULL};
    st = run(argv2, false, out, sizeof(out));
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    ck_assert_msg(strstr(out, "unexpected argument echo (the command follows --)"), "output <<%s>>", out);
    /* Container mode takes no command. */
    const char *argv3[] = {g_monitor, "--id", "x", "--runtime", RUNC, "--runtime-root", "/r", "--bundle", "/b",
                           "--log-path", "/l", "--exit-dir", "/e", "--state-dir", "/s", "--", "echo", NULL};
    st = run(argv3, false, out, sizeof(out));
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    ck_assert_msg(strstr(out, "unexpected argument echo"), "output <<%s>>", out);
    /* Still required in exec mode. */
    const char *argv4[] = {g_monitor, "--exec", "--id", "x", "--runtime", RUNC, "--runtime-root", "/r",
                           "--exit-dir", "/e", "--", "echo", NULL};
    st = run(argv4, false, out, sizeof(out));
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    ck_assert_msg(strstr(out, "--state-dir is required"), "output <<%s>>", out);
    const char *argv5[] = {g_monitor, "--exec", "--attach-timeout", "0", "--", "echo", NULL};
    st = run(argv5, false, out, sizeof(out));
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    ck_assert_msg(strstr(out, "--attach-timeout 0"), "output <<%s>>", out);
}
END_TEST

/* The monitor's resident memory, against Debian's conmon on the same kind of
 * container when conmon is installed (budget: half), else a fixed budget. */
START_TEST(test_rss)
{
    struct ctr c;
    struct spec s = {.script = "echo up; exec sleep 1000"};
    ctr_init(&c, "rss", RUNC, &s);
    ctr_create(&c, NULL);
    ctr_start(&c);
    wait_log_has(c.log, " stdout F up\n");
    long mine = vm_rss_kb(c.monitor);
    ck_assert_int_gt(mine, 0);

    long theirs = -1;
    const char *conmon = "/usr/bin/conmon";
    if (access(conmon, X_OK) == 0) {
        struct ctr k;
        ctr_init(&k, "rsscm", RUNC, &s);
        char pidfile[PATH_MAX + 16], cpidfile[PATH_MAX + 16], rootarg[PATH_MAX + 8], logarg[PATH_MAX + 16];
        char logdir[300];
        snprintf(logdir, sizeof(logdir), "%s/logs", k.dir);
        mkdir(logdir, 0700);
        mkdir(k.state, 0700);
        mkdir(k.exits, 0700);
        snprintf(pidfile, sizeof(pidfile), "%s/conmon.pid", k.state);
        snprintf(cpidfile, sizeof(cpidfile), "%s/ctr.pid", k.state);
        snprintf(rootarg, sizeof(rootarg), "%s", k.root);
        snprintf(logarg, sizeof(logarg), "k8s-file:%s", k.log);
        const char *argv[] = {conmon, "--cid", k.id, "--cuuid", k.id, "--runtime", RUNC,
                              "--runtime-arg", "--root", "--runtime-arg", rootarg, "--bundle", k.bundle,
                              "--log-path", k.log, "--exit-dir", k.exits, "--socket-dir-path", k.state,
                              "--conmon-pidfile", pidfile, "--container-pidfile", cpidfile, "-l", logarg,
                              "--syslog=false", NULL};
        char out[2048];
        int st = run(argv, false, out, sizeof(out));
        char *pidtext = slurp(pidfile, NULL);
        /* conmon's launcher returns before create is done: its pid file tells. */
        int64_t t0 = now_ms();
        while (!exists(cpidfile) && now_ms() - t0 < DEADLINE_MS)
            poll_pause();
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && pidtext && exists(cpidfile)) {
            k.monitor = (pid_t)atoi(pidtext);
            ctr_start(&k);
            wait_log_has(k.log, "up");
            theirs = vm_rss_kb(k.monitor);
        } else {
            note("test_rss: conmon did not run (%s)", out);
        }
        free(pidtext);
        if (theirs > 0) {
            ctr_kill(&k, "KILL");
            wait_gone(k.monitor, DEADLINE_MS);
        }
    }
    note("test_rss: crisp-monitor VmRSS %ld kB, conmon VmRSS %ld kB", mine, theirs);
    /* An ASan build's monitor is no measure of the real one. */
    if (!SANITIZED) {
        if (theirs > 0)
            ck_assert_msg(mine * 2 <= theirs, "crisp-monitor %ld kB > half of conmon's %ld kB", mine, theirs);
        else
            ck_assert_msg(mine <= 1024, "crisp-monitor VmRSS %ld kB > 1024 kB", mine);
    }
    ctr_kill(&c, "KILL");
    struct mon_exit e;
    ctr_wait_exit(&c, &e);
    sweep_mine();
}
END_TEST

/* monitor.h's helpers, on their own. */
START_TEST(test_header_helpers)
{
    struct mon_exit e;
    ck_assert_int_eq(mon_exit_parse("{\"exitCode\": 137, \"exitedAt\": 1700000000123456789, "
                                    "\"oomKilled\": true, \"signal\": 9}\n",
                                    &e),
                     0);
    ck_assert_int_eq(e.exit_code, 137);
    ck_assert(e.exited_at == 1700000000123456789LL);
    ck_assert(e.oom_killed);
    ck_assert_int_eq(e.signal, 9);
    ck_assert_int_eq(mon_exit_parse("{\"exitCode\": 1}", &e), -EINVAL);
    char buf[32];
    ck_assert_int_eq(mon_ctl_resize(buf, sizeof(buf), 24, 80), 13);
    ck_assert_str_eq(buf, "resize 24 80\n");
    volatile size_t small = 5;
    ck_assert_int_eq(mon_ctl_resize(buf, small, 24, 80), -1);
    struct sockaddr_un sa;
    socklen_t len;
    ck_assert_int_eq(mon_sockaddr(&sa, &len, "/run/x", -1, "attach"), 0);
    ck_assert_str_eq(sa.sun_path, "/run/x/attach");
    char longdir[200];
    memset(longdir, 'd', sizeof(longdir) - 1);
    longdir[0] = '/';
    longdir[sizeof(longdir) - 1] = '\0';
    ck_assert_int_eq(mon_sockaddr(&sa, &len, longdir, -1, "attach"), -ENAMETOOLONG);
    ck_assert_int_eq(mon_sockaddr(&sa, &len, longdir, 7, "attach"), 0);
    ck_assert_str_eq(sa.sun_path, "/proc/self/fd/7/attach");
}
END_TEST

static Suite *monitor_suite(void)
{
    Suite *s = suite_create("monitor");
    TCase *t = tcase_create("runc");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, test_header_helpers);
    tcase_add_test(t, test_bad_arguments);
    tcase_add_test(t, test_stdout_stderr);
    tcase_add_test(t, test_long_line_split);
    tcase_add_test(t, test_no_trailing_newline);
    tcase_add_test(t, test_partial_line_flushed_while_running);
    tcase_add_test(t, test_exit_code);
    tcase_add_test(t, test_sigkill);
    tcase_add_test(t, test_detached_from_launcher);
    tcase_add_test(t, test_create_fails);
    tcase_add_test(t, test_attach_stdin_echo);
    tcase_add_test(t, test_stdin_once);
    tcase_add_test(t, test_slow_client_dropped);
    tcase_add_test(t, test_terminal_resize);
    tcase_add_test(t, test_reopen_log);
    tcase_add_test(t, test_oom_killed);
    tcase_add_test(t, test_rss);
    tcase_add_test(t, test_ctl_kill);
    tcase_add_test(t, test_exec_bad_arguments);
    tcase_add_test(t, test_exec_kill_before_start);
    /* Exec sessions: loop index 0 is runc here, 1 is crun below. */
    tcase_add_loop_test(t, test_exec_echo, 0, 1);
    tcase_add_loop_test(t, test_exec_terminal, 0, 1);
    tcase_add_loop_test(t, test_exec_stdin_once, 0, 1);
    tcase_add_loop_test(t, test_exec_kill, 0, 1);
    tcase_add_loop_test(t, test_exec_kill_group, 0, 1);
    tcase_add_loop_test(t, test_exec_missing_binary, 0, 1);
    tcase_add_loop_test(t, test_exec_attach_timeout, 0, 1);
    suite_add_tcase(s, t);
    TCase *cr = tcase_create("crun");
    tcase_set_timeout(cr, 120);
    tcase_add_test(cr, test_crun);
    tcase_add_loop_test(cr, test_exec_echo, 1, 2);
    tcase_add_loop_test(cr, test_exec_terminal, 1, 2);
    tcase_add_loop_test(cr, test_exec_stdin_once, 1, 2);
    tcase_add_loop_test(cr, test_exec_kill, 1, 2);
    tcase_add_loop_test(cr, test_exec_kill_group, 1, 2);
    tcase_add_loop_test(cr, test_exec_missing_binary, 1, 2);
    tcase_add_loop_test(cr, test_exec_attach_timeout, 1, 2);
    suite_add_tcase(s, cr);
    return s;
}

int main(void)
{
    const char *bin = getenv("CRISP_BIN_DIR");
    snprintf(g_monitor, sizeof(g_monitor), "%s/crisp-monitor", bin ? bin : "build");
    if (access(g_monitor, X_OK) != 0) {
        fprintf(stderr, "test_monitor: %s: %s (build it: make %s)\n", g_monitor, strerror(errno), g_monitor);
        printf("0%%: Checks: 1, Failures: 1, Errors: 0\n");
        return 1;
    }
    if (geteuid() != 0 || access(RUNC, X_OK) != 0) {
        fprintf(stderr, "test_monitor: needs root and %s\n", RUNC);
        printf("0%%: Checks: 1, Failures: 1, Errors: 0\n");
        return 1;
    }
    snprintf(g_base, sizeof(g_base), "/tmp/crisp-mon-test.XXXXXX");
    if (!mkdtemp(g_base)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(g_cgparent, sizeof(g_cgparent), "crisp-mon-test-%d", (int)getpid());
    char empty[PATH_MAX + 8];
    snprintf(empty, sizeof(empty), "%s/empty", g_base);
    close(open(empty, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    /* Monitors leave their launchers and would go to pid 1, which may not
     * reap here: as subreaper this runner reaps them (the tests run in
     * forked children, so a monitor is still never its test's child). */
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

    SRunner *sr = srunner_create(monitor_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failures = srunner_ntests_failed(sr);
    srunner_free(sr);

    /* Whatever a killed or timed-out test left behind. */
    DIR *d = opendir(g_base);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_type != DT_DIR || e->d_name[0] == '.')
                continue;
            char dir[PATH_MAX + 256];
            snprintf(dir, sizeof(dir), "%s/%s", g_base, e->d_name);
            sweep_dir(dir);
        }
        closedir(d);
    }
    rm_rf(g_base);
    remove_test_cgroups();
    int64_t t0 = now_ms();
    for (;;) {
        pid_t p = waitpid(-1, NULL, WNOHANG);
        if (p < 0)
            break;
        if (p == 0) {
            if (now_ms() - t0 > 10000)
                break;
            poll_pause();
        }
    }
    return failures ? 1 : 0;
}
