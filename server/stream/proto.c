#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "lib/cleanup.h"

/* metav1.Status as the kubelet marshals it: Success, or Failure with a
 * message, reason, causes and code. */
char *st_status_json(bool success, const char *message, const char *reason, const char *cause_reason,
                     const char *cause_message, int code)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    if (!g)
        return NULL;
#define S(str) yajl_gen_string(g, (const unsigned char *)(str), strlen(str))
    yajl_gen_map_open(g);
    S("metadata");
    yajl_gen_map_open(g);
    yajl_gen_map_close(g);
    S("status");
    S(success ? "Success" : "Failure");
    if (!success) {
        if (message && *message) {
            S("message");
            S(message);
        }
        if (reason && *reason) {
            S("reason");
            S(reason);
        }
        if (cause_message || cause_reason) {
            S("details");
            yajl_gen_map_open(g);
            S("causes");
            yajl_gen_array_open(g);
            yajl_gen_map_open(g);
            if (cause_reason) {
                S("reason");
                S(cause_reason);
            }
            if (cause_message) {
                S("message");
                S(cause_message);
            }
            yajl_gen_map_close(g);
            yajl_gen_array_close(g);
            yajl_gen_map_close(g);
        }
        if (code) {
            S("code");
            yajl_gen_integer(g, code);
        }
    }
    yajl_gen_map_close(g);
#undef S
    const unsigned char *buf;
    size_t len;
    char *out = NULL;
    if (yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok)
        out = strndup((const char *)buf, len);
    yajl_gen_free(g);
    return out;
}

/* Find complete JSON objects at the head of b ({"Width":W,"Height":H} ...),
 * hand each to fn, consume them.  Garbage between objects is skipped. */
void st_parse_resize(st_buf *b, void (*fn)(void *arg, unsigned short w, unsigned short h), void *arg)
{
    for (;;) {
        const char *p = (const char *)st_buf_head(b);
        size_t n = b->len, start = 0;
        while (start < n && p[start] != '{')
            start++;
        if (start == n) {
            st_buf_reset(b);
            return;
        }
        int depth = 0;
        bool in_str = false, esc = false;
        size_t end = 0;
        for (size_t i = start; i < n && !end; i++) {
            char ch = p[i];
            if (in_str) {
                if (esc)
                    esc = false;
                else if (ch == '\\')
                    esc = true;
                else if (ch == '"')
                    in_str = false;
            } else if (ch == '"') {
                in_str = true;
            } else if (ch == '{') {
                depth++;
            } else if (ch == '}' && --depth == 0) {
                end = i + 1;
            }
        }
        if (!end) {
            st_buf_consume(b, start);
            return; /* incomplete: wait for more */
        }
        _cleanup_free_ char *obj = strndup(p + start, end - start);
        st_buf_consume(b, end);
        if (!obj)
            return;
        yajl_val v = yajl_tree_parse(obj, NULL, 0);
        if (!v)
            continue;
        long w = -1, h = -1;
        if (YAJL_IS_OBJECT(v)) {
            for (size_t i = 0; i < v->u.object.len; i++) {
                yajl_val x = v->u.object.values[i];
                if (!YAJL_IS_INTEGER(x))
                    continue;
                if (strcasecmp(v->u.object.keys[i], "width") == 0)
                    w = (long)YAJL_GET_INTEGER(x);
                else if (strcasecmp(v->u.object.keys[i], "height") == 0)
                    h = (long)YAJL_GET_INTEGER(x);
            }
        }
        yajl_tree_free(v);
        if (w >= 0 && w <= 65535 && h >= 0 && h <= 65535)
            fn(arg, (unsigned short)w, (unsigned short)h);
    }
}

void st_put_resize(st_buf *b, unsigned short w, unsigned short h)
{
    st_buf_printf(b, "{\"Width\":%u,\"Height\":%u}\n", (unsigned)w, (unsigned)h);
}

int st_protocol_version(const char *proto)
{
    if (proto[0] == 'v' && proto[1] >= '1' && proto[1] <= '9' && proto[2] == '.')
        return proto[1] - '0';
    return 1;
}

static yajl_val obj_get(yajl_val o, const char *key)
{
    if (!YAJL_IS_OBJECT(o))
        return NULL;
    for (size_t i = 0; i < o->u.object.len; i++)
        if (strcmp(o->u.object.keys[i], key) == 0)
            return o->u.object.values[i];
    return NULL;
}

static const char *obj_str(yajl_val o, const char *key)
{
    yajl_val v = obj_get(o, key);
    return YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
}

int st_status_decode(int version, const uint8_t *p, size_t n, int *exit_code, cr_err **err)
{
    *exit_code = 0;
    if (n == 0)
        return 0;
    _cleanup_free_ char *text = strndup((const char *)p, n);
    if (!text)
        return cr_err_set(err, CR_RESOURCE_EXHAUSTED, "out of memory");
    if (version < 4)
        return cr_err_set(err, CR_UNKNOWN, "error executing remote command: %s", text);
    char ebuf[256];
    yajl_val v = yajl_tree_parse(text, ebuf, sizeof(ebuf));
    if (!v || !YAJL_IS_OBJECT(v)) {
        yajl_tree_free(v);
        return cr_err_set(err, CR_INTERNAL, "error stream protocol error: not a Status object in \"%s\"", text);
    }
    int rc = 0;
    const char *status = obj_str(v, "status");
    const char *reason = obj_str(v, "reason");
    const char *message = obj_str(v, "message");
    if (status && strcmp(status, "Success") == 0) {
        rc = 0;
    } else if (status && strcmp(status, "Failure") == 0) {
        if (reason && strcmp(reason, "NonZeroExitCode") == 0) {
            yajl_val causes = obj_get(obj_get(v, "details"), "causes");
            bool found = false;
            for (size_t i = 0; YAJL_IS_ARRAY(causes) && i < causes->u.array.len && !found; i++) {
                yajl_val c = causes->u.array.values[i];
                const char *cr = obj_str(c, "reason");
                const char *cm = obj_str(c, "message");
                if (!cr || strcmp(cr, "ExitCode") != 0)
                    continue;
                char *end = NULL;
                errno = 0;
                unsigned long x = cm ? strtoul(cm, &end, 10) : 0;
                if (!cm || !*cm || *end || errno || x > 255 || cm[0] == '-' || cm[0] == '+') {
                    rc = cr_err_set(err, CR_INTERNAL, "error stream protocol error: invalid exit code value \"%s\"",
                                    cm ? cm : "");
                } else {
                    *exit_code = (int)x;
                }
                found = true;
            }
            if (!found)
                rc = cr_err_set(err, CR_INTERNAL, "error stream protocol error: no ExitCode cause given");
        } else {
            yajl_val code = obj_get(v, "code");
            int c = YAJL_IS_INTEGER(code) ? (int)YAJL_GET_INTEGER(code) : 0;
            int cc = c == 404 ? CR_NOT_FOUND : c == 400 || c == 422 ? CR_INVALID_ARGUMENT
                   : c == 403 ? CR_PERMISSION_DENIED : c == 500 ? CR_INTERNAL : CR_UNKNOWN;
            rc = cr_err_set(err, cc, "%s", message && *message ? message : "remote command failed");
        }
    } else {
        rc = cr_err_set(err, CR_INTERNAL, "error stream protocol error: unknown error");
    }
    yajl_tree_free(v);
    return rc;
}
