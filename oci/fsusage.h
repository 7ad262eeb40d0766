/* Disk usage of a folder tree (a container's writable overlay upper dir),
 * for CRI's FilesystemUsage (used_bytes, inodes_used). */
#ifndef CRISP_OCI_FSUSAGE_H
#define CRISP_OCI_FSUSAGE_H

#include <stdint.h>

#include "lib/err.h"

typedef struct oci_fs_usage {
    uint64_t bytes;    /* allocated space (st_blocks * 512), like du: sparse files count what they use */
    uint64_t inodes;   /* files, folders, links, ... the top folder included */
} oci_fs_usage;

/* Walk the tree at path (openat/fstatat-style statx, one open folder per
 * level, no path strings built per entry) and sum its usage: every inode
 * counted once however many hard links it has, mount points inside the tree
 * not crossed (a mounted filesystem, or a bind mount even of the same
 * filesystem, adds nothing), symlinks not followed.  Entries removed while
 * the walk runs are skipped, as the container may be writing meanwhile.
 * Errors: NOT_FOUND when path does not exist; INVALID_ARGUMENT when it is not
 * a folder; INTERNAL for anything else (the message names the folder). */
int oci_fs_usage_get(const char *path, oci_fs_usage *out, cr_err **err);

#endif
