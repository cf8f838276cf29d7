/*
 * `tessera local up|down|status`: a whole cluster on this machine, on
 * loopback ports, with everything under one directory:
 *
 *   DIR/cluster.state      the daemons (name, role, port) and settings
 *   DIR/client.conf        what `export TESSERA_CONF=DIR/client.conf` uses
 *   DIR/meta-N/meta.conf   + data/, meta-N.log, pid (N = 1..metas; with more
 *                          than one they form a Raft group: id + peers)
 *   DIR/cs-N/chunk.conf    + data/, cs-N.log, pid
 *
 * `up` is idempotent: on an existing DIR it keeps ports and data, starts
 * whatever is not running and adds chunkservers when asked for more.  A
 * daemon counts as running when its pid file names a live process whose
 * /proc/PID/cmdline is our binary with our config file, so a recycled PID
 * is never mistaken for ours and `down` never signals a stranger.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/http_client.h"
#include "common/util.h"
#include "fs/cli.h"

#define MAX_DAEMONS 64
#define UP_DEADLINE_MS 20000
#define DOWN_DEADLINE_MS 10000
#define POLL_MS 50
#define MAX_CHUNK_SETS 16
#define CHUNK_SET_LEN 256

enum role { ROLE_META, ROLE_CHUNK };

typedef struct daemon_info {
    char name[64];              /* meta-1, cs-3 */
    enum role role;
    int port;
    pid_t pid;                  /* 0 when not running */
    int started;                /* started by this invocation */
} daemon_info;

typedef struct cluster {
    char dir[PATH_MAX];
    daemon_info d[MAX_DAEMONS];
    size_t n;
    uint64_t chunk_size;        /* for client.conf */
    int64_t heartbeat_timeout_ms; /* 0 = the metadata server's default */
    /* "key=value" settings added to every chunk.conf (--set-chunk), kept in
     * the state so a later `up` keeps them */
    char chunk_sets[MAX_CHUNK_SETS][CHUNK_SET_LEN];
    size_t nchunk_sets;
    /* the same for every meta.conf (--set-meta) */
    char meta_sets[MAX_CHUNK_SETS][CHUNK_SET_LEN];
    size_t nmeta_sets;
} cluster;

static const char *role_name(enum role r) { return r == ROLE_META ? "meta" : "chunk"; }
static const char *binary_name(enum role r) { return r == ROLE_META ? "tessera-meta" : "tessera-chunk"; }

static char *daemon_path(const cluster *cl, const daemon_info *d, const char *file)
{
    return ts_sprintf("%s/%s/%s", cl->dir, d->name, file);
}

static char *conf_path(const cluster *cl, const daemon_info *d)
{
    return daemon_path(cl, d, d->role == ROLE_META ? "meta.conf" : "chunk.conf");
}

/* --------------------------------------------------------- state file */

/* Adds or replaces a "key=value" setting in sets.  0, or -1 when the text
 * is not key=value or there are too many. */
static int add_set(char sets[][CHUNK_SET_LEN], size_t *n, const char *kv)
{
    const char *eq = strchr(kv, '=');
    size_t klen = eq != NULL ? (size_t)(eq - kv) : 0;

    if (klen == 0 || strlen(kv) >= CHUNK_SET_LEN || strchr(kv, '\n') != NULL)
        return -1;
    for (size_t i = 0; i < *n; i++) {
        if (strncmp(sets[i], kv, klen + 1) == 0) {
            snprintf(sets[i], CHUNK_SET_LEN, "%s", kv);
            return 0;
        }
    }
    if (*n == MAX_CHUNK_SETS)
        return -1;
    snprintf(sets[(*n)++], CHUNK_SET_LEN, "%s", kv);
    return 0;
}

static int add_chunk_set(cluster *cl, const char *kv)
{
    return add_set(cl->chunk_sets, &cl->nchunk_sets, kv);
}

static int add_meta_set(cluster *cl, const char *kv)
{
    return add_set(cl->meta_sets, &cl->nmeta_sets, kv);
}

/* Writes "key = value" lines for "key=value" settings. */
static void print_sets(ts_buf *b, const char sets[][CHUNK_SET_LEN], size_t n)
{
    for (size_t k = 0; k < n; k++) {
        const char *kv = sets[k], *eq = strchr(kv, '=');
        ts_buf_printf(b, "%.*s = %s\n", (int)(eq - kv), kv, eq + 1);
    }
}

/* Reads DIR/cluster.state: "daemon NAME ROLE PORT", "set KEY VALUE" and
 * "chunkset KEY=VALUE" lines.  Returns 0, 1 when there is no state yet, -1
 * after printing. */
static int load_state(cluster *cl, const char *cmd)
{
    char *path = ts_sprintf("%s/cluster.state", cl->dir), *text = NULL, *save = NULL;
    size_t len;
    ts_error e;
    int rc = ts_read_file(path, &text, &len, &e), lineno = 0;

    if (rc == TS_ENOENT) {
        free(path);
        return 1;
    }
    if (rc != 0) {
        cli_error("%s: %s", cmd, e.msg);
        free(path);
        return -1;
    }
    rc = 0;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char a[64], b[64];
        long long v;
        int port;

        lineno++;
        if (line[0] == '#' || line[0] == '\0')
            continue;
        if (sscanf(line, "daemon %31s %63s %d", a, b, &port) == 3 && cl->n < MAX_DAEMONS &&
            (strcmp(b, "meta") == 0 || strcmp(b, "chunk") == 0) && port > 0 && port < 65536) {
            daemon_info *d = &cl->d[cl->n++];
            memset(d, 0, sizeof(*d));
            snprintf(d->name, sizeof(d->name), "%s", a);
            d->role = strcmp(b, "meta") == 0 ? ROLE_META : ROLE_CHUNK;
            d->port = port;
        } else if (sscanf(line, "set %63s %lld", a, &v) == 2 && strcmp(a, "chunk_size") == 0 && v > 0) {
            cl->chunk_size = (uint64_t)v;
        } else if (sscanf(line, "set %63s %lld", a, &v) == 2 &&
                   strcmp(a, "heartbeat_timeout_ms") == 0 && v >= 0) {
            cl->heartbeat_timeout_ms = v;
        } else if (strncmp(line, "chunkset ", 9) == 0 && add_chunk_set(cl, line + 9) == 0) {
            continue;
        } else if (strncmp(line, "metaset ", 8) == 0 && add_meta_set(cl, line + 8) == 0) {
            continue;
        } else {
            cli_error("%s: %s:%d: cannot parse '%s'", cmd, path, lineno, line);
            rc = -1;
            break;
        }
    }
    free(text);
    free(path);
    return rc;
}

static int write_text(const char *cmd, const char *path, const ts_buf *b)
{
    ts_error e;

    if (ts_write_file_atomic(path, b->data, b->len, &e) != 0) {
        cli_error("%s: %s", cmd, e.msg);
        return -1;
    }
    return 0;
}

static const daemon_info *the_meta(const cluster *cl)
{
    for (size_t i = 0; i < cl->n; i++)
        if (cl->d[i].role == ROLE_META)
            return &cl->d[i];
    return NULL;
}

static size_t count_metas(const cluster *cl)
{
    size_t n = 0;
    for (size_t i = 0; i < cl->n; i++)
        n += cl->d[i].role == ROLE_META;
    return n;
}

/* "127.0.0.1:P1,127.0.0.1:P2,..." of the metadata servers; with names
 * ("meta-1=127.0.0.1:P1,...") for a Raft peers list. */
static void meta_list(const cluster *cl, int names, ts_buf *b)
{
    const char *sep = "";
    for (size_t i = 0; i < cl->n; i++) {
        if (cl->d[i].role != ROLE_META)
            continue;
        ts_buf_printf(b, "%s%s%s127.0.0.1:%d", sep, names ? cl->d[i].name : "", names ? "=" : "",
                      cl->d[i].port);
        sep = ",";
    }
}

/* Writes cluster.state, client.conf and every daemon's directory and
 * config (regenerated each time from the state, so they always agree). */
static int write_files(const cluster *cl)
{
    ts_buf b = {0}, metas = {0}, peers = {0};
    ts_error e;
    char *path;
    int rc;

    meta_list(cl, 0, &metas);
    meta_list(cl, 1, &peers);
    ts_buf_append(&metas, "", 1);
    ts_buf_append(&peers, "", 1);

    ts_buf_printf(&b, "# tessera local cluster (written by `tessera local up`; edit with care)\n");
    ts_buf_printf(&b, "set chunk_size %llu\n", (unsigned long long)cl->chunk_size);
    ts_buf_printf(&b, "set heartbeat_timeout_ms %lld\n", (long long)cl->heartbeat_timeout_ms);
    for (size_t i = 0; i < cl->n; i++)
        ts_buf_printf(&b, "daemon %s %s %d\n", cl->d[i].name, role_name(cl->d[i].role), cl->d[i].port);
    for (size_t i = 0; i < cl->nchunk_sets; i++)
        ts_buf_printf(&b, "chunkset %s\n", cl->chunk_sets[i]);
    for (size_t i = 0; i < cl->nmeta_sets; i++)
        ts_buf_printf(&b, "metaset %s\n", cl->meta_sets[i]);
    path = ts_sprintf("%s/cluster.state", cl->dir);
    rc = write_text("local up", path, &b);
    free(path);
    ts_buf_free(&b);
    if (rc != 0)
        goto free_lists;

    ts_buf_printf(&b, "# client configuration of the local cluster in %s\n", cl->dir);
    ts_buf_printf(&b, "meta = %s\n", (const char *)metas.data);
    ts_buf_printf(&b, "chunk_size = %llu\n", (unsigned long long)cl->chunk_size);
    path = ts_sprintf("%s/client.conf", cl->dir);
    rc = write_text("local up", path, &b);
    free(path);
    ts_buf_free(&b);
    if (rc != 0)
        goto free_lists;

    for (size_t i = 0; i < cl->n && rc == 0; i++) {
        const daemon_info *d = &cl->d[i];
        char *dir = ts_sprintf("%s/%s", cl->dir, d->name);
        char *data = ts_sprintf("%s/data", dir);

        if (ts_mkdir_p(data, &e) != 0) {
            cli_error("local up: %s", e.msg);
            rc = -1;
        } else {
            ts_buf_printf(&b, "# %s of the local cluster in %s\n", d->name, cl->dir);
            ts_buf_printf(&b, "listen = 127.0.0.1:%d\n", d->port);
            ts_buf_printf(&b, "log_file = %s/%s.log\n", dir, d->name);
            if (d->role == ROLE_META) {
                ts_buf_printf(&b, "data_dir = %s\n", data);
                if (cl->heartbeat_timeout_ms > 0)
                    ts_buf_printf(&b, "heartbeat_timeout_ms = %lld\n",
                                  (long long)cl->heartbeat_timeout_ms);
                /* One metadata server runs alone (its own log); more form
                 * a Raft group. */
                if (count_metas(cl) > 1) {
                    ts_buf_printf(&b, "id = %s\n", d->name);
                    ts_buf_printf(&b, "peers = %s\n", (const char *)peers.data);
                }
                print_sets(&b, cl->meta_sets, cl->nmeta_sets);
            } else {
                ts_buf_printf(&b, "id = %s\n", d->name);
                ts_buf_printf(&b, "data_dirs = %s\n", data);
                ts_buf_printf(&b, "meta = %s\n", (const char *)metas.data);
                /* Heartbeat a few times per timeout, so a live server is
                 * never declared down by a short local timeout. */
                if (cl->heartbeat_timeout_ms > 0)
                    ts_buf_printf(&b, "heartbeat_interval_ms = %lld\n",
                                  (long long)TS_MAX(50, TS_MIN(1000, cl->heartbeat_timeout_ms / 4)));
                /* Last, so they override the lines above (later keys win). */
                print_sets(&b, cl->chunk_sets, cl->nchunk_sets);
            }
            path = conf_path(cl, d);
            rc = write_text("local up", path, &b);
            free(path);
            ts_buf_free(&b);
        }
        free(data);
        free(dir);
    }
free_lists:
    ts_buf_free(&metas);
    ts_buf_free(&peers);
    return rc;
}

/* ------------------------------------------------------------ processes */

/* 1 when pid is alive and runs binary `bin` with config `conf`. */
static int is_ours(pid_t pid, const char *bin, const char *conf)
{
    char path[64], buf[8192];
    int fd, found_bin = 0, found_conf = 0;
    ssize_t n;

    if (pid <= 0 || (kill(pid, 0) != 0 && errno != EPERM))
        return 0;
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return 0;
    n = ts_read_full(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;           /* a zombie has an empty cmdline: not running */
    buf[n] = '\0';
    for (char *p = buf; p < buf + n; p += strlen(p) + 1) {
        const char *slash = strrchr(p, '/');
        if (p == buf && strcmp(slash ? slash + 1 : p, bin) == 0)
            found_bin = 1;
        if (strcmp(p, conf) == 0)
            found_conf = 1;
    }
    return found_bin && found_conf;
}

static pid_t read_pid(const cluster *cl, const daemon_info *d)
{
    char *path = daemon_path(cl, d, "pid"), *text = NULL;
    size_t len;
    ts_error e;
    long v = 0;

    if (ts_read_file(path, &text, &len, &e) == 0)
        v = strtol(text, NULL, 10);
    free(text);
    free(path);
    return v > 0 ? (pid_t)v : 0;
}

/* Fills d->pid when the daemon is running (ours), else 0. */
static void probe(const cluster *cl, daemon_info *d)
{
    pid_t pid = read_pid(cl, d);
    char *conf = conf_path(cl, d);

    d->pid = is_ours(pid, binary_name(d->role), conf) ? pid : 0;
    free(conf);
}

/* fork + setsid + exec, output to the daemon's log; writes DIR/X/pid. */
static int start_daemon(const cluster *cl, daemon_info *d, const char *bin)
{
    char *conf = conf_path(cl, d), *log = NULL, *pidfile = daemon_path(cl, d, "pid");
    char pidtext[32];
    ts_buf b = {0};
    pid_t pid;
    int rc = -1;

    log = ts_sprintf("%s/%s/%s.log", cl->dir, d->name, d->name);
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        cli_error("local up: fork for %s: %s", d->name, strerror(errno));
        goto free_paths;
    }
    if (pid == 0) {
        /* Child: its own session, so a terminal's ^C or hangup does not
         * reach the cluster; no inherited terminal on any stdio. */
        int in = open("/dev/null", O_RDONLY), out = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (in < 0 || out < 0 || setsid() < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 ||
            dup2(out, 2) < 0)
            _exit(126);
        /* Nothing else inherited: a test harness waiting for its pipes
         * (bats keeps fd 3) must not wait for the daemons too. */
        closefrom(3);
        execl(bin, bin, "--conf", conf, (char *)NULL);
        dprintf(2, "tessera local up: exec %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    d->pid = pid;
    d->started = 1;
    snprintf(pidtext, sizeof(pidtext), "%d\n", (int)pid);
    ts_buf_append(&b, pidtext, strlen(pidtext));
    rc = write_text("local up", pidfile, &b);
    ts_buf_free(&b);
free_paths:
    free(log);
    free(pidfile);
    free(conf);
    return rc;
}

/* Prints the last lines of a daemon's log, for a failed start. */
static void print_log_tail(const cluster *cl, const daemon_info *d, int lines)
{
    char *path = ts_sprintf("%s/%s/%s.log", cl->dir, d->name, d->name), *text = NULL;
    size_t len = 0, start;
    ts_error e;

    if (ts_read_file(path, &text, &len, &e) != 0) {
        fprintf(stderr, "  (no log: %s)\n", e.msg);
        free(path);
        return;
    }
    start = len;
    if (start > 0 && text[start - 1] == '\n')
        start--;
    for (int k = 0; start > 0; start--)
        if (text[start - 1] == '\n' && ++k == lines)
            break;
    fprintf(stderr, "--- last lines of %s ---\n%.*s", path, (int)(len - start), text + start);
    if (len > 0 && text[len - 1] != '\n')
        fputc('\n', stderr);
    free(text);
    free(path);
}

/* 1 when GET http://127.0.0.1:PORT/health answers 200. */
static int healthy(int port)
{
    char url[64];
    ts_http_result r = {0};
    ts_error e;
    int ok;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/health", port);
    ok = ts_http_call("GET", url, NULL, NULL, 0, 1000, &r, &e) == 0 && r.status == 200;
    ts_http_result_free(&r);
    return ok;
}

/* GET http://127.0.0.1:PORT/PATH as a JSON object; NULL unless 200. */
static json_t *get_json(int port, const char *path)
{
    char url[128];
    ts_http_result r = {0};
    json_t *j = NULL;
    ts_error e;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    if (ts_http_call("GET", url, NULL, NULL, 0, 1000, &r, &e) != 0 || r.status != 200 ||
        ts_json_parse_object(r.body, r.body_len, &j, &e) != 0)
        j = NULL;
    ts_http_result_free(&r);
    return j;
}

/* Ids of the chunkservers the metadata service reports "up".  Only the
 * leader of a Raft group answers (the others say 421), so a success also
 * means a leader was elected. */
static int chunkservers_up(const cluster *cl, tess_servers *out)
{
    ts_error e;

    for (size_t i = 0; i < cl->n; i++) {
        if (cl->d[i].role != ROLE_META)
            continue;
        json_t *j = get_json(cl->d[i].port, "/v1/cluster/status");
        if (j == NULL)
            continue;
        int rc = tess_servers_from_json(j, out, &e) == 0 ? 0 : -1;
        json_decref(j);
        return rc;
    }
    return -1;
}

/* The Raft role of a metadata server ("leader", "follower", ...), "" for a
 * single server or when it does not answer.  out has 16 bytes. */
static void raft_role(int port, char *out)
{
    json_t *j = get_json(port, "/v1/raft/status");
    const char *role = j ? json_string_value(json_object_get(j, "role")) : NULL;

    snprintf(out, 16, "%s", role ? role : "");
    json_decref(j);
}

/* Free loopback ports: bind port 0 for each and read what the kernel gave.
 * All sockets stay open until every port is chosen, so two daemons never
 * get the same one. */
static int pick_ports(int *ports, size_t n)
{
    int fds[MAX_DAEMONS];
    size_t opened = 0;
    int rc = 0;

    for (; opened < n; opened++) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0,
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t alen = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
            getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
            cli_error("local up: cannot find a free port on 127.0.0.1: %s", strerror(errno));
            if (fd >= 0)
                close(fd);
            rc = -1;
            break;
        }
        fds[opened] = fd;
        ports[opened] = ntohs(a.sin_port);
    }
    for (size_t i = 0; i < opened; i++)
        close(fds[i]);
    return rc;
}

static int make_absolute(const char *dir, char *out, size_t outlen)
{
    char cwd[PATH_MAX];

    if (dir[0] == '/') {
        snprintf(out, outlen, "%s", dir);
    } else {
        if (!getcwd(cwd, sizeof(cwd))) {
            cli_error("local: getcwd: %s", strerror(errno));
            return -1;
        }
        if ((size_t)snprintf(out, outlen, "%s/%s", cwd, dir) >= outlen) {
            cli_error("local: %s: path too long", dir);
            return -1;
        }
    }
    /* No trailing slashes: paths are compared in /proc/PID/cmdline. */
    for (size_t l = strlen(out); l > 1 && out[l - 1] == '/'; l--)
        out[l - 1] = '\0';
    return 0;
}

/* ------------------------------------------------------------------- up */

/* Waits until every daemon answers /health and every chunkserver is "up"
 * at the metadata server.  On failure prints which and its log tail. */
static int wait_ready(cluster *cl)
{
    const daemon_info *meta = the_meta(cl);
    int64_t deadline = ts_mono_ms() + UP_DEADLINE_MS;
    size_t i;

    for (;;) {
        int all = 1;
        tess_servers up = {0};
        int have_status = 0;

        for (i = 0; i < cl->n; i++) {
            daemon_info *d = &cl->d[i];
            int status;

            /* A daemon we started that exited already will never answer. */
            if (d->started && waitpid(d->pid, &status, WNOHANG) == d->pid) {
                cli_error("local up: %s exited during start-up (%s %d)", d->name,
                          WIFEXITED(status) ? "status" : "signal",
                          WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
                print_log_tail(cl, d, 20);
                d->pid = 0;
                return -1;
            }
            if (!healthy(d->port)) {
                all = 0;
                break;
            }
        }
        if (all && (have_status = chunkservers_up(cl, &up) == 0)) {
            for (i = 0; i < cl->n && all; i++) {
                const tess_server *s;
                if (cl->d[i].role != ROLE_CHUNK)
                    continue;
                s = tess_servers_find(&up, cl->d[i].name);
                if (!s || s->state != TESS_SERVER_UP)
                    all = 0;
            }
        } else {
            all = 0;
        }
        tess_servers_free(&up);
        if (all)
            return 0;
        if (ts_mono_ms() > deadline) {
            /* Name the first daemon that is not ready. */
            for (i = 0; i < cl->n; i++)
                if (!healthy(cl->d[i].port))
                    break;
            if (i == cl->n) {
                for (i = 0; i < cl->n; i++)
                    if (cl->d[i].role == ROLE_CHUNK)
                        break;
                cli_error("local up: chunkservers did not all register as up with the "
                          "metadata service within %d s%s", UP_DEADLINE_MS / 1000,
                          have_status ? "" : " (no cluster status: no Raft leader?)");
                print_log_tail(cl, meta, 20);
            } else {
                cli_error("local up: %s did not answer on 127.0.0.1:%d/health within %d s",
                          cl->d[i].name, cl->d[i].port, UP_DEADLINE_MS / 1000);
            }
            if (i < cl->n)
                print_log_tail(cl, &cl->d[i], 20);
            return -1;
        }
        ts_sleep_ms(POLL_MS);
    }
}

static const char up_usage[] =
    "usage: tessera local up [--dir DIR] [--metas N] [--chunkservers N]\n"
    "                        [--chunk-size BYTES] [--heartbeat-timeout MS]\n"
    "                        [--set-chunk KEY=VALUE]...\n"
    "\n"
    "Start a cluster on 127.0.0.1 with all its state under DIR, wait until it\n"
    "serves, and print how to use it.  On an existing DIR, start whatever is\n"
    "not running (same ports, same data) and add chunkservers when more are\n"
    "asked for.  tessera-meta and tessera-chunk are taken from the directory\n"
    "of this program, else from PATH.\n"
    "\n"
    "  -d, --dir DIR              cluster directory (default ./" CLI_DEFAULT_LOCAL_DIR ")\n"
    "      --metas N              metadata servers: 1 (alone, with its own log), or\n"
    "                             3 or 5 (a Raft group; default 3).  Used when DIR\n"
    "                             is new; later `up`s restart the recorded ones\n"
    "      --chunkservers N       chunkservers (default 3)\n"
    "      --chunk-size BYTES     chunk size written to client.conf (default 64M)\n"
    "      --heartbeat-timeout MS a chunkserver silent this long is suspect, and\n"
    "                             down after twice as long unless --set-meta\n"
    "                             down_after_ms=MS (default: the metadata server's)\n"
    "      --set-chunk KEY=VALUE  add a setting to every chunkserver's config\n"
    "                             (see tessera-chunk --help), e.g.\n"
    "                             scrub_bytes_per_sec=1G; remembered by later\n"
    "                             `up`s of the same DIR\n"
    "      --set-meta KEY=VALUE   the same for every metadata server's config\n"
    "                             (see tessera-meta --help), e.g. snapshot_every=500\n"
    "      --no-mount             do not mount the filesystem at DIR/mnt\n"
    "                             (default: mounted with tessera-mount, log in\n"
    "                             DIR/mount.log)\n"
    "  -h, --help                 this help\n";

static int local_up(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'}, {"metas", required_argument, NULL, 'm'},
        {"chunkservers", required_argument, NULL, 'n'}, {"chunk-size", required_argument, NULL, 'c'},
        {"heartbeat-timeout", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'},
        {"no-mount", no_argument, NULL, 'M'}, {"set-chunk", required_argument, NULL, 'S'},
        {"set-meta", required_argument, NULL, 'T'}, {NULL, 0, NULL, 0}};
    const char *dir = CLI_DEFAULT_LOCAL_DIR;
    unsigned metas = 3, nchunk = 0, hb = 0;
    uint64_t chunk_size = 0;
    char *bins[2] = {NULL, NULL};
    int ports[MAX_DAEMONS], hb_given = 0, ch, rc = 1, state, no_mount = 0;
    const char *chunk_sets[MAX_CHUNK_SETS], *meta_sets[MAX_CHUNK_SETS];
    size_t nchunk_sets = 0, nmeta_sets = 0;
    size_t nnew = 0, have_chunk = 0;
    cluster *cl = ts_calloc(1, sizeof(*cl));
    ts_error e;

    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":d:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'd': dir = optarg; break;
        case 'm':
            if (cli_parse_uint("local up", "--metas", optarg, 1, 5, &metas) != 0)
                goto free_cluster;
            if (metas % 2 == 0) {
                /* An even group tolerates no more failures than one less. */
                rc = cli_usage_error("local up", "--metas %u: expected 1, 3 or 5", metas);
                goto free_cluster;
            }
            break;
        case 'n':
            if (cli_parse_uint("local up", "--chunkservers", optarg, 1, MAX_DAEMONS - 8, &nchunk) != 0)
                goto free_cluster;
            break;
        case 'c':
            if (cli_parse_size("local up", "--chunk-size", optarg, &chunk_size) != 0)
                goto free_cluster;
            break;
        case 't':
            if (cli_parse_uint("local up", "--heartbeat-timeout", optarg, 100, 3600000, &hb) != 0)
                goto free_cluster;
            hb_given = 1;
            break;
        case 'h': fputs(up_usage, stdout); rc = 0; goto free_cluster;
        case 'M': no_mount = 1; break;
        case 'S':
            if (strchr(optarg, '=') == NULL || optarg[0] == '=' || nchunk_sets == MAX_CHUNK_SETS) {
                rc = cli_usage_error("local up", "--set-chunk '%s': expected KEY=VALUE (at most "
                                     "%d of them)", optarg, MAX_CHUNK_SETS);
                goto free_cluster;
            }
            chunk_sets[nchunk_sets++] = optarg;
            break;
        case 'T':
            if (strchr(optarg, '=') == NULL || optarg[0] == '=' || nmeta_sets == MAX_CHUNK_SETS) {
                rc = cli_usage_error("local up", "--set-meta '%s': expected KEY=VALUE (at most "
                                     "%d of them)", optarg, MAX_CHUNK_SETS);
                goto free_cluster;
            }
            meta_sets[nmeta_sets++] = optarg;
            break;
        default: rc = cli_bad_option("local up", argv, ch); goto free_cluster;
        }
    }
    if (optind < argc) {
        rc = cli_usage_error("local up", "unexpected argument '%s'", argv[optind]);
        goto free_cluster;
    }
    if (make_absolute(dir, cl->dir, sizeof(cl->dir)) != 0)
        goto free_cluster;
    for (int r = 0; r < 2; r++) {
        if (!(bins[r] = cli_find_binary(binary_name((enum role)r)))) {
            cli_error("local up: cannot find %s next to this program or in PATH",
                      binary_name((enum role)r));
            goto free_bins;
        }
    }
    if (ts_mkdir_p(cl->dir, &e) != 0) {
        cli_error("local up: %s", e.msg);
        goto free_bins;
    }

    /* The cluster as recorded, then as asked for. */
    cl->chunk_size = TESS_DEFAULT_CHUNK_SIZE;
    if ((state = load_state(cl, "local up")) < 0)
        goto free_bins;
    if (chunk_size)
        cl->chunk_size = chunk_size;
    if (hb_given)
        cl->heartbeat_timeout_ms = hb;
    for (size_t i = 0; i < nchunk_sets; i++) {
        if (add_chunk_set(cl, chunk_sets[i]) != 0) {
            cli_error("local up: --set-chunk '%s': too long, or more than %d settings in all",
                      chunk_sets[i], MAX_CHUNK_SETS);
            goto free_bins;
        }
    }
    for (size_t i = 0; i < nmeta_sets; i++) {
        if (add_meta_set(cl, meta_sets[i]) != 0) {
            cli_error("local up: --set-meta '%s': too long, or more than %d settings in all",
                      meta_sets[i], MAX_CHUNK_SETS);
            goto free_bins;
        }
    }
    if (state == 1 && nchunk == 0)
        nchunk = 3;
    for (size_t i = 0; i < cl->n; i++)
        have_chunk += cl->d[i].role == ROLE_CHUNK;
    int have_meta = the_meta(cl) != NULL;
    /* The group is fixed when the directory is new: its members are in
     * every meta.conf, and changing it is `tessera admin raft add|remove`. */
    for (unsigned k = 1; !have_meta && k <= metas; k++) {
        daemon_info *d = &cl->d[cl->n++];
        memset(d, 0, sizeof(*d));
        snprintf(d->name, sizeof(d->name), "meta-%u", k);
        d->role = ROLE_META;
        d->port = -1;
        nnew++;
    }
    for (size_t k = have_chunk + 1; k <= nchunk && cl->n < MAX_DAEMONS; k++) {
        daemon_info *d = &cl->d[cl->n++];
        memset(d, 0, sizeof(*d));
        snprintf(d->name, sizeof(d->name), "cs-%zu", k);
        d->role = ROLE_CHUNK;
        d->port = -1;
        nnew++;
    }
    if (nnew > 0) {
        size_t k = 0;
        if (pick_ports(ports, nnew) != 0)
            goto free_bins;
        for (size_t i = 0; i < cl->n; i++)
            if (cl->d[i].port < 0)
                cl->d[i].port = ports[k++];
    }
    if (write_files(cl) != 0)
        goto free_bins;

    /* Metadata server first: chunkservers register with it at start. */
    for (int r = ROLE_META; r <= ROLE_CHUNK; r++) {
        for (size_t i = 0; i < cl->n; i++) {
            daemon_info *d = &cl->d[i];
            if (d->role != (enum role)r)
                continue;
            probe(cl, d);
            if (d->pid == 0 && start_daemon(cl, d, bins[r]) != 0)
                goto free_bins;
        }
    }
    if (wait_ready(cl) != 0) {
        fprintf(stderr, "tessera: local up: the other daemons may still be running; "
                        "stop them with `tessera local down --dir %s`\n", cl->dir);
        goto free_bins;
    }

    printf("tessera local cluster in %s\n", cl->dir);
    for (size_t i = 0; i < cl->n; i++)
        printf("  %-8s %-5s 127.0.0.1:%-6d pid %-7d %s\n", cl->d[i].name, role_name(cl->d[i].role),
               cl->d[i].port, (int)cl->d[i].pid, cl->d[i].started ? "started" : "already running");
    if (!no_mount) {
        char *conf = ts_sprintf("%s/client.conf", cl->dir);
        int mrc = cli_local_mount(cl->dir, conf);
        free(conf);
        if (mrc != 0)
            goto free_bins;
    }
    printf("\nTo use it:\n  export TESSERA_CONF=%s/client.conf\n  tessera ls /\n", cl->dir);
    if (!no_mount)
        printf("  ls %s/mnt\n", cl->dir);
    printf("Stop it with: tessera local down --dir %s\n", cl->dir);
    rc = 0;
free_bins:
    free(bins[0]);
    free(bins[1]);
free_cluster:
    free(cl);
    return rc;
}

/* ----------------------------------------------------------------- down */

static int open_existing(const char *cmd, const char *dir, cluster *cl)
{
    int state;

    if (make_absolute(dir, cl->dir, sizeof(cl->dir)) != 0)
        return -1;
    if ((state = load_state(cl, cmd)) < 0)
        return -1;
    if (state == 1) {
        cli_error("%s: no local cluster in %s (start one with `tessera local up --dir %s`)", cmd,
                  cl->dir, dir);
        return -1;
    }
    return 0;
}

/* Parses the [--dir DIR] of down and status; 0 ok, else the exit code + 1. */
static int dir_option(const char *cmd, const char *usage_text, int argc, char **argv,
                      const char **dir)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int ch;

    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":d:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'd': *dir = optarg; break;
        case 'h': fputs(usage_text, stdout); return 1;
        default: return cli_bad_option(cmd, argv, ch) + 1;
        }
    }
    if (optind < argc)
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]) + 1;
    return 0;
}

static const char down_usage[] =
    "usage: tessera local down [--dir DIR]\n"
    "\n"
    "Unmount DIR/mnt (fusermount3 -u, lazily when busy) and wait for its\n"
    "tessera-mount to commit and exit, then stop the daemons of the local\n"
    "cluster in DIR (default ./" CLI_DEFAULT_LOCAL_DIR "): SIGTERM, then SIGKILL after 10 s.\n"
    "Data and configuration stay; `tessera local up` starts the same cluster again.\n"
    "\n"
    "  -d, --dir DIR   cluster directory\n"
    "  -h, --help      this help\n";

static int local_down(int argc, char **argv)
{
    const char *dir = CLI_DEFAULT_LOCAL_DIR;
    cluster *cl = ts_calloc(1, sizeof(*cl));
    int64_t deadline;
    int rc, remaining;

    if ((rc = dir_option("local down", down_usage, argc, argv, &dir)) != 0) {
        free(cl);
        return rc - 1;
    }
    if (open_existing("local down", dir, cl) != 0) {
        free(cl);
        return 1;
    }
    /* The mount first: its last commits need the daemons. */
    int unmount_rc = cli_local_unmount(cl->dir);
    for (size_t i = 0; i < cl->n; i++) {
        daemon_info *d = &cl->d[i];
        probe(cl, d);
        if (d->pid > 0 && kill(d->pid, SIGTERM) != 0) {
            cli_error("local down: %s (pid %d): %s", d->name, (int)d->pid, strerror(errno));
            d->pid = 0;
        }
    }
    {
        size_t running = 0;
        for (size_t i = 0; i < cl->n; i++)
            running += cl->d[i].pid > 0;
        if (running == 0)
            printf("no daemon of the cluster in %s was running\n", cl->dir);
    }
    deadline = ts_mono_ms() + DOWN_DEADLINE_MS;
    do {
        remaining = 0;
        for (size_t i = 0; i < cl->n; i++) {
            daemon_info *d = &cl->d[i];
            char *conf;
            if (d->pid <= 0)
                continue;
            conf = conf_path(cl, d);
            if (is_ours(d->pid, binary_name(d->role), conf)) {
                remaining++;
            } else {
                printf("stopped %s (pid %d)\n", d->name, (int)d->pid);
                d->pid = -d->pid;   /* remember it stopped */
            }
            free(conf);
        }
        if (remaining > 0)
            ts_sleep_ms(POLL_MS);
    } while (remaining > 0 && ts_mono_ms() < deadline);
    rc = 0;
    for (size_t i = 0; i < cl->n; i++) {
        daemon_info *d = &cl->d[i];
        char *pidfile = daemon_path(cl, d, "pid");
        if (d->pid > 0) {
            cli_error("local down: %s (pid %d) ignored SIGTERM for %d s: killing it", d->name,
                      (int)d->pid, DOWN_DEADLINE_MS / 1000);
            if (kill(d->pid, SIGKILL) != 0 && errno != ESRCH) {
                cli_error("local down: kill %s (pid %d): %s", d->name, (int)d->pid, strerror(errno));
                rc = 1;
            }
        }
        if (unlink(pidfile) != 0 && errno != ENOENT) {
            cli_error("local down: %s: %s", pidfile, strerror(errno));
            rc = 1;
        }
        free(pidfile);
    }
    free(cl);
    return rc != 0 || unmount_rc != 0;
}

/* --------------------------------------------------------------- status */

static const char status_usage[] =
    "usage: tessera local status [--dir DIR]\n"
    "\n"
    "Show each daemon of the local cluster in DIR (default ./" CLI_DEFAULT_LOCAL_DIR "): name, role,\n"
    "PID, address, health: healthy (answers /health), running (process\n"
    "alive, not answering) or stopped, and for the metadata servers of a Raft\n"
    "group their Raft role (leader, follower, candidate, learner); and the\n"
    "mount at DIR/mnt: mounted, dead (its tessera-mount is gone) or not mounted.\n"
    "\n"
    "  -d, --dir DIR   cluster directory\n"
    "  -h, --help      this help\n";

static int local_status(int argc, char **argv)
{
    const char *dir = CLI_DEFAULT_LOCAL_DIR;
    cluster *cl = ts_calloc(1, sizeof(*cl));
    int rc;

    if ((rc = dir_option("local status", status_usage, argc, argv, &dir)) != 0) {
        free(cl);
        return rc - 1;
    }
    if (open_existing("local status", dir, cl) != 0) {
        free(cl);
        return 1;
    }
    printf("cluster %s\n", cl->dir);
    printf("%-8s %-6s %-8s %-16s %-8s %s\n", "NAME", "ROLE", "PID", "ADDRESS", "HEALTH", "RAFT");
    for (size_t i = 0; i < cl->n; i++) {
        daemon_info *d = &cl->d[i];
        char addr[32], pid[16], raft[16] = "";

        probe(cl, d);
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", d->port);
        snprintf(pid, sizeof(pid), d->pid ? "%d" : "-", (int)d->pid);
        if (d->role == ROLE_META && d->pid != 0)
            raft_role(d->port, raft);
        printf("%-8s %-6s %-8s %-16s %-8s %s\n", d->name, role_name(d->role), pid, addr,
               d->pid == 0 ? "stopped" : healthy(d->port) ? "healthy" : "running",
               raft[0] ? raft : "-");
    }
    cli_local_mount_status(cl->dir);
    free(cl);
    return 0;
}

/* ---------------------------------------------------------------- local */

static const char local_usage[] =
    "usage: tessera local COMMAND [--dir DIR] [OPTIONS]\n"
    "\n"
    "A whole Tessera cluster on this machine (127.0.0.1), for trying Tessera\n"
    "and for tests.\n"
    "\n"
    "Commands:\n"
    "  up       start (or restart) the cluster and wait until it serves\n"
    "  down     stop it (data is kept)\n"
    "  status   show its daemons\n"
    "\n"
    "`tessera local COMMAND --help` for details.\n";

int cli_cmd_local(cli_ctx *ctx, int argc, char **argv)
{
    (void)ctx;
    if (argc < 2) {
        fputs(local_usage, stderr);
        return 1;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(local_usage, stdout);
        return 0;
    }
    if (strcmp(argv[1], "up") == 0)
        return local_up(argc - 1, argv + 1);
    if (strcmp(argv[1], "down") == 0)
        return local_down(argc - 1, argv + 1);
    if (strcmp(argv[1], "status") == 0)
        return local_status(argc - 1, argv + 1);
    return cli_usage_error("local", "unknown command '%s'", argv[1]);
}
