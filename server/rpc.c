/* gRPC plumbing on the C core API.
 *
 * One acceptor thread owns the notification completion queue: every RPC of the
 * table is registered and kept armed with one outstanding request, plus one
 * generic request that catches unknown method names.  Each request gets its
 * own completion queue bound to the call, so whichever thread handles the call
 * can drive it synchronously.  Unary calls go to a fixed pool of handler
 * threads; server-streaming calls get a thread each, since they may live for
 * hours (GetContainerEvents). */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "image/image.h"
#include "network/network.h"
#include "sandbox.h"
#include "container.h"
#include "metrics.h"
#include "lib/cleanup.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "oci/oci.h"

#define MAX_STREAMS 256
#define MAX_MESSAGE (16 * 1024 * 1024)
#define GENERIC_INDEX (-1)

struct srv_call {
    srv_daemon *d;
    int index;                  /* into d->methods, or GENERIC_INDEX */
    grpc_call *call;
    grpc_completion_queue *cq;  /* bound to this call only */
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_byte_buffer *payload;
    grpc_call_details details;  /* generic calls */
    srv_call *next;
};

struct srv_stream {
    srv_call *c;
    bool sent_md;
    bool gone;          /* client cancelled or connection lost */
    bool close_done;    /* RECV_CLOSE_ON_SERVER completed */
    int cancelled;
    char close_tag, send_tag;
};

static char shutdown_tag;

static void call_free(srv_call *c)
{
    if (!c)
        return;
    if (c->call)
        grpc_call_unref(c->call);
    if (c->payload)
        grpc_byte_buffer_destroy(c->payload);
    grpc_metadata_array_destroy(&c->md);
    if (c->index == GENERIC_INDEX)
        grpc_call_details_destroy(&c->details);
    if (c->cq) {
        grpc_completion_queue_shutdown(c->cq);
        while (grpc_completion_queue_next(c->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type
               != GRPC_QUEUE_SHUTDOWN)
            ;
        grpc_completion_queue_destroy(c->cq);
    }
    free(c);
}

/* Ask gRPC for the next call of one method (or of any unknown method). */
static int arm(srv_daemon *d, int index)
{
    srv_call *c = calloc(1, sizeof(*c));
    if (!c)
        return -1;
    c->d = d;
    c->index = index;
    c->cq = grpc_completion_queue_create_for_next(NULL);
    grpc_metadata_array_init(&c->md);
    grpc_call_error e;
    if (index == GENERIC_INDEX) {
        grpc_call_details_init(&c->details);
        e = grpc_server_request_call(d->server, &c->call, &c->details, &c->md, c->cq, d->cq, c);
    } else {
        e = grpc_server_request_registered_call(d->server, d->methods[index].handle, &c->call,
                                                &c->deadline, &c->md, &c->payload, c->cq,
                                                d->cq, c);
    }
    if (e != GRPC_CALL_OK) {
        cr_log_error("cannot request a call", "method",
                     index == GENERIC_INDEX ? "*" : d->methods[index].path, NULL);
        call_free(c);
        return -1;
    }
    return 0;
}

/* Wait on the call's queue until `tag` completes; other tags of the same call
 * (the stream's close notification) are recorded on the way. */
static bool wait_tag(srv_call *c, void *tag, srv_stream *st)
{
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(c->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type != GRPC_OP_COMPLETE)
            return false;
        if (st && ev.tag == &st->close_tag) {
            st->close_done = true;
            if (st->cancelled)
                st->gone = true;
            if (tag == &st->close_tag)
                return ev.success;
            continue;
        }
        if (ev.tag == tag)
            return ev.success;
    }
}

static grpc_byte_buffer *pack_message(const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return NULL;
    protobuf_c_message_pack(msg, buf);
    grpc_slice s = grpc_slice_new(buf, len, free);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

/* Send the final status of a unary call (with its response when code is OK). */
static void finish_unary(srv_call *c, grpc_byte_buffer *resp, int code, const char *msg)
{
    grpc_op ops[4];
    memset(ops, 0, sizeof(ops));
    int n = 0, cancelled = 0;
    ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
    n++;
    if (resp) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n].data.send_message.send_message = resp;
        n++;
    }
    grpc_slice details = grpc_slice_from_copied_string(msg ? msg : "");
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = (grpc_status_code)code;
    ops[n].data.send_status_from_server.status_details = &details;
    n++;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n].data.recv_close_on_server.cancelled = &cancelled;
    n++;
    char tag;
    if (grpc_call_start_batch(c->call, ops, (size_t)n, &tag, NULL) == GRPC_CALL_OK)
        wait_tag(c, &tag, NULL);
    grpc_slice_unref(details);
    if (resp)
        grpc_byte_buffer_destroy(resp);
}

static const char *call_name(const srv_call *c)
{
    return c->index == GENERIC_INDEX ? "?" : c->d->methods[c->index].path;
}

/* Decode the request of a registered call.  NULL with *err set on failure. */
static ProtobufCMessage *decode_request(srv_call *c, cr_err **err)
{
    const srv_method *m = &c->d->methods[c->index];
    if (!c->payload) {
        cr_err_set(err, CR_INVALID_ARGUMENT, "%s: the request carries no message", m->path + 1);
        return NULL;
    }
    grpc_byte_buffer_reader r;
    if (!grpc_byte_buffer_reader_init(&r, c->payload)) {
        cr_err_set(err, CR_INVALID_ARGUMENT, "%s: cannot read the request message", m->path + 1);
        return NULL;
    }
    grpc_slice s = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    size_t len = GRPC_SLICE_LENGTH(s);
    ProtobufCMessage *req = protobuf_c_message_unpack(m->input, NULL, len, GRPC_SLICE_START_PTR(s));
    grpc_slice_unref(s);
    if (!req)
        cr_err_set(err, CR_INVALID_ARGUMENT, "%s: cannot decode the request as %s (%zu bytes)",
                   m->path + 1, m->input->name, len);
    return req;
}

static double elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static void log_result(srv_call *c, const struct timespec *t0, const cr_err *e)
{
    char ms[32];
    snprintf(ms, sizeof(ms), "%.3f", elapsed_ms(t0));
    if (e)
        cr_log(e->code == CR_INTERNAL || e->code == CR_UNKNOWN ? CR_LOG_ERROR : CR_LOG_INFO,
               "rpc failed", "method", call_name(c), "code", cr_code_name(e->code),
               "error", e->msg, "ms", ms, NULL);
    else if (cr_log_enabled(CR_LOG_DEBUG))
        cr_log_debug("rpc", "method", call_name(c), "ms", ms, NULL);
}

static void handle_unary(srv_call *c)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    _cleanup_err_ cr_err *err = NULL;
    const srv_method *m = &c->d->methods[c->index];
    ProtobufCMessage *req = decode_request(c, &err);
    ProtobufCMessage *resp = NULL;
    if (req) {
        if (!m->rpc->unary)
            cr_err_set(&err, CR_UNIMPLEMENTED, "%s.%s is not implemented by crisp yet",
                       m->rpc->service, m->rpc->method);
        else if (m->rpc->unary(c->d, req, &resp, &err) < 0 && !err)
            cr_err_set(&err, CR_INTERNAL, "%s failed without a reason", m->path + 1);
        protobuf_c_message_free_unpacked(req, NULL);
    }
    grpc_byte_buffer *bb = NULL;
    if (!err && resp) {
        bb = pack_message(resp);
        if (!bb)
            cr_err_set(&err, CR_RESOURCE_EXHAUSTED, "%s: out of memory", m->path + 1);
    } else if (!err) {
        cr_err_set(&err, CR_INTERNAL, "%s returned no response", m->path + 1);
    }
    if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
    log_result(c, &t0, err);
    /* Recorded before the status is sent: a client that sees the answer
     * sees it counted. */
    srv_metrics_rpc(c->d, m->path, err ? err->code : CR_OK, elapsed_ms(&t0) / 1e3);
    finish_unary(c, bb, err ? err->code : CR_OK, err ? err->msg : NULL);
}

static void handle_generic(srv_call *c)
{
    char *method = grpc_slice_to_c_string(c->details.method);
    _cleanup_free_ char *msg = NULL;
    if (asprintf(&msg, "unknown method %s", method) < 0)
        msg = NULL;
    cr_log_info("rpc failed", "method", method, "code", "UNIMPLEMENTED", NULL);
    gpr_free(method);
    srv_metrics_rpc(c->d, NULL, CR_UNIMPLEMENTED, 0); /* method "unknown": not a client-made label */
    finish_unary(c, NULL, CR_UNIMPLEMENTED, msg ? msg : "unknown method");
}

/* ---- streams ---- */

int srv_stream_send_packed(srv_stream *st, const uint8_t *data, size_t len)
{
    if (st->gone)
        return -1;
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)data, len);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    grpc_op ops[2];
    memset(ops, 0, sizeof(ops));
    int n = 0;
    if (!st->sent_md) {
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        st->sent_md = true;
    }
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n].data.send_message.send_message = bb;
    n++;
    bool ok = grpc_call_start_batch(st->c->call, ops, (size_t)n, &st->send_tag, NULL) == GRPC_CALL_OK
              && wait_tag(st->c, &st->send_tag, st);
    grpc_byte_buffer_destroy(bb);
    if (!ok)
        st->gone = true;
    return st->gone ? -1 : 0;
}

int srv_stream_send(srv_stream *st, const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    _cleanup_free_ uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return -1;
    protobuf_c_message_pack(msg, buf);
    return srv_stream_send_packed(st, buf, len);
}

bool srv_stream_gone(srv_stream *st)
{
    while (!st->gone && !st->close_done) {
        grpc_event ev = grpc_completion_queue_next(st->c->cq, gpr_time_0(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type != GRPC_OP_COMPLETE)
            break;
        if (ev.tag == &st->close_tag) {
            st->close_done = true;
            if (st->cancelled || !ev.success)
                st->gone = true;
        }
    }
    return st->gone;
}

static void *stream_thread(void *arg)
{
    srv_call *c = arg;
    srv_daemon *d = c->d;
    const srv_method *m = &d->methods[c->index];
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    _cleanup_err_ cr_err *err = NULL;
    srv_stream st = { .c = c };

    /* Learn of a client cancel while the handler waits for data to send. */
    grpc_op close_op;
    memset(&close_op, 0, sizeof(close_op));
    close_op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    close_op.data.recv_close_on_server.cancelled = &st.cancelled;
    if (grpc_call_start_batch(c->call, &close_op, 1, &st.close_tag, NULL) != GRPC_CALL_OK)
        st.close_done = true;

    cr_log_debug("stream opened", "method", m->path, NULL);
    ProtobufCMessage *req = decode_request(c, &err);
    if (req) {
        if (!m->rpc->stream)
            cr_err_set(&err, CR_UNIMPLEMENTED, "%s.%s is not implemented by crisp yet",
                       m->rpc->service, m->rpc->method);
        else if (m->rpc->stream(d, req, &st, &err) < 0 && !err)
            cr_err_set(&err, st.gone ? CR_CANCELLED : CR_INTERNAL, "%s: stream ended early",
                       m->path + 1);
        protobuf_c_message_free_unpacked(req, NULL);
    }
    log_result(c, &t0, st.gone ? NULL : err);
    srv_metrics_rpc(d, m->path, err ? err->code : CR_OK, elapsed_ms(&t0) / 1e3);

    grpc_op ops[2];
    memset(ops, 0, sizeof(ops));
    int n = 0;
    if (!st.sent_md)
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    grpc_slice details = grpc_slice_from_copied_string(err ? err->msg : "");
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = (grpc_status_code)(err ? err->code : CR_OK);
    ops[n].data.send_status_from_server.status_details = &details;
    n++;
    if (grpc_call_start_batch(c->call, ops, (size_t)n, &st.send_tag, NULL) == GRPC_CALL_OK)
        wait_tag(c, &st.send_tag, &st);
    if (!st.close_done)
        wait_tag(c, &st.close_tag, &st);
    grpc_slice_unref(details);
    call_free(c);

    pthread_mutex_lock(&d->mu);
    d->streams--;
    pthread_cond_broadcast(&d->idle_cond);
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

/* ---- threads ---- */

static void *worker_thread(void *arg)
{
    srv_daemon *d = arg;
    pthread_mutex_lock(&d->mu);
    for (;;) {
        while (!d->queue_head && !atomic_load(&d->stopping))
            pthread_cond_wait(&d->cond, &d->mu);
        srv_call *c = d->queue_head;
        if (!c)
            break; /* stopping and nothing left */
        d->queue_head = c->next;
        if (!d->queue_head)
            d->queue_tail = NULL;
        d->busy++;
        pthread_mutex_unlock(&d->mu);
        if (c->index == GENERIC_INDEX)
            handle_generic(c);
        else
            handle_unary(c);
        call_free(c);
        pthread_mutex_lock(&d->mu);
        d->busy--;
        pthread_cond_broadcast(&d->idle_cond);
    }
    d->threads_running--;
    pthread_cond_broadcast(&d->idle_cond);
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

static void dispatch(srv_daemon *d, srv_call *c)
{
    if (c->index != GENERIC_INDEX && d->methods[c->index].rpc->streaming) {
        pthread_mutex_lock(&d->mu);
        bool room = d->streams < MAX_STREAMS;
        if (room)
            d->streams++;
        pthread_mutex_unlock(&d->mu);
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (room && pthread_create(&t, &attr, stream_thread, c) == 0) {
            pthread_attr_destroy(&attr);
            return;
        }
        pthread_attr_destroy(&attr);
        if (room) {
            pthread_mutex_lock(&d->mu);
            d->streams--;
            pthread_mutex_unlock(&d->mu);
        }
        srv_metrics_rpc(d, d->methods[c->index].path, CR_RESOURCE_EXHAUSTED, 0);
        finish_unary(c, NULL, CR_RESOURCE_EXHAUSTED, "too many open streams");
        call_free(c);
        return;
    }
    pthread_mutex_lock(&d->mu);
    if (d->queue_tail)
        d->queue_tail->next = c;
    else
        d->queue_head = c;
    d->queue_tail = c;
    pthread_cond_signal(&d->cond);
    pthread_mutex_unlock(&d->mu);
}

static void *acceptor_thread(void *arg)
{
    srv_daemon *d = arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(d->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        if (ev.tag == &shutdown_tag) {
            pthread_mutex_lock(&d->mu);
            d->shutdown_done = true;
            pthread_cond_broadcast(&d->idle_cond);
            pthread_mutex_unlock(&d->mu);
            continue;
        }
        srv_call *c = ev.tag;
        if (!ev.success) {
            call_free(c); /* the server is shutting down */
            continue;
        }
        if (!atomic_load(&d->stopping))
            arm(d, c->index);
        dispatch(d, c);
    }
    return NULL;
}

/* ---- socket ---- */

/* Refuse to take over a socket another live server answers on; remove a
 * stale socket file left by a crash.  The lock file makes the check atomic
 * between two crispd starting at once. */
static int claim_socket(srv_daemon *d, cr_err **err)
{
    const char *path = d->cfg->listen;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sa.sun_path))
        return cr_err_set(err, CR_INVALID_ARGUMENT, "listen %s: path longer than %zu bytes",
                          path, sizeof(sa.sun_path) - 1);
    _cleanup_free_ char *dir = strdup(path);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash && slash != dir) {
        *slash = '\0';
        if (cr_mkdir_p(dir, 0755, err) < 0)
            return cr_err_prefix(err, "listen %s", path);
    }
    if (asprintf(&d->lock_path, "%s.lock", path) < 0)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    d->lock_fd = open(d->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (d->lock_fd < 0)
        return cr_err_errno(err, CR_FAILED_PRECONDITION, errno, "listen %s: open %s", path,
                            d->lock_path);
    if (flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        char pid[32] = "";
        ssize_t n = pread(d->lock_fd, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(d->lock_fd);
        d->lock_fd = -1;
        free(d->lock_path);
        d->lock_path = NULL; /* not ours to remove */
        return cr_err_set(err, CR_ALREADY_EXISTS,
                          "listen %s: another crispd (pid %s) is serving this socket", path,
                          *pid ? pid : "?");
    }
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
    if (ftruncate(d->lock_fd, 0) < 0 || pwrite(d->lock_fd, pid, (size_t)n, 0) != n)
        cr_log_warn("cannot record pid in lock file", "path", d->lock_path, NULL);

    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : cr_err_errno(err, CR_FAILED_PRECONDITION, errno, "listen %s", path);
    if (!S_ISSOCK(st.st_mode))
        return cr_err_set(err, CR_FAILED_PRECONDITION,
                          "listen %s: a file that is not a socket is in the way", path);
    strcpy(sa.sun_path, path);
    _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
        return cr_err_set(err, CR_ALREADY_EXISTS,
                          "listen %s: another process is accepting connections on this socket",
                          path);
    cr_log_info("removing stale socket", "path", path, NULL);
    if (unlink(path) < 0 && errno != ENOENT)
        return cr_err_errno(err, CR_FAILED_PRECONDITION, errno, "listen %s: remove stale socket", path);
    return 0;
}

/* One crispd per root: the state under it has a single writer. */
static int lock_root(srv_daemon *d, cr_err **err)
{
    _cleanup_free_ char *path = NULL;
    if (asprintf(&path, "%s/crispd.lock", d->cfg->root) < 0)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    d->root_lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (d->root_lock_fd < 0)
        return cr_err_errno(err, CR_FAILED_PRECONDITION, errno, "root %s: open %s", d->cfg->root, path);
    if (flock(d->root_lock_fd, LOCK_EX | LOCK_NB) < 0) {
        char pid[32] = "";
        ssize_t n = pread(d->root_lock_fd, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        return cr_err_set(err, CR_ALREADY_EXISTS, "root %s: another crispd (pid %s) is using it",
                          d->cfg->root, *pid ? pid : "?");
    }
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
    if (ftruncate(d->root_lock_fd, 0) < 0 || pwrite(d->root_lock_fd, pid, (size_t)n, 0) != n)
        cr_log_warn("cannot record pid in lock file", "path", path, NULL);
    return 0;
}

static int open_images(srv_daemon *d, cr_err **err)
{
    const cr_config *c = d->cfg;
    _cleanup_free_ char *storage = NULL;
    if (asprintf(&storage, "%s/storage", c->root) < 0)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    img_store_opts o = {
        .root = storage,
        .registries_conf = c->registries_conf,
        .registries_conf_dir = c->registries_conf_dir,
        .auth_file = c->auth_file,
        .pinned_image = c->pause_image,
        .max_parallel_downloads = (int)c->max_parallel_downloads,
        .progress_timeout_s = (int)c->pull_progress_timeout,
    };
    return img_store_open(&o, &d->images, err) < 0 ? cr_err_prefix(err, "image store") : 0;
}

static int open_network(srv_daemon *d, cr_err **err)
{
    _cleanup_free_ char *cache = NULL;
    if (asprintf(&cache, "%s/cni", d->cfg->root) < 0)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    net_cni_opts o = {
        .conf_dir = d->cfg->cni_config_dir,
        .plugin_dirs = d->cfg->cni_plugin_dirs,
        .cache_dir = cache,
        .timeout_s = 60,
    };
    return net_cni_new(&o, &d->cni, err) < 0 ? cr_err_prefix(err, "CNI") : 0;
}

static int register_methods(srv_daemon *d, cr_err **err)
{
    const ProtobufCServiceDescriptor *services[] = {
        &runtime__v1__runtime_service__descriptor,
        &runtime__v1__image_service__descriptor,
    };
    size_t total = 0;
    for (size_t s = 0; s < 2; s++)
        total += services[s]->n_methods;
    if (total != srv_n_rpcs)
        return cr_err_set(err, CR_INTERNAL, "dispatch table has %zu RPCs, the API has %zu",
                          srv_n_rpcs, total);
    d->methods = calloc(total, sizeof(*d->methods));
    if (!d->methods)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    for (size_t s = 0; s < 2; s++) {
        const ProtobufCServiceDescriptor *sd = services[s];
        for (unsigned i = 0; i < sd->n_methods; i++) {
            const ProtobufCMethodDescriptor *md = &sd->methods[i];
            const srv_rpc *rpc = NULL;
            for (size_t k = 0; k < srv_n_rpcs && !rpc; k++)
                if (strcmp(srv_rpcs[k].method, md->name) == 0 &&
                    strcmp(srv_rpcs[k].service, sd->short_name) == 0)
                    rpc = &srv_rpcs[k];
            if (!rpc)
                return cr_err_set(err, CR_INTERNAL, "%s.%s is missing from the dispatch table",
                                  sd->name, md->name);
            srv_method *m = &d->methods[d->n_methods++];
            m->rpc = rpc;
            m->input = md->input;
            m->output = md->output;
            snprintf(m->path, sizeof(m->path), "/%s/%s", sd->name, md->name);
            m->handle = grpc_server_register_method(d->server, m->path, NULL,
                                                    GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
            if (!m->handle)
                return cr_err_set(err, CR_INTERNAL, "cannot register %s", m->path);
        }
    }
    return 0;
}

static void release(srv_daemon *d)
{
    if (d->socket_bound && unlink(d->cfg->listen) < 0 && errno != ENOENT)
        cr_log_warn("cannot remove socket", "path", d->cfg->listen, "error", strerror(errno), NULL);
    if (d->lock_path)
        unlink(d->lock_path);
    if (d->lock_fd >= 0)
        close(d->lock_fd);
    srv_streaming_stop(d); /* sessions use the container and pod records */
    srv_exit_watcher_stop(d);
    srv_metrics_stop(d); /* before the lists its scrapes walk are freed */
    srv_containers_free(d);
    srv_sandboxes_free(d);
    if (d->cni)
        net_cni_free(d->cni);
    if (d->images)
        img_store_close(d->images);
    if (d->root_lock_fd >= 0)
        close(d->root_lock_fd);
    free(d->lock_path);
    free(d->methods);
    free(d->runtime_path);
    free(d->pod_cidr);
    if (d->events)
        srv_events_free(d->events);
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cond);
    pthread_cond_destroy(&d->idle_cond);
    pthread_mutex_destroy(&d->sb_mu);
    pthread_cond_destroy(&d->sb_cond);
    pthread_mutex_destroy(&d->ctr_mu);
    pthread_cond_destroy(&d->ctr_cond);
    cr_config_free(d->cfg);
    bool inited = d->grpc_inited;
    free(d);
    if (inited)
        grpc_shutdown_blocking();
}

/* Create the server, register every method and bind the socket.  The
 * socket is bound under a tight umask so it is never reachable by others,
 * then opened to the root group as documented. */
static int bind_server(srv_daemon *d, cr_err **err)
{
    grpc_arg args[2] = {
        { .type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, .value.integer = MAX_MESSAGE },
        { .type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, .value.integer = MAX_MESSAGE },
    };
    grpc_channel_args chargs = { .num_args = 2, .args = args };
    d->server = grpc_server_create(&chargs, NULL);
    d->cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(d->server, d->cq, NULL);
    if (register_methods(d, err) < 0)
        return -1;
    _cleanup_free_ char *addr = NULL;
    if (asprintf(&addr, "unix:%s", d->cfg->listen) < 0)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    mode_t old_umask = umask(0077);
    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    int port = grpc_server_add_http2_port(d->server, addr, creds);
    grpc_server_credentials_release(creds);
    umask(old_umask);
    if (port == 0)
        return cr_err_set(err, CR_FAILED_PRECONDITION, "listen %s: cannot bind the socket",
                          d->cfg->listen);
    d->socket_bound = true;
    return 0;
}

/* After grpc_server_start: socket mode, outstanding requests, handler threads. */
static int start_serving(srv_daemon *d, cr_err **err)
{
    if (chmod(d->cfg->listen, 0660) < 0 || chown(d->cfg->listen, 0, 0) < 0)
        return cr_err_errno(err, CR_FAILED_PRECONDITION, errno,
                            "listen %s: set mode 0660 owner root", d->cfg->listen);
    for (size_t i = 0; i < d->n_methods; i++)
        if (arm(d, (int)i) < 0)
            return cr_err_set(err, CR_INTERNAL, "cannot arm %s", d->methods[i].path);
    if (arm(d, GENERIC_INDEX) < 0)
        return cr_err_set(err, CR_INTERNAL, "cannot arm the unknown-method handler");
    for (int64_t i = 0; i < d->cfg->threads; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, worker_thread, d) != 0)
            return cr_err_errno(err, CR_RESOURCE_EXHAUSTED, errno, "start handler threads");
        pthread_detach(t);
        pthread_mutex_lock(&d->mu);
        d->threads_running++;
        pthread_mutex_unlock(&d->mu);
    }
    return 0;
}

static void destroy_unstarted(srv_daemon *d)
{
    if (d->server)
        grpc_server_destroy(d->server);
    if (d->cq) {
        grpc_completion_queue_shutdown(d->cq);
        while (grpc_completion_queue_next(d->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type
               != GRPC_QUEUE_SHUTDOWN)
            ;
        grpc_completion_queue_destroy(d->cq);
    }
    release(d);
}

srv_daemon *srv_start(cr_config *cfg, cr_err **err)
{
    srv_daemon *d = calloc(1, sizeof(*d));
    if (!d) {
        cr_config_free(cfg);
        cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
        return NULL;
    }
    d->cfg = cfg;
    d->lock_fd = -1;
    d->root_lock_fd = -1;
    clock_gettime(CLOCK_REALTIME, &d->started);
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cond, NULL);
    pthread_cond_init(&d->idle_cond, NULL);
    pthread_mutex_init(&d->sb_mu, NULL);
    pthread_cond_init(&d->sb_cond, NULL);
    pthread_mutex_init(&d->ctr_mu, NULL);
    pthread_cond_init(&d->ctr_cond, NULL);
    d->exit_inotify = d->exit_wake[0] = d->exit_wake[1] = -1;
    atomic_init(&d->stopping, false);

    /* Handlers without a runtime_path run the binary of their name found in PATH. */
    for (size_t i = 0; i < cfg->n_runtimes; i++) {
        cr_runtime_handler *rh = &cfg->runtimes[i];
        if (!*rh->runtime_path) {
            _cleanup_free_ char *found = cr_find_executable(rh->name);
            if (found)
                cr_config_set_str(&rh->runtime_path, found);
        }
    }
    const cr_runtime_handler *h = cr_config_runtime(cfg, cfg->default_runtime);
    d->runtime_path = cr_find_executable(h && *h->runtime_path ? h->runtime_path : cfg->default_runtime);

    if (cr_mkdir_p(cfg->root, 0711, err) < 0 || cr_mkdir_p(cfg->runroot, 0711, err) < 0) {
        release(d);
        return NULL;
    }
    d->events = srv_events_new();
    if (!d->events) {
        cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
        release(d);
        return NULL;
    }
    if (claim_socket(d, err) < 0 || lock_root(d, err) < 0 || open_images(d, err) < 0 ||
        open_network(d, err) < 0 || srv_pause_prepare(d, err) < 0 || srv_sandboxes_load(d, err) < 0 ||
        srv_exit_watcher_start(d, err) < 0 || srv_containers_load(d, err) < 0 || srv_metrics_start(d, err) < 0 ||
        srv_streaming_start(d, err) < 0) {
        release(d);
        return NULL;
    }
    cr_err *aa = NULL;
    if (oci_apparmor_load_default(d->cfg->runroot, &aa) < 0) {
        /* Not fatal: pods that ask for the default profile get a clear error. */
        cr_log_warn("default AppArmor profile not loaded", "error", aa->msg, NULL);
        cr_err_free(aa);
    }
    grpc_init();
    d->grpc_inited = true;
    if (bind_server(d, err) < 0) {
        destroy_unstarted(d);
        return NULL;
    }
    grpc_server_start(d->server);
    if (pthread_create(&d->acceptor, NULL, acceptor_thread, d) != 0) {
        cr_err_errno(err, CR_RESOURCE_EXHAUSTED, errno, "start acceptor thread");
        grpc_server_shutdown_and_notify(d->server, d->cq, &shutdown_tag);
        grpc_server_cancel_all_calls(d->server);
        while (grpc_completion_queue_next(d->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).tag
               != &shutdown_tag)
            ;
        destroy_unstarted(d);
        return NULL;
    }
    if (start_serving(d, err) < 0) {
        srv_stop(d);
        return NULL;
    }
    return d;
}

/* Wait on idle_cond until pred holds or the deadline passes. */
static bool wait_until(srv_daemon *d, bool (*pred)(srv_daemon *), const struct timespec *deadline)
{
    pthread_mutex_lock(&d->mu);
    while (!pred(d)) {
        if (pthread_cond_timedwait(&d->idle_cond, &d->mu, deadline) == ETIMEDOUT) {
            bool ok = pred(d);
            pthread_mutex_unlock(&d->mu);
            return ok;
        }
    }
    pthread_mutex_unlock(&d->mu);
    return true;
}

static bool is_shutdown_done(srv_daemon *d) { return d->shutdown_done; }
static bool calls_drained(srv_daemon *d)
{
    return !d->queue_head && d->busy == 0 && d->streams == 0 && d->threads_running == 0;
}

void srv_stop(srv_daemon *d)
{
    if (!d)
        return;
    atomic_store(&d->stopping, true);
    char grace[24];
    snprintf(grace, sizeof(grace), "%lld", (long long)d->cfg->shutdown_timeout);
    cr_log_info("shutting down", "grace_seconds", grace, NULL);
    grpc_server_shutdown_and_notify(d->server, d->cq, &shutdown_tag);
    srv_events_close(d->events);
    pthread_mutex_lock(&d->mu);
    pthread_cond_broadcast(&d->cond); /* idle workers exit once the queue is empty */
    pthread_mutex_unlock(&d->mu);

    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += d->cfg->shutdown_timeout;
    bool done = wait_until(d, is_shutdown_done, &deadline);
    if (!done) {
        cr_log_warn("in-flight calls did not finish in time; cancelling them", NULL);
        grpc_server_cancel_all_calls(d->server);
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 5;
        done = wait_until(d, is_shutdown_done, &deadline);
    }
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 5;
    bool drained = wait_until(d, calls_drained, &deadline);
    if (!done || !drained) {
        /* A handler is stuck in a call that ignores cancellation: leave the
         * gRPC objects alone (destroying them under it would crash) and let
         * process exit reclaim them. */
        cr_log_warn("handlers still busy at exit", NULL);
        if (d->socket_bound)
            unlink(d->cfg->listen);
        if (d->lock_path)
            unlink(d->lock_path);
        return;
    }
    grpc_server_destroy(d->server);
    grpc_completion_queue_shutdown(d->cq);
    pthread_join(d->acceptor, NULL);
    grpc_completion_queue_destroy(d->cq);
    release(d);
}
