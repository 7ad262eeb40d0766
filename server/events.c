/* Container events hub and the GetContainerEvents stream.
 *
 * Publishers pack an event once and append it to every subscriber's bounded
 * queue without waiting; a subscriber that falls CAPACITY events behind is
 * dropped, so a client that never reads can never stall the runtime. */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CAPACITY 1024
#define POLL_MS 100   /* how often an idle stream checks for a client cancel */

typedef struct packed { uint8_t *data; size_t len; } packed;

typedef struct sub {
    packed q[CAPACITY];
    size_t head, count;
    bool overflow;
    pthread_cond_t cond;
    struct sub *next;
} sub;

struct srv_events {
    pthread_mutex_t mu;
    sub *subs;
    bool closed;
};

srv_events *srv_events_new(void)
{
    srv_events *ev = calloc(1, sizeof(*ev));
    if (ev)
        pthread_mutex_init(&ev->mu, NULL);
    return ev;
}

void srv_events_close(srv_events *ev)
{
    pthread_mutex_lock(&ev->mu);
    ev->closed = true;
    for (sub *s = ev->subs; s; s = s->next)
        pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&ev->mu);
}

void srv_events_free(srv_events *ev)
{
    /* Subscribers are gone by now: srv_stop waits for every stream thread. */
    pthread_mutex_destroy(&ev->mu);
    free(ev);
}

bool srv_events_wanted(srv_events *ev)
{
    if (!ev)
        return false;
    pthread_mutex_lock(&ev->mu);
    bool any = ev->subs != NULL;
    pthread_mutex_unlock(&ev->mu);
    return any;
}

void srv_events_publish(srv_events *ev, const Runtime__V1__ContainerEventResponse *msg)
{
    size_t len = protobuf_c_message_get_packed_size(&msg->base);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return;
    protobuf_c_message_pack(&msg->base, buf);
    pthread_mutex_lock(&ev->mu);
    for (sub *s = ev->subs; s; s = s->next) {
        if (s->overflow)
            continue;
        if (s->count == CAPACITY) {
            s->overflow = true;
        } else {
            uint8_t *copy = malloc(len ? len : 1);
            if (!copy) {
                s->overflow = true;
            } else {
                memcpy(copy, buf, len);
                s->q[(s->head + s->count) % CAPACITY] = (packed){ copy, len };
                s->count++;
            }
        }
        pthread_cond_signal(&s->cond);
    }
    pthread_mutex_unlock(&ev->mu);
    free(buf);
}

static void unsubscribe(srv_events *ev, sub *s)
{
    pthread_mutex_lock(&ev->mu);
    for (sub **pp = &ev->subs; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    pthread_mutex_unlock(&ev->mu);
    for (size_t i = 0; i < s->count; i++)
        free(s->q[(s->head + i) % CAPACITY].data);
    pthread_cond_destroy(&s->cond);
    free(s);
}

int srv_get_container_events(srv_daemon *d, const ProtobufCMessage *req, srv_stream *st, cr_err **err)
{
    srv_events *ev = d->events;
    sub *s = calloc(1, sizeof(*s));
    if (!s)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "container events: out of memory");
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cond, &ca);
    pthread_condattr_destroy(&ca);

    pthread_mutex_lock(&ev->mu);
    s->next = ev->subs;
    ev->subs = s;
    pthread_mutex_unlock(&ev->mu);

    int rc = 0;
    for (;;) {
        pthread_mutex_lock(&ev->mu);
        if (s->count == 0 && !s->overflow && !ev->closed) {
            struct timespec until;
            clock_gettime(CLOCK_MONOTONIC, &until);
            until.tv_nsec += POLL_MS * 1000000L;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&s->cond, &ev->mu, &until);
        }
        if (s->count > 0) {
            packed p = s->q[s->head];
            s->head = (s->head + 1) % CAPACITY;
            s->count--;
            pthread_mutex_unlock(&ev->mu);
            int sent = srv_stream_send_packed(st, p.data, p.len);
            free(p.data);
            if (sent < 0) {
                rc = -1;
                break;
            }
            continue;
        }
        bool overflow = s->overflow, closed = ev->closed;
        pthread_mutex_unlock(&ev->mu);
        if (overflow) {
            rc = cr_err_set(err, CR_RESOURCE_EXHAUSTED,
                            "container events: subscriber fell %d events behind; reconnect",
                            CAPACITY);
            break;
        }
        if (closed) {
            rc = cr_err_set(err, CR_UNAVAILABLE, "container events: crispd is shutting down");
            break;
        }
        if (srv_stream_gone(st)) {
            rc = -1;
            break;
        }
    }
    unsubscribe(ev, s);
    return rc;
}
