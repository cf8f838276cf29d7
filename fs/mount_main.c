/*
 * tessera-mount: the cluster as a directory (libfuse3 low-level API,
 * multithreaded session loop).
 *
 *   tessera-mount [-f] [-d] [-o OPT[,OPT...]] CONF MOUNTPOINT
 *
 * Also the program behind `mount -t fuse.tessera CONF MOUNTPOINT -o OPTS`
 * (mount.fuse3 runs `tessera CONF MOUNTPOINT -o OPTS`, which hands over to
 * this program) and /etc/fstab lines of that type.
 *
 * Start-up order, and why:
 *   1. options and CONF (errors on the terminal);
 *   2. one round trip to the metadata service: the mount is only made when
 *      the cluster answers, so a wrong address is a clear error now rather
 *      than a mount whose every access fails;
 *   3. the log file opened (still on the terminal if that fails);
 *   4. the kernel mount; 5. daemonize (unless -f), so the command returns
 *      once the mount point works; 6. the session loop until unmount or
 *      SIGTERM; uncommitted writes are committed before exiting.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/http_client.h"
#include "common/log.h"
#include "common/util.h"
#include "fs/mount_ops.h"

#define DEFAULT_TIMEOUT_S 1.0
#define DEFAULT_READAHEAD (64u << 20)
#define DEFAULT_THREADS 16
#define DEFAULT_LOG "/var/log/tessera-mount.log"

static const char usage[] =
    "usage: tessera-mount [-f] [-d] [-o OPTION[,OPTION...]] CONF MOUNTPOINT\n"
    "\n"
    "Mount the Tessera cluster described by the client configuration CONF\n"
    "(meta = host:port[,host:port...], see `tessera --help`) at MOUNTPOINT.\n"
    "Returns once the mount works; fails with a message when the metadata\n"
    "service cannot be reached.  Unmount with `fusermount3 -u MOUNTPOINT`.\n"
    "\n"
    "  -f                   stay in the foreground (default: daemonize)\n"
    "  -d                   FUSE debug output on stderr (implies -f)\n"
    "  -h, --help           this help\n"
    "\n"
    "Tessera options (-o, or the same keys in CONF):\n"
    "  log=FILE             log file (CONF: log_file; default " DEFAULT_LOG ",\n"
    "                       or stderr with -f)\n"
    "  log_level=LEVEL      debug, info, warn or error (default info)\n"
    "  attr_timeout=S       seconds the kernel caches attributes (default 1)\n"
    "  entry_timeout=S      seconds the kernel caches names (default 1)\n"
    "  readahead=SIZE       largest read-ahead window (default 64M; each\n"
    "                       sequential reader holds up to that much)\n"
    "  threads=N            FUSE worker threads (default 16)\n"
    "  pid_file=FILE        write the daemon's PID there\n"
    "  create_ahead=0|1     answer O_TRUNC creates at once and make the file on\n"
    "                       the server at close, with its data (default 1)\n"
    "\n"
    "FUSE options: allow_other, ro, noatime, ... (see mount.fuse3(8));\n"
    "default_permissions is always on.\n";

/* Keys of CONF: the client's, then the mount's own. */
static const char *const client_keys[] = {"meta", "chunk_size", "replicas", "timeout_ms",
                                          "in_flight", "inline_max", NULL};
static const char *const all_keys[] = {"meta", "chunk_size", "replicas", "timeout_ms",
                                       "in_flight", "inline_max", "log_file", "log_level",
                                       "attr_timeout", "entry_timeout", "readahead",
                                       "create_ahead", NULL};

typedef struct cmdline {
    char *log, *log_level, *readahead, *pid_file, *attr_timeout, *entry_timeout, *create_ahead;
    unsigned threads;
    int foreground, debug, help;
    char *conf, *mountpoint;
    int extra_args;             /* a third positional argument: an error */
} cmdline;

enum { KEY_FG, KEY_DEBUG, KEY_HELP, KEY_IGNORE };

#define OPT(t, f) { t, offsetof(cmdline, f), 0 }
static const struct fuse_opt opt_spec[] = {
    OPT("log=%s", log),
    OPT("log_level=%s", log_level),
    OPT("attr_timeout=%s", attr_timeout),
    OPT("entry_timeout=%s", entry_timeout),
    OPT("readahead=%s", readahead),
    OPT("threads=%u", threads),
    OPT("pid_file=%s", pid_file),
    OPT("create_ahead=%s", create_ahead),
    FUSE_OPT_KEY("-f", KEY_FG),
    FUSE_OPT_KEY("-d", KEY_DEBUG),
    FUSE_OPT_KEY("debug", KEY_DEBUG),
    FUSE_OPT_KEY("-h", KEY_HELP),
    FUSE_OPT_KEY("--help", KEY_HELP),
    /* What mount(8) and fstab add that means nothing to a FUSE session. */
    FUSE_OPT_KEY("defaults", KEY_IGNORE),
    FUSE_OPT_KEY("_netdev", KEY_IGNORE),
    FUSE_OPT_KEY("nofail", KEY_IGNORE),
    FUSE_OPT_KEY("noauto", KEY_IGNORE),
    FUSE_OPT_KEY("auto", KEY_IGNORE),
    FUSE_OPT_KEY("user", KEY_IGNORE),
    FUSE_OPT_KEY("users", KEY_IGNORE),
    FUSE_OPT_KEY("default_permissions", KEY_IGNORE),
    FUSE_OPT_KEY("-s", KEY_IGNORE),
    FUSE_OPT_KEY("-n", KEY_IGNORE),
    FUSE_OPT_KEY("-v", KEY_IGNORE),
    FUSE_OPT_END
};

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
    cmdline *cl = data;

    (void)outargs;
    switch (key) {
    case KEY_FG: cl->foreground = 1; return 0;
    case KEY_DEBUG: cl->debug = cl->foreground = 1; return 1;   /* libfuse wants -d too */
    case KEY_HELP: cl->help = 1; return 0;
    case KEY_IGNORE: return 0;
    case FUSE_OPT_KEY_NONOPT:
        if (!cl->conf)
            cl->conf = strdup(arg);
        else if (!cl->mountpoint)
            cl->mountpoint = strdup(arg);
        else
            cl->extra_args = 1;
        return 0;
    default:
        return 1;   /* a FUSE option: fuse_session_new checks it */
    }
}

static void die_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "tessera-mount: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(see `tessera-mount --help`)\n");
    exit(2);
}

/* Seconds from an option or CONF key; exits on a bad value. */
static double parse_seconds(const char *name, const char *v, double def)
{
    char *end;
    double d;

    if (!v)
        return def;
    errno = 0;
    d = strtod(v, &end);
    if (errno || end == v || *end || d < 0 || d > 3600)
        die_usage("%s: expected seconds between 0 and 3600", name);
    return d;
}

static char *absolute(const char *path)
{
    char cwd[PATH_MAX];

    if (path[0] == '/')
        return ts_strdup(path);
    if (!getcwd(cwd, sizeof(cwd))) {
        fprintf(stderr, "tessera-mount: getcwd: %s\n", strerror(errno));
        exit(1);
    }
    return ts_sprintf("%s/%s", cwd, path);
}

/* Loads CONF: the client part opens the client, the mount keys fill the
 * settings the command line did not give. */
static int load_conf(const char *path, cmdline *cl, tess_client **out, ts_error *err)
{
    ts_config *cfg = ts_config_new(), *ccfg = ts_config_new();
    tess_client_opts o;
    int rc;

    if ((rc = ts_config_load(cfg, path, err)) != 0)
        goto free_cfgs;
    if ((rc = ts_config_check(cfg, all_keys, err)) != 0) {
        ts_error_prefix(err, "%s", path);
        goto free_cfgs;
    }
    for (size_t i = 0; client_keys[i]; i++) {
        const char *v = ts_config_str(cfg, client_keys[i], NULL);
        if (v)
            ts_config_set(ccfg, client_keys[i], v);
    }
#define FROM_CONF(field, key)                                                   \
    do {                                                                        \
        const char *v_ = ts_config_str(cfg, key, NULL);                         \
        if (!cl->field && v_)                                                   \
            cl->field = ts_strdup(v_);                                          \
    } while (0)
    FROM_CONF(log, "log_file");
    FROM_CONF(log_level, "log_level");
    FROM_CONF(attr_timeout, "attr_timeout");
    FROM_CONF(entry_timeout, "entry_timeout");
    FROM_CONF(readahead, "readahead");
    FROM_CONF(create_ahead, "create_ahead");
#undef FROM_CONF
    if ((rc = tess_client_opts_from_config(ccfg, &o, err)) != 0 ||
        (rc = tess_client_open(&o, out, err)) != 0)
        ts_error_prefix(err, "%s", path);
free_cfgs:
    ts_config_free(ccfg);
    ts_config_free(cfg);
    return rc;
}

static int write_pid_file(const char *path)
{
    char text[32];
    ts_error e;

    snprintf(text, sizeof(text), "%d\n", (int)getpid());
    if (ts_write_file_atomic(path, text, strlen(text), &e) != 0) {
        TS_ERROR("pid file: %s", e.msg);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    struct fuse_lowlevel_ops ops;
    struct fuse_loop_config *loop = NULL;
    cmdline cl = {0};
    mnt_ctx *m = NULL;
    ts_attr root;
    ts_error e;
    int level, rc = 1;

    if (fuse_opt_parse(&args, &cl, opt_spec, opt_proc) != 0)
        return 2;
    if (cl.help) {
        fputs(usage, stdout);
        fuse_opt_free_args(&args);
        return 0;
    }
    if (!cl.conf || !cl.mountpoint)
        die_usage("%s", "expected CONF and MOUNTPOINT");
    if (cl.extra_args)
        die_usage("%s", "unexpected argument after MOUNTPOINT");

    ts_http_client_global_init();
    ts_log_init("tessera-mount", TS_LOG_INFO);
    m = ts_calloc(1, sizeof(*m));
    if (load_conf(cl.conf, &cl, &m->c, &e) != 0) {
        fprintf(stderr, "tessera-mount: %s\n", e.msg);
        goto free_ctx;
    }
    m->o.attr_timeout = parse_seconds("attr_timeout", cl.attr_timeout, DEFAULT_TIMEOUT_S);
    m->o.entry_timeout = parse_seconds("entry_timeout", cl.entry_timeout, DEFAULT_TIMEOUT_S);
    m->o.readahead_max = DEFAULT_READAHEAD;
    if (cl.readahead) {
        uint64_t v;
        if (ts_parse_size(cl.readahead, &v, &e) != 0 || v < 4096 || v > (256u << 20))
            die_usage("readahead=%s: expected a size between 4K and 256M", cl.readahead);
        m->o.readahead_max = (size_t)v;
    }
    m->o.max_threads = cl.threads ? cl.threads : DEFAULT_THREADS;
    m->o.create_ahead = 1;
    if (cl.create_ahead) {
        if (strcmp(cl.create_ahead, "0") != 0 && strcmp(cl.create_ahead, "1") != 0)
            die_usage("create_ahead=%s: expected 0 or 1", cl.create_ahead);
        m->o.create_ahead = cl.create_ahead[0] == '1';
    }
    level = cl.log_level ? ts_log_level_parse(cl.log_level) : TS_LOG_INFO;
    if (level < 0)
        die_usage("log_level=%s: expected debug, info, warn or error", cl.log_level);
    ts_log_init("tessera-mount", (enum ts_log_level)level);

    /* The first round trip: no mount unless the cluster answers. */
    if (tess_getattr(m->c, TS_ROOT_INO, &root, &e) != 0) {
        fprintf(stderr, "tessera-mount: cannot reach the metadata service of %s: %s\n",
                cl.conf, e.msg);
        goto close_client;
    }

    /* Logs go to a file, never to the terminal of a daemon. */
    if (cl.log || !cl.foreground) {
        char *path = absolute(cl.log ? cl.log : DEFAULT_LOG);
        if (ts_log_open(path) != 0) {
            fprintf(stderr, "tessera-mount: cannot open the log file %s: %s\n", path,
                    strerror(errno));
            free(path);
            goto close_client;
        }
        free(path);
    }
    mnt_itable_init(&m->itable);
    mnt_inode_note_attr(&m->itable, &root, 1);
    tess_client_on_dir_change(m->c, mnt_dir_changed, m);
    m->io = (mnt_io){.c = m->c, .t = &m->itable, .readahead_max = m->o.readahead_max,
                     .create_ahead = m->o.create_ahead};
    mnt_io_init(&m->io);
    pthread_mutex_init(&m->statfs_mu, NULL);

    if (fuse_opt_add_arg(&args, "-odefault_permissions,fsname=tessera,subtype=tessera") != 0) {
        fprintf(stderr, "tessera-mount: out of memory\n");
        goto free_table;
    }
    mnt_ops_fill(&ops);
    m->se = fuse_session_new(&args, &ops, sizeof(ops), m);
    if (!m->se)
        goto free_table;        /* libfuse printed why */
    if (fuse_set_signal_handlers(m->se) != 0)
        goto destroy_session;
    if (fuse_session_mount(m->se, cl.mountpoint) != 0)
        goto remove_handlers;
    TS_INFO("mounting %s at %s (metadata %s; attr_timeout %.3g s, entry_timeout %.3g s, "
            "readahead %zu, create_ahead %d)", cl.conf, cl.mountpoint, tess_client_meta_addr(m->c),
            m->o.attr_timeout, m->o.entry_timeout, m->o.readahead_max, m->o.create_ahead);
    if (fuse_daemonize(cl.foreground) != 0) {
        TS_ERROR("daemonize failed");
        goto unmount;
    }
    if (cl.pid_file && write_pid_file(cl.pid_file) != 0)
        goto unmount;
    loop = fuse_loop_cfg_create();
    fuse_loop_cfg_set_max_threads(loop, m->o.max_threads);
    /* Idle workers stay: each keeps its HTTP connections open. */
    fuse_loop_cfg_set_idle_threads(loop, m->o.max_threads);
    rc = fuse_session_loop_mt(m->se, loop) != 0;
    fuse_loop_cfg_destroy(loop);
    TS_INFO("session ended (%s); %llu metadata requests made", rc ? "error" : "unmounted or signalled",
            (unsigned long long)tess_client_meta_requests(m->c));
unmount:
    fuse_session_unmount(m->se);
remove_handlers:
    fuse_remove_signal_handlers(m->se);
destroy_session:
    fuse_session_destroy(m->se);
    if (cl.pid_file)
        unlink(cl.pid_file);
free_table:
    pthread_mutex_destroy(&m->statfs_mu);
    mnt_io_destroy(&m->io);
    mnt_itable_destroy(&m->itable);
close_client:
    tess_client_close(m->c);
free_ctx:
    free(m);
    free(cl.conf);
    free(cl.mountpoint);
    free(cl.log);
    free(cl.log_level);
    free(cl.readahead);
    free(cl.pid_file);
    free(cl.attr_timeout);
    free(cl.entry_timeout);
    free(cl.create_ahead);
    fuse_opt_free_args(&args);
    return rc;
}
