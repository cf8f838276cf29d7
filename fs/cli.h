/*
 * Internals of the `tessera` command-line tool, shared by its cli_*.c files:
 * the per-invocation context, the command table entries each family
 * provides, and small helpers (option parsing, messages, progress, formats).
 * Conventions: commands return the process exit status (0 ok, 1 any error);
 * errors go to stderr as "tessera: CMD PATH: message"; --help text goes to
 * stdout and exits 0.
 */
#ifndef TESS_CLI_H
#define TESS_CLI_H

#include <stdint.h>
#include <stdio.h>
#include "fs/tessera.h"

#define CLI_DEFAULT_LOCAL_DIR "tessera-local"

typedef struct cli_ctx {
    const char *conf;           /* --conf, or NULL */
    tess_client *client;        /* opened on demand by cli_client */
    char conf_used[4096];       /* the config file the client came from */
} cli_ctx;

typedef int (*cli_cmd_fn)(cli_ctx *ctx, int argc, char **argv);

/* Opens the client (once) from --conf, $TESSERA_CONF or
 * ./tessera-local/client.conf.  Prints the error and returns NULL. */
tess_client *cli_client(cli_ctx *ctx);

/* Which config file to use: explicit, else $TESSERA_CONF, else
 * DEFAULT_DIR/client.conf when it exists.  NULL when none (pure but for the
 * environment and one stat; exposed for tests). */
const char *cli_find_conf(const char *explicit_conf, const char *env, char *buf, size_t buflen);

/* "tessera: " + message + newline on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "tessera CMD: unknown option … (see `tessera CMD --help`)" etc.; returns 1. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reports what getopt_long returned for a bad option (ch '?' or ':',
 * with the option string starting with ':'); returns 1. */
int cli_bad_option(const char *cmd, char **argv, int ch);

/* Parses a byte size ("64M", "1GiB", "4096") or a positive integer given to
 * option opt; prints the error and returns -1. */
int cli_parse_size(const char *cmd, const char *opt, const char *s, uint64_t *out);
int cli_parse_uint(const char *cmd, const char *opt, const char *s, unsigned min, unsigned max,
                   unsigned *out);

/* A friendly message for an error met on `path` (ENOENT -> "no such file or
 * directory", …) unless the message already says more. */
const char *cli_errmsg(const ts_error *e, char *buf, size_t buflen);

/* "drwxr-xr-x" (11 bytes with the NUL). */
void cli_mode_string(uint32_t mode, char out[11]);
/* "2026-11-22 00:55:13" (UTC) into out (32 bytes); with_ns adds ".nnnnnnnnn". */
void cli_time_string(int64_t ns, int with_ns, char out[48]);
const char *cli_type_name(uint32_t mode);

/* Transfer progress on stderr, only when stderr is a terminal:
 * "123 MiB / 200 MiB  45 MiB/s", redrawn at most 5 times a second. */
typedef struct cli_progress {
    int enabled;
    int64_t start_ms, last_ms;
    int shown;
} cli_progress;
void cli_progress_init(cli_progress *p);
void cli_progress_update(void *p, uint64_t done, uint64_t total);
void cli_progress_end(cli_progress *p);

/* Command families. */
int cli_cmd_ls(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_stat(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_mkdir(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_put(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_get(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_cat(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_rm(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_mv(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_admin(cli_ctx *ctx, int argc, char **argv);
/* `admin raft ...` (cli_raft.c) */
int cli_cmd_admin_raft(cli_ctx *ctx, int argc, char **argv);
/* `admin fsck [PATH] [--json]` (cli_fsck.c) */
int cli_cmd_admin_fsck(cli_ctx *ctx, int argc, char **argv);
/* `admin node ...`, `admin drain ...`, `admin rebalance ...` (cli_ops.c);
 * argv[0] names which. */
int cli_cmd_admin_ops(cli_ctx *ctx, int argc, char **argv);
/* Compaction and GC (cli_compact.c): the status lines from the status
 * answer; fsck's "orphans" part from it ({"chunks","replicas",
 * "gc_enabled"}, new reference) and its human line. */
void cli_print_gc_status(const json_t *status);
void cli_print_compaction_status(const json_t *status);
/* `admin compact [PATH] [--dry-run] [--json]` */
int cli_cmd_admin_compact(cli_ctx *ctx, int argc, char **argv);
json_t *cli_orphans_json(const json_t *status);
void cli_print_orphans(const json_t *orphans);
int cli_cmd_local(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_mr(cli_ctx *ctx, int argc, char **argv);

/* The local cluster's mount (cli_mount.c): DIR/mnt by tessera-mount.
 * Mount: 0 (mounted now or already), -1 after printing why.  Unmount:
 * fusermount3 -u (lazily when busy), then waits for the daemon to commit
 * and exit.  State of a mount point: 0 not mounted, 1 mounted, 2 mounted
 * but its daemon is gone. */
int cli_local_mount(const char *dir, const char *conf);
int cli_local_unmount(const char *dir);
void cli_local_mount_status(const char *dir);
int cli_mount_state(const char *mountpoint);
/* Parses the options of a command whose only option is -h/--help.  Returns
 * -1 when the caller should go on (operands start at optind), else the exit
 * code: 0 after printing usage, or the bad-option error. */
int cli_parse_help_only(const char *cmd, const char *usage, int argc, char **argv);

/* The path of one of Tessera's programs (tessera-meta, tessera-chunk,
 * tessera-mount): next to this executable (build tree, install dir), else the
 * first in PATH; NULL when not found.  Caller frees. */
char *cli_find_binary(const char *name);

/* `tessera CONF MOUNTPOINT [-o OPTS]` (the mount.fuse3 convention): execs
 * tessera-mount with the same arguments; returns only on failure. */
int cli_mount_helper(int argc, char **argv);

#endif
