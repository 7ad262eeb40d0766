/* Pod network namespaces, pinned by a bind mount of the namespace file onto
 * an empty file, like `ip netns add`.  The namespace is made in a short-lived
 * child: unshare(CLONE_NEWNET) in a daemon thread would move that thread
 * (and whatever runs on it next) into the new namespace. */
#include "network/network.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/magic.h>
#include <linux/nsfs.h>

#include "lib/cleanup.h"
#include "lib/fs.h"

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

/* Make dir a mount point with shared propagation, as iproute2 does for
 * /run/netns: a pin then also gets unmounted in mount namespaces copied from
 * ours after it was made (their copy is a peer or slave), so the namespace is
 * freed once we remove the pin.  The dir lock keeps two concurrent first
 * calls from stacking two bind mounts. */
static int make_dir_shared(const char *dir, cr_err **err)
{
    _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return cr_err_errno(err, CR_INTERNAL, errno, "open %s", dir);
    if (flock(fd, LOCK_EX) < 0)
        return cr_err_errno(err, CR_INTERNAL, errno, "lock %s", dir);
    bool bound = false;
    while (mount("", dir, "none", MS_SHARED | MS_REC, NULL) < 0) {
        if (errno != EINVAL || bound)
            return cr_err_errno(err, CR_INTERNAL, errno, "make %s a shared mount", dir);
        /* Not a mount point yet: bind it onto itself. */
        if (mount(dir, dir, "none", MS_BIND | MS_REC, NULL) < 0)
            return cr_err_errno(err, CR_INTERNAL, errno, "bind mount %s onto itself", dir);
        bound = true;
    }
    return 0;
}

bool net_ns_exists(const char *path)
{
    struct statfs fs;
    if (!path || statfs(path, &fs) < 0 || (unsigned long)fs.f_type != (unsigned long)NSFS_MAGIC)
        return false;
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    int type = ioctl(fd, NS_GET_NSTYPE);
    /* ENOTTY: a kernel older than 4.11 cannot tell; nsfs is close enough. */
    return type == CLONE_NEWNET || (type < 0 && errno == ENOTTY);
}

int net_ns_create(const char *dir, const char *name, char **path, cr_err **err)
{
    *path = NULL;
    if (!dir || !*dir || !name || !*name || strchr(name, '/') || strcmp(name, ".") == 0 ||
        strcmp(name, "..") == 0)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "netns %s: invalid name", name ? name : "");
    _cleanup_free_ char *p = NULL;
    if (asprintf(&p, "%s/%s", dir, name) < 0)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "netns %s: out of memory", name);
    if (cr_mkdir_p(dir, 0755, err) < 0)
        return cr_err_prefix(err, "netns %s", name);
    if (make_dir_shared(dir, err) < 0)
        return cr_err_prefix(err, "netns %s", name);
    if (net_ns_exists(p))
        return cr_err_set(err, CR_ALREADY_EXISTS, "netns %s: already exists", p);
    /* The mount target; an empty file left behind by a crash is reused. */
    int fd = open(p, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0444);
    if (fd < 0)
        return cr_err_errno(err, CR_INTERNAL, errno, "netns %s: create %s", name, p);
    close(fd);

    int rep[2];
    if (pipe2(rep, O_CLOEXEC) < 0) {
        int e = errno;
        unlink(p);
        return cr_err_errno(err, CR_INTERNAL, e, "netns %s: pipe", name);
    }
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(rep[0]);
        close(rep[1]);
        unlink(p);
        return cr_err_errno(err, CR_INTERNAL, e, "netns %s: fork", name);
    }
    if (pid == 0) {
        /* Async-signal-safe only: the caller may be multi-threaded.  The child
         * shares our mount namespace, so its bind mount is ours. */
        int res[2] = { 0, 0 };
        if (unshare(CLONE_NEWNET) < 0)
            res[0] = 1, res[1] = errno;
        else if (mount("/proc/self/ns/net", p, "none", MS_BIND, NULL) < 0)
            res[0] = 2, res[1] = errno;
        if (res[0]) {
            ssize_t w = write(rep[1], res, sizeof(res));
            (void)w;
        }
        _exit(res[0] ? 1 : 0);
    }
    close(rep[1]);
    int res[2] = { 0, 0 };
    ssize_t n;
    do
        n = read(rep[0], res, sizeof(res));
    while (n < 0 && errno == EINTR);
    close(rep[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (n == (ssize_t)sizeof(res) || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        umount2(p, MNT_DETACH | UMOUNT_NOFOLLOW);
        unlink(p);
        if (n == (ssize_t)sizeof(res))
            return cr_err_errno(err, CR_INTERNAL, res[1], "netns %s: %s", name,
                                res[0] == 1 ? "unshare(CLONE_NEWNET)" : "bind mount");
        return cr_err_set(err, CR_INTERNAL, "netns %s: helper process failed (status %d)", name, st);
    }
    *path = cr_steal(&p);
    return 0;
}

int net_ns_remove(const char *path, cr_err **err)
{
    if (!path || !*path)
        return 0;
    /* Unmount every layer (a pin mounted twice over stays a namespace). */
    for (int i = 0; i < 16; i++) {
        if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
            continue;
        if (errno == EINVAL || errno == ENOENT)
            break;
        return cr_err_errno(err, CR_INTERNAL, errno, "netns %s: unmount", path);
    }
    if (unlink(path) < 0 && errno != ENOENT)
        return cr_err_errno(err, CR_INTERNAL, errno, "netns %s: remove", path);
    return 0;
}

/* ---- connecting inside a namespace ---- */

typedef struct dialer {
    int nsfd;
    int port, timeout_ms;
    int fd;              /* result */
    int err;             /* errno of the failure */
    const char *what;    /* the step that failed */
} dialer;

static int connect_one(int family, int port, int timeout_ms, int *e)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        *e = errno;
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof(ss));
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*a);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        a->sin6_addr = in6addr_loopback;
        len = sizeof(*a);
    }
    int r = connect(fd, (struct sockaddr *)&ss, len);
    if (r < 0 && errno == EINPROGRESS) {
        struct pollfd p = { fd, POLLOUT, 0 };
        int n;
        do
            n = poll(&p, 1, timeout_ms);
        while (n < 0 && errno == EINTR);
        int so = ETIMEDOUT;
        socklen_t sl = sizeof(so);
        if (n > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl) < 0)
            so = errno;
        r = so ? -1 : 0;
        errno = so;
    }
    if (r < 0) {
        *e = errno;
        close(fd);
        return -1;
    }
    /* Blocking from here on, as a plain connected socket. */
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

static void *dialer_main(void *arg)
{
    dialer *d = arg;
    if (d->nsfd >= 0 && setns(d->nsfd, CLONE_NEWNET) < 0) {
        d->err = errno;
        d->what = "join";
        return NULL;
    }
    int e4 = 0, e6 = 0;
    d->fd = connect_one(AF_INET, d->port, d->timeout_ms, &e4);
    if (d->fd < 0 && e4 == ECONNREFUSED)
        d->fd = connect_one(AF_INET6, d->port, d->timeout_ms, &e6);
    if (d->fd < 0) {
        /* IPv6 missing altogether says less than IPv4's refusal. */
        d->err = e6 && e6 != EAFNOSUPPORT && e6 != EADDRNOTAVAIL ? e6 : e4;
        d->what = "connect";
    }
    return NULL;
}

int net_ns_dial(const char *netns_path, int port, int timeout_ms, cr_err **err)
{
    if (port <= 0 || port > 65535)
        return cr_err_set(err, CR_INVALID_ARGUMENT, "port %d: want 1 to 65535", port);
    bool own = !netns_path || !*netns_path;
    const char *label = own ? "the host network namespace" : netns_path;
    _cleanup_close_ int nsfd = -1;
    if (!own) {
        nsfd = open(netns_path, O_RDONLY | O_CLOEXEC);
        if (nsfd < 0) {
            if (errno == ENOENT)
                return cr_err_set(err, CR_NOT_FOUND, "%s: no such network namespace", label);
            return cr_err_errno(err, CR_INTERNAL, errno, "open %s", label);
        }
    }
    dialer d = { .nsfd = nsfd, .port = port, .timeout_ms = timeout_ms > 0 ? timeout_ms : 10000, .fd = -1 };
    pthread_attr_t attr;
    sigset_t all;
    sigfillset(&all);
    int e = pthread_attr_init(&attr);
    if (e)
        return cr_err_errno(err, CR_INTERNAL, e, "dial port %d in %s: thread attributes", port, label);
    /* A small stack, and no signal may land on a thread in another namespace. */
    pthread_attr_setstacksize(&attr, 128 * 1024);
    e = pthread_attr_setsigmask_np(&attr, &all);
    pthread_t t;
    if (!e)
        e = pthread_create(&t, &attr, dialer_main, &d);
    pthread_attr_destroy(&attr);
    if (e)
        return cr_err_errno(err, CR_INTERNAL, e, "dial port %d in %s: start a thread", port, label);
    pthread_join(t, NULL);
    if (d.fd >= 0)
        return d.fd;
    if (!strcmp(d.what, "join"))
        return d.err == EINVAL ? cr_err_set(err, CR_INVALID_ARGUMENT, "%s is not a network namespace", label)
                               : cr_err_errno(err, CR_INTERNAL, d.err, "join %s", label);
    return cr_err_errno(err, CR_UNAVAILABLE, d.err, "connect to localhost:%d in %s", port, label);
}
