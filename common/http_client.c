/*
 * HTTP client over libcurl (common/http_client.h).  Each thread keeps one
 * easy handle in a pthread key; curl_easy_reset() between requests clears the
 * options but keeps the handle's connection cache, so consecutive requests
 * to the same server reuse the TCP connection.  Redirects are never
 * followed: a metadata follower answers with Location and the caller decides.
 */
#include "common/http_client.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/util.h"

#define CONNECT_TIMEOUT_MS 3000L

static pthread_once_t client_once = PTHREAD_ONCE_INIT;
static pthread_key_t handle_key;

static void handle_destroy(void *h)
{
    curl_easy_cleanup(h);
}

static void client_init_once(void)
{
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK)
        ts_die("curl_global_init: %s", curl_easy_strerror(rc));
    int e = pthread_key_create(&handle_key, handle_destroy);
    if (e != 0)
        ts_die("pthread_key_create: %s", strerror(e));
}

void ts_http_client_global_init(void)
{
    pthread_once(&client_once, client_init_once);
}

static CURL *thread_handle(void)
{
    pthread_once(&client_once, client_init_once);
    CURL *h = pthread_getspecific(handle_key);
    if (h != NULL) {
        curl_easy_reset(h);
        return h;
    }
    h = curl_easy_init();
    if (h == NULL)
        ts_die("curl_easy_init failed (out of memory)");
    int e = pthread_setspecific(handle_key, h);
    if (e != 0)
        ts_die("pthread_setspecific: %s", strerror(e));
    return h;
}

void ts_http_client_thread_cleanup(void)
{
    pthread_once(&client_once, client_init_once);
    CURL *h = pthread_getspecific(handle_key);
    if (h == NULL)
        return;
    curl_easy_cleanup(h);
    int e = pthread_setspecific(handle_key, NULL);
    if (e != 0)
        ts_die("pthread_setspecific: %s", strerror(e));
}

void ts_http_result_free(ts_http_result *r)
{
    if (r == NULL)
        return;
    free(r->body);
    free(r->location);
    free(r->content_type);
    memset(r, 0, sizeof(*r));
}

/* ---- one transfer -------------------------------------------------------- */

typedef struct xfer {
    const char *method;
    const char *url;
    long status;              /* from the latest status line */
    char *location;
    ts_buf body;              /* error bodies, and every body outside range mode */
    /* range mode (ts_http_get_range): 2xx bytes go straight to the caller */
    int range_mode;
    char *dst;
    size_t dst_len;
    size_t dst_got;
    uint64_t range_offset;
    uint64_t skip;            /* a 200 to a range request: bytes before offset */
    int overflow;             /* the server sent more than asked; we stopped it */
    /* download mode (ts_http_get_stream): 2xx bytes go to write_fn */
    ts_http_write_fn write_fn;
    void *write_ctx;
    int writer_stopped;
    /* upload mode (ts_http_put_stream) */
    ts_http_read_fn read_cb;
    void *read_ctx;
    int reader_aborted;
} xfer;

static size_t header_cb(char *data, size_t size, size_t nitems, void *userdata)
{
    xfer *x = userdata;
    size_t n = size * nitems;

    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        /* A new response begins (after a 100 Continue, for instance):
         * forget what the previous one said. */
        const char *sp = memchr(data, ' ', n);
        x->status = 0;
        if (sp != NULL && (size_t)(sp - data) + 4 <= n)
            x->status = strtol(sp + 1, NULL, 10);
        free(x->location);
        x->location = NULL;
        /* A 200 to a range request means the server ignored Range and
         * sends the whole resource from byte 0. */
        x->skip = x->range_mode && x->status == 200 ? x->range_offset : 0;
        x->dst_got = 0;
        return n;
    }
    if (n > 9 && strncasecmp(data, "Location:", 9) == 0) {
        const char *v = data + 9, *e = data + n;
        while (v < e && isspace((unsigned char)*v))
            v++;
        while (e > v && isspace((unsigned char)e[-1]))
            e--;
        free(x->location);
        x->location = ts_strndup(v, (size_t)(e - v));
    }
    return n;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userdata)
{
    xfer *x = userdata;
    size_t n = size * nmemb;

    if (x->write_fn != NULL && x->status >= 200 && x->status < 300) {
        if (x->write_fn(x->write_ctx, data, n) != 0) {
            x->writer_stopped = 1;
            return 0;
        }
        return n;
    }
    if (!x->range_mode || x->status < 200 || x->status >= 300) {
        ts_buf_append(&x->body, data, n);
        return n;
    }
    size_t used = 0;
    if (x->skip > 0) {
        used = (size_t)TS_MIN((uint64_t)n, x->skip);
        x->skip -= used;
    }
    size_t room = x->dst_len - x->dst_got;
    size_t take = TS_MIN(n - used, room);
    memcpy(x->dst + x->dst_got, data + used, take);
    x->dst_got += take;
    if (used + take < n) {
        /* More than we asked for: stop the transfer rather than buffer it. */
        x->overflow = 1;
        return 0;
    }
    return n;
}

static size_t read_cb(char *buf, size_t size, size_t nitems, void *userdata)
{
    xfer *x = userdata;
    ssize_t r = x->read_cb(x->read_ctx, buf, size * nitems);
    if (r < 0) {
        x->reader_aborted = 1;
        return CURL_READFUNC_ABORT;
    }
    return (size_t)r;
}

#define SETOPT(h, opt, val)                                                   \
    do {                                                                      \
        CURLcode c_ = curl_easy_setopt((h), (opt), (val));                    \
        if (c_ != CURLE_OK)                                                   \
            ts_die("curl_easy_setopt(%s): %s", #opt, curl_easy_strerror(c_)); \
    } while (0)

static struct curl_slist *add_header(struct curl_slist *list, const char *line)
{
    struct curl_slist *l = curl_slist_append(list, line);
    if (l == NULL)
        ts_die("out of memory building HTTP headers");
    return l;
}

/* Options every request shares. */
static void setup_common(CURL *h, xfer *x, long timeout_ms, char *errbuf)
{
    SETOPT(h, CURLOPT_URL, x->url);
    SETOPT(h, CURLOPT_NOSIGNAL, 1L);
    SETOPT(h, CURLOPT_TCP_NODELAY, 1L);
    SETOPT(h, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    SETOPT(h, CURLOPT_FOLLOWLOCATION, 0L);
    if (timeout_ms > 0)
        SETOPT(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    SETOPT(h, CURLOPT_HEADERFUNCTION, header_cb);
    SETOPT(h, CURLOPT_HEADERDATA, x);
    SETOPT(h, CURLOPT_WRITEFUNCTION, write_cb);
    SETOPT(h, CURLOPT_WRITEDATA, x);
    errbuf[0] = '\0';
    SETOPT(h, CURLOPT_ERRORBUFFER, errbuf);
}

/* Short, lowercase reason for a transport failure: the system's words for a
 * refused or unreachable connection, else curl's detailed message. */
static void describe_failure(CURL *h, CURLcode rc, const char *errbuf, char *out, size_t outlen)
{
    long oserr = 0;

    if (rc == CURLE_COULDNT_CONNECT &&
        curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &oserr) == CURLE_OK && oserr != 0)
        snprintf(out, outlen, "%s", strerror((int)oserr));
    else
        snprintf(out, outlen, "%s", errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
    if (out[0] != '\0')
        out[0] = (char)tolower((unsigned char)out[0]);
}

/* Runs the transfer and turns the outcome into the result or an error.
 * Consumes x's buffers into out. */
static int perform(CURL *h, xfer *x, char *errbuf, ts_http_result *out, ts_error *err)
{
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    int ret = 0;

    if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
        status = 0;
    if (rc == CURLE_WRITE_ERROR && x->overflow)
        rc = CURLE_OK;      /* we stopped a too-long range ourselves */
    if (rc != CURLE_OK && status >= 400 && !x->reader_aborted &&
        (rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR)) {
        /* The server answered an upload early (say 409 or 507) and closed
         * while we were still sending: the answer is what matters. */
        rc = CURLE_OK;
    }
    if (rc != CURLE_OK) {
        char why[300];
        if (x->reader_aborted) {
            ret = ts_fail(err, TS_EIO, "%s %s: upload aborted by the body reader",
                          x->method, x->url);
            goto free_xfer;
        }
        if (x->writer_stopped) {
            ret = ts_fail(err, TS_EIO, "%s %s: download stopped by the receiver", x->method,
                          x->url);
            goto free_xfer;
        }
        describe_failure(h, rc, errbuf, why, sizeof(why));
        ret = ts_fail(err, rc == CURLE_OPERATION_TIMEDOUT ? TS_ETIMEDOUT : TS_EUNAVAIL,
                      "%s %s: %s", x->method, x->url, why);
        goto free_xfer;
    }
    out->status = status;
    ts_buf_reserve(&x->body, 0);        /* always hand back a NUL-terminated body */
    x->body.data[x->body.len] = '\0';
    out->body = x->body.data;
    out->body_len = x->body.len;
    out->location = x->location;
    char *type = NULL;
    if (curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &type) == CURLE_OK && type != NULL)
        out->content_type = ts_strdup(type);
    x->body.data = NULL;
    x->location = NULL;
free_xfer:
    ts_buf_free(&x->body);
    free(x->location);
    x->location = NULL;
    return ret;
}

int ts_http_call(const char *method, const char *url, const char *content_type,
                    const void *body, size_t body_len, long timeout_ms,
                    ts_http_result *out, ts_error *err)
{
    char errbuf[CURL_ERROR_SIZE];
    struct curl_slist *headers = NULL;
    xfer x = { .method = method, .url = url };
    CURL *h = thread_handle();

    memset(out, 0, sizeof(*out));
    setup_common(h, &x, timeout_ms, errbuf);
    /* No "Expect: 100-continue" round trip for bodies. */
    headers = add_header(headers, "Expect:");
    if (strcmp(method, "HEAD") == 0) {
        SETOPT(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") == 0 && body == NULL) {
        SETOPT(h, CURLOPT_HTTPGET, 1L);
    } else {
        /* POSTFIELDS carries any in-memory body; CUSTOMREQUEST renames the
         * method for PUT, DELETE, … */
        SETOPT(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body != NULL ? body_len : 0));
        SETOPT(h, CURLOPT_POSTFIELDS, body != NULL ? (const char *)body : "");
        if (strcmp(method, "POST") != 0)
            SETOPT(h, CURLOPT_CUSTOMREQUEST, method);
        if (content_type == NULL)
            headers = add_header(headers, "Content-Type:");   /* drop curl's form type */
    }
    if (content_type != NULL) {
        char *line = ts_sprintf("Content-Type: %s", content_type);
        headers = add_header(headers, line);
        free(line);
    }
    SETOPT(h, CURLOPT_HTTPHEADER, headers);
    int rc = perform(h, &x, errbuf, out, err);
    /* The handle may still point at the list until the next reset. */
    SETOPT(h, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    curl_slist_free_all(headers);
    return rc;
}

int ts_http_put_stream(const char *url, const char *content_type, ts_http_read_fn read_fn,
                       void *ctx, uint64_t content_length, long timeout_ms,
                       ts_http_result *out, ts_error *err)
{
    char errbuf[CURL_ERROR_SIZE];
    struct curl_slist *headers = NULL;
    xfer x = { .method = "PUT", .url = url, .read_cb = read_fn, .read_ctx = ctx };
    CURL *h = thread_handle();

    memset(out, 0, sizeof(*out));
    setup_common(h, &x, timeout_ms, errbuf);
    SETOPT(h, CURLOPT_UPLOAD, 1L);
    SETOPT(h, CURLOPT_READFUNCTION, read_cb);
    SETOPT(h, CURLOPT_READDATA, &x);
    headers = add_header(headers, "Expect:");
    if (content_length == UINT64_MAX)
        headers = add_header(headers, "Transfer-Encoding: chunked");
    else
        SETOPT(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)content_length);
    if (content_type != NULL) {
        char *line = ts_sprintf("Content-Type: %s", content_type);
        headers = add_header(headers, line);
        free(line);
    }
    SETOPT(h, CURLOPT_HTTPHEADER, headers);
    int rc = perform(h, &x, errbuf, out, err);
    SETOPT(h, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    curl_slist_free_all(headers);
    return rc;
}

int ts_http_get_range(const char *url, uint64_t offset, uint64_t len, void *buf,
                      size_t *got, long timeout_ms, ts_http_result *out, ts_error *err)
{
    char errbuf[CURL_ERROR_SIZE];
    char range[64];
    xfer x = { .method = "GET", .url = url, .range_mode = 1, .dst = buf, .range_offset = offset };
    CURL *h;

    memset(out, 0, sizeof(*out));
    *got = 0;
    if (len == 0 || len > SIZE_MAX || offset > UINT64_MAX - len)
        return ts_fail(err, TS_EINVAL, "GET %s: invalid range %llu+%llu", url,
                       (unsigned long long)offset, (unsigned long long)len);
    x.dst_len = (size_t)len;
    h = thread_handle();
    setup_common(h, &x, timeout_ms, errbuf);
    SETOPT(h, CURLOPT_HTTPGET, 1L);
    snprintf(range, sizeof(range), "%llu-%llu", (unsigned long long)offset,
             (unsigned long long)(offset + len - 1));
    SETOPT(h, CURLOPT_RANGE, range);
    int rc = perform(h, &x, errbuf, out, err);
    if (rc == 0 && out->status >= 200 && out->status < 300)
        *got = x.dst_got;
    return rc;
}

int ts_http_get_stream(const char *url, ts_http_write_fn write_fn, void *ctx, long timeout_ms,
                       ts_http_result *out, ts_error *err)
{
    char errbuf[CURL_ERROR_SIZE];
    xfer x = { .method = "GET", .url = url, .write_fn = write_fn, .write_ctx = ctx };
    CURL *h = thread_handle();

    memset(out, 0, sizeof(*out));
    setup_common(h, &x, timeout_ms, errbuf);
    SETOPT(h, CURLOPT_HTTPGET, 1L);
    return perform(h, &x, errbuf, out, err);
}

/* ---- error bodies -------------------------------------------------------- */

int ts_http_result_error(const ts_http_result *r, const char *what, ts_error *err)
{
    json_error_t jerr;
    json_t *j = NULL;
    const char *name = NULL, *msg = NULL;
    int code;
    const char *w = what != NULL ? what : "request";

    if (r->body != NULL && r->body_len > 0)
        j = json_loadb(r->body, r->body_len, 0, &jerr);
    if (j != NULL && json_is_object(j)) {
        name = json_string_value(json_object_get(j, "error"));
        msg = json_string_value(json_object_get(j, "message"));
    }
    code = name != NULL ? ts_err_from_name(name) : TS_EPROTO;
    if (name == NULL || code == TS_OK) {
        int n = r->body != NULL ? (int)TS_MIN(r->body_len, (size_t)200) : 0;
        code = ts_fail(err, TS_EPROTO, "%s: HTTP %ld: %.*s", w, r->status, n,
                       r->body != NULL ? r->body : "");
    } else {
        code = ts_fail(err, code, "%s: %s", w, msg != NULL ? msg : name);
    }
    json_decref(j);
    return code;
}
