/* Folder tree usage: a depth-first walk with openat + statx on names relative
 * to the open folder.  The mount id (statx STATX_MNT_ID, Linux 5.8+; st_dev
 * before that) keeps the walk on the top folder's mount; a small hash set of
 * inode numbers counts multiply-linked files once. */
#include "fsusage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/cleanup.h"

/* Inodes seen with more than one link (open addressing, linear probing). */
typedef struct ino_set {
    uint64_t *slots;   /* ino + 1; 0 = empty */
    size_t cap, len;
} ino_set;

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    return x;
}

/* 1 newly added, 0 already there, -1 out of memory. */
static int ino_set_add(ino_set *s, uint64_t ino)
{
    uint64_t key = ino + 1;   /* inode numbers are never UINT64_MAX in practice */
    if ((s->len + 1) * 2 > s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 256;
        uint64_t *ns = calloc(nc, sizeof(*ns));
        if (!ns)
            return -1;
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->slots[i])
                continue;
            size_t j = mix(s->slots[i]) & (nc - 1);
            while (ns[j])
                j = (j + 1) & (nc - 1);
            ns[j] = s->slots[i];
        }
        free(s->slots);
        s->slots = ns;
        s->cap = nc;
    }
    size_t j = mix(key) & (s->cap - 1);
    while (s->slots[j]) {
        if (s->slots[j] == key)
            return 0;
        j = (j + 1) & (s->cap - 1);
    }
    s->slots[j] = key;
    s->len++;
    return 1;
}

typedef struct walk {
    const char *top;
    bool use_mnt_id;
    uint64_t mnt_id;
    uint32_t dev_major, dev_minor;
    ino_set links;
    oci_fs_usage sum;
} walk;

static const unsigned STATX_WANT = STATX_TYPE | STATX_INO | STATX_NLINK | STATX_BLOCKS | STATX_MNT_ID;

static bool same_mount(const walk *w, const struct statx *st)
{
    if (w->use_mnt_id && (st->stx_mask & STATX_MNT_ID))
        return st->stx_mnt_id == w->mnt_id;
    return st->stx_dev_major == w->dev_major && st->stx_dev_minor == w->dev_minor;
}

/* Count one inode.  0, or -1 (out of memory). */
static int count(walk *w, const struct statx *st)
{
    if (st->stx_nlink > 1 && !S_ISDIR(st->stx_mode)) {
        int r = ino_set_add(&w->links, st->stx_ino);
        if (r <= 0)
            return r;
    }
    w->sum.inodes++;
    w->sum.bytes += st->stx_blocks * 512;
    return 0;
}

/* Walk the open folder dfd (its own inode already counted); takes dfd. */
static int walk_dir(walk *w, int dfd, cr_err **err)
{
    _cleanup_closedir_ DIR *d = fdopendir(dfd);
    if (!d) {
        int e = errno;
        close(dfd);
        return cr_err_errno(err, CR_INTERNAL, e, "disk usage of %s: read folder", w->top);
    }
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno)
                return cr_err_errno(err, CR_INTERNAL, errno, "disk usage of %s: read folder", w->top);
            return 0;
        }
        const char *n = de->d_name;
        if (n[0] == '.' && (!n[1] || (n[1] == '.' && !n[2])))
            continue;
        struct statx st;
        if (statx(dirfd(d), n, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_STATX_DONT_SYNC, STATX_WANT, &st) < 0) {
            if (errno == ENOENT)
                continue;   /* removed meanwhile */
            return cr_err_errno(err, CR_INTERNAL, errno, "disk usage of %s: stat %s", w->top, n);
        }
        if (!same_mount(w, &st))
            continue;   /* a mount point: neither counted nor entered */
        if (count(w, &st) < 0)
            return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "disk usage of %s: out of memory", w->top);
        if (!S_ISDIR(st.stx_mode))
            continue;
        int cfd = openat(dirfd(d), n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (cfd < 0) {
            /* Removed, or replaced by a file or a symlink, since the statx. */
            if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
                continue;
            return cr_err_errno(err, CR_INTERNAL, errno, "disk usage of %s: open folder %s", w->top, n);
        }
        if (walk_dir(w, cfd, err) < 0)
            return -1;
    }
}

int oci_fs_usage_get(const char *path, oci_fs_usage *out, cr_err **err)
{
    memset(out, 0, sizeof(*out));
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT)
            return cr_err_set(err, CR_NOT_FOUND, "disk usage of %s: no such folder", path);
        if (e == ENOTDIR)
            return cr_err_set(err, CR_INVALID_ARGUMENT, "disk usage of %s: not a folder", path);
        return cr_err_errno(err, CR_INTERNAL, e, "disk usage of %s: open", path);
    }
    struct statx st;
    if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_WANT, &st) < 0) {
        int e = errno;
        close(fd);
        return cr_err_errno(err, CR_INTERNAL, e, "disk usage of %s: stat", path);
    }
    walk w = {.top = path, .use_mnt_id = (st.stx_mask & STATX_MNT_ID) != 0, .mnt_id = st.stx_mnt_id,
              .dev_major = st.stx_dev_major, .dev_minor = st.stx_dev_minor};
    int r = count(&w, &st);
    if (r < 0) {
        close(fd);
        r = cr_err_set(err, CR_RESOURCE_EXHAUSTED, "disk usage of %s: out of memory", path);
    } else {
        r = walk_dir(&w, fd, err);
    }
    free(w.links.slots);
    if (r < 0)
        return -1;
    *out = w.sum;
    return 0;
}
