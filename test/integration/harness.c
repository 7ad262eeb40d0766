#include "harness.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/fs.h"
#include "test/fixtures/registry.h"

long th_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void nap_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

const char *th_bin(const char *name)
{
    static __thread char path[512];
    const char *dir = getenv("CRISP_BIN_DIR");
    snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "build", name);
    return path;
}

/* The daemon whose folder is dir: every path follows from it. */
static void daemon_at(th_daemon *d, const char *dir)
{
    memset(d, 0, sizeof(*d));
    d->pid = -1;
    snprintf(d->dir, sizeof(d->dir), "%.100s", dir);
    snprintf(d->sock, sizeof(d->sock), "%.100s/run/crisp.sock", dir);
    snprintf(d->endpoint, sizeof(d->endpoint), "unix://%s", d->sock);
    snprintf(d->config, sizeof(d->config), "%.100s/crisp.conf", dir);
    snprintf(d->config_dir, sizeof(d->config_dir), "%.100s/crisp.conf.d", dir);
    snprintf(d->log, sizeof(d->log), "%.100s/crispd.log", dir);
}

void th_prepare(th_daemon *d, const char *extra_toml)
{
    char dir[] = "/tmp/crisp-it-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    daemon_at(d, dir);
    char cni[192];
    snprintf(cni, sizeof(cni), "%s/cni", d->dir);
    ck_assert_int_eq(mkdir(d->config_dir, 0755), 0);
    ck_assert_int_eq(mkdir(cni, 0755), 0);
    FILE *f = fopen(d->config, "w");
    ck_assert_ptr_nonnull(f);
    /* extra_toml is appended as is, so it brings its own [section] header. */
    fprintf(f,
            "[crisp]\nlisten = \"%s\"\nroot = \"%s/root\"\nrunroot = \"%s/run\"\n"
            "log_level = \"debug\"\nshutdown_timeout = 5\n\n"
            "[crisp.network]\ncni_config_dir = \"%s\"\n\n%s\n",
            d->sock, d->dir, d->dir, cni, extra_toml ? extra_toml : "");
    fclose(f);
}

pid_t th_spawn_argv(th_daemon *d, const char *const *argv)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* A failed assertion ends the forked test at once (check calls _exit), so
 * its teardown never runs.  Every daemon a test spawns is therefore listed
 * in a file named after the test runner's pid; th_collect_leftovers, the
 * runner's unchecked teardown, cleans up after any test whose folder is
 * still there. */
static void live_file(char *out, size_t len, pid_t runner)
{
    snprintf(out, len, "/tmp/crisp-it-live.%d", (int)runner);
}

static void note_live(const th_daemon *d, pid_t pid)
{
    char path[64];
    live_file(path, sizeof(path), getppid());
    FILE *f = fopen(path, "a");
    if (f) {
        fprintf(f, "%d %s\n", (int)pid, d->dir);
        fclose(f);
    }
}

/* Whether pid is a crispd (not a recycled pid). */
static bool is_crispd(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    char *cmd = cr_read_file(path, NULL, NULL);
    bool yes = cmd && strstr(cmd, "crispd");
    free(cmd);
    return yes;
}

static pid_t pid_in(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    char *text = cr_read_file(path, NULL, NULL);
    long pid = text ? strtol(text, NULL, 10) : 0;
    free(text);
    return pid > 1 ? (pid_t)pid : 0;
}

/* When crispd cannot be restarted on a leftover folder: SIGKILL what its
 * monitors hold (the container's process, then the monitor), from the pid
 * files in <runroot>/{containers,sandboxes,exec}/<id>/. */
static void kill_monitored(const char *dir)
{
    static const char *const kinds[] = { "containers", "sandboxes", "exec" };
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        char sub[512];
        snprintf(sub, sizeof(sub), "%s/run/%s", dir, kinds[k]);
        DIR *dp = opendir(sub);
        for (struct dirent *e; dp && (e = readdir(dp));) {
            if (e->d_name[0] == '.')
                continue;
            char one[1024];
            snprintf(one, sizeof(one), "%s/%s", sub, e->d_name);
            pid_t ctr = pid_in(one, "container.pid"), mon = pid_in(one, "monitor.pid");
            if (ctr > 0) {
                kill(ctr, SIGKILL);
                fprintf(stderr, "cleanup after a failed test: killed pid %d of %s\n", (int)ctr, one);
            }
            if (mon > 0)
                kill(mon, SIGKILL);
        }
        if (dp)
            closedir(dp);
    }
}

/* Restart crispd on a failed test's folder (it finds its pods again),
 * remove every pod (containers, mounts, netns and monitors go with them),
 * stop it, unmount and remove the folder. */
static void collect_one(pid_t old_pid, const char *dir)
{
    if (old_pid > 0 && is_crispd(old_pid)) {
        kill(old_pid, SIGKILL);
        for (long until = th_now_ms() + 10000; is_crispd(old_pid) && th_now_ms() < until;)
            nap_ms(10);
    }
    th_daemon d;
    daemon_at(&d, dir);
    const char *argv[] = { th_bin("crispd"), "--config", d.config, "--config-dir", d.config_dir, NULL };
    d.pid = th_spawn_argv(&d, argv);
    if (d.pid > 0 && th_wait_ready(&d, 20000)) {
        cr_err *err = NULL;
        cc_conn *c = cc_connect(d.endpoint, &err);
        Runtime__V1__ListPodSandboxResponse *l = c ? cc_list_pod_sandbox(c, NULL, &err) : NULL;
        for (size_t i = 0; l && i < l->n_items; i++) {
            cr_err *e = NULL;
            if (cc_remove_pod_sandbox(c, l->items[i]->id, &e) < 0) {
                fprintf(stderr, "cleanup after a failed test: rmp %s: %s\n", l->items[i]->id, e ? e->msg : "?");
                cr_err_free(e);
            }
        }
        if (l)
            cc_free(l);
        if (c)
            cc_close(c);
        cr_err_free(err);
    } else {
        char *log = cr_read_file(d.log, NULL, NULL);
        size_t n = log ? strlen(log) : 0;
        fprintf(stderr, "cleanup after a failed test: crispd did not restart on %s; its log ends:\n%s\n", dir,
                log ? log + (n > 2000 ? n - 2000 : 0) : "(none)");
        free(log);
        kill_monitored(dir);
    }
    if (th_signal_wait(&d, SIGTERM, 20000) == -1 && d.pid > 0) {
        kill(d.pid, SIGKILL);
        waitpid(d.pid, NULL, 0);
    }
    th_unmount_under(dir);
    if (getenv("CRISP_TEST_KEEP") == NULL)
        cr_remove_tree(dir, NULL);
}

void th_collect_leftovers(void)
{
    char path[64];
    live_file(path, sizeof(path), getpid());
    char *text = cr_read_file(path, NULL, NULL);
    unlink(path);
    char *save = NULL; /* collect_one uses strtok itself */
    for (char *line = text ? strtok_r(text, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
        int pid = 0;
        char dir[256];
        struct stat st;
        if (sscanf(line, "%d %255s", &pid, dir) == 2 && stat(dir, &st) == 0) {
            fprintf(stderr, "cleaning up after a failed test: %s\n", dir);
            collect_one(pid, dir);
        }
    }
    free(text);
    unlink(path);
}

pid_t th_spawn(th_daemon *d, const char *const *extra_args)
{
    const char *argv[32];
    int n = 0;
    argv[n++] = th_bin("crispd");
    argv[n++] = "--config";
    argv[n++] = d->config;
    argv[n++] = "--config-dir";
    argv[n++] = d->config_dir;
    for (int i = 0; extra_args && extra_args[i] && n < 31; i++)
        argv[n++] = extra_args[i];
    argv[n] = NULL;
    pid_t pid = th_spawn_argv(d, argv);
    note_live(d, pid);
    return pid;
}

bool th_wait_ready(th_daemon *d, int timeout_ms)
{
    long until = th_now_ms() + timeout_ms;
    bool ok = false;
    while (!ok && th_now_ms() < until) {
        /* A fresh channel per try: a channel that failed once waits out
         * gRPC's reconnect backoff (a second or more) before trying again. */
        cc_conn *c = th_connect(d);
        cc_set_timeout(c, 1000);
        cr_err *err = NULL;
        Runtime__V1__VersionResponse *v = cc_version(c, &err);
        cc_close(c);
        if (v) {
            cc_free(v);
            ok = true;
        } else {
            cr_err_free(err);
            if (d->pid > 0 && waitpid(d->pid, NULL, WNOHANG) == d->pid) {
                d->pid = -1; /* it died: no point waiting */
                break;
            }
            nap_ms(20);
        }
    }
    return ok;
}

void th_start(th_daemon *d, const char *extra_toml)
{
    th_prepare(d, extra_toml);
    d->pid = th_spawn(d, NULL);
    if (!th_wait_ready(d, 20000)) {
        char *log = cr_read_file(d->log, NULL, NULL);
        fprintf(stderr, "crispd did not come up; its log:\n%s\n", log ? log : "(none)");
        free(log);
        ck_abort_msg("crispd did not answer Version within 20 s");
    }
}

int th_signal_wait(th_daemon *d, int sig, int timeout_ms)
{
    if (d->pid <= 0)
        return -1;
    kill(d->pid, sig);
    long until = th_now_ms() + timeout_ms;
    while (th_now_ms() < until) {
        int st;
        pid_t r = waitpid(d->pid, &st, WNOHANG);
        if (r == d->pid) {
            d->pid = -1;
            return st;
        }
        nap_ms(10);
    }
    return -1;
}

void th_unmount_under(const char *dir)
{
    /* Deepest first: mountinfo lists parents before children. */
    for (int round = 0; round < 16; round++) {
        char *info = cr_read_file("/proc/self/mountinfo", NULL, NULL);
        if (!info)
            return;
        char *last = NULL;
        size_t dlen = strlen(dir);
        for (char *line = strtok(info, "\n"); line; line = strtok(NULL, "\n")) {
            char mnt[1024];
            if (sscanf(line, "%*s %*s %*s %*s %1023s", mnt) == 1 && strncmp(mnt, dir, dlen) == 0 &&
                (mnt[dlen] == '/' || mnt[dlen] == '\0')) {
                free(last);
                last = strdup(mnt);
            }
        }
        free(info);
        if (!last)
            return;
        umount2(last, MNT_DETACH);
        free(last);
    }
}

static const char *const sanitizer_marks[] = {
    "ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:", "ThreadSanitizer", NULL,
};

void th_assert_no_sanitizer_report(const char *what, const char *text)
{
    for (int i = 0; text && sanitizer_marks[i]; i++)
        ck_assert_msg(!strstr(text, sanitizer_marks[i]), "%s has a sanitizer report:\n%s", what, text);
}

/* Stop crispd the way an operator does (SIGTERM) so a sanitizer build gets
 * to report leaks; a daemon that does not exit 0 fails the test. */
void th_cleanup(th_daemon *d)
{
    int ws = 0;
    bool stopped_ok = true;
    if (d->pid > 0) {
        ws = th_signal_wait(d, SIGTERM, 20000);
        if (ws == -1) {
            kill(d->pid, SIGKILL);
            waitpid(d->pid, NULL, 0);
            d->pid = -1;
        }
        stopped_ok = ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0;
    }
    char *log = d->dir[0] ? cr_read_file(d->log, NULL, NULL) : NULL;
    if (d->dir[0])
        th_unmount_under(d->dir);
    if (d->dir[0] && getenv("CRISP_TEST_KEEP") == NULL)
        cr_remove_tree(d->dir, NULL);
    if (!stopped_ok)
        fprintf(stderr, "crispd log:\n%s\n", log ? log : "");
    ck_assert_msg(stopped_ok, "crispd did not exit 0 on SIGTERM (wait status %d)", ws);
    th_assert_no_sanitizer_report("crispd's log", log);
    free(log);
}

cc_conn *th_connect(th_daemon *d)
{
    cr_err *err = NULL;
    cc_conn *c = cc_connect(d->endpoint, &err);
    ck_assert_msg(c != NULL, "connect %s: %s", d->endpoint, err ? err->msg : "?");
    return c;
}

bool th_log_contains(th_daemon *d, const char *text, int timeout_ms)
{
    long until = th_now_ms() + timeout_ms;
    do {
        char *log = cr_read_file(d->log, NULL, NULL);
        bool found = log && strstr(log, text);
        free(log);
        if (found)
            return true;
        nap_ms(20);
    } while (th_now_ms() < until);
    return false;
}

int th_run(const char *const *argv, char **output)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(p[1], 1);
        dup2(p[1], 2);
        close(p[0]);
        close(p[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    ssize_t n;
    while ((n = read(p[0], buf + len, cap - len - 1)) > 0 || (n < 0 && errno == EINTR)) {
        if (n < 0)
            continue;
        len += (size_t)n;
        if (cap - len < 1024)
            buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    close(p[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    th_assert_no_sanitizer_report(argv[0], buf);
    if (output)
        *output = buf;
    else
        free(buf);
    return st;
}

/* ---- suite setup (outside any test: no check asserts here) ---- */

void th_setup_die(const char *what, const char *out)
{
    fprintf(stderr, "suite setup: %s\n%s\n", what, out ? out : "");
    exit(1);
}

/* Run argv outside any test (no check asserts): output captured, exit status returned. */
int th_setup_run(const char *const *argv, char **out)
{
    size_t cap = 0;
    FILE *mem = open_memstream(out, &cap);
    char cmd[4096] = "";
    for (int i = 0; argv[i]; i++) {
        strcat(cmd, "'");
        strcat(cmd, argv[i]);
        strcat(cmd, "' ");
    }
    strcat(cmd, "2>&1");
    FILE *p = popen(cmd, "r");
    if (!p) {
        fclose(mem);
        return -1;
    }
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
        fwrite(buf, 1, n, mem);
    int st = pclose(p);
    fclose(mem);
    return st;
}

void th_push_image(const char *dir, const char *kind, const char *name, tf_registry *r, const char *repo_tag,
                   bool all, const char *const *opts, char *digest_out)
{
    char layout[256];
    snprintf(layout, sizeof(layout), "%s/layouts/%s", dir, name);
    const char *argv[24];
    int n = 0;
    argv[n++] = th_bin("mkimage");
    argv[n++] = kind;
    argv[n++] = layout;
    for (int i = 0; opts && opts[i] && n < 20; i++)
        argv[n++] = opts[i];
    argv[n] = NULL;
    char *out = NULL;
    int ws = th_setup_run(argv, &out);
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
        th_setup_die("mkimage failed", out);
    free(out);
    char creds[300];
    snprintf(creds, sizeof(creds), "%s:%s", r->user, r->pass);
    const char *push[8];
    int k = 0;
    push[k++] = "/bin/bash";
    push[k++] = "test/images/push.sh";
    push[k++] = layout;
    push[k++] = r->addr;
    push[k++] = repo_tag;
    if (all)
        push[k++] = "--all";
    if (r->user[0]) {
        push[k++] = "--creds";
        push[k++] = creds;
    }
    push[k] = NULL;
    ws = th_setup_run(push, &out);
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
        th_setup_die("push failed", out);
    /* The last line is the pushed digest. */
    char *last = out + strlen(out);
    while (last > out && (last[-1] == '\n' || last[-1] == ' '))
        *--last = '\0';
    char *nl = strrchr(out, '\n');
    if (digest_out)
        snprintf(digest_out, 80, "%s", nl ? nl + 1 : out);
    free(out);
}


#define HYBRID_CONTROLLERS_FILE "/sys/fs/cgroup/unified/cgroup.controllers"

void th_write_crun_wrapper(const char *dir)
{
    char path[256], empty[256], text[1024];
    snprintf(empty, sizeof(empty), "%s/empty", dir);
    snprintf(path, sizeof(path), "%s/crun-wrap", dir);
    if (cr_write_file_atomic(empty, "", 0, 0644, NULL) < 0)
        th_setup_die("write", empty);
    if (access(HYBRID_CONTROLLERS_FILE, F_OK) == 0)
        snprintf(text, sizeof(text),
                 "#!/bin/sh\nexec unshare -m --propagation private /bin/sh -c "
                 "'mount --bind \"$0\" " HYBRID_CONTROLLERS_FILE " && exec /usr/bin/crun \"$@\"' %s \"$@\"\n", empty);
    else
        snprintf(text, sizeof(text), "#!/bin/sh\nexec /usr/bin/crun \"$@\"\n");
    if (cr_write_file_atomic(path, text, strlen(text), 0755, NULL) < 0)
        th_setup_die("write", path);
}
