/*
 * Small helpers shared by every binary: allocation that aborts on OOM (daemons
 * do not carry untested OOM branches), monotonic and wall clocks, full
 * reads/writes, directory creation and fsync, host:port parsing, size parsing.
 */
#ifndef TS_UTIL_H
#define TS_UTIL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include "common/ts_error.h"

#define TS_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define TS_MIN(a, b) ((a) < (b) ? (a) : (b))
#define TS_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Allocation that aborts with a message on failure; caller owns the result. */
void *ts_malloc(size_t n);
void *ts_calloc(size_t n, size_t size);
void *ts_realloc(void *p, size_t n);
char *ts_strdup(const char *s);
char *ts_strndup(const char *s, size_t n);
/* asprintf that aborts on OOM; caller frees. */
char *ts_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Called first in a daemon's main: unless already done (or the
 * environment says TESSERA_MALLOC_TUNE=0), re-executes the program, same
 * PID and arguments, with glibc's allocator set to one arena backed by
 * transparent huge pages (GLIBC_TUNABLES glibc.malloc.hugetlb=1,
 * arena_max=1, appended to any tunables already set).  Why: a server
 * whose memory grows with every request (the metadata service keeps log
 * entries and inline data) otherwise takes a page fault per 4 KiB of new
 * memory, and on a virtual machine a fault costs ~10 us (measured here):
 * ~3 faults per 4 KiB file created on each metadata server.  Returns when
 * nothing is to be done or the exec failed (the process then runs with the
 * default allocator). */
void ts_malloc_tune_exec(char **argv);

int64_t ts_now_ns(void);        /* CLOCK_REALTIME, nanoseconds since the epoch */
int64_t ts_mono_ms(void);       /* CLOCK_MONOTONIC, milliseconds */
void ts_sleep_ms(int ms);
/* Timed waits on condition variables use CLOCK_MONOTONIC, immune to steps
 * of the wall clock: initialize the variable with ts_cond_init_mono (aborts
 * on failure) and wait until ts_deadline_mono(ms), ms milliseconds from now. */
void ts_cond_init_mono(pthread_cond_t *cv);
struct timespec ts_deadline_mono(int64_t ms);

/* Loop until all n bytes are written/read; EINTR is retried.  0 or TS_EIO
 * (with errno preserved).  ts_read_full returns the bytes read (short only at EOF) or TS_EIO. */
int ts_write_full(int fd, const void *buf, size_t n);
/* ts_write_full for large files that will be fsynced: the disk writes are
 * started every 8 MiB as it goes (and at most 8 MiB are left in flight), so
 * the final fsync is short and other fsyncs on the disk (the log's) do not
 * queue behind a flood of dirty pages.  Same results as ts_write_full. */
int ts_write_full_paced(int fd, const void *buf, size_t n);
int ts_pwrite_full(int fd, const void *buf, size_t n, off_t off);
ssize_t ts_read_full(int fd, void *buf, size_t n);
ssize_t ts_pread_full(int fd, void *buf, size_t n, off_t off);

/* mkdir -p with mode 0755.  0 or TS_EIO with message. */
int ts_mkdir_p(const char *path, ts_error *err);
/* fsync the directory containing path (or the directory itself if is_dir). */
int ts_fsync_dir(const char *dir, ts_error *err);
/* Reads a whole (small) file; caller frees *out.  0, TS_ENOENT or TS_EIO. */
int ts_read_file(const char *path, char **out, size_t *len, ts_error *err);
/* Writes data to path atomically: tmp file, fsync, rename, fsync dir. */
int ts_write_file_atomic(const char *path, const void *data, size_t len, ts_error *err);

/* "host:port" -> host (caller frees) and port.  TS_EINVAL on bad input. */
int ts_parse_hostport(const char *s, char **host, int *port, ts_error *err);
/* "64M", "16MiB", "1G", "4096", "10k" -> bytes.  TS_EINVAL on bad input. */
int ts_parse_size(const char *s, uint64_t *out, ts_error *err);
/* Human-readable size into buf ("1.5 GiB"). Returns buf. */
char *ts_format_size(uint64_t bytes, char *buf, size_t buflen);

/* Fills buf with n cryptographically random bytes (getrandom); aborts on failure. */
void ts_random_bytes(void *buf, size_t n);

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void ts_hex_encode(const uint8_t *in, size_t n, char *out);
/* Exactly 2n hex digits -> n bytes.  TS_EINVAL otherwise. */
int ts_hex_decode(const char *hex, uint8_t *out, size_t n);

/* Standard base64 (RFC 4648, with '=' padding) of n bytes: a malloc'd,
 * NUL-terminated string the caller frees. */
char *ts_base64_encode(const void *in, size_t n);
/* Decodes the len characters at in (padding required, no whitespace) into
 * a malloc'd buffer (*out, caller frees; *n its length; never NULL on
 * success, even for empty input).  TS_EINVAL for anything else. */
int ts_base64_decode(const char *in, size_t len, uint8_t **out, size_t *n);

/* Growable byte buffer; zero-initialize it ({0}); owner calls ts_buf_free. */
typedef struct ts_buf {
    char *data;
    size_t len;
    size_t cap;
} ts_buf;
void ts_buf_append(ts_buf *b, const void *data, size_t n);
void ts_buf_printf(ts_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ts_buf_reserve(ts_buf *b, size_t extra);
void ts_buf_free(ts_buf *b);

#endif
