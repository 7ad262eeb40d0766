/* Kubernetes remote-command message formats shared by the streaming server
 * and client (private to server/stream/): the metav1.Status written on the
 * error stream, and the terminal-size messages of the resize stream. */
#ifndef CRISP_STREAM_INTERNAL_H
#define CRISP_STREAM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "server/stream/buf.h"

/* metav1.Status JSON as the kubelet marshals it:
 *   {"metadata":{},"status":"Success"}
 *   {"metadata":{},"status":"Failure","message":M,"reason":R,
 *    "details":{"causes":[{"reason":CR,"message":CM}]},"code":C}
 * (absent parts omitted; code 0 omitted).  NULL when out of memory. */
char *st_status_json(bool success, const char *message, const char *reason, const char *cause_reason,
                     const char *cause_message, int code);

/* Decode a finished session's error stream as client-go does: protocol
 * version >= 4 reads a Status (Success: exit 0; NonZeroExitCode: the
 * ExitCode cause), older versions read plain text (none: exit 0).  Returns 0
 * with *exit_code, or -1 with *err when the remote command failed otherwise
 * or the message is malformed. */
int st_status_decode(int version, const uint8_t *p, size_t n, int *exit_code, cr_err **err);

/* Consume every complete JSON object at the head of b, calling fn with the
 * Width and Height of each that has both (keys matched case-insensitively,
 * as Go's decoder does); an incomplete trailing object stays in b. */
void st_parse_resize(st_buf *b, void (*fn)(void *arg, unsigned short w, unsigned short h), void *arg);
/* Append {"Width":w,"Height":h} and a newline (json.Encoder's framing). */
void st_put_resize(st_buf *b, unsigned short w, unsigned short h);

/* The protocol version number of a channel protocol name (v5... -> 5;
 * channel.k8s.io and base64.channel.k8s.io -> 1). */
int st_protocol_version(const char *proto);

#endif
