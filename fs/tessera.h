/*
 * libtessera: the client library of Tessera.  Everything a program needs to
 * use a cluster (the `tessera` CLI today, the FUSE mount next) goes through
 * this header, which is the whole contract:
 *
 *  - a client (tess_client) holds the configuration, the metadata server
 *    addresses (it remembers which one answered and follows 421 redirects),
 *    a briefly cached membership map and a small pool of I/O threads;
 *  - metadata calls are inode-level, one per PROTOCOL.md endpoint, plus
 *    tess_resolve for absolute paths;
 *  - a writer (tess_writer) buffers data into chunks, uploads them through a
 *    replication chain chosen by rendezvous placement, a few chunks in flight,
 *    and makes them visible with ONE /v1/file/commit at flush or close;
 *  - tess_read serves byte ranges from a file layout, trying replicas in turn;
 *  - small pure helpers (read planning, replica ordering, chain selection,
 *    path handling) are exposed so they can be unit-tested without servers.
 *
 * Error convention (common/ts_error.h): every call returns 0 (or a count) on
 * success, or a negative TS_E* code with a message in *err when err is
 * non-NULL.  Messages carry context ("chunk 3fa2…: replica cs-2
 * (127.0.0.1:7402): ECORRUPT …").
 *
 * Threading: a tess_client may be used from many threads at once (the FUSE
 * mount is multithreaded).  A tess_writer belongs to one thread at a time.
 * Call ts_http_client_global_init() once at program start before any call.
 */
#ifndef TESSERA_H
#define TESSERA_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>
#include "common/chunk_id.h"
#include "common/checksum.h"
#include "common/config.h"
#include "common/proto.h"
#include "common/ts_error.h"

/* ---------------------------------------------------------------- client */

#define TESS_DEFAULT_CHUNK_SIZE (64ull * 1024 * 1024)
#define TESS_DEFAULT_REPLICAS 3
#define TESS_DEFAULT_TIMEOUT_MS 30000
#define TESS_DEFAULT_IN_FLIGHT 3
#define TESS_MAX_REPLICAS 16
#define TESS_MAX_IN_FLIGHT 8
/* Reads are cut into pieces of at most this size. */
#define TESS_READ_PIECE (8u * 1024 * 1024)

typedef struct tess_client tess_client;

/* Client configuration.  Strings are copied by tess_client_open. */
typedef struct tess_client_opts {
    /* "host:port" or a comma-separated list of metadata servers, tried in turn. */
    const char *meta;
    uint64_t chunk_size;        /* default chunk size of writers (64 MiB) */
    unsigned replicas;          /* default replication factor (3) */
    long timeout_ms;            /* per HTTP request (30 s); also the retry deadline of metadata calls */
    unsigned in_flight;         /* chunk uploads a writer keeps in flight, also the read parallelism (3) */
    /* A commit whose new data is at most this many bytes and ends within
     * the first TESS_INLINE_END_MAX bytes of the file stores it inline in
     * the metadata (no chunk upload); 0 = never.  At most
     * TESS_INLINE_CHUNK_MAX (the default). */
    uint64_t inline_max;
} tess_client_opts;

/* Fills o with the defaults above (meta NULL). */
void tess_client_opts_init(tess_client_opts *o);

/* Reads the client keys of a config file into o (meta, chunk_size, replicas,
 * timeout_ms, in_flight, inline_max; other keys are rejected).  The strings in o point
 * into cfg, which must outlive o.  TS_EINVAL naming the bad key or value. */
int tess_client_opts_from_config(const ts_config *cfg, tess_client_opts *o, ts_error *err);

/* Opens a client.  No request is made yet.  TS_EINVAL for a bad option
 * (e.g. no meta address).  *out is released with tess_client_close. */
int tess_client_open(const tess_client_opts *opts, tess_client **out, ts_error *err);

/* Loads conf_path (key = value) and opens a client with its keys. */
int tess_client_open_conf(const char *conf_path, tess_client **out, ts_error *err);

/* Stops the I/O threads and frees c.  No writer may still be open. */
void tess_client_close(tess_client *c);

uint64_t tess_client_chunk_size(const tess_client *c);
unsigned tess_client_replicas(const tess_client *c);
/* The metadata server that answered last ("host:port"; owned by c; may
 * change under concurrent use, so copy it). */
const char *tess_client_meta_addr(const tess_client *c);
/* The metadata server addresses known to c (configured ones first, then
 * any a 421 named): how many, and the i-th ("host:port"; valid until
 * tess_client_close). */
size_t tess_client_meta_count(const tess_client *c);
const char *tess_client_meta_at(const tess_client *c, size_t i);
/* Called after a namespace change made through c (create, mkdir, symlink,
 * link, unlink, rmdir) with the directory's attributes as the change left
 * them, when the server reports them (PROTOCOL.md "parent"); on the thread
 * that made the call.  Set it before the client is shared between threads. */
typedef void (*tess_dir_changed_fn)(void *arg, const ts_attr *dir);
void tess_client_on_dir_change(tess_client *c, tess_dir_changed_fn fn, void *arg);
/* Metadata calls made through c so far (each counted once, whatever its
 * retries). */
uint64_t tess_client_meta_requests(const tess_client *c);
/* An operator call to the metadata service (e.g. POST /v1/raft/add): sent
 * to the leader with the same redirects and retries as every other call.
 * req (may be NULL) is consumed; *resp is the answer object on success. */
int tess_meta_admin_call(tess_client *c, const char *method, const char *path, json_t *req,
                         json_t **resp, ts_error *err);

/* ------------------------------------------------------- metadata calls */
/* Each maps to the PROTOCOL.md endpoint of the same name.  Server errors come
 * back with their TS code (ENOENT, EEXIST, ENOTDIR, …) and message. */

int tess_resolve(tess_client *c, const char *path, ts_attr *out, ts_error *err);
int tess_lookup(tess_client *c, uint64_t parent, const char *name, ts_attr *out, ts_error *err);
int tess_getattr(tess_client *c, uint64_t ino, ts_attr *out, ts_error *err);

/* Which fields of a tess_setattr_req to change. */
enum {
    TESS_SET_MODE = 1 << 0,
    TESS_SET_UID = 1 << 1,
    TESS_SET_GID = 1 << 2,
    TESS_SET_SIZE = 1 << 3,
    TESS_SET_ATIME = 1 << 4,
    TESS_SET_MTIME = 1 << 5,
};
typedef struct tess_setattr_req {
    unsigned mask;              /* TESS_SET_* */
    uint32_t mode, uid, gid;
    uint64_t size;              /* truncates, or extends with a hole */
    int64_t atime_ns, mtime_ns;
} tess_setattr_req;
int tess_setattr(tess_client *c, uint64_t ino, const tess_setattr_req *req, ts_attr *out,
                 ts_error *err);

int tess_mkdir(tess_client *c, uint64_t parent, const char *name, uint32_t mode, uint32_t uid,
               uint32_t gid, ts_attr *out, ts_error *err);

enum { TESS_CREATE_EXCL = 1 << 0, TESS_CREATE_TRUNC = 1 << 1 };
/* Creates a regular file or returns the existing one (TS_EEXIST with EXCL;
 * emptied with TRUNC).  *created (may be NULL) tells which happened. */
int tess_create(tess_client *c, uint64_t parent, const char *name, uint32_t mode, uint32_t uid,
                uint32_t gid, unsigned flags, ts_attr *out, int *created, ts_error *err);

/* Creates made before the server hears of them (the mount answers a
 * create at once and tells the server at close, with the data): the
 * inode number comes from a batch reserved ahead (PROTOCOL.md
 * /v1/ns/reserve_inodes), so nobody else ever gets it. */
int tess_reserve_inodes(tess_client *c, uint64_t *first, uint32_t *count, ts_error *err);
typedef struct tess_create_at_req {
    uint64_t parent;
    const char *name;           /* borrowed */
    uint64_t ino;               /* reserved, not used yet */
    uint32_t mode, uid, gid;
    int replace;                /* a regular file of that name is replaced (else EEXIST) */
} tess_create_at_req;
/* The file without data (a writer's flush sends its data with it:
 * tess_writer_set_create).  out (may be NULL) gets its attributes. */
int tess_create_at(tess_client *c, const tess_create_at_req *r, ts_attr *out, ts_error *err);

int tess_unlink(tess_client *c, uint64_t parent, const char *name, ts_error *err);
int tess_rmdir(tess_client *c, uint64_t parent, const char *name, ts_error *err);

enum { TESS_RENAME_NOREPLACE = 1, TESS_RENAME_EXCHANGE = 2 };
int tess_rename(tess_client *c, uint64_t parent, const char *name, uint64_t new_parent,
                const char *new_name, unsigned flags, ts_error *err);

int tess_symlink(tess_client *c, uint64_t parent, const char *name, const char *target,
                 uint32_t uid, uint32_t gid, ts_attr *out, ts_error *err);
/* *target is malloc'd; caller frees. */
int tess_readlink(tess_client *c, uint64_t ino, char **target, ts_error *err);
int tess_link(tess_client *c, uint64_t ino, uint64_t new_parent, const char *new_name,
              ts_attr *out, ts_error *err);

/* Directory listing, one page at a time (the FUSE readdir cookie is the last
 * name returned).  after NULL starts at the beginning.  On success *entries
 * (free with tess_dirents_free) holds *n entries and *more says whether a
 * later page exists. */
typedef struct tess_dirent {
    char *name;
    ts_attr attr;
} tess_dirent;
int tess_readdir_page(tess_client *c, uint64_t ino, const char *after, unsigned limit,
                      tess_dirent **entries, size_t *n, int *more, ts_error *err);
void tess_dirents_free(tess_dirent *entries, size_t n);
/* Every entry of a directory, fetching pages as needed; the callback returns
 * 0 to go on or a negative code to stop (returned as is). */
typedef int (*tess_readdir_fn)(void *ctx, const tess_dirent *entry);
int tess_readdir(tess_client *c, uint64_t ino, tess_readdir_fn fn, void *ctx, ts_error *err);

/* Extended attributes (stored in metadata; PROTOCOL.md /v1/ns/getxattr, listxattr, setxattr, removexattr).
 * Names are 1..255 bytes, values at most TESS_XATTR_VALUE_MAX bytes of any
 * content.  TS_ENODATA for a missing name (also for REPLACE);  TS_EEXIST for
 * CREATE of a present one.  *value and *names are malloc'd (caller frees);
 * *names is the names, each NUL-terminated, back to back (listxattr(2)). */
#define TESS_XATTR_VALUE_MAX 65536
enum { TESS_XATTR_CREATE = 1, TESS_XATTR_REPLACE = 2 };
int tess_getxattr(tess_client *c, uint64_t ino, const char *name, void **value, size_t *len,
                  ts_error *err);
int tess_listxattr(tess_client *c, uint64_t ino, char **names, size_t *len, ts_error *err);
int tess_setxattr(tess_client *c, uint64_t ino, const char *name, const void *value, size_t len,
                  unsigned flags, ts_error *err);
int tess_removexattr(tess_client *c, uint64_t ino, const char *name, ts_error *err);

/* ---------------------------------------------------------- file layout */

/* One extent of a layout plus what the metadata server knows of its chunk. */
typedef struct tess_layout_extent {
    ts_extent ext;
    uint64_t chunk_length;
    char **replicas;            /* server ids, up servers first */
    size_t nreplicas;
    /* An inline chunk (data kept by the metadata service, on no
     * chunkserver): its chunk_length bytes; NULL otherwise.  Owned. */
    uint8_t *inline_data;
} tess_layout_extent;

typedef struct tess_layout {
    ts_attr attr;
    tess_layout_extent *extents; /* sorted by file_offset, non-overlapping */
    size_t nextents;
} tess_layout;

/* Fetches the layout of a regular file; free with tess_layout_free. */
int tess_get_layout(tess_client *c, uint64_t ino, tess_layout **out, ts_error *err);
/* Parses the JSON answer of /v1/file/layout (exposed for tests); att holds
 * the attachments its extents' "inline_at" point into (NULL: none). */
int tess_layout_from_json(const json_t *j, const ts_att *att, tess_layout **out, ts_error *err);
void tess_layout_free(tess_layout *l);

/* A chunk registered by a commit.  inline_data non-NULL: an inline chunk,
 * whose `length` bytes travel with the commit and are kept by the metadata
 * service instead of chunkservers (no replicas).  Owned by the record. */
typedef struct tess_chunk_rec {
    ts_chunk_id id;
    uint64_t length;
    uint8_t sha256[TS_SHA256_LEN];
    char **replicas;            /* server ids that stored it */
    size_t nreplicas;
    uint8_t *inline_data;
} tess_chunk_rec;
void tess_chunk_rec_clear(tess_chunk_rec *r);
/* Limits of inline chunks, the same as the metadata service's
 * (metadata/namespace.h): bytes in one, and where their data must end. */
#define TESS_INLINE_CHUNK_MAX (64u * 1024)
#define TESS_INLINE_END_MAX (1024u * 1024)

/* Makes [offset, offset+length) of file ino consist of exactly `extents`
 * (holes elsewhere), registering `chunks`, atomically.  size NULL: the size
 * becomes max(size, offset+length); else *size.  mtime NULL: the server's
 * clock.  out may be NULL. */
int tess_commit(tess_client *c, uint64_t ino, uint64_t offset, uint64_t length,
                const ts_extent *extents, size_t nextents, const tess_chunk_rec *chunks,
                size_t nchunks, const uint64_t *size, const int64_t *mtime_ns, ts_attr *out,
                ts_error *err);

/* ----------------------------------------------------- cluster membership */

/* suspect: silent for a while, not written off yet (neither written to
 * nor preferred for reads). */
enum tess_server_state { TESS_SERVER_UP = 0, TESS_SERVER_DOWN, TESS_SERVER_DRAINING,
                         TESS_SERVER_SUSPECT, TESS_SERVER_REMOVED, TESS_SERVER_UNKNOWN };

typedef struct tess_server {
    char *id;
    char *address;              /* host:port */
    char *zone;                 /* "" when none */
    double weight;
    enum tess_server_state state;
    /* Only from tess_cluster_status (0 from tess_cluster_servers): */
    uint64_t capacity, used, chunks;
    int64_t last_heartbeat_ms_ago; /* -1 when unknown */
} tess_server;

typedef struct tess_servers {
    tess_server *v;
    size_t n;
} tess_servers;

enum tess_server_state tess_server_state_parse(const char *s);
const char *tess_server_state_name(enum tess_server_state s);

/* GET /v1/cluster/servers.  Free with tess_servers_free. */
int tess_cluster_servers(tess_client *c, tess_servers *out, ts_error *err);
/* Parses {"servers":[…]} (also the status answer); exposed for tests. */
int tess_servers_from_json(const json_t *j, tess_servers *out, ts_error *err);
void tess_servers_free(tess_servers *s);
/* Finds a server by id; NULL when absent. */
const tess_server *tess_servers_find(const tess_servers *s, const char *id);

typedef struct tess_cluster_status {
    tess_servers servers;
    uint64_t chunks, under_replicated, files, directories;
    json_t *raw;                /* the whole answer, for --json (owned) */
} tess_cluster_status;
/* GET /v1/cluster/status.  Free with tess_cluster_status_free. */
int tess_cluster_status_get(tess_client *c, tess_cluster_status *out, ts_error *err);
void tess_cluster_status_free(tess_cluster_status *s);

/* ------------------------------------------------------------------ writer */

typedef struct tess_writer tess_writer;

typedef struct tess_writer_opts {
    unsigned replicas;          /* 0 = client default */
    uint64_t chunk_size;        /* 0 = client default */
    unsigned in_flight;         /* 0 = client default; memory <= in_flight * chunk_size */
    /* The file ends where this writer's data ends: each commit sets the size
     * to the end of the data written so far, and the first one also drops
     * whatever the file held beyond it.  `tessera put` uses this to replace
     * a file atomically at close. */
    int truncate;
} tess_writer_opts;

/* Starts writing file ino at start_offset.  opts may be NULL. */
int tess_writer_open(tess_client *c, uint64_t ino, uint64_t start_offset,
                     const tess_writer_opts *opts, tess_writer **out, ts_error *err);
/* Appends len bytes at the writer's position.  Full chunks are uploaded in
 * the background; blocks while in_flight uploads are running.  After a
 * failure every later call fails with the same error. */
int tess_writer_write(tess_writer *w, const void *buf, size_t len, ts_error *err);
/* Uploads what is buffered and commits everything written since the last
 * commit (fsync).  attr (may be NULL) gets the file's new attributes. */
int tess_writer_flush(tess_writer *w, ts_attr *attr, ts_error *err);
/* Flushes and frees w (also on error: w is invalid after the call). */
int tess_writer_close(tess_writer *w, ts_attr *attr, ts_error *err);
/* Frees w without committing what was not committed yet. */
void tess_writer_abort(tess_writer *w);
/* The file w writes does not exist on the server yet: w's next commit
 * creates it as r says (one request, /v1/file/create_at) with the data
 * written so far.  r is copied (name too). */
void tess_writer_set_create(tess_writer *w, const tess_create_at_req *r);
/* The file was made on the server by other means (tess_create_at): w's
 * next commit is an ordinary one. */
void tess_writer_clear_create(tess_writer *w);
/* File offset of the next byte written. */
uint64_t tess_writer_offset(const tess_writer *w);

/* Stores one chunk through a replication chain (what the writer does for
 * each chunk; exposed for tools).  Fills rec (free with tess_chunk_rec_clear). */
int tess_upload_chunk(tess_client *c, const void *data, size_t len, unsigned replicas,
                      tess_chunk_rec *rec, ts_error *err);

/* ------------------------------------------------------------------ reader */

/* Reads up to len bytes of the file described by layout at offset into buf.
 * Holes read as zeros; returns the bytes read (short only at the layout's
 * end of file, 0 at or past it) or a negative code naming the chunk and
 * every replica tried. */
ssize_t tess_read(tess_client *c, const tess_layout *layout, uint64_t offset, size_t len,
                  void *buf, ts_error *err);

/* ------------------------------------------------------------ convenience */

typedef void (*tess_progress_fn)(void *ctx, uint64_t done, uint64_t total);

typedef struct tess_put_opts {
    unsigned replicas;          /* 0 = client default */
    uint64_t chunk_size;        /* 0 = client default */
    uint32_t mode;              /* permissions of a new file; 0 = 0644 */
    uint64_t size_hint;         /* for progress; 0 = unknown */
    tess_progress_fn progress;  /* may be NULL */
    void *progress_ctx;
} tess_put_opts;

/* Copies everything readable from fd into remote_path (absolute; created or
 * replaced; its directory must exist).  The new content becomes visible at
 * once when the copy completes.  out (may be NULL) gets the attributes. */
int tess_put_fd(tess_client *c, int fd, const char *remote_path, const tess_put_opts *opts,
                ts_attr *out, ts_error *err);
/* The same from a local file ("-" is stdin). */
int tess_put_file(tess_client *c, const char *local_path, const char *remote_path,
                  const tess_put_opts *opts, ts_attr *out, ts_error *err);

/* Writes the whole content of remote_path to fd; *bytes (may be NULL) gets
 * the count.  progress may be NULL. */
int tess_get_file(tess_client *c, const char *remote_path, int fd, tess_progress_fn progress,
                  void *progress_ctx, uint64_t *bytes, ts_error *err);

/* ------------------------------------------------- pure helpers (tested) */

/* One piece of a read: buf[buf_off, buf_off+len) comes from chunk
 * extents[extent].chunk at chunk_off, or is zeros when extent == SIZE_MAX. */
typedef struct tess_read_piece {
    size_t buf_off;
    size_t len;
    size_t extent;
    uint64_t chunk_off;
} tess_read_piece;

/* Plans a read of [offset, offset+len) clamped to file_size over sorted
 * extents, data pieces at most max_piece bytes.  *pieces is malloc'd (caller
 * frees); returns the total bytes the read yields. */
size_t tess_read_plan(const tess_layout_extent *extents, size_t nextents, uint64_t file_size,
                      uint64_t offset, size_t len, size_t max_piece, tess_read_piece **pieces,
                      size_t *npieces);

/* Orders the servers to try for a read of chunk id: indexes into servers of
 * the listed replicas that are up (in listed order), then the other up
 * servers in placement order, then the listed replicas that are not up.
 * out must hold servers->n entries; returns the count. */
size_t tess_replica_order(const ts_chunk_id *id, char *const *replicas, size_t nreplicas,
                          const tess_servers *servers, size_t *out);

/* Picks a write chain: the first r of ranked[0..nranked) (server indexes)
 * whose excluded[index] is 0.  Returns how many were chosen (< r when not
 * enough remain). */
size_t tess_chain_select(const size_t *ranked, size_t nranked, const unsigned char *excluded,
                         size_t r, size_t *chain);

/* Which member of a failed chain a 502 error message names: the index into
 * chain of the server whose address or id appears in msg, or -1. */
int tess_chain_blame(const tess_servers *servers, const size_t *chain, size_t n,
                     const char *msg);

/* Normalizes a remote path: absolute ("/" is prepended to a relative one),
 * no "//", "." or "..", no trailing slash.  out holds TS_PATH_MAX + 1 bytes.
 * TS_ENAMETOOLONG / TS_EINVAL (empty path, NUL). */
int tess_path_normalize(const char *in, char *out, ts_error *err);
/* Splits a normalized path into its parent and last name (pointers into buf,
 * which is modified).  TS_EINVAL for "/". */
int tess_path_split(char *buf, const char **parent, const char **name, ts_error *err);
/* The last component of any path ("a/b/" -> "b"); into out (PATH_MAX). */
void tess_path_basename(const char *path, char *out, size_t outlen);

#endif
