/* Folder tree disk usage: bytes and inodes against du, hard links counted
 * once, sparse files, symlinks not followed, and mount points (a tmpfs and a
 * bind mount of the same filesystem) not crossed.  Mount tests run in a
 * private mount namespace of the test's own (forked) process and unmount
 * what they mounted, so nothing can leak to the host even on a failure; the
 * scratch folder goes at the end (with any mount left under it). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "oci/fsusage.h"

static char top_tmp[256];   /* the run's scratch folder, removed at the end */
static char tmp[320];       /* this test's folder inside it */

/* Checked fixture (in the test's process): a folder of its own. */
static void fresh(void)
{
    snprintf(tmp, sizeof(tmp), "%s/t-XXXXXX", top_tmp);
    if (!mkdtemp(tmp))
        exit(1);
}

static void setup(void)
{
    snprintf(top_tmp, sizeof(top_tmp), "/tmp/crispstats-fs-XXXXXX");
    if (!mkdtemp(top_tmp))
        exit(1);
}

/* Unmount whatever is still mounted under tmp (a failed test), deepest first. */
static void umount_under(const char *prefix)
{
    for (int round = 0; round < 16; round++) {
        FILE *f = fopen("/proc/self/mountinfo", "re");
        if (!f)
            return;
        char line[4096], found[4096] = "";
        size_t plen = strlen(prefix);
        while (fgets(line, sizeof(line), f)) {
            char mp[4096];
            if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 && !strncmp(mp, prefix, plen) &&
                (mp[plen] == '/' || !mp[plen]) && strlen(mp) >= strlen(found))
                snprintf(found, sizeof(found), "%s", mp);
        }
        fclose(f);
        if (!*found || umount2(found, MNT_DETACH) < 0)
            return;
    }
}

static void teardown(void)
{
    umount_under(top_tmp);
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top_tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "test_fsusage: cannot remove %s\n", top_tmp);
}

static const char *path(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *path(const char *fmt, ...)
{
    static char bufs[4][PATH_MAX];
    static int n;
    char *b = bufs[n++ % 4];
    int off = snprintf(b, PATH_MAX, "%s/", tmp);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b + off, PATH_MAX - (size_t)off, fmt, ap);
    va_end(ap);
    return b;
}

static void write_bytes(const char *p, size_t size)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ck_assert_msg(fd >= 0, "create %s: %s", p, strerror(errno));
    char buf[8192];
    memset(buf, 'x', sizeof(buf));
    while (size) {
        size_t n = size < sizeof(buf) ? size : sizeof(buf);
        ck_assert_int_eq(write(fd, buf, n), (ssize_t)n);
        size -= n;
    }
    ck_assert_int_eq(fsync(fd), 0);   /* allocate now: st_blocks final */
    close(fd);
}

static void mkdirs(const char *p)
{
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", p);
    ck_assert_int_eq(system(cmd), 0);
}

static oci_fs_usage usage(const char *p)
{
    oci_fs_usage u;
    _cleanup_err_ cr_err *err = NULL;
    int r = oci_fs_usage_get(p, &u, &err);
    ck_assert_msg(r == 0, "usage %s: %s", p, err ? err->msg : "?");
    return u;
}

/* du's figure: -x one filesystem, hard links once; bytes = blocks * 512. */
static unsigned long long du(const char *opt, const char *p)
{
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof(cmd), "du -s -x %s '%s'", opt, p);
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    unsigned long long v = 0;
    ck_assert_int_eq(fscanf(f, "%llu", &v), 1);
    pclose(f);
    return v;
}

static uint64_t blocks_bytes(const char *p)
{
    struct stat st;
    ck_assert_int_eq(lstat(p, &st), 0);
    return (uint64_t)st.st_blocks * 512;
}

/* A small tree: folders, files of several sizes, an empty file, a symlink
 * pointing out of the tree, a fifo. */
static const char *make_tree(void)
{
    static char top[PATH_MAX];
    snprintf(top, sizeof(top), "%s", path("tree"));
    mkdirs(path("tree/a/b/c"));
    mkdirs(path("tree/d"));
    write_bytes(path("tree/one"), 1);
    write_bytes(path("tree/a/page"), 4096);
    write_bytes(path("tree/a/b/big"), 3 * 1024 * 1024 + 17);
    write_bytes(path("tree/a/b/c/empty"), 0);
    ck_assert_int_eq(symlink("/usr", path("tree/d/usr-link")), 0);
    ck_assert_int_eq(mkfifo(path("tree/d/fifo"), 0600), 0);
    return top;
}

START_TEST(matches_du)
{
    const char *top = make_tree();
    oci_fs_usage u = usage(top);
    ck_assert_uint_eq(u.bytes, du("-B1", top));
    ck_assert_uint_eq(u.inodes, du("--inodes", top));
    /* tree, a, b, c, d, one, page, big, empty, usr-link, fifo */
    ck_assert_uint_eq(u.inodes, 11);
    ck_assert_uint_ge(u.bytes, 3 * 1024 * 1024 + 4096 + 1);
    /* A folder that is not a tree's top: the same rules. */
    ck_assert_uint_eq(usage(path("tree/a")).inodes, 6);
}
END_TEST

START_TEST(hard_links_sparse_and_symlinks)
{
    const char *top = make_tree();
    oci_fs_usage before = usage(top);
    /* Three more names for the 3 MiB file, one in another folder. */
    ck_assert_int_eq(link(path("tree/a/b/big"), path("tree/big2")), 0);
    ck_assert_int_eq(link(path("tree/a/b/big"), path("tree/d/big3")), 0);
    ck_assert_int_eq(link(path("tree/a/b/big"), path("tree/a/b/c/big4")), 0);
    oci_fs_usage linked = usage(top);
    ck_assert_uint_eq(linked.inodes, before.inodes);
    ck_assert_uint_eq(linked.bytes, before.bytes);
    ck_assert_uint_eq(linked.bytes, du("-B1", top));
    /* A hard-linked file whose other name is outside the tree still counts once. */
    ck_assert_int_eq(link(path("tree/one"), path("outside-one")), 0);
    ck_assert_uint_eq(usage(top).inodes, before.inodes);

    /* A 1 GiB sparse file uses (almost) nothing. */
    int fd = open(path("tree/sparse"), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, 1LL << 30), 0);
    close(fd);
    oci_fs_usage sparse = usage(top);
    ck_assert_uint_eq(sparse.inodes, before.inodes + 1);
    ck_assert_uint_lt(sparse.bytes, before.bytes + 64 * 1024);

    /* Symlinks are not followed: a link to /usr adds one small inode. */
    ck_assert_int_eq(symlink("/usr/lib", path("tree/lib-link")), 0);
    oci_fs_usage sym = usage(top);
    ck_assert_uint_eq(sym.inodes, sparse.inodes + 1);
    ck_assert_uint_eq(sym.bytes, sparse.bytes + blocks_bytes(path("tree/lib-link")));
}
END_TEST

/* Enter a private mount namespace: what this test process mounts can never
 * leak, even if it dies before unmounting. */
static void private_mounts(void)
{
    ck_assert_int_eq(unshare(CLONE_NEWNS), 0);
    ck_assert_int_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
}

START_TEST(mount_points_not_crossed)
{
    private_mounts();
    const char *top = make_tree();
    mkdirs(path("tree/mnt"));
    mkdirs(path("tree/bind"));
    oci_fs_usage before = usage(top);
    uint64_t mnt_dir = blocks_bytes(path("tree/mnt")), bind_dir = blocks_bytes(path("tree/bind"));

    /* A tmpfs holding 4 MiB: neither its files nor its root count, and the
     * folder it covers is hidden by it. */
    ck_assert_int_eq(mount("tmpfs", path("tree/mnt"), "tmpfs", 0, "size=16m"), 0);
    write_bytes(path("tree/mnt/inside"), 4 * 1024 * 1024);
    mkdirs(path("tree/mnt/x/y"));
    oci_fs_usage m = usage(top);
    ck_assert_uint_eq(m.inodes, before.inodes - 1);
    ck_assert_uint_eq(m.bytes, before.bytes - mnt_dir);
    ck_assert_uint_eq(m.bytes, du("-B1", top));

    /* A bind mount of a folder of the same filesystem (same st_dev): still a
     * mount point, not entered (the mount id tells it apart). */
    ck_assert_int_eq(mount(path("tree/a"), path("tree/bind"), NULL, MS_BIND, NULL), 0);
    oci_fs_usage b = usage(top);
    ck_assert_uint_eq(b.inodes, before.inodes - 2);
    ck_assert_uint_eq(b.bytes, before.bytes - mnt_dir - bind_dir);

    /* The top itself may be a mount point: its own tree counts. */
    oci_fs_usage in = usage(path("tree/mnt"));
    ck_assert_uint_eq(in.inodes, 4);   /* root, inside, x, y */
    ck_assert_uint_ge(in.bytes, 4 * 1024 * 1024);

    ck_assert_int_eq(umount2(path("tree/bind"), 0), 0);
    ck_assert_int_eq(umount2(path("tree/mnt"), 0), 0);
    oci_fs_usage after = usage(top);
    ck_assert_uint_eq(after.inodes, before.inodes);
    ck_assert_uint_eq(after.bytes, before.bytes);
}
END_TEST

START_TEST(errors)
{
    _cleanup_err_ cr_err *err = NULL;
    oci_fs_usage u = {.bytes = 7, .inodes = 7};
    ck_assert_int_lt(oci_fs_usage_get(path("missing"), &u, &err), 0);
    ck_assert_int_eq(err->code, CR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(err->msg, path("missing")));
    ck_assert_uint_eq(u.bytes, 0);
    cr_err_free(err);
    err = NULL;
    write_bytes(path("file"), 10);
    ck_assert_int_lt(oci_fs_usage_get(path("file"), &u, &err), 0);
    ck_assert_int_eq(err->code, CR_INVALID_ARGUMENT);
    cr_err_free(err);
    err = NULL;
    /* A symlink to a folder as the top is followed (it names the folder). */
    mkdirs(path("real/sub"));
    ck_assert_int_eq(symlink(path("real"), path("alias")), 0);
    ck_assert_int_eq(oci_fs_usage_get(path("alias"), &u, &err), 0);
    ck_assert_uint_eq(u.inodes, 2);
}
END_TEST

START_TEST(deep_and_wide)
{
    /* 300 nested folders (one open folder per level) ... */
    char p[PATH_MAX];
    int off = snprintf(p, sizeof(p), "%s/deep", tmp);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    for (int i = 0; i < 300 && off + 3 < (int)sizeof(p); i++) {
        off += snprintf(p + off, sizeof(p) - (size_t)off, "/d");
        if (mkdir(p, 0755) < 0) {
            /* PATH_MAX reached: keep going relative to a folder fd instead. */
            break;
        }
    }
    oci_fs_usage d = usage(path("deep"));
    ck_assert_uint_eq(d.inodes, du("--inodes", path("deep")));
    ck_assert_uint_gt(d.inodes, 100);

    /* ... and 20000 files in one folder, timed (printed, not asserted). */
    mkdirs(path("wide"));
    int dfd = open(path("wide"), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(dfd, 0);
    for (int i = 0; i < 20000; i++) {
        char name[32];
        snprintf(name, sizeof(name), "f%05d", i);
        int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        ck_assert_int_ge(fd, 0);
        close(fd);
    }
    close(dfd);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    oci_fs_usage w = usage(path("wide"));
    clock_gettime(CLOCK_MONOTONIC, &b);
    ck_assert_uint_eq(w.inodes, 20001);
    ck_assert_uint_eq(w.bytes, du("-B1", path("wide")));
    fprintf(stderr, "test_fsusage: 20001 inodes walked in %.1f ms\n",
            (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("fsusage");
    TCase *tc = tcase_create("fsusage");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_checked_fixture(tc, fresh, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, matches_du);
    tcase_add_test(tc, hard_links_sparse_and_symlinks);
    tcase_add_test(tc, mount_points_not_crossed);
    tcase_add_test(tc, errors);
    tcase_add_test(tc, deep_and_wide);
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
