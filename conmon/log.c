/* The CRI log writer: "<RFC3339Nano> <stdout|stderr> <F|P> <text>\n".
 * A line longer than --log-max-line goes out as P chunks and a final F; a
 * line still open at EOF, at exit, or after MON_PARTIAL_FLUSH_NS goes out as P.
 * One writev per line into an O_APPEND file: never blocked on a reader. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "conmon/internal.h"

static int open_log(struct mon *m)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", m->o.log_path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        int r = mon_mkdir_p(dir, 0755);
        if (r < 0) {
            mon_set_error(m, "log dir %s: %s", dir, strerror(-r));
            return -1;
        }
    }
    int fd = open(m->o.log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
    if (fd < 0)
        mon_set_error(m, "log %s: %s", m->o.log_path, strerror(errno));
    return fd;
}

int mon_log_open(struct mon *m)
{
    if (!m->o.log_path)
        return 0; /* exec mode without --log-path: no CRI log */
    m->log_fd = open_log(m);
    return m->log_fd < 0 ? -1 : 0;
}

/* The kubelet renamed the log: start a new file at the same path.  On
 * failure keep writing the old one rather than lose output. */
void mon_log_reopen(struct mon *m)
{
    if (!m->o.log_path)
        return;
    int fd = open_log(m);
    if (fd < 0)
        return;
    if (m->log_fd >= 0)
        close(m->log_fd);
    m->log_fd = fd;
}

static char *put_num(char *p, unsigned v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + width;
}

/* "2016-10-06T00:17:09.669794202Z" (always UTC, always 9 digits). */
static size_t format_ts(char *out)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char *p = out;
    p = put_num(p, (unsigned)(tm.tm_year + 1900), 4);
    *p++ = '-';
    p = put_num(p, (unsigned)(tm.tm_mon + 1), 2);
    *p++ = '-';
    p = put_num(p, (unsigned)tm.tm_mday, 2);
    *p++ = 'T';
    p = put_num(p, (unsigned)tm.tm_hour, 2);
    *p++ = ':';
    p = put_num(p, (unsigned)tm.tm_min, 2);
    *p++ = ':';
    p = put_num(p, (unsigned)tm.tm_sec, 2);
    *p++ = '.';
    p = put_num(p, (unsigned)ts.tv_nsec, 9);
    *p++ = 'Z';
    return (size_t)(p - out);
}

static void write_line(struct mon *m, const struct mon_stream *s, char tag, const char *data, size_t len)
{
    if (m->log_fd < 0)
        return;
    char hdr[64];
    size_t h = format_ts(hdr);
    hdr[h++] = ' ';
    size_t nl = strlen(s->name);
    memcpy(hdr + h, s->name, nl);
    h += nl;
    hdr[h++] = ' ';
    hdr[h++] = tag;
    hdr[h++] = ' ';
    struct iovec iov[3] = {{hdr, h}, {(void *)data, len}, {(void *)"\n", 1}};
    ssize_t n;
    do
        n = writev(m->log_fd, iov, 3);
    while (n < 0 && errno == EINTR);
    /* A full disk or a dead log file loses lines; the container goes on. */
}

void mon_log_flush_partial(struct mon *m, struct mon_stream *s)
{
    if (s->len == 0)
        return;
    write_line(m, s, 'P', s->line, s->len);
    s->len = 0;
}

void mon_log_feed(struct mon *m, struct mon_stream *s, const char *data, size_t n)
{
    const size_t max = m->o.log_max_line;
    if (!s->line)
        return; /* no log: nothing to cut into lines */
    while (n > 0) {
        if (s->len == max) {
            /* Full: a newline right here ends an exactly-max line as F;
             * anything else makes the buffered bytes a P chunk. */
            if (*data == '\n') {
                write_line(m, s, 'F', s->line, s->len);
                s->len = 0;
                data++;
                n--;
                continue;
            }
            mon_log_flush_partial(m, s);
        }
        const char *nl = memchr(data, '\n', n);
        size_t seg = nl ? (size_t)(nl - data) : n;
        size_t room = max - s->len;
        if (nl && seg <= room) {
            if (s->len == 0) {
                write_line(m, s, 'F', data, seg);
            } else {
                memcpy(s->line + s->len, data, seg);
                write_line(m, s, 'F', s->line, s->len + seg);
                s->len = 0;
            }
            data += seg + 1;
            n -= seg + 1;
            continue;
        }
        size_t take = seg < room ? seg : room;
        if (s->len == 0 && take > 0)
            s->since = mon_now_ns(CLOCK_MONOTONIC);
        memcpy(s->line + s->len, data, take);
        s->len += take;
        data += take;
        n -= take;
    }
}
