/*
 * HTTP server wrapper over libmicrohttpd.  A server has one application
 * pointer and two kinds of handlers:
 *  - buffered: the body (up to max_body bytes; more is answered 413) is
 *    collected and handed over whole with the request;
 *  - streaming: chosen per request by `stream_match`, the body arrives piece by
 *    piece (for chunk uploads), so nothing large is ever held in memory.
 * A response carries either a memory body or a file range sent with sendfile.
 * Errors are answered as JSON {"error":"ENOENT","message":"…"} with the HTTP
 * status given by ts_err_http_status: this file is the HTTP boundary.
 *
 * Threading: TS_HTTP_THREAD_PER_CONNECTION suits handlers that block on other
 * servers (the chunk write chain: a pool could deadlock when servers forward to
 * each other); TS_HTTP_THREAD_POOL suits short handlers.  Handlers run
 * concurrently and must lock their own state.
 */
#ifndef TS_HTTP_SERVER_H
#define TS_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "common/ts_error.h"

typedef struct ts_http_server ts_http_server;

/* A request as seen by handlers; valid only during the handler call(s). */
typedef struct ts_http_request {
    const char *method;      /* "GET", "PUT", … */
    const char *path;        /* URL path, without the query string */
    const char *body;        /* buffered handlers only; NUL-terminated copy */
    size_t body_len;
    uint64_t content_length; /* UINT64_MAX when not given (chunked) */
    void *conn_;             /* private */
} ts_http_request;

/* Query argument or header value (owned by the server), NULL when absent. */
const char *ts_http_query(const ts_http_request *req, const char *key);
const char *ts_http_header(const ts_http_request *req, const char *name);
/* Peer address "a.b.c.d:port" into buf. */
void ts_http_peer(const ts_http_request *req, char *buf, size_t buflen);

/* A response under construction.  Fill through the helpers below. */
typedef struct ts_http_response {
    int status;              /* 0 means "not set" -> 500 */
    char *body;              /* malloc'd; the server frees it */
    size_t body_len;
    const char *content_type;/* static string */
    int fd;                  /* >= 0: send fd_len bytes at fd_offset (sendfile); the server closes fd */
    off_t fd_offset;
    uint64_t fd_len;
    char *extra_headers;     /* malloc'd "Name: value\n" lines, server frees */
    /* Optional: called exactly once when the request is over (the response
     * fully sent, or the connection gone), for handlers that account for
     * work still running after they return, such as a file range being
     * sent.  Set by buffered handlers and streaming `end` only. */
    void (*on_complete)(void *arg);
    void *on_complete_arg;
} ts_http_response;

/* Body takes ownership of a malloc'd buffer. */
void ts_http_respond(ts_http_response *r, int status, const char *content_type, char *body, size_t len);
/* Copies text; content type application/json. */
void ts_http_respond_json(ts_http_response *r, int status, const char *json_text);
/* {"error": ts_err_name(code), "message": msg} with status ts_err_http_status(code). */
void ts_http_respond_error(ts_http_response *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ts_http_respond_ts_error(ts_http_response *r, const ts_error *e);
/* Sends len bytes of fd at offset with sendfile; takes ownership of fd. */
void ts_http_respond_fd(ts_http_response *r, int status, const char *content_type, int fd, off_t offset, uint64_t len);
void ts_http_add_header(ts_http_response *r, const char *name, const char *value);

/* Buffered handler: fill resp. */
typedef void (*ts_http_handler_fn)(void *app, const ts_http_request *req, ts_http_response *resp);

/* Streaming handler, one instance per request. */
typedef struct ts_http_stream_ops {
    /* After headers.  Return 0 and set *ctx to accept the body; or fill resp and
     * return nonzero to answer at once (the body is then discarded). */
    int (*begin)(void *app, const ts_http_request *req, void **ctx, ts_http_response *resp);
    /* Each piece of the body, in order.  Return nonzero after filling resp to
     * fail the request (remaining body discarded; `end` is not called). */
    int (*data)(void *ctx, const char *buf, size_t len, ts_http_response *resp);
    /* The body is complete: fill resp. */
    void (*end)(void *ctx, const ts_http_request *req, ts_http_response *resp);
    /* Always called last, exactly once per accepted request, also when the
     * client disconnects midway: release ctx. */
    void (*release)(void *ctx);
} ts_http_stream_ops;

enum ts_http_threading { TS_HTTP_THREAD_POOL = 0, TS_HTTP_THREAD_PER_CONNECTION = 1 };

typedef struct ts_http_server_opts {
    const char *bind_addr;           /* "127.0.0.1" etc.; NULL = 0.0.0.0 */
    int port;                        /* 0 = any free port (see ts_http_server_port) */
    enum ts_http_threading threading;
    unsigned pool_threads;           /* THREAD_POOL only; 0 = 8 */
    size_t max_body;                 /* buffered bodies; 0 = 16 MiB */
    unsigned connection_timeout_s;   /* idle connections; 0 = 60 */
    /* Per-connection memory for headers and the read buffer; 0 = 128 KiB.
     * libmicrohttpd zeroes all of it before every request on a kept-alive
     * connection, so servers of many small requests want it small. */
    size_t conn_memory;
    void *app;
    ts_http_handler_fn handle;       /* every request not claimed by stream_match */
    /* Returns the streaming ops for this request or NULL (-> handle). */
    const ts_http_stream_ops *(*stream_match)(void *app, const ts_http_request *req);
} ts_http_server_opts;

/* Starts listening; TS_EIO with a message (e.g. port in use).  *out owned by
 * caller, released with ts_http_server_stop. */
int ts_http_server_start(const ts_http_server_opts *opts, ts_http_server **out, ts_error *err);
int ts_http_server_port(const ts_http_server *s);
/* Stops accepting, waits for handlers to finish, frees s. */
void ts_http_server_stop(ts_http_server *s);

#endif
