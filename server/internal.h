/* Private to server/: the daemon context, the RPC table and handler types. */
#ifndef CRISP_SERVER_INTERNAL_H
#define CRISP_SERVER_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <time.h>

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

#include "proto/api.pb-c.h"
#include "lib/config.h"
#include "lib/err.h"
#include "server.h"

typedef struct srv_stream srv_stream;
typedef struct srv_call srv_call;
typedef struct srv_events srv_events;

/* A unary handler fills *resp with a heap-built message (every string and
 * sub-message malloc'ed, so protobuf_c_message_free_unpacked frees it). */
typedef int (*srv_unary_fn)(srv_daemon *d, const ProtobufCMessage *req,
                            ProtobufCMessage **resp, cr_err **err);
/* A streaming handler sends with srv_stream_send and returns when done; its
 * error (if any) becomes the stream's final status. */
typedef int (*srv_stream_fn)(srv_daemon *d, const ProtobufCMessage *req,
                             srv_stream *st, cr_err **err);

typedef struct srv_rpc {
    const char *service;  /* "RuntimeService" or "ImageService" */
    const char *method;   /* "Version" */
    bool streaming;       /* server-streaming response */
    srv_unary_fn unary;   /* NULL (and stream NULL): UNIMPLEMENTED */
    srv_stream_fn stream;
} srv_rpc;

/* The one dispatch table: every RPC of both services (dispatch.c). */
extern const srv_rpc srv_rpcs[];
extern const size_t srv_n_rpcs;

/* One registered method: the table entry plus what gRPC and protobuf-c need. */
typedef struct srv_method {
    const srv_rpc *rpc;
    char path[128];  /* "/runtime.v1.RuntimeService/Version" */
    const ProtobufCMessageDescriptor *input, *output;
    void *handle;    /* grpc_server_register_method result */
} srv_method;

struct srv_daemon {
    cr_config *cfg;
    struct timespec started;
    char *runtime_path;   /* resolved binary of the default handler, or NULL */

    grpc_server *server;
    grpc_completion_queue *cq;  /* new-call notifications + shutdown */
    srv_method *methods;
    size_t n_methods;
    pthread_t acceptor;
    int lock_fd;                /* flock on <listen>.lock while we serve */
    int root_lock_fd;           /* flock on <root>/crispd.lock */
    char *lock_path;
    bool socket_bound;
    bool grpc_inited;

    /* Unary calls queue here for the handler threads. */
    pthread_mutex_t mu;
    pthread_cond_t cond;        /* work queued, or stopping */
    pthread_cond_t idle_cond;   /* a call finished */
    srv_call *queue_head, *queue_tail;
    int busy;                   /* unary calls being handled */
    int streams;                /* streaming calls in their own threads */
    int threads_running;
    bool shutdown_done;         /* grpc server shutdown tag arrived */
    atomic_bool stopping;

    /* From UpdateRuntimeConfig. */
    char *pod_cidr;

    srv_events *events;
    struct img_store *images;   /* image/ store: thread-safe on its own */
    struct net_cni *cni;        /* network/ CNI client: thread-safe on its own */
    char *pause_rootfs;         /* built-in pause rootfs, NULL when crisp-pause is missing */
    struct srv_metrics *metrics; /* metrics.h; NULL when [crisp.metrics] enable is false */
    struct st_server *stream;   /* exec/attach/port-forward server (streaming.c) */

    /* Pod sandboxes (sandbox.c). */
    pthread_mutex_t sb_mu;      /* guards the list, references, reservations */
    pthread_cond_t sb_cond;     /* a name reservation ended */
    struct srv_sandbox **sandboxes;
    size_t n_sandboxes;
    char **sb_reserving;        /* names whose RunPodSandbox is in flight */

    /* Containers (container.c). */
    pthread_mutex_t ctr_mu;     /* guards the list, references, reservations, container states */
    pthread_cond_t ctr_cond;    /* a container exited, or a reservation ended */
    struct srv_container **containers;
    size_t n_containers;
    char **ctr_reserving;
    int exit_inotify;           /* watch on <runroot>/exits */
    int exit_wake[2];
    pthread_t exit_thread;
    bool exit_thread_started;
};

/* Streaming helpers for handlers.  Both return -1 once the client is gone. */
int srv_stream_send(srv_stream *st, const ProtobufCMessage *msg);
int srv_stream_send_packed(srv_stream *st, const uint8_t *data, size_t len);
/* Checks (without waiting) whether the client cancelled the stream. */
bool srv_stream_gone(srv_stream *st);

/* Handlers (one file per area). */
int srv_version(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err);
int srv_status(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err);
int srv_runtime_config(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err);
int srv_update_runtime_config(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err);
int srv_get_container_events(srv_daemon *d, const ProtobufCMessage *req, srv_stream *st, cr_err **err);
int srv_run_pod_sandbox(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err);
int srv_stop_pod_sandbox(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err);
int srv_remove_pod_sandbox(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err);
int srv_pod_sandbox_status(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err);
int srv_list_pod_sandbox(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err);
int srv_stream_pod_sandboxes(srv_daemon *d, const ProtobufCMessage *req, srv_stream *st, cr_err **err);
int srv_create_container(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err);
int srv_start_container(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err);
int srv_stop_container(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err);
int srv_remove_container(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err);
int srv_container_status(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err);
int srv_list_containers(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err);
int srv_stream_containers(srv_daemon *d, const ProtobufCMessage *req, srv_stream *st, cr_err **err);
int srv_exec_sync(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err);
/* streaming.c */
int srv_exec(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err);
int srv_attach(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err);
int srv_port_forward(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err);
int srv_streaming_start(srv_daemon *d, cr_err **err);
void srv_streaming_stop(srv_daemon *d);   /* ends every session */
char *srv_streaming_info(srv_daemon *d);  /* "host:port", heap; NULL when not running */
/* stats.c */
int srv_container_stats(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err);
int srv_list_container_stats(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err);
int srv_stream_container_stats(srv_daemon *d, const ProtobufCMessage *req, srv_stream *st, cr_err **err);
int srv_pod_sandbox_stats(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err);
int srv_list_pod_sandbox_stats(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err);
int srv_stream_pod_sandbox_stats(srv_daemon *d, const ProtobufCMessage *req, srv_stream *st, cr_err **err);
int srv_list_metric_descriptors(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err);
int srv_list_pod_sandbox_metrics(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err);
int srv_stream_pod_sandbox_metrics(srv_daemon *d, const ProtobufCMessage *req, srv_stream *st, cr_err **err);
int srv_update_container_resources(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err);
int srv_reopen_container_log(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err);
int srv_pull_image(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err);
int srv_list_images(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err);
int srv_stream_images(srv_daemon *d, const ProtobufCMessage *req, srv_stream *st, cr_err **err);
int srv_image_status(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err);
int srv_remove_image(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err);
int srv_image_fs_info(srv_daemon *d, const ProtobufCMessage *req, ProtobufCMessage **resp, cr_err **err);

/* Events hub (events.c). */
srv_events *srv_events_new(void);
void srv_events_close(srv_events *ev);   /* ends every subscription */
void srv_events_free(srv_events *ev);
/* Hand an event to every subscriber without blocking; a subscriber whose
 * buffer is full is dropped (its stream ends with RESOURCE_EXHAUSTED). */
void srv_events_publish(srv_events *ev, const Runtime__V1__ContainerEventResponse *msg);
/* Whether anybody subscribes (events are not even built otherwise). */
bool srv_events_wanted(srv_events *ev);
/* Publish a lifecycle event of container id (or of the pod's sandbox, with
 * id == pod_id) carrying the pod's status and all its containers' statuses,
 * as the kubelet's evented PLEG expects.  Call without holding ctr_mu. */
void srv_publish_event(srv_daemon *d, const char *id, const char *pod_id, Runtime__V1__ContainerEventType type);

/* util.c */
char *srv_pathf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int64_t srv_now_ns(void);
void srv_sleep_ms(long ms);
/* Value for key in a protobuf-c map (entries laid out { base; key; value }). */
const char *srv_map_get(size_t n, void *const *entries, const char *key);
/* Copy a map into entries of another map message type (same layout). */
void *srv_copy_map(bool *oom, size_t n, void *const *entries, const ProtobufCMessageDescriptor *desc,
                   size_t *n_out);
int srv_empty_response(const ProtobufCMessageDescriptor *desc, ProtobufCMessage **resp, cr_err **err);
/* A CRI SecurityProfile (or, when it is unset, the deprecated string field
 * it replaced) as oci_spec_input takes it: "runtime/default" (also when both
 * are unset), "unconfined", "localhost/<ref>".  Heap string. */
char *srv_security_profile(const Runtime__V1__SecurityProfile *p, const char *deprecated);
/* Start time of a live process (field 22 of /proc/pid/stat); 0 if gone or a zombie. */
uint64_t srv_proc_start_time(int pid);
struct oci_runtime;
const struct oci_runtime *srv_handler_runtime(srv_daemon *d, const char *name, struct oci_runtime *out);

/* monitor.c: start a crisp-monitor that runs `runtime create` for id. */
typedef struct srv_monitor_req {
    const char *id, *name, *bundle;
    const struct oci_runtime *rt;
    const char *log_path;      /* CRI log file */
    const char *state_dir;     /* the monitor's attach socket and ctl fifo */
    const char *cgroups_path;  /* cgroupfs path for OOM watching, or NULL */
    bool tty, stdin_, stdin_once;
    /* Exec mode (crisp-monitor --exec): the command to run in the running
     * container id; no CRI log (log_path NULL); the exit file goes to the
     * state dir.  The monitor waits for its first attach client before it
     * runs anything: *attach_fd gets that connection, made here. */
    const char *const *exec_args;
    const char *exec_process;  /* or an OCI process JSON file (exec --process) */
    int *attach_fd;
} srv_monitor_req;
/* The created (not yet started) container's pid in *pid (exec mode: the
 * exec'd process's). */
int srv_monitor_launch(srv_daemon *d, const srv_monitor_req *m, int *pid, cr_err **err);
/* cgroupsPath for a pod or container under parent, per the cgroup manager. */
char *srv_cgroups_path(srv_daemon *d, const char *parent, const char *id);

/* strdup that never returns NULL for a NULL input (gives ""). */
char *srv_strdup(const char *s);

#endif
