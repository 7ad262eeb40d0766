/* The exit file and OOM detection.
 *
 * OOM: the memory controller's oom_kill count of --cgroup-path (v1
 * memory.oom_control, v2 memory.events), read once the cgroup exists (after
 * create) and again at exit; a higher count means the kernel OOM-killed a
 * process of the container.  The file stays open so that a cgroup removed
 * early still answers. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conmon/internal.h"

/* Undo mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
    char *o = s;
    for (; *s; s++) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' &&
            s[3] <= '7') {
            *o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
            s += 3;
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
}

static bool has_token(const char *list, const char *tok)
{
    size_t n = strlen(tok);
    for (const char *p = list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (strncmp(p, tok, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return true;
    return false;
}

/* One mountinfo line: "id parent maj:min root mountpoint opts [tags] - fstype source superopts". */
static void mountinfo_line(char *line, char *v1, char *v2, size_t len)
{
    char *sep = strstr(line, " - ");
    if (!sep)
        return;
    *sep = '\0';
    char *save, *f[5];
    char *p = line;
    for (int i = 0; i < 5; i++) {
        f[i] = strtok_r(p, " ", &save);
        p = NULL;
        if (!f[i])
            return;
    }
    char *fstype = strtok_r(sep + 3, " ", &save);
    char *source = strtok_r(NULL, " ", &save);
    char *super = strtok_r(NULL, " ", &save);
    if (!fstype || !source)
        return;
    if (strcmp(fstype, "cgroup") == 0 && super && has_token(super, "memory") && !v1[0])
        snprintf(v1, len, "%s", f[4]);
    else if (strcmp(fstype, "cgroup2") == 0 && !v2[0])
        snprintf(v2, len, "%s", f[4]);
}

/* Where the memory controller is mounted: v1's memory hierarchy, else the
 * unified (v2) hierarchy. */
static int memory_mount(char *out, size_t len, bool *v2out)
{
    char v1[PATH_MAX] = "", v2[PATH_MAX] = "";
    int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char buf[4096];
    size_t have = 0;
    for (;;) {
        ssize_t n = read(fd, buf + have, sizeof(buf) - 1 - have);
        if (n <= 0)
            break;
        have += (size_t)n;
        buf[have] = '\0';
        char *line = buf, *nl;
        while ((nl = strchr(line, '\n'))) {
            *nl = '\0';
            mountinfo_line(line, v1, v2, sizeof(v1));
            line = nl + 1;
        }
        have = (size_t)(buf + have - line);
        memmove(buf, line, have);
        if (have == sizeof(buf) - 1)
            have = 0; /* a line longer than the buffer: skipped */
    }
    close(fd);
    if (v1[0]) {
        unescape(v1);
        snprintf(out, len, "%s", v1);
        *v2out = false;
        return 0;
    }
    if (v2[0]) {
        unescape(v2);
        snprintf(out, len, "%s", v2);
        *v2out = true;
        return 0;
    }
    return -1;
}

static long long read_oom_count(int fd)
{
    char buf[1024];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, "oom_kill ", 9) == 0)
            return strtoll(line + 9, NULL, 10);
    return -1;
}

void mon_oom_start(struct mon *m)
{
    if (m->o.exec || !m->o.cgroup_path || !*m->o.cgroup_path)
        return; /* exec mode: the container's OOM is its own monitor's */
    char mnt[PATH_MAX], path[PATH_MAX + 512];
    if (memory_mount(mnt, sizeof(mnt), &m->oom_v2) < 0)
        return;
    snprintf(path, sizeof(path), "%s/%s/%s", mnt, m->o.cgroup_path,
             m->oom_v2 ? "memory.events" : "memory.oom_control");
    m->oom_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (m->oom_fd < 0)
        return;
    m->oom_start = read_oom_count(m->oom_fd);
    if (m->oom_start < 0) {
        close(m->oom_fd);
        m->oom_fd = -1;
    }
}

bool mon_oom_killed(struct mon *m)
{
    if (m->oom_fd < 0)
        return false;
    long long now = read_oom_count(m->oom_fd);
    return now > m->oom_start;
}

int mon_exit_write(struct mon *m)
{
    int sig = 0, code = 255;
    int status = m->container_status;
    if (WIFEXITED(status)) {
        code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        sig = WTERMSIG(status);
        code = 128 + sig;
    }
    bool oom = mon_oom_killed(m);
    char buf[256], tmp[PATH_MAX];
    int n = snprintf(buf, sizeof(buf),
                     "{\"exitCode\": %d, \"exitedAt\": %lld, \"oomKilled\": %s, \"signal\": %d}\n", code,
                     (long long)m->container_exited_at, oom ? "true" : "false", sig);
    snprintf(tmp, sizeof(tmp), ".%s.tmp", m->o.id);
    int fd = openat(m->exit_dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return -1;
    int r = mon_write_all(fd, buf, (size_t)n);
    if (r == 0 && fsync(fd) < 0)
        r = -errno;
    close(fd);
    if (r == 0 && renameat(m->exit_dirfd, tmp, m->exit_dirfd, m->o.id) < 0)
        r = -errno;
    if (r < 0) {
        unlinkat(m->exit_dirfd, tmp, 0);
        return -1;
    }
    fsync(m->exit_dirfd);
    return 0;
}
