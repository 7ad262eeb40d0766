#include "pbjson.h"

#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void gen_cstr(yajl_gen g, const char *s)
{
    yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

/* snake_case -> lowerCamelCase; names that already carry capitals stay. */
static void gen_name(yajl_gen g, const char *name)
{
    char buf[128];
    size_t k = 0;
    for (const char *p = name; *p && k + 1 < sizeof(buf); p++) {
        if (*p == '_' && p[1] && k > 0) {
            p++;
            buf[k++] = (*p >= 'a' && *p <= 'z') ? (char)(*p - 32) : *p;
        } else {
            buf[k++] = *p;
        }
    }
    buf[k] = '\0';
    gen_cstr(g, buf);
}

static void gen_base64(yajl_gen g, const ProtobufCBinaryData *b)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = b->len, out_len = 4 * ((n + 2) / 3);
    char *out = malloc(out_len + 1);
    if (!out) {
        yajl_gen_null(g);
        return;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)b->data[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)b->data[i + 1] << 8;
        if (i + 2 < n)
            v |= b->data[i + 2];
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    yajl_gen_string(g, (const unsigned char *)out, o);
    free(out);
}

static void gen_scalar(yajl_gen g, const ProtobufCFieldDescriptor *f, const void *p)
{
    char buf[32];
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
        yajl_gen_integer(g, *(const int32_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
        yajl_gen_integer(g, *(const uint32_t *)p);
        break;
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
        snprintf(buf, sizeof(buf), "%" PRId64, *(const int64_t *)p);
        gen_cstr(g, buf);
        break;
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
        snprintf(buf, sizeof(buf), "%" PRIu64, *(const uint64_t *)p);
        gen_cstr(g, buf);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        yajl_gen_double(g, *(const float *)p);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        yajl_gen_double(g, *(const double *)p);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        yajl_gen_bool(g, *(const protobuf_c_boolean *)p);
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumValue *ev =
            protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)p);
        if (ev)
            gen_cstr(g, ev->name);
        else
            yajl_gen_integer(g, *(const int *)p);
        break;
    }
    case PROTOBUF_C_TYPE_STRING:
        gen_cstr(g, *(char *const *)p ? *(char *const *)p : "");
        break;
    case PROTOBUF_C_TYPE_BYTES:
        gen_base64(g, (const ProtobufCBinaryData *)p);
        break;
    case PROTOBUF_C_TYPE_MESSAGE:
        if (*(ProtobufCMessage *const *)p)
            pbjson_gen(g, *(ProtobufCMessage *const *)p);
        else
            yajl_gen_null(g);
        break;
    }
}

static size_t type_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING: case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int);
    default:
        return 4;
    }
}

/* proto3: a singular scalar at its default value is not written. */
static int is_default(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: return !*(char *const *)p || !**(char *const *)p;
    case PROTOBUF_C_TYPE_MESSAGE: return !*(void *const *)p;
    case PROTOBUF_C_TYPE_BYTES: return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_BOOL: return !*(const protobuf_c_boolean *)p;
    default: {
        size_t n = type_size(f->type);
        const unsigned char *b = p;
        for (size_t i = 0; i < n; i++)
            if (b[i])
                return 0;
        return 1;
    }
    }
}

static int is_map_entry(const ProtobufCFieldDescriptor *f)
{
    if (f->type != PROTOBUF_C_TYPE_MESSAGE)
        return 0;
    const ProtobufCMessageDescriptor *md = f->descriptor;
    size_t n = strlen(md->name);
    return n > 5 && strcmp(md->name + n - 5, "Entry") == 0 && md->n_fields == 2 &&
           strcmp(md->fields[0].name, "key") == 0 && strcmp(md->fields[1].name, "value") == 0;
}

static void gen_message(yajl_gen g, const ProtobufCMessage *msg, bool top);

void pbjson_gen(yajl_gen g, const ProtobufCMessage *msg)
{
    gen_message(g, msg, false);
}

/* top: the printed message itself, whose empty lists show as [] (as crictl
 * prints them: `{"containers": []}`, not `{}`); nested ones omit them. */
static void gen_message(yajl_gen g, const ProtobufCMessage *msg, bool top)
{
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    yajl_gen_map_open(g);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *base = (const char *)msg;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            if (n == 0 && !top)
                continue;
            const char *arr = *(char *const *)(base + f->offset);
            size_t sz = type_size(f->type);
            gen_name(g, f->name);
            if (is_map_entry(f)) {
                const ProtobufCMessageDescriptor *md = f->descriptor;
                yajl_gen_map_open(g);
                for (size_t k = 0; k < n; k++) {
                    const char *e = ((char *const *)arr)[k];
                    gen_cstr(g, *(char *const *)(e + md->fields[0].offset));
                    gen_scalar(g, &md->fields[1], e + md->fields[1].offset);
                }
                yajl_gen_map_close(g);
            } else {
                yajl_gen_array_open(g);
                for (size_t k = 0; k < n; k++)
                    gen_scalar(g, f, arr + k * sz);
                yajl_gen_array_close(g);
            }
            continue;
        }
        const void *p = base + f->offset;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
                continue;
        } else if (is_default(f, p)) {
            continue;
        }
        gen_name(g, f->name);
        gen_scalar(g, f, p);
    }
    yajl_gen_map_close(g);
}

char *pbjson_string(const ProtobufCMessage *msg)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    if (!g)
        return NULL;
    yajl_gen_config(g, yajl_gen_beautify, 1);
    yajl_gen_config(g, yajl_gen_indent_string, "  ");
    gen_message(g, msg, true);
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(g, &buf, &len);
    char *out = malloc(len + 2);
    if (out) {
        memcpy(out, buf, len);
        if (len && out[len - 1] != '\n')
            out[len++] = '\n';
        out[len] = '\0';
    }
    yajl_gen_free(g);
    return out;
}

/* ---- JSON -> message ---- */

#include <stdarg.h>
#include <yajl/yajl_tree.h>

static int perr(char **errmsg, const char *fmt, ...)
{
    if (!*errmsg) {
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(errmsg, fmt, ap) < 0)
            *errmsg = NULL;
        va_end(ap);
    }
    return -1;
}

/* Compare a JSON key with a field name, ignoring '_' and case of the letter after it. */
static int key_matches(const char *key, const char *field)
{
    if (!strcmp(key, field))
        return 1;
    const char *k = key, *f = field;
    while (*k && *f) {
        if (*f == '_' && f[1]) {
            f++;
            if (*k != *f && *k != *f - 32)
                return 0;
        } else if (*k != *f) {
            return 0;
        }
        k++;
        f++;
    }
    return !*k && !*f;
}

static int parse_message_into(ProtobufCMessage *m, yajl_val v, const char *path, char **errmsg);

static int parse_int(yajl_val v, int64_t *out)
{
    if (YAJL_IS_INTEGER(v)) {
        *out = YAJL_GET_INTEGER(v);
        return 0;
    }
    const char *sv = YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
    if (sv && *sv) {
        char *end = NULL;
        long long x = strtoll(sv, &end, 10);
        if (!*end) {
            *out = x;
            return 0;
        }
    }
    return -1;
}

/* Store one scalar or message value v into slot p of field f. */
static int parse_value(const ProtobufCFieldDescriptor *f, void *p, yajl_val v, const char *path, char **errmsg)
{
    int64_t i = 0;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
        if (parse_int(v, &i) < 0)
            return perr(errmsg, "%s: expected an integer", path);
        *(int32_t *)p = (int32_t)i;
        return 0;
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
        if (parse_int(v, &i) < 0 || i < 0)
            return perr(errmsg, "%s: expected a non-negative integer", path);
        *(uint32_t *)p = (uint32_t)i;
        return 0;
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
        if (parse_int(v, &i) < 0)
            return perr(errmsg, "%s: expected an integer", path);
        *(int64_t *)p = i;
        return 0;
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
        if (parse_int(v, &i) < 0 || i < 0)
            return perr(errmsg, "%s: expected a non-negative integer", path);
        *(uint64_t *)p = (uint64_t)i;
        return 0;
    case PROTOBUF_C_TYPE_FLOAT:
        if (!YAJL_IS_NUMBER(v))
            return perr(errmsg, "%s: expected a number", path);
        *(float *)p = (float)YAJL_GET_DOUBLE(v);
        return 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        if (!YAJL_IS_NUMBER(v))
            return perr(errmsg, "%s: expected a number", path);
        *(double *)p = YAJL_GET_DOUBLE(v);
        return 0;
    case PROTOBUF_C_TYPE_BOOL:
        if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
            return perr(errmsg, "%s: expected true or false", path);
        *(protobuf_c_boolean *)p = YAJL_IS_TRUE(v);
        return 0;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = f->descriptor;
        if (parse_int(v, &i) == 0 && !YAJL_IS_STRING(v)) {
            *(int *)p = (int)i;
            return 0;
        }
        const char *name = YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
        const ProtobufCEnumValue *ev = name ? protobuf_c_enum_descriptor_get_value_by_name(ed, name) : NULL;
        if (!ev)
            return perr(errmsg, "%s: not a %s value", path, ed->short_name);
        *(int *)p = ev->value;
        return 0;
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *sv = YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
        if (!sv)
            return perr(errmsg, "%s: expected a string", path);
        char *s = strdup(sv);
        if (!s)
            return perr(errmsg, "out of memory");
        *(char **)p = s;
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES:
        return perr(errmsg, "%s: bytes fields are not supported in config files", path);
    case PROTOBUF_C_TYPE_MESSAGE: {
        if (!YAJL_IS_OBJECT(v))
            return perr(errmsg, "%s: expected an object", path);
        const ProtobufCMessageDescriptor *md = f->descriptor;
        ProtobufCMessage *sub = calloc(1, md->sizeof_message);
        if (!sub)
            return perr(errmsg, "out of memory");
        md->message_init(sub);
        *(ProtobufCMessage **)p = sub;
        return parse_message_into(sub, v, path, errmsg);
    }
    }
    return perr(errmsg, "%s: unsupported field type", path);
}

static int parse_message_into(ProtobufCMessage *m, yajl_val v, const char *path, char **errmsg)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    char *base = (char *)m;
    for (size_t k = 0; k < v->u.object.len; k++) {
        const char *key = v->u.object.keys[k];
        yajl_val val = v->u.object.values[k];
        const ProtobufCFieldDescriptor *f = NULL;
        for (unsigned i = 0; i < d->n_fields && !f; i++)
            if (key_matches(key, d->fields[i].name))
                f = &d->fields[i];
        char sub[512];
        snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", key);
        if (!f)
            return perr(errmsg, "%s: unknown field for %s", sub, d->short_name);
        if (YAJL_IS_NULL(val))
            continue;
        if (f->label != PROTOBUF_C_LABEL_REPEATED) {
            if (parse_value(f, base + f->offset, val, sub, errmsg) < 0)
                return -1;
            if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
                *(uint32_t *)(base + f->quantifier_offset) = f->id;
            continue;
        }
        size_t sz = type_size(f->type);
        if (is_map_entry(f)) {
            if (!YAJL_IS_OBJECT(val))
                return perr(errmsg, "%s: expected an object (a map)", sub);
            const ProtobufCMessageDescriptor *md = f->descriptor;
            size_t n = val->u.object.len;
            ProtobufCMessage **arr = calloc(n ? n : 1, sizeof(*arr));
            if (!arr)
                return perr(errmsg, "out of memory");
            *(ProtobufCMessage ***)(base + f->offset) = arr;
            for (size_t i = 0; i < n; i++) {
                ProtobufCMessage *e = calloc(1, md->sizeof_message);
                if (!e)
                    return perr(errmsg, "out of memory");
                md->message_init(e);
                arr[i] = e;
                *(size_t *)(base + f->quantifier_offset) = i + 1;
                char *kcopy = strdup(val->u.object.keys[i]);
                if (!kcopy)
                    return perr(errmsg, "out of memory");
                *(char **)((char *)e + md->fields[0].offset) = kcopy;
                if (parse_value(&md->fields[1], (char *)e + md->fields[1].offset, val->u.object.values[i],
                                sub, errmsg) < 0)
                    return -1;
            }
            continue;
        }
        if (!YAJL_IS_ARRAY(val))
            return perr(errmsg, "%s: expected an array", sub);
        size_t n = val->u.array.len;
        char *arr = calloc(n ? n : 1, sz);
        if (!arr)
            return perr(errmsg, "out of memory");
        *(char **)(base + f->offset) = arr;
        for (size_t i = 0; i < n; i++) {
            if (parse_value(f, arr + i * sz, val->u.array.values[i], sub, errmsg) < 0) {
                *(size_t *)(base + f->quantifier_offset) = i; /* free what was set */
                return -1;
            }
            *(size_t *)(base + f->quantifier_offset) = i + 1;
        }
    }
    return 0;
}

ProtobufCMessage *pbjson_parse(const ProtobufCMessageDescriptor *desc, const char *json, char **errmsg)
{
    *errmsg = NULL;
    char ebuf[256];
    yajl_val v = yajl_tree_parse(json, ebuf, sizeof(ebuf));
    if (!v) {
        perr(errmsg, "not JSON: %s", ebuf);
        return NULL;
    }
    ProtobufCMessage *m = NULL;
    if (!YAJL_IS_OBJECT(v)) {
        perr(errmsg, "expected a JSON object");
    } else if ((m = calloc(1, desc->sizeof_message))) {
        desc->message_init(m);
        if (parse_message_into(m, v, "", errmsg) < 0) {
            protobuf_c_message_free_unpacked(m, NULL);
            m = NULL;
        }
    } else {
        perr(errmsg, "out of memory");
    }
    yajl_tree_free(v);
    return m;
}
