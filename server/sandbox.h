/* Private to server/: pod sandbox records and their lifecycle. */
#ifndef CRISP_SERVER_SANDBOX_H
#define CRISP_SERVER_SANDBOX_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"
#include "proto/api.pb-c.h"

typedef struct srv_daemon srv_daemon;

typedef struct srv_sandbox {
    char id[65];
    char *name;                         /* k8s_<name>_<namespace>_<uid>_<attempt> */
    Runtime__V1__PodSandboxConfig *config;  /* as the client sent it */
    char *runtime_handler;              /* resolved handler name */
    bool ready;
    int64_t created_at;                 /* unix ns */
    bool host_network;
    char *netns;                        /* pinned netns path, "" for host network */
    char **ips;                         /* NULL-terminated */
    int pid;                            /* infra process */
    uint64_t pid_start;                 /* its start time (guards against pid reuse) */
    char *cgroups_path;

    int refs;                           /* guarded by d->sb_mu */
    bool gone;                          /* removed from the list */
    pthread_mutex_t op_mu;              /* one lifecycle operation at a time */
} srv_sandbox;

/* A sandbox by full id or unique prefix, with a reference (NULL: none, or
 * *err set for an ambiguous prefix); srv_sandbox_put drops the reference. */
srv_sandbox *srv_sandbox_get(srv_daemon *d, const char *id, cr_err **err);
void srv_sandbox_put(srv_daemon *d, srv_sandbox *sb);
/* Folders: <root>/sandboxes/<id> and <runroot>/sandboxes/<id>. */
char *srv_sandbox_dir(srv_daemon *d, const char *id);
char *srv_sandbox_rundir(srv_daemon *d, const char *id);

/* The pod's status message (for events; reads fields that do not change
 * after creation, and the ready flag, without the op lock). */
Runtime__V1__PodSandboxStatus *srv_sandbox_status_pb(bool *oom, const srv_sandbox *sb);
/* The exit watcher saw the infra process's exit file: a READY pod turns NOTREADY. */
void srv_sandbox_infra_exited(srv_daemon *d, const char *id);
/* Load records at start and reconcile them with the runtime. */
int srv_sandboxes_load(srv_daemon *d, cr_err **err);
void srv_sandboxes_free(srv_daemon *d);
/* Prepare the built-in pause rootfs under <root>/pause. */
int srv_pause_prepare(srv_daemon *d, cr_err **err);

#endif
