/*
 * HTTP server over libmicrohttpd (common/http_server.h): the HTTP boundary
 * where Tessera error codes become statuses and JSON error bodies.
 *
 * How a request flows through MHD's access handler (called several times per
 * request, with our per-request state in *con_cls):
 *
 *   first call   build the request, pick streaming or buffered.  A streaming
 *                `begin` may answer at once, and a buffered request whose
 *                Content-Length already exceeds max_body gets its 413 here.
 *                MHD lets a response be queued only now or after the whole
 *                body, and an "early" response to a request with a body makes
 *                MHD close the connection right after answering: a client
 *                still sending then gets a reset and usually loses the
 *                answer.  So the answer goes out now only when no body
 *                follows or the client waits for "100 Continue"; otherwise
 *                it is kept as `pending` and the body is read and discarded.
 *   body calls   pieces go to `data` or into the buffer.  A failure here
 *                (data() refused, body over max_body) becomes `pending` too,
 *                and the rest of the body is discarded.
 *   final call   (*upload_data_size == 0 after the first call) queue the
 *                pending response, or call `end` / `handle` and queue theirs.
 *   completed    MHD_OPTION_NOTIFY_COMPLETED, exactly once per request, also
 *                on client aborts: call `release` if `begin` accepted the
 *                request, free the state.
 */
#include "common/http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

#define DEFAULT_POOL_THREADS 8
#define DEFAULT_MAX_BODY (16u * 1024 * 1024)
#define DEFAULT_CONN_TIMEOUT_S 60
/* Default per-connection memory for headers and the read buffer.  Big
 * enough for generous headers and upload pieces of tens of KiB; anything
 * larger in the headers is refused by MHD itself with a 4xx. */
#define CONN_MEMORY_LIMIT (128 * 1024)

struct ts_http_server {
    struct MHD_Daemon *daemon;
    ts_http_server_opts opts;
    int port;
};

typedef struct req_state {
    ts_http_request req;
    const ts_http_stream_ops *ops;  /* NULL: buffered handler */
    void *ctx;                      /* streaming ctx from begin */
    int accepted;                   /* begin returned 0: release is owed */
    int answered;                   /* a response is queued or pending; discard body */
    int has_pending;
    ts_http_response pending;       /* answer to queue after the body */
    ts_buf body;                    /* buffered handlers */
    void (*on_complete)(void *);    /* from the handler's response */
    void *on_complete_arg;
} req_state;

/* ---- responses ----------------------------------------------------------- */

static void response_init(ts_http_response *r)
{
    memset(r, 0, sizeof(*r));
    r->fd = -1;
}

/* Frees what a response owns (body, fd, headers) and resets it. */
static void response_clear(ts_http_response *r)
{
    free(r->body);
    free(r->extra_headers);
    if (r->fd >= 0)
        close(r->fd);
    response_init(r);
}

/* Drops a previous body or fd, keeping extra headers, so the respond_*
 * helpers can be called again (say, a handler replacing a success by an
 * error) without leaking. */
static void response_reset_body(ts_http_response *r)
{
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    r->fd_offset = 0;
    r->fd_len = 0;
}

void ts_http_respond(ts_http_response *r, int status, const char *content_type, char *body, size_t len)
{
    response_reset_body(r);
    r->status = status;
    r->content_type = content_type;
    r->body = body;
    r->body_len = body != NULL ? len : 0;
}

void ts_http_respond_json(ts_http_response *r, int status, const char *json_text)
{
    size_t len = strlen(json_text);
    char *copy = ts_malloc(len + 1);
    memcpy(copy, json_text, len + 1);
    ts_http_respond(r, status, "application/json", copy, len);
}

/* json_string refuses invalid UTF-8; messages can carry raw file names, so
 * replace anything outside ASCII rather than lose the whole message. */
static json_t *json_string_lossy(const char *s)
{
    json_t *j = json_string(s);
    if (j != NULL)
        return j;
    char *copy = ts_strdup(s);
    for (char *p = copy; *p != '\0'; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = json_string(copy);
    free(copy);
    return j;
}

static char *error_body(int code, const char *msg)
{
    json_t *o = json_object();
    json_t *name = json_string(ts_err_name(code));
    json_t *m = json_string_lossy(msg);
    if (o == NULL || name == NULL || m == NULL ||
        json_object_set_new(o, "error", name) != 0 ||
        json_object_set_new(o, "message", m) != 0)
        ts_die("out of memory building an error response");
    char *text = json_dumps(o, JSON_COMPACT);
    if (text == NULL)
        ts_die("out of memory building an error response");
    json_decref(o);
    return text;
}

void ts_http_respond_error(ts_http_response *r, int code, const char *fmt, ...)
{
    char msg[sizeof(((ts_error *)0)->msg)];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    char *body = error_body(code, msg);
    ts_http_respond(r, ts_err_http_status(code), "application/json", body, strlen(body));
}

void ts_http_respond_ts_error(ts_http_response *r, const ts_error *e)
{
    int code = e->code != 0 ? e->code : TS_EIO;
    ts_http_respond_error(r, code, "%s", e->msg);
}

void ts_http_respond_fd(ts_http_response *r, int status, const char *content_type, int fd,
                        off_t offset, uint64_t len)
{
    response_reset_body(r);
    r->status = status;
    r->content_type = content_type;
    r->fd = fd;
    r->fd_offset = offset;
    r->fd_len = len;
}

void ts_http_add_header(ts_http_response *r, const char *name, const char *value)
{
    ts_buf b = {0};

    if (r->extra_headers != NULL)
        ts_buf_append(&b, r->extra_headers, strlen(r->extra_headers));
    size_t start = b.len;
    ts_buf_printf(&b, "%s: %s\n", name, value);
    /* A CR or LF inside a name or value would split the header; flatten
     * them (the last byte is our own line end). */
    for (size_t i = start; i + 1 < b.len; i++)
        if (b.data[i] == '\r' || b.data[i] == '\n')
            b.data[i] = ' ';
    free(r->extra_headers);
    r->extra_headers = b.data;
}

/* ---- request accessors --------------------------------------------------- */

const char *ts_http_query(const ts_http_request *req, const char *key)
{
    return MHD_lookup_connection_value(req->conn_, MHD_GET_ARGUMENT_KIND, key);
}

const char *ts_http_header(const ts_http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn_, MHD_HEADER_KIND, name);
}

void ts_http_peer(const ts_http_request *req, char *buf, size_t buflen)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn_, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char addr[INET6_ADDRSTRLEN];

    if (buflen == 0)
        return;
    snprintf(buf, buflen, "unknown");
    if (ci == NULL || ci->client_addr == NULL)
        return;
    if (ci->client_addr->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ci->client_addr;
        if (inet_ntop(AF_INET, &in->sin_addr, addr, sizeof(addr)) != NULL)
            snprintf(buf, buflen, "%s:%u", addr, (unsigned)ntohs(in->sin_port));
    } else if (ci->client_addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ci->client_addr;
        if (inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof(addr)) != NULL)
            snprintf(buf, buflen, "[%s]:%u", addr, (unsigned)ntohs(in6->sin6_port));
    }
}

/* ---- queuing a response -------------------------------------------------- */

/* Adds "Name: value\n" lines to an MHD response. */
static void add_extra_headers(struct MHD_Response *mr, const char *lines)
{
    const char *p = lines;
    while (p != NULL && *p != '\0') {
        const char *nl = strchr(p, '\n');
        size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
        const char *colon = memchr(p, ':', len);
        if (colon != NULL) {
            char *name = ts_strndup(p, (size_t)(colon - p));
            const char *v = colon + 1;
            while (v < p + len && *v == ' ')
                v++;
            char *value = ts_strndup(v, (size_t)(p + len - v));
            if (MHD_add_response_header(mr, name, value) != MHD_YES)
                TS_WARN("http: cannot add response header '%s'", name);
            free(name);
            free(value);
        }
        p = nl != NULL ? nl + 1 : NULL;
    }
}

/* Hands r to MHD.  Always consumes what r owns, also on failure. */
static enum MHD_Result queue_response(struct MHD_Connection *conn, ts_http_response *r)
{
    struct MHD_Response *mr;
    enum MHD_Result ret;

    if (r->status == 0) {
        /* A handler that filled nothing is a bug; answer rather than hang. */
        response_clear(r);
        ts_http_respond_error(r, TS_EIO, "handler produced no response");
    }
    if (r->fd >= 0) {
        /* MHD owns and closes the fd from here on, sending it with sendfile. */
        mr = MHD_create_response_from_fd_at_offset64(r->fd_len, r->fd, (uint64_t)r->fd_offset);
        if (mr == NULL) {
            TS_ERROR("http: cannot create a file response (fd %d, %llu bytes)",
                     r->fd, (unsigned long long)r->fd_len);
            close(r->fd);
        }
        r->fd = -1;
    } else if (r->body != NULL) {
        mr = MHD_create_response_from_buffer(r->body_len, r->body, MHD_RESPMEM_MUST_FREE);
        if (mr == NULL)
            free(r->body);
        r->body = NULL;
    } else {
        mr = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (mr == NULL) {
        response_clear(r);
        return MHD_NO;      /* MHD closes the connection */
    }
    if (r->content_type != NULL &&
        MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type) != MHD_YES)
        TS_WARN("http: cannot add Content-Type header");
    add_extra_headers(mr, r->extra_headers);
    ret = MHD_queue_response(conn, (unsigned)r->status, mr);
    MHD_destroy_response(mr);
    response_clear(r);
    return ret;
}

/* ---- the access handler -------------------------------------------------- */

static uint64_t parse_content_length(struct MHD_Connection *conn)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_CONTENT_LENGTH);
    uint64_t n = 0;

    if (v == NULL || *v == '\0')
        return UINT64_MAX;
    for (const char *p = v; *p != '\0'; p++) {
        if (*p < '0' || *p > '9' || n > (UINT64_MAX - 9) / 10)
            return UINT64_MAX;   /* MHD rejects such requests before us anyway */
        n = n * 10 + (uint64_t)(*p - '0');
    }
    return n;
}

/* 1 when a response queued now cannot race the client's upload: there is no
 * body, or the client waits for "100 Continue" before sending it. */
static int can_answer_early(struct MHD_Connection *conn, const ts_http_request *req)
{
    const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_TRANSFER_ENCODING);
    const char *expect = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_EXPECT);
    int has_body = te != NULL ||
                   (req->content_length != UINT64_MAX && req->content_length > 0);
    return !has_body || (expect != NULL && strcasecmp(expect, "100-continue") == 0);
}

/* Answers before the body: at once when that is safe, else after the body has
 * been read and discarded (see the top of the file). */
static enum MHD_Result answer_before_body(struct MHD_Connection *conn, req_state *st,
                                          ts_http_response *resp)
{
    st->answered = 1;
    if (can_answer_early(conn, &st->req))
        return queue_response(conn, resp);
    st->pending = *resp;
    st->has_pending = 1;
    return MHD_YES;
}

static enum MHD_Result first_call(ts_http_server *s, struct MHD_Connection *conn,
                                  const char *url, const char *method, void **con_cls)
{
    req_state *st = ts_calloc(1, sizeof(*st));
    response_init(&st->pending);
    st->req.method = method;
    st->req.path = url;
    st->req.body = NULL;
    st->req.body_len = 0;
    st->req.content_length = parse_content_length(conn);
    st->req.conn_ = conn;
    *con_cls = st;

    if (s->opts.stream_match != NULL)
        st->ops = s->opts.stream_match(s->opts.app, &st->req);

    if (st->ops != NULL) {
        ts_http_response resp;
        response_init(&resp);
        if (st->ops->begin(s->opts.app, &st->req, &st->ctx, &resp) == 0) {
            st->accepted = 1;
            response_clear(&resp);      /* a stray fill on success is ignored */
            return MHD_YES;
        }
        return answer_before_body(conn, st, &resp);
    }

    if (st->req.content_length != UINT64_MAX && st->req.content_length > s->opts.max_body) {
        ts_http_response resp;
        response_init(&resp);
        ts_http_respond_error(&resp, TS_EFBIG, "%s %s: body of %llu bytes exceeds the limit of %zu",
                              method, url, (unsigned long long)st->req.content_length,
                              s->opts.max_body);
        return answer_before_body(conn, st, &resp);
    }
    return MHD_YES;
}

static void body_piece(ts_http_server *s, req_state *st, const char *data, size_t n)
{
    if (st->answered)
        return;     /* discard the rest of a failed request's body */
    if (st->ops != NULL) {
        if (st->ops->data(st->ctx, data, n, &st->pending) != 0) {
            st->answered = 1;
            st->has_pending = 1;
        } else {
            /* Fills on success are not answers. */
            response_clear(&st->pending);
        }
        return;
    }
    if (st->body.len + n > s->opts.max_body) {
        ts_http_respond_error(&st->pending, TS_EFBIG, "%s %s: body exceeds the limit of %zu bytes",
                              st->req.method, st->req.path, s->opts.max_body);
        st->answered = 1;
        st->has_pending = 1;
        ts_buf_free(&st->body);
        return;
    }
    ts_buf_append(&st->body, data, n);
}

static enum MHD_Result final_call(ts_http_server *s, struct MHD_Connection *conn, req_state *st)
{
    ts_http_response resp;

    if (st->has_pending) {
        st->has_pending = 0;
        return queue_response(conn, &st->pending);
    }
    if (st->answered)
        return MHD_YES;     /* already queued early; nothing more to say */
    st->answered = 1;
    response_init(&resp);
    if (st->ops != NULL) {
        st->ops->end(st->ctx, &st->req, &resp);
    } else {
        /* ts_buf keeps data NUL-terminated; an empty body is "". */
        st->req.body = st->body.data != NULL ? st->body.data : "";
        st->req.body_len = st->body.len;
        s->opts.handle(s->opts.app, &st->req, &resp);
    }
    st->on_complete = resp.on_complete;
    st->on_complete_arg = resp.on_complete_arg;
    return queue_response(conn, &resp);
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **con_cls)
{
    ts_http_server *s = cls;
    req_state *st = *con_cls;

    if (st == NULL)
        return first_call(s, conn, url, method, con_cls);
    if (*upload_data_size > 0) {
        body_piece(s, st, upload_data, *upload_data_size);
        *upload_data_size = 0;      /* consumed (or discarded) all of it */
        return MHD_YES;
    }
    return final_call(s, conn, st);
}

static void request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
    req_state *st = *con_cls;

    if (st == NULL)
        return;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        TS_DEBUG("http: %s %s ended early (MHD code %d)", st->req.method, st->req.path, (int)toe);
    if (st->accepted)
        st->ops->release(st->ctx);
    if (st->on_complete != NULL)
        st->on_complete(st->on_complete_arg);
    response_clear(&st->pending);
    ts_buf_free(&st->body);
    free(st);
    *con_cls = NULL;
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    /* MHD messages end with a newline of their own. */
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    TS_WARN("http: %s", msg);
}

/* ---- start and stop ------------------------------------------------------ */

static int resolve_bind(const char *addr, int port, struct sockaddr_storage *ss,
                        ts_error *err)
{
    struct addrinfo hints, *res = NULL;
    char portstr[16];

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(portstr, sizeof(portstr), "%d", port);
    int rc = getaddrinfo(addr, portstr, &hints, &res);
    if (rc != 0)
        return ts_fail(err, TS_EINVAL, "bind address '%s': %s", addr ? addr : "(any)",
                       gai_strerror(rc));
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

int ts_http_server_start(const ts_http_server_opts *opts, ts_http_server **out, ts_error *err)
{
    struct sockaddr_storage ss;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_AUTO;
    const char *bind_addr = opts->bind_addr != NULL ? opts->bind_addr : "0.0.0.0";
    int rc;

    *out = NULL;
    if (opts->handle == NULL)
        return ts_fail(err, TS_EINVAL, "http server: no handler given");
    if (opts->port < 0 || opts->port > 65535)
        return ts_fail(err, TS_EINVAL, "http server: port %d out of range", opts->port);
    rc = resolve_bind(bind_addr, opts->port, &ss, err);
    if (rc != 0)
        return rc;

    /* A peer that closes mid-response must not kill the daemon: sendfile()
     * raises SIGPIPE where send() can be told not to. */
    signal(SIGPIPE, SIG_IGN);

    ts_http_server *s = ts_calloc(1, sizeof(*s));
    s->opts = *opts;
    if (s->opts.max_body == 0)
        s->opts.max_body = DEFAULT_MAX_BODY;
    if (s->opts.connection_timeout_s == 0)
        s->opts.connection_timeout_s = DEFAULT_CONN_TIMEOUT_S;
    if (s->opts.pool_threads == 0)
        s->opts.pool_threads = DEFAULT_POOL_THREADS;
    if (s->opts.conn_memory == 0)
        s->opts.conn_memory = CONN_MEMORY_LIMIT;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (opts->threading == TS_HTTP_THREAD_PER_CONNECTION)
        flags |= MHD_USE_THREAD_PER_CONNECTION;

    /* The logger comes first so start-up errors go through ts_log too. */
    struct MHD_OptionItem items[] = {
        { MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_logger, NULL },
        { MHD_OPTION_SOCK_ADDR, 0, &ss },
        { MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)s->opts.connection_timeout_s, NULL },
        { MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)s->opts.conn_memory, NULL },
        { MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)request_completed, s },
        { opts->threading == TS_HTTP_THREAD_POOL ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END,
          (intptr_t)s->opts.pool_threads, NULL },
        { MHD_OPTION_END, 0, NULL },
    };
    errno = 0;
    s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, access_handler, s,
                                 MHD_OPTION_ARRAY, items, MHD_OPTION_END);
    if (s->daemon == NULL) {
        int e = errno;
        rc = ts_fail(err, TS_EIO, "http server: cannot listen on %s:%d%s%s", bind_addr,
                     opts->port, e != 0 ? ": " : "", e != 0 ? strerror(e) : "");
        goto free_server;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (di == NULL || di->port == 0) {
        rc = ts_fail(err, TS_EIO, "http server: cannot learn the port bound on %s", bind_addr);
        goto stop_daemon;
    }
    s->port = di->port;
    *out = s;
    return 0;

stop_daemon:
    MHD_stop_daemon(s->daemon);
free_server:
    free(s);
    return rc;
}

int ts_http_server_port(const ts_http_server *s)
{
    return s->port;
}

void ts_http_server_stop(ts_http_server *s)
{
    if (s == NULL)
        return;
    MHD_stop_daemon(s->daemon);
    free(s);
}
