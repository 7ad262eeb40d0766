#include "http.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/cleanup.h"

static bool is_tchar(unsigned char c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Field-value characters: visible ASCII, space, tab, obs-text. */
static bool is_vchar(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

static int fail(http_msg *m, int status, cr_err **err, const char *what)
{
    m->error_status = status;
    return cr_err_set(err, CR_INVALID_ARGUMENT, "malformed HTTP message: %s", what);
}

void http_msg_free(http_msg *m)
{
    if (!m)
        return;
    free(m->method);
    free(m->target);
    free(m->path);
    free(m->query);
    free(m->reason);
    for (size_t i = 0; i < m->n_headers; i++) {
        free(m->headers[i].name);
        free(m->headers[i].value);
    }
    free(m->headers);
    memset(m, 0, sizeof(*m));
}

/* Length of the head (through the blank line) when it is complete, 0 when not
 * yet, -1 when it cannot fit in the limit. */
static long head_length(const char *buf, size_t len)
{
    size_t lim = len < HTTP_MAX_HEAD ? len : HTTP_MAX_HEAD;
    for (size_t i = 3; i < lim; i++)
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r')
            return (long)(i + 1);
    return len >= HTTP_MAX_HEAD ? -1 : 0;
}

static int parse_version(const char *s, size_t n, int *minor)
{
    if (n != 8 || memcmp(s, "HTTP/", 5) != 0 || !isdigit((unsigned char)s[5]) || s[6] != '.' ||
        !isdigit((unsigned char)s[7]))
        return -1;
    if (s[5] != '1')
        return -2;
    *minor = s[7] - '0';
    return 0;
}

/* Parse the header lines in [p, end) (each ending in CRLF, the blank line not
 * included). */
static int parse_headers(const char *p, const char *end, http_msg *m, cr_err **err)
{
    while (p < end) {
        const char *eol = memchr(p, '\r', (size_t)(end - p));
        if (!eol || eol + 1 >= end || eol[1] != '\n')
            return fail(m, 400, err, "header line not ended by CRLF");
        if (p == eol)
            return fail(m, 400, err, "empty header line");
        if (*p == ' ' || *p == '\t')
            return fail(m, 400, err, "obsolete header line folding");
        const char *colon = p;
        while (colon < eol && is_tchar((unsigned char)*colon))
            colon++;
        if (colon == p || colon >= eol || *colon != ':')
            return fail(m, 400, err, "bad header name");
        const char *v = colon + 1, *ve = eol;
        for (const char *q = v; q < ve; q++)
            if (!is_vchar((unsigned char)*q))
                return fail(m, 400, err, "control character in a header value");
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        if (m->n_headers >= HTTP_MAX_HEADERS)
            return fail(m, 431, err, "too many header fields");
        http_header *nh = realloc(m->headers, (m->n_headers + 1) * sizeof(*nh));
        if (!nh)
            return fail(m, 500, err, "out of memory");
        m->headers = nh;
        http_header *h = &m->headers[m->n_headers];
        h->name = strndup(p, (size_t)(colon - p));
        h->value = strndup(v, (size_t)(ve - v));
        if (!h->name || !h->value) {
            free(h->name);
            free(h->value);
            return fail(m, 500, err, "out of memory");
        }
        m->n_headers++;
        p = eol + 2;
    }
    return 0;
}

/* Checks shared by requests and responses: no NUL, no bare CR or LF. */
static int check_line_endings(const char *buf, size_t n, http_msg *m, cr_err **err)
{
    for (size_t i = 0; i < n; i++) {
        if (buf[i] == '\0')
            return fail(m, 400, err, "NUL byte in the head");
        if (buf[i] == '\n' && (i == 0 || buf[i - 1] != '\r'))
            return fail(m, 400, err, "bare LF");
        if (buf[i] == '\r' && (i + 1 >= n || buf[i + 1] != '\n'))
            return fail(m, 400, err, "bare CR");
    }
    return 0;
}

int http_parse_request(const char *buf, size_t len, http_msg *m, cr_err **err)
{
    memset(m, 0, sizeof(*m));
    /* A request line alone longer than the target limit is 414, not 431. */
    const char *first_eol = memchr(buf, '\n', len < HTTP_MAX_HEAD ? len : HTTP_MAX_HEAD);
    if ((!first_eol && len > HTTP_MAX_TARGET + 32) ||
        (first_eol && (size_t)(first_eol - buf) > HTTP_MAX_TARGET + 32))
        return fail(m, 414, err, "request line too long");
    long hl = head_length(buf, len);
    if (hl < 0)
        return fail(m, 431, err, "request head too large");
    if (hl == 0) {
        /* Not complete yet; reject broken line endings without waiting for
         * a blank line that may never come (a trailing CR may still get
         * its LF). */
        size_t k = len > 0 && buf[len - 1] == '\r' ? len - 1 : len;
        return check_line_endings(buf, k, m, err) < 0 ? -1 : 0;
    }
    size_t n = (size_t)hl;
    if (check_line_endings(buf, n, m, err) < 0)
        return -1;
    const char *eol = memmem(buf, n, "\r\n", 2);
    const char *sp1 = memchr(buf, ' ', (size_t)(eol - buf));
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (!sp1 || !sp2 || sp1 == buf || sp2 == sp1 + 1)
        return fail(m, 400, err, "bad request line");
    for (const char *q = buf; q < sp1; q++)
        if (!is_tchar((unsigned char)*q))
            return fail(m, 400, err, "bad method");
    for (const char *q = sp1 + 1; q < sp2; q++)
        if ((unsigned char)*q <= 0x20 || (unsigned char)*q == 0x7f)
            return fail(m, 400, err, "bad request target");
    if (sp1[1] != '/')
        return fail(m, 400, err, "request target is not a path");
    if ((size_t)(sp2 - sp1 - 1) > HTTP_MAX_TARGET)
        return fail(m, 414, err, "request target too long");
    int v = parse_version(sp2 + 1, (size_t)(eol - sp2 - 1), &m->minor);
    if (v == -1)
        return fail(m, 400, err, "bad HTTP version");
    if (v == -2)
        return fail(m, 505, err, "HTTP version not supported");
    m->method = strndup(buf, (size_t)(sp1 - buf));
    m->target = strndup(sp1 + 1, (size_t)(sp2 - sp1 - 1));
    if (!m->method || !m->target)
        return fail(m, 500, err, "out of memory");
    char *qm = strchr(m->target, '?');
    m->path = qm ? strndup(m->target, (size_t)(qm - m->target)) : strdup(m->target);
    m->query = qm ? strdup(qm + 1) : NULL;
    if (!m->path || (qm && !m->query))
        return fail(m, 500, err, "out of memory");
    if (parse_headers(eol + 2, buf + n - 2, m, err) < 0)
        return -1;
    m->head_len = n;
    return 1;
}

int http_parse_response(const char *buf, size_t len, http_msg *m, cr_err **err)
{
    memset(m, 0, sizeof(*m));
    long hl = head_length(buf, len);
    if (hl < 0)
        return fail(m, 431, err, "response head too large");
    if (hl == 0)
        return 0;
    size_t n = (size_t)hl;
    if (check_line_endings(buf, n, m, err) < 0)
        return -1;
    const char *eol = memmem(buf, n, "\r\n", 2);
    size_t ll = (size_t)(eol - buf);
    if (ll < 12 || buf[8] != ' ' || parse_version(buf, 8, &m->minor) != 0 ||
        !isdigit((unsigned char)buf[9]) || !isdigit((unsigned char)buf[10]) ||
        !isdigit((unsigned char)buf[11]) || (ll > 12 && buf[12] != ' '))
        return fail(m, 400, err, "bad status line");
    m->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    m->reason = ll > 13 ? strndup(buf + 13, ll - 13) : strdup("");
    if (!m->reason)
        return fail(m, 500, err, "out of memory");
    if (parse_headers(eol + 2, buf + n - 2, m, err) < 0)
        return -1;
    m->head_len = n;
    return 1;
}

const char *http_header_get(const http_msg *m, const char *name)
{
    for (size_t i = 0; i < m->n_headers; i++)
        if (strcasecmp(m->headers[i].name, name) == 0)
            return m->headers[i].value;
    return NULL;
}

static int strv_push(char ***v, size_t *n, char *s)
{
    if (!s)
        return -1;
    char **nv = realloc(*v, (*n + 2) * sizeof(char *));
    if (!nv) {
        free(s);
        return -1;
    }
    nv[(*n)++] = s;
    nv[*n] = NULL;
    *v = nv;
    return 0;
}

char **http_header_list(const http_msg *m, const char *name)
{
    char **v = calloc(1, sizeof(char *));
    size_t n = 0;
    if (!v)
        return NULL;
    for (size_t i = 0; i < m->n_headers; i++) {
        if (strcasecmp(m->headers[i].name, name) != 0)
            continue;
        const char *p = m->headers[i].value;
        while (*p) {
            const char *e = strchr(p, ',');
            if (!e)
                e = p + strlen(p);
            const char *s = p, *t = e;
            while (s < t && (*s == ' ' || *s == '\t'))
                s++;
            while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
                t--;
            if (t > s && strv_push(&v, &n, strndup(s, (size_t)(t - s))) < 0) {
                cr_strvfree(v);
                return NULL;
            }
            p = *e ? e + 1 : e;
        }
    }
    return v;
}

bool http_header_has_token(const http_msg *m, const char *name, const char *token)
{
    _cleanup_strv_ char **v = http_header_list(m, name);
    for (char **p = v; p && *p; p++)
        if (strcasecmp(*p, token) == 0)
            return true;
    return false;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Percent-decode [s, s+n) ('+' is a space, as in form encoding); NULL when
 * malformed. */
static char *pct_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            if (i + 2 >= n) {
                free(out);
                return NULL;
            }
            int a = hexval((unsigned char)s[i + 1]), b = hexval((unsigned char)s[i + 2]);
            if (a < 0 || b < 0) {
                free(out);
                return NULL;
            }
            *o++ = (char)(a << 4 | b);
            i += 2;
        } else if (s[i] == '+') {
            *o++ = ' ';
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

char **http_query_values(const char *query, const char *key)
{
    char **v = calloc(1, sizeof(char *));
    size_t n = 0;
    if (!v)
        return NULL;
    const char *p = query;
    while (p && *p) {
        const char *e = strchr(p, '&');
        if (!e)
            e = p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(e - p));
        const char *ke = eq ? eq : e;
        _cleanup_free_ char *k = pct_decode(p, (size_t)(ke - p));
        if (k && strcmp(k, key) == 0) {
            char *val = eq ? pct_decode(eq + 1, (size_t)(e - eq - 1)) : strdup("");
            if (val && strv_push(&v, &n, val) < 0) {
                cr_strvfree(v);
                return NULL;
            }
        }
        p = *e ? e + 1 : e;
    }
    return v;
}

const char *http_negotiate(char *const *offered, const char *const *supported)
{
    for (char *const *o = offered; o && *o; o++)
        for (const char *const *s = supported; s && *s; s++)
            if (strcmp(*o, *s) == 0)
                return *s;
    return NULL;
}

const char *http_reason(int status)
{
    switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

void http_put_response(st_buf *out, int status, const char *const *headers, const char *body)
{
    st_buf_printf(out, "HTTP/1.1 %d %s\r\n", status, http_reason(status));
    for (const char *const *h = headers; h && h[0] && h[1]; h += 2)
        st_buf_printf(out, "%s: %s\r\n", h[0], h[1]);
    if (body) {
        st_buf_printf(out,
                      "Content-Type: text/plain; charset=utf-8\r\n"
                      "X-Content-Type-Options: nosniff\r\n"
                      "Content-Length: %zu\r\n"
                      "Connection: close\r\n",
                      strlen(body));
    }
    st_buf_add_str(out, "\r\n");
    if (body)
        st_buf_add_str(out, body);
}
