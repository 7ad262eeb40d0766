/* Pod network namespaces: real namespaces pinned by bind mounts in a
 * temporary folder; every pin and mount is gone at the end. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fs.h"
#include "network/network.h"

static char tmp[128];

/* Unmount everything mounted at or under prefix, deepest first. */
static void umount_under(const char *prefix)
{
    for (int round = 0; round < 8; round++) {
        FILE *f = fopen("/proc/self/mountinfo", "re");
        if (!f)
            return;
        char line[4096], found[4096] = "";
        size_t plen = strlen(prefix);
        while (fgets(line, sizeof(line), f)) {
            char mp[4096];
            if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1)
                continue;
            if (strncmp(mp, prefix, plen) == 0 && (mp[plen] == '/' || mp[plen] == '\0') &&
                strlen(mp) >= strlen(found))
                snprintf(found, sizeof(found), "%s", mp);
        }
        fclose(f);
        if (!*found)
            return;
        umount2(found, MNT_DETACH);
    }
}

static bool mounted(const char *path)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return false;
    char line[4096];
    bool hit = false;
    while (!hit && fgets(line, sizeof(line), f)) {
        char mp[4096];
        if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 && strcmp(mp, path) == 0)
            hit = true;
    }
    fclose(f);
    return hit;
}

static char *run(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return strdup("");
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, p);
    buf[n] = '\0';
    pclose(p);
    return buf;
}

static void setup(void)
{
    strcpy(tmp, "/tmp/crisp-netns-XXXXXX");
    if (!mkdtemp(tmp))
        exit(1);
}

static void teardown(void)
{
    umount_under(tmp);
    cr_remove_tree(tmp, NULL);
}

START_TEST(create_exists_remove)
{
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/run/netns", tmp);   /* created on demand */
    char *path = NULL;
    cr_err *err = NULL;
    ck_assert_msg(net_ns_create(dir, "pod1", &path, &err) == 0, "%s", err ? err->msg : "");
    char want[300];
    snprintf(want, sizeof(want), "%s/pod1", dir);
    ck_assert_str_eq(path, want);
    ck_assert(net_ns_exists(path));
    ck_assert(mounted(path));

    /* A new namespace, not ours. */
    struct stat a, b;
    ck_assert_int_eq(stat(path, &a), 0);
    ck_assert_int_eq(stat("/proc/self/ns/net", &b), 0);
    ck_assert(a.st_ino != b.st_ino);

    /* Only a loopback, and it is down. */
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "nsenter --net=%s ip -o link show 2>&1", path);
    char *out = run(cmd);
    ck_assert_msg(strstr(out, "1: lo:") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "2:") == NULL, "more than lo: %s", out);
    ck_assert_msg(strstr(out, "state DOWN") != NULL, "%s", out);
    free(out);

    ck_assert_int_eq(net_ns_remove(path, &err), 0);
    ck_assert(!net_ns_exists(path));
    ck_assert(!mounted(path));
    ck_assert_int_eq(access(path, F_OK), -1);
    /* Idempotent. */
    ck_assert_int_eq(net_ns_remove(path, &err), 0);
    ck_assert_int_eq(net_ns_remove(NULL, &err), 0);
    ck_assert_ptr_null(err);
    free(path);
}
END_TEST

START_TEST(create_twice_and_bad_names)
{
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/netns", tmp);
    char *p1 = NULL, *p2 = NULL;
    cr_err *err = NULL;
    ck_assert_int_eq(net_ns_create(dir, "dup", &p1, &err), 0);
    ck_assert_int_eq(net_ns_create(dir, "dup", &p2, &err), -1);
    ck_assert_int_eq(err->code, CR_ALREADY_EXISTS);
    ck_assert_ptr_null(p2);
    cr_err_free(err);
    err = NULL;
    /* The failed second create left the first pin alone. */
    ck_assert(net_ns_exists(p1));

    const char *bad[] = { "", ".", "..", "a/b" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(net_ns_create(dir, bad[i], &p2, &err), -1);
        ck_assert_int_eq(err->code, CR_INVALID_ARGUMENT);
        cr_err_free(err);
        err = NULL;
    }
    ck_assert_int_eq(net_ns_remove(p1, &err), 0);
    free(p1);
}
END_TEST

START_TEST(exists_only_for_netns)
{
    char file[256], dir[256];
    snprintf(file, sizeof(file), "%s/plain", tmp);
    snprintf(dir, sizeof(dir), "%s/adir", tmp);
    ck_assert_int_eq(cr_write_file_atomic(file, "x", 1, 0644, NULL), 0);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    ck_assert(!net_ns_exists(file));
    ck_assert(!net_ns_exists(dir));
    ck_assert(!net_ns_exists("/nonexistent/netns"));
    ck_assert(!net_ns_exists(NULL));
    ck_assert(!net_ns_exists("/proc/self/ns/uts"));   /* nsfs, but not a network namespace */
    ck_assert(net_ns_exists("/proc/self/ns/net"));
}
END_TEST

typedef struct job {
    const char *dir;
    char name[32];
    char *path;
    int rc;
} job;

static void *create_one(void *arg)
{
    job *j = arg;
    cr_err *err = NULL;
    j->rc = net_ns_create(j->dir, j->name, &j->path, &err);
    cr_err_free(err);
    return NULL;
}

START_TEST(concurrent_creates_leave_caller_alone)
{
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/many", tmp);
    struct stat before, after;
    ck_assert_int_eq(stat("/proc/thread-self/ns/net", &before), 0);
    enum { N = 8 };
    job jobs[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        jobs[i] = (job){ .dir = dir };
        snprintf(jobs[i].name, sizeof(jobs[i].name), "ns%d", i);
        ck_assert_int_eq(pthread_create(&th[i], NULL, create_one, &jobs[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(stat("/proc/thread-self/ns/net", &after), 0);
    ck_assert(before.st_ino == after.st_ino);
    ino_t seen[N];
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(jobs[i].rc, 0);
        ck_assert(net_ns_exists(jobs[i].path));
        struct stat st;
        ck_assert_int_eq(stat(jobs[i].path, &st), 0);
        seen[i] = st.st_ino;
        for (int k = 0; k < i; k++)
            ck_assert(seen[k] != seen[i]);
    }
    /* The pin folder was made a mount point once, not once per thread. */
    FILE *f = fopen("/proc/self/mountinfo", "re");
    char line[4096];
    int dir_mounts = 0;
    while (fgets(line, sizeof(line), f)) {
        char mp[4096];
        if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 && strcmp(mp, dir) == 0)
            dir_mounts++;
    }
    fclose(f);
    ck_assert_int_eq(dir_mounts, 1);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(net_ns_remove(jobs[i].path, NULL), 0);
        ck_assert(!mounted(jobs[i].path));
        free(jobs[i].path);
    }
}
END_TEST

/* A listener on 127.0.0.1 inside the namespace at path, made by a thread
 * that joined it; returns its port. */
typedef struct listener {
    const char *path;
    int fd, port;
} listener;

static void *listen_main(void *arg)
{
    listener *l = arg;
    int ns = open(l->path, O_RDONLY | O_CLOEXEC);
    if (ns < 0 || setns(ns, CLONE_NEWNET) < 0)
        return NULL;
    close(ns);
    l->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(a);
    if (bind(l->fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l->fd, 4) < 0 ||
        getsockname(l->fd, (struct sockaddr *)&a, &len) < 0)
        return NULL;
    l->port = ntohs(a.sin_port);
    return NULL;
}

START_TEST(dial_inside_namespace)
{
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/dial", tmp);
    char *path = NULL;
    cr_err *err = NULL;
    ck_assert_int_eq(net_ns_create(dir, "pod", &path, &err), 0);
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "nsenter --net=%s ip link set lo up", path);
    ck_assert_int_eq(system(cmd), 0);

    listener l = { .path = path, .fd = -1 };
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, listen_main, &l), 0);
    pthread_join(t, NULL);
    ck_assert_int_gt(l.port, 0);

    struct stat before, after;
    ck_assert_int_eq(stat("/proc/thread-self/ns/net", &before), 0);
    int fd = net_ns_dial(path, l.port, 0, &err);
    ck_assert_msg(fd >= 0, "%s", err ? err->msg : "");
    ck_assert_int_eq(stat("/proc/thread-self/ns/net", &after), 0);
    ck_assert(before.st_ino == after.st_ino); /* the caller never moved */
    int c = accept(l.fd, NULL, NULL);
    ck_assert_int_ge(c, 0);
    ck_assert_int_eq(write(fd, "ping", 4), 4);
    char buf[8] = "";
    ck_assert_int_eq(read(c, buf, sizeof(buf)), 4);
    ck_assert_str_eq(buf, "ping");
    close(c);
    close(fd);

    /* The same port is not open in our own namespace (it was bound inside),
     * and a closed port in the pod is UNAVAILABLE naming it. */
    close(l.fd);
    fd = net_ns_dial(path, l.port, 0, &err);
    ck_assert_int_eq(fd, -1);
    ck_assert_int_eq(err->code, CR_UNAVAILABLE);
    char want[32];
    snprintf(want, sizeof(want), "localhost:%d", l.port);
    ck_assert_msg(strstr(err->msg, want) && strstr(err->msg, path) && strstr(err->msg, "refused"), "%s", err->msg);
    cr_err_free(err);
    err = NULL;

    ck_assert_int_eq(net_ns_dial(path, 0, 0, &err), -1);
    ck_assert_int_eq(err->code, CR_INVALID_ARGUMENT);
    cr_err_free(err);
    err = NULL;
    ck_assert_int_eq(net_ns_remove(path, NULL), 0);
    ck_assert_int_eq(net_ns_dial(path, 80, 0, &err), -1);
    ck_assert_int_eq(err->code, CR_NOT_FOUND);
    cr_err_free(err);
    free(path);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("netns");
    TCase *tc = tcase_create("netns");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_test(tc, create_exists_remove);
    tcase_add_test(tc, create_twice_and_bad_names);
    tcase_add_test(tc, exists_only_for_netns);
    tcase_add_test(tc, concurrent_creates_leave_caller_alone);
    tcase_add_test(tc, dial_inside_namespace);
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
