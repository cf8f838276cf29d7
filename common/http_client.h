/*
 * HTTP client wrapper over libcurl.  Every thread keeps its own easy handle
 * (created on first use, freed at thread exit), so connections to the same
 * server are reused across requests (keep-alive) without locking.
 * Transport failures give TS_EUNAVAIL / TS_ETIMEDOUT with the URL in the
 * message; HTTP error statuses are returned as-is in the result so callers can
 * decode the JSON error body (ts_http_result_error does that).
 */
#ifndef TS_HTTP_CLIENT_H
#define TS_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "common/ts_error.h"

/* Call once at program start (curl_global_init) before any thread uses HTTP. */
void ts_http_client_global_init(void);

typedef struct ts_http_result {
    long status;            /* HTTP status, 0 if no response */
    char *body;             /* malloc'd, NUL-terminated; caller frees (ts_http_result_free) */
    size_t body_len;
    char *location;         /* Location header if any (redirects are not followed) */
    char *content_type;     /* Content-Type of the answer, NULL if none; freed with it */
} ts_http_result;

void ts_http_result_free(ts_http_result *r);

/* For a result with status >= 400: parses {"error","message"} into err and
 * returns the TS code (TS_EPROTO with the raw body when unparseable).  `what`
 * prefixes the message (e.g. "mkdir /a"). */
int ts_http_result_error(const ts_http_result *r, const char *what, ts_error *err);

/* (Named ts_http_call, not ts_http_request, which is http_server.h's request type.)
 * A request with an optional in-memory body.  Returns 0 when a response
 * arrived (any status), else TS_EUNAVAIL / TS_ETIMEDOUT.  timeout_ms 0 = none. */
int ts_http_call(const char *method, const char *url, const char *content_type,
                    const void *body, size_t body_len, long timeout_ms,
                    ts_http_result *out, ts_error *err);

/* Upload with a body produced by read_cb (fills buf, returns bytes, 0 at end,
 * < 0 to abort the transfer).  content_length UINT64_MAX = chunked encoding. */
typedef ssize_t (*ts_http_read_fn)(void *ctx, char *buf, size_t max);
int ts_http_put_stream(const char *url, const char *content_type, ts_http_read_fn read_cb,
                       void *ctx, uint64_t content_length, long timeout_ms,
                       ts_http_result *out, ts_error *err);

/* GET with Range bytes=offset..offset+len-1 straight into buf (no copy).
 * On a 2xx, *got is the number of bytes received (<= len).  A non-2xx status
 * is returned in out (its body holds the error) and *got is 0. */
int ts_http_get_range(const char *url, uint64_t offset, uint64_t len, void *buf,
                      size_t *got, long timeout_ms, ts_http_result *out, ts_error *err);

/* GET with the body of a 2xx answer handed to write_fn piece by piece, as it
 * arrives (nothing is buffered; a slow write_fn slows the sender through TCP
 * flow control).  write_fn returns 0 to go on, nonzero to stop: the call
 * then fails with TS_EIO "stopped by the receiver" (the caller keeps its own
 * reason).  A non-2xx status is returned in out with its body. */
typedef int (*ts_http_write_fn)(void *ctx, const char *buf, size_t len);
int ts_http_get_stream(const char *url, ts_http_write_fn write_fn, void *ctx, long timeout_ms,
                       ts_http_result *out, ts_error *err);

/* Drops this thread's handle (closing its connections). */
void ts_http_client_thread_cleanup(void);

#endif
