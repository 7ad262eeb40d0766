/* Container and pod cgroup statistics: pure readers of the cgroup filesystem
 * (v1, hybrid and v2 unified), for the CRI stats RPCs and crispd's metrics.
 *
 * The figures follow what containerd, CRI-O and cadvisor report, so the
 * kubelet sees the same numbers from crisp as from them:
 *   cpu usage      v1 cpuacct.usage; v2 cpu.stat usage_usec * 1000
 *   memory usage   v1 memory.usage_in_bytes; v2 memory.current
 *   working set    usage - inactive file pages (v1 total_inactive_file,
 *                  v2 inactive_file), never below 0
 *   rss            v1 total_rss; v2 anon
 *   page faults    v1 total_pgfault/total_pgmajfault; v2 pgfault/pgmajfault
 *   available      limit - working set, when a limit is set
 *   swap           v1 memsw.usage - usage; v2 memory.swap.current
 *   PSI            v2 (and the hybrid layout's unified tree) cpu/memory/io.pressure
 *
 * The cgroup root is a parameter (NULL = /sys/fs/cgroup) so tests can point
 * the readers at fixture trees. */
#ifndef CRISP_OCI_CGSTATS_H
#define CRISP_OCI_CGSTATS_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"

#define OCI_CG_DEFAULT_ROOT "/sys/fs/cgroup"

typedef enum oci_cg_layout {
    OCI_CG_UNKNOWN = 0,
    OCI_CG_V1 = 1,      /* one hierarchy per controller, no unified tree */
    OCI_CG_HYBRID = 2,  /* v1 controllers plus an empty-ish v2 tree at <root>/unified */
    OCI_CG_V2 = 3,      /* unified: cgroup2 mounted at <root> */
} oci_cg_layout;

/* "v1", "hybrid", "v2", "unknown". */
const char *oci_cg_layout_name(oci_cg_layout l);

/* Which layout is mounted at root (NULL = /sys/fs/cgroup): <root>/cgroup.controllers
 * means v2; else <root>/unified/cgroup.controllers means hybrid; else a v1
 * controller folder (memory, cpuacct, cpu,cpuacct, pids) means v1.  Nothing
 * of that: FAILED_PRECONDITION. */
int oci_cg_detect(const char *root, oci_cg_layout *out, cr_err **err);

/* The cgroup folder, relative to a hierarchy's root (no leading '/'), where
 * the OCI runtime places a container given the spec's linux.cgroupsPath:
 *  - cgroupfs driver: "/kubepods/burstable/podX/crisp-ID" -> "kubepods/burstable/podX/crisp-ID"
 *    (a relative path is taken from the root too);
 *  - systemd driver, "slice:prefix:name" (exactly two ':' and no leading '/'):
 *    "kubepods-burstable-podX.slice:crisp:ID" ->
 *    "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podX.slice/crisp-ID.scope";
 *    an empty slice means system.slice, "-.slice" the root; a name ending in
 *    ".slice" is a slice unit itself (nested under the parent slice).
 * "" or "/" is the root cgroup ("").  Malformed input ("..", a bad slice
 * name): INVALID_ARGUMENT.  *rel is a heap string. */
int oci_cg_resolve(const char *cgroups_path, char **rel, cr_err **err);

/* Pressure stall information of one resource. */
typedef struct oci_cg_psi_data {
    uint64_t total_ns;   /* kernel total (microseconds) * 1000, as CRI's PsiData.Total */
    double avg10, avg60, avg300;   /* percent */
} oci_cg_psi_data;

typedef struct oci_cg_psi {
    bool present;        /* the .pressure file was there and parsed */
    bool has_full;       /* cpu.pressure has no "full" line before Linux 5.13 */
    oci_cg_psi_data some, full;
} oci_cg_psi;

typedef struct oci_cg_stats {
    oci_cg_layout layout;
    int64_t timestamp_ns;   /* CLOCK_REALTIME at the read: CRI's timestamp fields */
    int64_t monotonic_ns;   /* CLOCK_MONOTONIC at the read: for rates (oci_cg_nano_cores) */

    /* cpu (always read) */
    uint64_t cpu_usage_ns;        /* cumulative */
    bool has_cpu_user_system;
    uint64_t cpu_user_ns, cpu_system_ns;
    bool has_cpu_throttling;      /* CFS bandwidth figures (v1: cpu controller's cpu.stat) */
    uint64_t cpu_periods, cpu_throttled_periods, cpu_throttled_ns;

    /* memory (always read) */
    uint64_t mem_usage;           /* bytes, page cache included */
    uint64_t mem_working_set;     /* usage - inactive_file */
    uint64_t mem_rss;             /* anonymous memory */
    uint64_t mem_cache;           /* page cache (v1 total_cache, v2 file) */
    uint64_t mem_inactive_file;
    uint64_t mem_page_faults;
    uint64_t mem_major_page_faults;
    bool has_mem_limit;           /* false: unlimited */
    uint64_t mem_limit;
    uint64_t mem_available;       /* limit - working set (0 when over); 0 without a limit */

    /* swap (v1: needs swap accounting, memory.memsw.*) */
    bool has_swap;
    uint64_t swap_usage;
    bool has_swap_limit;          /* false: unlimited */
    uint64_t swap_limit;          /* v1: memsw.limit - memory.limit */
    uint64_t swap_available;      /* swap_limit - swap_usage (0 when over); 0 without a limit */

    /* pids (needs the pids controller) */
    bool has_pids;
    uint64_t pids_current;
    bool has_pids_limit;          /* false: "max" */
    uint64_t pids_limit;

    /* PSI: v2, or the hybrid layout's unified tree when the cgroup is there */
    oci_cg_psi cpu_psi, memory_psi, io_psi;
} oci_cg_stats;

/* Read the statistics of the cgroup at rel (from oci_cg_resolve) under root
 * (NULL = /sys/fs/cgroup), in the layout given (OCI_CG_UNKNOWN: detect it).
 * Errors: NOT_FOUND when the cgroup does not exist (or is removed while being
 * read); FAILED_PRECONDITION when a controller or a file the cpu and memory
 * figures need is missing (the message names it); INTERNAL for an unreadable
 * or malformed file; INVALID_ARGUMENT for a ".." in rel.  Swap, pids and
 * PSI are optional: their has_/present flags say whether they were there. */
int oci_cg_read_stats(const char *root, oci_cg_layout layout, const char *rel,
                      oci_cg_stats *out, cr_err **err);

/* Same, from a linux.cgroupsPath (cgroupfs or systemd form). */
int oci_cg_read_stats_path(const char *root, oci_cg_layout layout, const char *cgroups_path,
                           oci_cg_stats *out, cr_err **err);

/* CRI's usage_nano_cores from two samples of the same cgroup: cpu
 * nanoseconds used per second of wall time, in billionths of a core.
 * false (and *out = 0) when the samples cannot give a rate: no time between
 * them, or the counter went backwards (a new cgroup under the same name). */
bool oci_cg_nano_cores(uint64_t prev_usage_ns, int64_t prev_ts_ns,
                       uint64_t cur_usage_ns, int64_t cur_ts_ns, uint64_t *out);
/* The same from two oci_cg_stats (monotonic timestamps). */
bool oci_cg_stats_nano_cores(const oci_cg_stats *prev, const oci_cg_stats *cur, uint64_t *out);

#endif
