/* The AppArmor profile "runtime/default" stands for.  On a host with AppArmor
 * enabled, crispd loads it at start with apparmor_parser (as containerd and
 * CRI-O load theirs), so containers asking for RuntimeDefault get confined
 * instead of failing.  On a host without AppArmor nothing happens. */
#include "oci.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/fs.h"
#include "lib/log.h"

/* Confinement for ordinary workloads: everything a process in a container
 * normally does is allowed; what the default profile takes away is writing
 * kernel knobs under /proc and /sys (beyond the container's own cgroup
 * files), reading raw kernel memory and firmware, mounting, and tracing
 * processes outside this profile. */
static const char profile[] =
    "#include <tunables/global>\n"
    "profile " OCI_APPARMOR_DEFAULT_PROFILE " flags=(attach_disconnected,mediate_deleted) {\n"
    "  #include <abstractions/base>\n"
    "  network,\n"
    "  capability,\n"
    "  file,\n"
    "  umount,\n"
    "  signal (receive) peer=unconfined,\n"
    "  signal (send,receive) peer=" OCI_APPARMOR_DEFAULT_PROFILE ",\n"
    "  ptrace (trace,read,tracedby,readby) peer=" OCI_APPARMOR_DEFAULT_PROFILE ",\n"
    "  deny mount,\n"
    "  deny @{PROC}/sysrq-trigger rwklx,\n"
    "  deny @{PROC}/kcore rwklx,\n"
    "  deny @{PROC}/kmem rwklx,\n"
    "  deny @{PROC}/mem rwklx,\n"
    "  deny @{PROC}/sys/kernel/core_pattern w,\n"
    "  deny @{PROC}/sys/kernel/modprobe w,\n"
    "  deny @{PROC}/sys/vm/** w,\n"
    "  deny @{PROC}/sys/fs/** w,\n"
    "  deny /sys/firmware/** rwklx,\n"
    "  deny /sys/kernel/security/** rwklx,\n"
    "  deny /sys/kernel/debug/** rwklx,\n"
    "  deny /sys/power/** wklx,\n"
    "  deny /sys/module/** wklx,\n"
    "  deny /sys/devices/** wklx,\n"
    "}\n";

static bool enabled(void)
{
    char buf[8] = "";
    _cleanup_fclose_ FILE *f = fopen("/sys/module/apparmor/parameters/enabled", "re");
    return f && fgets(buf, sizeof(buf), f) && buf[0] == 'Y';
}

static bool loaded(void)
{
    _cleanup_fclose_ FILE *f = fopen("/sys/kernel/security/apparmor/profiles", "re");
    if (!f)
        return false;
    _cleanup_free_ char *line = NULL;
    size_t cap = 0, n = strlen(OCI_APPARMOR_DEFAULT_PROFILE);
    while (getline(&line, &cap, f) >= 0)
        if (!strncmp(line, OCI_APPARMOR_DEFAULT_PROFILE, n) && line[n] == ' ')
            return true;
    return false;
}

int oci_apparmor_load_default(const char *tmpdir, cr_err **err)
{
    if (!enabled() || loaded())
        return 0;
    _cleanup_free_ char *parser = cr_find_executable("apparmor_parser");
    if (!parser)
        return cr_err_set(err, CR_FAILED_PRECONDITION,
                          "AppArmor is enabled but apparmor_parser is not installed: cannot load the %s profile",
                          OCI_APPARMOR_DEFAULT_PROFILE);
    _cleanup_free_ char *path = NULL;
    if (asprintf(&path, "%s/%s.apparmor", tmpdir, OCI_APPARMOR_DEFAULT_PROFILE) < 0)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    if (cr_write_file_atomic(path, profile, sizeof(profile) - 1, 0600, err) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return cr_err_errno(err, CR_INTERNAL, errno, "fork");
    if (pid == 0) {
        /* -K: no cache, -r: replace (load or update) */
        execl(parser, "apparmor_parser", "-Kr", path, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    unlink(path);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return cr_err_set(err, CR_INTERNAL, "apparmor_parser could not load the %s profile (status %d)",
                          OCI_APPARMOR_DEFAULT_PROFILE, st);
    cr_log_info("loaded the default AppArmor profile", "profile", OCI_APPARMOR_DEFAULT_PROFILE, NULL);
    return 0;
}
