/* oci/: the OCI runtime-spec builder (plain inputs -> config.json) and the
 * runtime handler invocation (runc, crun).  This header is the component's
 * door; plain C structs only (no protobuf). */
#ifndef CRISP_OCI_H
#define CRISP_OCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

/* ---- spec (spec.c, seccomp.c) ---- */

typedef struct oci_mount {
    const char *destination;
    const char *type;            /* "bind", "tmpfs", ... */
    const char *source;
    const char *const *options;  /* NULL-terminated, may be NULL */
} oci_mount;

typedef enum { OCI_NS_NEW = 0, OCI_NS_HOST, OCI_NS_PATH } oci_ns_mode;
typedef struct oci_ns {
    oci_ns_mode mode;
    const char *path;            /* OCI_NS_PATH: /proc/<pid>/ns/x or a pinned netns */
} oci_ns;

/* Everything a container's config.json is made from.  Zero/NULL = unset. */
typedef struct oci_spec_input {
    /* process */
    const char *const *args;     /* NULL-terminated, at least one */
    const char *const *env;      /* "K=V", NULL-terminated */
    const char *cwd;             /* default "/" */
    bool terminal;
    uint32_t uid, gid;
    const uint32_t *additional_gids;
    size_t n_additional_gids;
    /* root and identity */
    const char *rootfs;          /* absolute path */
    bool readonly_rootfs;
    const char *hostname;        /* only with a new UTS namespace */
    /* mounts beyond the defaults (/proc, /dev, /dev/pts, /dev/shm, /dev/mqueue,
     * /sys, /sys/fs/cgroup); a mount here with the same destination replaces
     * the default one (e.g. /dev/shm from the pod) */
    const oci_mount *mounts;
    size_t n_mounts;
    /* namespaces (mount is always new) */
    oci_ns net, ipc, uts, pid;
    const char *cgroups_path;    /* cgroupfs: "/kubepods/pod<uid>/<id>"; systemd: "slice:prefix:name"; NULL = none */
    const char *const *sysctls;  /* "key=value", NULL-terminated */
    /* security */
    bool privileged;             /* all caps, all devices, no masked/readonly paths, no seccomp */
    bool no_new_privileges;
    const char *const *cap_add;  /* "NET_ADMIN" or "CAP_NET_ADMIN" or "ALL" */
    const char *const *cap_drop;
    const char *seccomp;         /* NULL/"" or "runtime/default": crisp's default profile;
                                    "unconfined"; "localhost/<absolute path to a profile JSON>" */
    bool set_oom_score_adj;
    int oom_score_adj;           /* clamped by oci_clamp_oom_score_adj */
    /* resources (0/NULL = unset) */
    int64_t cpu_shares, cpu_quota, cpu_period, memory_limit, memory_swap, pids_limit;
    const char *cpuset_cpus, *cpuset_mems;
    const char *const *annotations;  /* key, value, key, value, ..., NULL */
    /* ---- added later: keep new fields at the end ---- */
    /* linux.resources.hugepageLimits: page_size as the kernel names it ("2MB", "1GB") */
    const struct oci_hugepage {
        const char *page_size;
        uint64_t limit;
    } *hugepages;
    size_t n_hugepages;
    const char *const *unified;  /* linux.resources.unified (cgroup v2): key, value, ..., NULL */
    /* Host devices: each host_path must be a character or block device (stat'ed,
     * symlinks followed); it appears at container_path (default: host_path) with
     * the host's type/major/minor/mode/owner, and the device cgroup allows it
     * with permissions (a subset of "rwm"; NULL/"" = "rwm"). */
    const struct oci_device {
        const char *container_path, *host_path, *permissions;
    } *devices;
    size_t n_devices;
    /* linux.rootfsPropagation: NULL, "private", "rprivate", "slave", "rslave",
     * "shared", "rshared".  NULL with a mount that has "rshared"/"shared" (or
     * "rslave"/"slave") options: "rshared" (or "rslave"), so that propagation works. */
    const char *rootfs_propagation;
    /* NULL/"": none.  "runtime/default": OCI_APPARMOR_DEFAULT_PROFILE (none
     * when privileged); "unconfined"; "localhost/<name>" or "<name>": that
     * profile, which must be loaded (else CR_INVALID_ARGUMENT).  On a host
     * without AppArmor (/sys/module/apparmor/parameters/enabled not "Y"),
     * "runtime/default" and "unconfined" are dropped and any other profile
     * is CR_INVALID_ARGUMENT "apparmor is not enabled on this host". */
    const char *apparmor_profile;
    /* NULL: no hooks.  A containers-hooks folder (oci-hooks(5), schema 1.0.0):
     * its *.json files, in name order, add their hook to the spec's stages
     * when their "when" matches this container.  A missing folder: no hooks. */
    const char *hooks_dir;
    /* NULL: the defaults (/proc/kcore, /sys/firmware, ... masked; /proc/sys,
     * /proc/bus, ... read-only).  Non-NULL (may be empty, NULL-terminated):
     * exactly these, as the kubelet sends them (empty for procMount Unmasked).
     * Ignored when privileged (nothing is masked then). */
    const char *const *masked_paths;
    const char *const *readonly_paths;
} oci_spec_input;

/* The config.json text for in (validated: bad capability names, unknown
 * sysctls outside the namespaced set, a missing Localhost seccomp file... are
 * CR_INVALID_ARGUMENT naming the item).  Heap string. */
char *oci_spec_json(const oci_spec_input *in, cr_err **err);
/* Write it atomically as bundle_dir/config.json. */
int oci_spec_write(const oci_spec_input *in, const char *bundle_dir, cr_err **err);
/* Whether a sysctl is namespaced (net.*, kernel.shm*, kernel.msg*, kernel.sem,
 * fs.mqueue.*, kernel.hostname/domainname excluded) and so allowed in a pod. */
bool oci_sysctl_namespaced(const char *key);
/* The lowest oom_score_adj this process may give children: without
 * CAP_SYS_RESOURCE a value below our own is refused by the kernel (runc then
 * fails with a misleading error), so wanted is raised to our own. */
int oci_clamp_oom_score_adj(int wanted);

/* ---- runtime handlers (runtime.c) ---- */

typedef struct oci_runtime {
    const char *name;   /* handler name, for messages */
    const char *path;   /* binary */
    const char *root;   /* --root state dir */
} oci_runtime;

/* `create --bundle B --pid-file P ID` with the container's stdio on /dev/null
 * (detached), the runtime's own log in B/runtime.log; errors carry the
 * runtime's message.  timeout_s bounds the call (CR_DEADLINE_EXCEEDED). */
int oci_create(const oci_runtime *rt, const char *id, const char *bundle, const char *pid_file,
               int timeout_s, cr_err **err);
int oci_start(const oci_runtime *rt, const char *id, int timeout_s, cr_err **err);
/* Signal the container's init (all: every process). */
int oci_kill(const oci_runtime *rt, const char *id, int sig, bool all, cr_err **err);
/* delete (force: even if running).  A container the runtime does not know: 0. */
int oci_delete(const oci_runtime *rt, const char *id, bool force, cr_err **err);

typedef struct oci_state {
    char status[16];    /* "creating", "created", "running", "paused", "stopped" */
    int pid;
} oci_state;
/* The runtime's view; a container it does not know: CR_NOT_FOUND. */
int oci_state_get(const oci_runtime *rt, const char *id, oci_state *out, cr_err **err);

/* ---- added later ---- */

typedef struct oci_hugepage oci_hugepage;
typedef struct oci_device oci_device;

/* The AppArmor profile "runtime/default" stands for (on a host with AppArmor
 * enabled it must be loaded, else the spec is CR_FAILED_PRECONDITION). */
#define OCI_APPARMOR_DEFAULT_PROFILE "crisp-default"
/* On a host with AppArmor enabled, load that profile with apparmor_parser
 * unless the kernel has it already (its source is written under tmpdir);
 * without AppArmor: 0, nothing done. */
int oci_apparmor_load_default(const char *tmpdir, cr_err **err);

/* What oci_exec_sync keeps of each of stdout and stderr when cap is 0. */
#define OCI_EXEC_DEFAULT_CAP (16u << 20)

typedef struct oci_exec_result {
    int exit_code;          /* the process's exit status; 128+N when killed by signal N */
    char *out;              /* NUL-terminated heap strings, never NULL after a call */
    size_t out_len;
    char *err;
    size_t err_len;
    bool out_truncated, err_truncated;  /* more was written than cap (and discarded) */
} oci_exec_result;

/* Run args (with env "K=V" added to the container's) in the running
 * container id: `exec --pid-file P [--env K=V]... id args...`, stdin on
 * /dev/null, stdout and stderr each kept up to cap bytes (0: the default
 * cap; the rest is read and discarded, so the process never blocks).
 * 0 with res->exit_code whatever the process's exit status.  Errors: the
 * container unknown to the runtime: CR_NOT_FOUND; not running:
 * CR_FAILED_PRECONDITION; the runtime failed otherwise: CR_INTERNAL with its
 * message.  timeout_s > 0: at the deadline the exec'd process and its
 * descendants and the runtime are killed (SIGKILL), and the result is
 * CR_DEADLINE_EXCEEDED "exec in <id> timed out after Ns" with the output so
 * far in res.  res is reset on entry; clear it with oci_exec_result_clear. */
int oci_exec_sync(const oci_runtime *rt, const char *id, const char *const *args, const char *const *env,
                  int timeout_s, size_t cap, oci_exec_result *res, cr_err **err);
void oci_exec_result_clear(oci_exec_result *r);
/* The same for a caller that knows the container runs (crispd's own
 * record): no `runtime state` first, which saves one runtime call per exec;
 * a runtime failure is still classified (NOT_FOUND, FAILED_PRECONDITION). */
int oci_exec_sync_running(const oci_runtime *rt, const char *id, const char *const *args, int timeout_s, size_t cap,
                          oci_exec_result *res, cr_err **err);

/* An interactive exec without a terminal (the CRI streaming Exec): the
 * runtime runs `exec --pid-file P id args...` in the foreground as our child,
 * with the process's stdio on pipes, and exits with the process's status.
 * (A terminal needs a subreaper that holds the pty: crisp-monitor --exec.) */
typedef struct oci_exec_proc oci_exec_proc;

/* Start args in the running container id.  Pipes for the streams wanted
 * (the others on /dev/null); *stdin_fd (write end), *stdout_fd and
 * *stderr_fd (read ends) are the caller's to close, -1 when not wanted.
 * Errors: bad id or no command: CR_INVALID_ARGUMENT; the runtime missing:
 * CR_FAILED_PRECONDITION; fork/pipe failures: CR_INTERNAL.  A command
 * that cannot run in the container is only seen by oci_exec_wait. */
int oci_exec_start(const oci_runtime *rt, const char *id, const char *const *args, bool want_stdin,
                   bool want_stdout, bool want_stderr, oci_exec_proc **out, int *stdin_fd, int *stdout_fd,
                   int *stderr_fd, cr_err **err);
/* Write to path the OCI process for `exec --process`: the container's own
 * (process of bundle/config.json: env, user, cwd, capabilities, ...) with
 * args replaced, terminal set as given, and with a terminal of a known size
 * (width and height > 0) its consoleSize, so the pty has that size before
 * the command starts. */
int oci_exec_process_write(const char *bundle, const char *const *args, bool terminal, unsigned width,
                           unsigned height, const char *path, cr_err **err);
/* A pidfd of the runtime, readable once it exited (-1 without pidfd
 * support); owned by p. */
int oci_exec_pidfd(const oci_exec_proc *p);
/* Wait for the runtime: 0 with the process's exit status (128+N for signal
 * N), or -1 when the runtime failed before the process ran (its message,
 * CR_NOT_FOUND / CR_FAILED_PRECONDITION for a container gone or stopped,
 * CR_INTERNAL otherwise). */
int oci_exec_wait(oci_exec_proc *p, int *exit_code, cr_err **err);
/* Kill the process and what it started (SIGKILL), then the runtime, and reap
 * it; nothing when already waited for.  Then free p and its folder. */
void oci_exec_free(oci_exec_proc *p);

/* `update --resources FILE id` with the linux.resources of resources (only
 * the resource fields are read: cpu, memory, pids, hugepages, unified; only
 * those set are written). */
int oci_update(const oci_runtime *rt, const char *id, const oci_spec_input *resources, cr_err **err);
/* Freeze / thaw every process of the container. */
int oci_pause(const oci_runtime *rt, const char *id, cr_err **err);
int oci_resume(const oci_runtime *rt, const char *id, cr_err **err);

#endif
