/* Per-interface network counters of a pod's network namespace, for CRI's
 * NetworkUsage (PodSandboxStats) and crispd's metrics. */
#ifndef CRISP_NETWORK_NETSTATS_H
#define CRISP_NETWORK_NETSTATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define NET_IF_NAME_MAX 16   /* IFNAMSIZ */

typedef struct net_if_stats {
    char name[NET_IF_NAME_MAX];
    uint64_t rx_bytes, rx_packets, rx_errors, rx_dropped;
    uint64_t tx_bytes, tx_packets, tx_errors, tx_dropped;
} net_if_stats;

typedef struct net_stats {
    int64_t timestamp_ns;     /* CLOCK_REALTIME when read */
    size_t n;
    net_if_stats *ifs;        /* heap, sorted by name; the loopback is not among them */
    bool has_lo;
    net_if_stats lo;          /* the loopback, apart, as the kubelet leaves it out */
} net_stats;

/* Read the counters of every interface in the network namespace pinned at
 * netns_path (e.g. /run/crisp/netns/<name>; NULL: the calling thread's own).
 *
 * How: a short-lived thread, created with every signal blocked, joins the
 * namespace with setns(CLONE_NEWNET), reads /proc/thread-self/net/dev (the
 * thread's namespace; /proc/self/net would show the main thread's, and
 * /sys/class/net the namespace sysfs was mounted in) and exits; the caller
 * waits for it and parses.  A network namespace is a per-thread attribute,
 * so no other thread of the daemon is touched, and the namespace dies with
 * the thread: nothing needs switching back.
 *
 * Errors: NOT_FOUND when netns_path does not exist; INVALID_ARGUMENT when it
 * is not a network namespace; INTERNAL otherwise.  Free with net_stats_free. */
int net_stats_read(const char *netns_path, net_stats *out, cr_err **err);
void net_stats_free(net_stats *s);

/* Parse /proc/net/dev text (exposed for tests).  Fills n, ifs, has_lo, lo;
 * not timestamp_ns.  Malformed text: INTERNAL. */
int net_stats_parse(const char *text, net_stats *out, cr_err **err);

/* The interface called name, or NULL.  The kubelet's default interface is "eth0". */
const net_if_stats *net_stats_find(const net_stats *s, const char *name);

#endif
