/* Private to server/: containers and their lifecycle. */
#ifndef CRISP_SERVER_CONTAINER_H
#define CRISP_SERVER_CONTAINER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"
#include "proto/api.pb-c.h"

typedef struct srv_daemon srv_daemon;

typedef struct srv_container {
    char id[65];
    char sandbox_id[65];
    char *name;                          /* k8s_<name>_<pod>_<namespace>_<uid>_<attempt> */
    Runtime__V1__ContainerConfig *config;
    char *image_id;                      /* sha256:... */
    char *runtime_handler;
    char *log_path;                      /* "" when the pod has no log_directory */
    char *cgroups_path;
    int stop_signal;                     /* from the config or the image; default SIGTERM */
    Runtime__V1__ContainerState state;
    int64_t created_at, started_at, finished_at;
    int exit_code;
    bool oom_killed;
    char *reason, *message;
    int pid;
    uint64_t pid_start;

    int refs;                            /* guarded by d->ctr_mu */
    bool gone;
    pthread_mutex_t op_mu;
} srv_container;

/* Every container, each with a reference (NULL-terminated, *n of them);
 * srv_containers_release drops the references and frees the array. */
srv_container **srv_containers_snapshot(srv_daemon *d, size_t *n);
void srv_containers_release(srv_daemon *d, srv_container **v, size_t n);
int srv_containers_load(srv_daemon *d, cr_err **err);
void srv_containers_free(srv_daemon *d);
/* Start/stop the exit-file watcher thread. */
int srv_exit_watcher_start(srv_daemon *d, cr_err **err);
void srv_exit_watcher_stop(srv_daemon *d);
/* A container by full id or unique prefix, with a reference (NULL with *err:
 * CR_NOT_FOUND, or CR_INVALID_ARGUMENT for an empty or ambiguous id). */
srv_container *srv_container_get(srv_daemon *d, const char *id, cr_err **err);
void srv_container_put(srv_daemon *d, srv_container *c);
/* "created", "running", "exited" or "unknown". */
const char *srv_container_state_name(Runtime__V1__ContainerState s);
/* Its state now (read under ctr_mu). */
Runtime__V1__ContainerState srv_container_state(srv_daemon *d, srv_container *c);
/* <root>/containers/<id>/bundle and <runroot>/containers/<id> (the monitor's
 * state dir: attach socket, ctl fifo). */
char *srv_container_bundle(srv_daemon *d, const char *id);
char *srv_container_rundir(srv_daemon *d, const char *id);
/* Used by StopPodSandbox / RemovePodSandbox for the pod's containers. */
int srv_containers_stop_pod(srv_daemon *d, const char *pod_id, cr_err **err);
int srv_containers_remove_pod(srv_daemon *d, const char *pod_id, cr_err **err);

#endif
