/* network/: pod network namespaces and the CNI client.  This header is the
 * component's door; plain C structs only (no protobuf). */
#ifndef CRISP_NETWORK_H
#define CRISP_NETWORK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

/* ---- network namespaces (netns.c) ---- */

/* Create a new network namespace pinned by a bind mount at dir/name (dir is
 * created; the namespace has its loopback down until CNI's loopback plugin
 * runs).  *path gets the pin's path.  Thread-safe: the unshare happens in a
 * short-lived child, never in a daemon thread. */
int net_ns_create(const char *dir, const char *name, char **path, cr_err **err);
/* Unmount and remove a pin made by net_ns_create.  Missing: 0 (idempotent). */
int net_ns_remove(const char *path, cr_err **err);
/* Whether path is a pinned network namespace (a nsfs mount). */
bool net_ns_exists(const char *path);
/* A TCP connection to localhost:port inside the namespace at netns_path
 * (NULL or "": our own), as the kubelet's port-forward makes: 127.0.0.1
 * first, then ::1 when IPv4 is refused.  The socket is made by a short-lived
 * thread that joined the namespace, so no daemon thread ever moves.  Returns
 * the connected fd (close-on-exec), or -1: CR_NOT_FOUND for a namespace that
 * is gone, CR_UNAVAILABLE naming the port and why when nothing answers or
 * the connection does not complete within timeout_ms (0: 10 s). */
int net_ns_dial(const char *netns_path, int port, int timeout_ms, cr_err **err);

/* ---- CNI (cni.c) ---- */

typedef struct net_cni net_cni;

typedef struct net_cni_opts {
    const char *conf_dir;           /* /etc/cni/net.d */
    char *const *plugin_dirs;       /* NULL-terminated: /opt/cni/bin, /usr/lib/cni */
    const char *cache_dir;          /* <root>/cni: per-pod ADD results and the config used */
    int timeout_s;                  /* per plugin call; default 60 */
} net_cni_opts;

/* Load the first valid network config (file name order; .conflist, .conf and
 * .json) and keep watching conf_dir (inotify): a config that appears, changes
 * or breaks is picked up without a restart. */
int net_cni_new(const net_cni_opts *o, net_cni **out, cr_err **err);
void net_cni_free(net_cni *c);

/* NetworkReady: true once a valid config is loaded; otherwise *why (heap)
 * says what is missing or wrong ("no network config found in /etc/cni/net.d",
 * "/etc/cni/net.d/10-x.conflist: plugin bridge not found in /opt/cni/bin:/usr/lib/cni"). */
bool net_cni_ready(net_cni *c, char **why);
/* Name of the loaded network ("" when none).  Heap string. */
char *net_cni_network_name(net_cni *c);

typedef struct net_port_mapping {
    int host_port;
    int container_port;
    const char *protocol;   /* "tcp", "udp", "sctp" */
    const char *host_ip;    /* "" = any */
} net_port_mapping;

typedef struct net_pod {
    const char *id;          /* sandbox id (K8S_POD_INFRA_CONTAINER_ID, CNI_CONTAINERID) */
    const char *name;        /* K8S_POD_NAME */
    const char *ns;          /* K8S_POD_NAMESPACE */
    const char *uid;         /* K8S_POD_UID */
    const char *netns_path;  /* CNI_NETNS */
    const char *ifname;      /* CNI_IFNAME, default "eth0" */
    const net_port_mapping *ports;
    size_t n_ports;
    char *const *dns_servers;   /* NULL-terminated, may be NULL: runtimeConfig.dns */
    char *const *dns_searches;
    char *const *dns_options;
    uint64_t ingress_rate, ingress_burst, egress_rate, egress_burst; /* bandwidth; 0 = none */
    const char *pod_cidr;    /* runtimeConfig.ipRanges when the plugin asks; "" = none */
} net_pod;

typedef struct net_result {
    char **ips;             /* NULL-terminated, without prefix length, IPv4 first */
    char *interface;        /* interface name in the pod, "eth0" */
    char *json;             /* the final ADD result as returned by the chain */
} net_result;

/* ADD through the whole chain (prevResult passed along; capability args only
 * to plugins that declare them).  On success the result and the exact config
 * used are cached under cache_dir so DEL works after a restart or a config
 * change.  On failure the chain is DEL'ed so nothing is left behind. */
int net_cni_add(net_cni *c, const net_pod *p, net_result *out, cr_err **err);
/* DEL in reverse order with the cached config (or the current one when no
 * cache exists); the cache entry is removed after.  A pod never added or
 * already deleted: 0 (idempotent).  netns_path may be NULL or gone (plugins
 * are told CNI_NETNS="" then, as the spec allows for DEL). */
int net_cni_del(net_cni *c, const net_pod *p, cr_err **err);
/* CHECK (configs of version >= 0.4.0) with the cached config. */
int net_cni_check(net_cni *c, const net_pod *p, cr_err **err);
/* The cached ADD result for a pod (after a restart).  1 found, 0 not, -1 error. */
int net_cni_cached_result(net_cni *c, const char *id, net_result *out, cr_err **err);
void net_result_clear(net_result *r);

#endif
