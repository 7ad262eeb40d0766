/* The control fifo: "resize <rows> <cols>\n", "reopen\n" and "kill\n". */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conmon/internal.h"

int mon_ctl_open(struct mon *m)
{
    unlinkat(m->state_dirfd, MON_CTL_FIFO, 0);
    if (mkfifoat(m->state_dirfd, MON_CTL_FIFO, 0600) < 0) {
        mon_set_error(m, "control fifo %s/" MON_CTL_FIFO ": %s", m->o.state_dir, strerror(errno));
        return -1;
    }
    /* Read-write: we are a writer too, so the fifo never reports EOF when
     * crispd's writer goes away. */
    m->ctl_fd = openat(m->state_dirfd, MON_CTL_FIFO, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (m->ctl_fd < 0) {
        mon_set_error(m, "control fifo %s/" MON_CTL_FIFO ": %s", m->o.state_dir, strerror(errno));
        return -1;
    }
    return 0;
}

void mon_apply_size(struct mon *m)
{
    if (!m->have_size || m->console_fd < 0)
        return;
    struct winsize ws = {.ws_row = m->rows, .ws_col = m->cols};
    ioctl(m->console_fd, TIOCSWINSZ, &ws);
}

/* SIGKILL the process we serve and its process group.  Safe by pid: it is
 * our child (reparented when the runtime exited) and not reaped yet, so its
 * pid, and the group it is in, cannot have been reused.  The group is the
 * one it is in, not -pid: runc's processes (and crun's with a tty) lead
 * their own, but crun's exec'd process without a tty is in the group of
 * crun's exited intermediate process (which holds only it and its
 * descendants).  Never our own group: a runtime that made none would leave
 * the process in ours. */
void mon_kill(struct mon *m)
{
    if (m->container_pid <= 0) {
        m->kill_requested = true; /* exec mode, before it runs: never run it */
        return;
    }
    if (m->container_done)
        return;
    pid_t pgid = getpgid(m->container_pid);
    if (pgid > 0 && pgid != getpgrp())
        kill(-pgid, SIGKILL);
    kill(m->container_pid, SIGKILL);
}

static void command(struct mon *m, char *line)
{
    char *save, *verb = strtok_r(line, " \t", &save);
    if (!verb)
        return;
    if (strcmp(verb, MON_CTL_RESIZE) == 0) {
        char *r = strtok_r(NULL, " \t", &save), *c = strtok_r(NULL, " \t", &save), *end;
        if (!r || !c)
            return;
        unsigned long rows = strtoul(r, &end, 10);
        if (*end || rows > 65535)
            return;
        unsigned long cols = strtoul(c, &end, 10);
        if (*end || cols > 65535)
            return;
        m->rows = (unsigned short)rows;
        m->cols = (unsigned short)cols;
        m->have_size = true;
        mon_apply_size(m);
    } else if (strcmp(verb, MON_CTL_REOPEN) == 0) {
        mon_log_reopen(m);
    } else if (strcmp(verb, MON_CTL_KILL) == 0) {
        mon_kill(m);
    }
}

void mon_ctl_read(struct mon *m)
{
    char buf[512];
    ssize_t n;
    while ((n = read(m->ctl_fd, buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            char c = buf[i];
            if (c == '\n') {
                if (!m->ctl_skip) {
                    m->ctl_buf[m->ctl_len] = '\0';
                    command(m, m->ctl_buf);
                }
                m->ctl_len = 0;
                m->ctl_skip = false;
            } else if (m->ctl_len + 1 < sizeof(m->ctl_buf)) {
                m->ctl_buf[m->ctl_len++] = c == '\r' ? ' ' : c;
            } else {
                m->ctl_skip = true; /* over-long line: ignored whole */
            }
        }
    }
}
