/*
 * File commands of `tessera`: ls, stat, mkdir, put, get, cat, rm, mv.  Each
 * is a thin layer over libtessera that resolves the user's paths, picks the
 * target (a directory target means "inside it, same name", as cp and mv
 * do) and turns errors into "tessera: CMD PATH: message".
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "fs/cli.h"

/* Prints "tessera: CMD PATH: message" and returns 1. */
static int fail_path(const char *cmd, const char *path, const ts_error *e)
{
    char buf[600];

    cli_error("%s %s: %s", cmd, path, cli_errmsg(e, buf, sizeof(buf)));
    return 1;
}

/* Normalizes and resolves path into norm / *a; prints the error. */
static int resolve(tess_client *c, const char *cmd, const char *path, char *norm, ts_attr *a)
{
    ts_error e;

    if (tess_path_normalize(path, norm, &e) != 0 || tess_resolve(c, norm, a, &e) != 0)
        return fail_path(cmd, path, &e);
    return 0;
}

static int is_dir(const ts_attr *a) { return (a->mode & S_IFMT) == S_IFDIR; }

/* Resolves the parent directory of a normalized path: *parent and *name
 * (name points into norm, which is split).  "no such directory /x". */
static int resolve_parent(tess_client *c, const char *cmd, const char *shown, char *norm,
                          ts_attr *parent, const char **name)
{
    const char *parent_path;
    ts_error e;
    int rc;

    if (tess_path_split(norm, &parent_path, name, &e) != 0)
        return fail_path(cmd, shown, &e);
    rc = tess_resolve(c, parent_path, parent, &e);
    if (rc == TS_ENOENT) {
        cli_error("%s %s: no such directory %s", cmd, shown, parent_path);
        return 1;
    }
    if (rc != 0)
        return fail_path(cmd, shown, &e);
    if (!is_dir(parent)) {
        cli_error("%s %s: %s is not a directory", cmd, shown, parent_path);
        return 1;
    }
    return 0;
}

/* Joins dir and name into out (TS_PATH_MAX + 1 bytes); -1 when too long. */
static int join(const char *dir, const char *name, char *out)
{
    size_t dl = strlen(dir), nl = strlen(name);
    int root = strcmp(dir, "/") == 0;

    if (dl + !root + nl > TS_PATH_MAX)
        return -1;
    memcpy(out, dir, dl);
    if (!root)
        out[dl++] = '/';
    else
        dl = 1;
    memcpy(out + dl, name, nl + 1);
    return 0;
}

/* --------------------------------------------------------------------- ls */

typedef struct entries {
    tess_dirent *v;
    size_t n, cap;
} entries;

static int collect_entry(void *ctx, const tess_dirent *d)
{
    entries *es = ctx;

    if (es->n == es->cap) {
        es->cap = es->cap ? 2 * es->cap : 64;
        es->v = ts_realloc(es->v, es->cap * sizeof(*es->v));
    }
    es->v[es->n].name = ts_strdup(d->name);
    es->v[es->n++].attr = d->attr;
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const tess_dirent *)a)->name, ((const tess_dirent *)b)->name);
}

static void print_long(tess_client *c, const char *name, const ts_attr *a, uint64_t ino)
{
    char mode[11], when[48];

    cli_mode_string(a->mode, mode);
    cli_time_string(a->mtime_ns, 0, when);
    printf("%s %3u %5u %5u %12llu %s %s", mode, a->nlink, a->uid, a->gid,
           (unsigned long long)a->size, when, name);
    if ((a->mode & S_IFMT) == S_IFLNK) {
        char *target = NULL;
        ts_error e;
        if (tess_readlink(c, ino, &target, &e) == 0)
            printf(" -> %s", target);
        free(target);
    }
    putchar('\n');
}

static const char ls_usage[] =
    "usage: tessera ls [-l] [PATH]\n"
    "\n"
    "List the directory PATH (default /), or show PATH itself when it is not\n"
    "a directory.  Names are sorted.\n"
    "\n"
    "  -l, --long   mode, links, owner, size, modification time (UTC), name\n"
    "  -h, --help   this help\n";

int cli_cmd_ls(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"long", no_argument, NULL, 'l'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    char norm[TS_PATH_MAX + 1];
    const char *path = "/";
    int lng = 0, ch, rc = 0;
    entries es = {0};
    tess_client *c;
    ts_attr a;
    ts_error e;

    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":lh", opts, NULL)) != -1) {
        switch (ch) {
        case 'l': lng = 1; break;
        case 'h': fputs(ls_usage, stdout); return 0;
        default: return cli_bad_option("ls", argv, ch);
        }
    }
    if (argc - optind > 1)
        return cli_usage_error("ls", "one PATH at most");
    if (optind < argc)
        path = argv[optind];
    if (!(c = cli_client(ctx)))
        return 1;
    if (resolve(c, "ls", path, norm, &a) != 0)
        return 1;
    if (!is_dir(&a)) {
        if (lng)
            print_long(c, norm, &a, a.ino);
        else
            printf("%s\n", norm);
        return 0;
    }
    if (tess_readdir(c, a.ino, collect_entry, &es, &e) != 0) {
        rc = fail_path("ls", path, &e);
        goto free_entries;
    }
    if (es.n > 1)
        qsort(es.v, es.n, sizeof(*es.v), by_name);
    for (size_t i = 0; i < es.n; i++) {
        if (lng)
            print_long(c, es.v[i].name, &es.v[i].attr, es.v[i].attr.ino);
        else
            printf("%s\n", es.v[i].name);
    }
free_entries:
    tess_dirents_free(es.v, es.n);
    return rc;
}

/* ------------------------------------------------------------------- stat */

static const char stat_usage[] =
    "usage: tessera stat PATH...\n"
    "\n"
    "Show the attributes of each PATH (symbolic links are not followed).\n"
    "\n"
    "  -h, --help   this help\n";

int cli_cmd_stat(cli_ctx *ctx, int argc, char **argv)
{
    tess_client *c;
    int ch, rc = 0;

    if ((ch = cli_parse_help_only("stat", stat_usage, argc, argv)) >= 0)
        return ch;
    if (optind >= argc)
        return cli_usage_error("stat", "missing PATH");
    if (!(c = cli_client(ctx)))
        return 1;
    for (int i = optind; i < argc; i++) {
        char norm[TS_PATH_MAX + 1], mode[11], at[48], mt[48], ct[48], size[32];
        ts_attr a;

        if (resolve(c, "stat", argv[i], norm, &a) != 0) {
            rc = 1;
            continue;
        }
        cli_mode_string(a.mode, mode);
        cli_time_string(a.atime_ns, 1, at);
        cli_time_string(a.mtime_ns, 1, mt);
        cli_time_string(a.ctime_ns, 1, ct);
        printf("   File: %s\n   Type: %s\n  Inode: %llu\n   Size: %llu (%s)\n"
               "   Mode: %04o (%s)\n  Links: %u\n    Uid: %u\n    Gid: %u\n"
               " Access: %s\n Modify: %s\n Change: %s\nVersion: %llu\n",
               norm, cli_type_name(a.mode), (unsigned long long)a.ino,
               (unsigned long long)a.size, ts_format_size(a.size, size, sizeof(size)),
               a.mode & 07777, mode, a.nlink, a.uid, a.gid, at, mt, ct,
               (unsigned long long)a.version);
        if ((a.mode & S_IFMT) == S_IFLNK) {
            char *target = NULL;
            ts_error e;
            if (tess_readlink(c, a.ino, &target, &e) == 0)
                printf(" Target: %s\n", target);
            free(target);
        }
    }
    return rc;
}

/* ------------------------------------------------------------------ mkdir */

/* mkdir -p: walks from the root, creating what is missing. */
static int mkdir_parents(tess_client *c, const char *shown, const char *norm)
{
    char buf[TS_PATH_MAX + 1], sofar[TS_PATH_MAX + 1] = "";
    uint64_t cur = TS_ROOT_INO;
    char *save = NULL;

    snprintf(buf, sizeof(buf), "%s", norm);
    for (char *name = strtok_r(buf, "/", &save); name; name = strtok_r(NULL, "/", &save)) {
        ts_attr a;
        ts_error e;
        int rc;

        snprintf(sofar + strlen(sofar), sizeof(sofar) - strlen(sofar), "/%s", name);
        rc = tess_lookup(c, cur, name, &a, &e);
        if (rc == TS_ENOENT) {
            rc = tess_mkdir(c, cur, name, 0755, (uint32_t)getuid(), (uint32_t)getgid(), &a, &e);
            if (rc == TS_EEXIST)    /* created meanwhile by someone else */
                rc = tess_lookup(c, cur, name, &a, &e);
        }
        if (rc != 0)
            return fail_path("mkdir", sofar, &e);
        if (!is_dir(&a)) {
            cli_error("mkdir %s: %s exists and is not a directory", shown, sofar);
            return 1;
        }
        cur = a.ino;
    }
    return 0;
}

static const char mkdir_usage[] =
    "usage: tessera mkdir [-p] PATH...\n"
    "\n"
    "Create each directory PATH.\n"
    "\n"
    "  -p, --parents  create missing parent directories too; no error when\n"
    "                 the directory exists\n"
    "  -h, --help     this help\n";

int cli_cmd_mkdir(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"parents", no_argument, NULL, 'p'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int parents = 0, ch, rc = 0;
    tess_client *c;

    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":ph", opts, NULL)) != -1) {
        switch (ch) {
        case 'p': parents = 1; break;
        case 'h': fputs(mkdir_usage, stdout); return 0;
        default: return cli_bad_option("mkdir", argv, ch);
        }
    }
    if (optind >= argc)
        return cli_usage_error("mkdir", "missing PATH");
    if (!(c = cli_client(ctx)))
        return 1;
    for (int i = optind; i < argc; i++) {
        char norm[TS_PATH_MAX + 1];
        const char *name;
        ts_attr parent, a;
        ts_error e;

        if (tess_path_normalize(argv[i], norm, &e) != 0) {
            rc = fail_path("mkdir", argv[i], &e);
            continue;
        }
        if (parents) {
            rc |= mkdir_parents(c, argv[i], norm);
            continue;
        }
        if (strcmp(norm, "/") == 0) {
            cli_error("mkdir %s: already exists", argv[i]);
            rc = 1;
            continue;
        }
        if (resolve_parent(c, "mkdir", argv[i], norm, &parent, &name) != 0) {
            rc = 1;
            continue;
        }
        if (tess_mkdir(c, parent.ino, name, 0755, (uint32_t)getuid(), (uint32_t)getgid(), &a,
                       &e) != 0)
            rc = fail_path("mkdir", argv[i], &e);
    }
    return rc;
}

/* -------------------------------------------------------------------- put */

static const char put_usage[] =
    "usage: tessera put [--replicas N] [--chunk-size BYTES] LOCAL REMOTE\n"
    "\n"
    "Copy the local file LOCAL (`-` for standard input) to REMOTE.  When REMOTE\n"
    "is a directory, the file keeps its name inside it.  An existing REMOTE\n"
    "file is replaced; the new content appears at once when the copy is done.\n"
    "\n"
    "  -r, --replicas N        copies of each chunk (default: the client\n"
    "                          config's `replicas`, normally 3)\n"
    "  -c, --chunk-size BYTES  chunk size, e.g. 16M (default: the config's\n"
    "                          `chunk_size`, normally 64M)\n"
    "  -h, --help              this help\n";

int cli_cmd_put(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"replicas", required_argument, NULL, 'r'}, {"chunk-size", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    char norm[TS_PATH_MAX + 1], target[TS_PATH_MAX + 1];
    tess_put_opts po = {0};
    const char *local, *remote;
    cli_progress prog;
    struct stat st;
    tess_client *c;
    int ch, fd = STDIN_FILENO, rc = 1;
    ts_attr a;
    ts_error e;

    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":r:c:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'r':
            if (cli_parse_uint("put", "--replicas", optarg, 1, TESS_MAX_REPLICAS, &po.replicas) != 0)
                return 1;
            break;
        case 'c':
            if (cli_parse_size("put", "--chunk-size", optarg, &po.chunk_size) != 0)
                return 1;
            break;
        case 'h': fputs(put_usage, stdout); return 0;
        default: return cli_bad_option("put", argv, ch);
        }
    }
    if (argc - optind != 2)
        return cli_usage_error("put", "expected LOCAL and REMOTE");
    local = argv[optind];
    remote = argv[optind + 1];
    if (!(c = cli_client(ctx)))
        return 1;

    /* Open the source first: a missing local file must not touch REMOTE. */
    if (strcmp(local, "-") != 0) {
        fd = open(local, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            cli_error("put %s: %s", local, strerror(errno));
            return 1;
        }
        if (fstat(fd, &st) != 0) {
            cli_error("put %s: %s", local, strerror(errno));
            goto close_fd;
        }
        if (S_ISDIR(st.st_mode)) {
            cli_error("put %s: is a directory", local);
            goto close_fd;
        }
        if (S_ISREG(st.st_mode)) {
            po.size_hint = (uint64_t)st.st_size;
            po.mode = st.st_mode & 0777;
        }
    }
    if (tess_path_normalize(remote, norm, &e) != 0) {
        fail_path("put", remote, &e);
        goto close_fd;
    }
    snprintf(target, sizeof(target), "%s", norm);
    if (tess_resolve(c, norm, &a, &e) == 0 && is_dir(&a)) {
        char base[TS_NAME_MAX + 1];
        if (strcmp(local, "-") == 0) {
            cli_error("put -: %s is a directory: give the file name to create", remote);
            goto close_fd;
        }
        tess_path_basename(local, base, sizeof(base));
        if (join(norm, base, target) != 0) {
            cli_error("put %s/%s: path too long", remote, base);
            goto close_fd;
        }
    } else if (remote[strlen(remote) - 1] == '/') {
        cli_error("put %s: no such directory %s", remote, norm);
        goto close_fd;
    }
    cli_progress_init(&prog);
    po.progress = cli_progress_update;
    po.progress_ctx = &prog;
    rc = tess_put_fd(c, fd, target, &po, NULL, &e);
    cli_progress_end(&prog);
    if (rc != 0) {
        char buf[600];
        cli_error("put %s: %s", target, e.code == TS_ENOENT || e.code == TS_ENOTDIR ?
                  e.msg : cli_errmsg(&e, buf, sizeof(buf)));
        rc = 1;
    }
close_fd:
    if (fd != STDIN_FILENO)
        close(fd);
    return rc;
}

/* -------------------------------------------------------------------- get */

/* Copies remote into a new local file through a temporary name in the same
 * directory, renamed into place only when complete: a failed get never
 * leaves a truncated file behind. */
static int get_to_file(tess_client *c, const char *remote, const char *local)
{
    char *tmp = ts_sprintf("%s.tessera-XXXXXX", local);
    cli_progress prog;
    mode_t mask;
    ts_error e;
    int fd, rc = 1;

    fd = mkstemp(tmp);
    if (fd < 0) {
        cli_error("get %s: %s: %s", remote, local, strerror(errno));
        goto free_tmp;
    }
    mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) != 0) {
        cli_error("get %s: %s: %s", remote, tmp, strerror(errno));
        goto unlink_tmp;
    }
    cli_progress_init(&prog);
    rc = tess_get_file(c, remote, fd, cli_progress_update, &prog, NULL, &e);
    cli_progress_end(&prog);
    if (rc != 0) {
        char buf[600];
        cli_error("get %s: %s", remote, cli_errmsg(&e, buf, sizeof(buf)));
        rc = 1;
        goto unlink_tmp;
    }
    if (close(fd) != 0 || rename(tmp, local) != 0) {
        fd = -1;
        cli_error("get %s: %s: %s", remote, local, strerror(errno));
        rc = 1;
        goto unlink_tmp;
    }
    free(tmp);
    return 0;
unlink_tmp:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
free_tmp:
    free(tmp);
    return rc;
}

/* Streams remote to an open descriptor (stdout, a device, a FIFO). */
static int get_to_fd(tess_client *c, const char *cmd, const char *remote, int fd, int progress)
{
    cli_progress prog;
    ts_error e;
    int rc;

    cli_progress_init(&prog);
    if (!progress)
        prog.enabled = 0;
    rc = tess_get_file(c, remote, fd, cli_progress_update, &prog, NULL, &e);
    cli_progress_end(&prog);
    if (rc != 0) {
        char buf[600];
        /* The reader went away (tessera cat f | head): nothing to report. */
        if (!(e.code == TS_EIO && strstr(e.msg, strerror(EPIPE))))
            cli_error("%s %s: %s", cmd, remote, cli_errmsg(&e, buf, sizeof(buf)));
        return 1;
    }
    return 0;
}

static const char get_usage[] =
    "usage: tessera get REMOTE LOCAL\n"
    "\n"
    "Copy the file REMOTE to LOCAL (`-` for standard output).  When LOCAL is a\n"
    "directory, the file keeps its name inside it.  LOCAL appears only when\n"
    "the copy is complete.\n"
    "\n"
    "  -h, --help   this help\n";

int cli_cmd_get(cli_ctx *ctx, int argc, char **argv)
{
    const char *remote, *local;
    tess_client *c;
    struct stat st;
    int ch;

    if ((ch = cli_parse_help_only("get", get_usage, argc, argv)) >= 0)
        return ch;
    if (argc - optind != 2)
        return cli_usage_error("get", "expected REMOTE and LOCAL");
    remote = argv[optind];
    local = argv[optind + 1];
    if (!(c = cli_client(ctx)))
        return 1;
    if (strcmp(local, "-") == 0)
        return get_to_fd(c, "get", remote, STDOUT_FILENO, 0);
    if (stat(local, &st) == 0 && S_ISDIR(st.st_mode)) {
        char base[TS_NAME_MAX + 1];
        char *path;
        int rc;

        tess_path_basename(remote, base, sizeof(base));
        path = ts_sprintf("%s/%s", local, base);
        rc = get_to_file(c, remote, path);
        free(path);
        return rc;
    }
    if (stat(local, &st) == 0 && !S_ISREG(st.st_mode)) {
        /* /dev/null, a FIFO…: write into it as it is. */
        int fd = open(local, O_WRONLY | O_CLOEXEC), rc;
        if (fd < 0) {
            cli_error("get %s: %s: %s", remote, local, strerror(errno));
            return 1;
        }
        rc = get_to_fd(c, "get", remote, fd, 1);
        close(fd);
        return rc;
    }
    return get_to_file(c, remote, local);
}

static const char cat_usage[] =
    "usage: tessera cat PATH...\n"
    "\n"
    "Write the content of each file PATH to standard output.\n"
    "\n"
    "  -h, --help   this help\n";

int cli_cmd_cat(cli_ctx *ctx, int argc, char **argv)
{
    tess_client *c;
    int ch, rc = 0;

    if ((ch = cli_parse_help_only("cat", cat_usage, argc, argv)) >= 0)
        return ch;
    if (optind >= argc)
        return cli_usage_error("cat", "missing PATH");
    if (!(c = cli_client(ctx)))
        return 1;
    for (int i = optind; i < argc; i++)
        rc |= get_to_fd(c, "cat", argv[i], STDOUT_FILENO, 0);
    return rc;
}

/* --------------------------------------------------------------------- rm */

/* Removes everything inside directory ino (shown as path). */
static int rm_tree(tess_client *c, const char *path, uint64_t ino)
{
    entries es = {0};
    ts_error e;
    int rc = 0;

    /* All names first: removing while paging could skip entries. */
    if (tess_readdir(c, ino, collect_entry, &es, &e) != 0) {
        rc = fail_path("rm", path, &e);
        goto free_entries;
    }
    for (size_t i = 0; i < es.n && rc == 0; i++) {
        char child[TS_PATH_MAX + 1];

        if (join(path, es.v[i].name, child) != 0) {
            cli_error("rm %s/%s: path too long", path, es.v[i].name);
            rc = 1;
            break;
        }
        if (is_dir(&es.v[i].attr)) {
            if ((rc = rm_tree(c, child, es.v[i].attr.ino)) == 0 &&
                tess_rmdir(c, ino, es.v[i].name, &e) != 0)
                rc = fail_path("rm", child, &e);
        } else if (tess_unlink(c, ino, es.v[i].name, &e) != 0) {
            rc = fail_path("rm", child, &e);
        }
    }
free_entries:
    tess_dirents_free(es.v, es.n);
    return rc;
}

static const char rm_usage[] =
    "usage: tessera rm [-r] PATH...\n"
    "\n"
    "Remove each file or symbolic link PATH; with -r also directories and\n"
    "everything in them.\n"
    "\n"
    "  -r, -R, --recursive  remove directories and their contents\n"
    "  -h, --help           this help\n";

int cli_cmd_rm(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"recursive", no_argument, NULL, 'r'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int recursive = 0, ch, rc = 0;
    tess_client *c;

    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":rRh", opts, NULL)) != -1) {
        switch (ch) {
        case 'r': case 'R': recursive = 1; break;
        case 'h': fputs(rm_usage, stdout); return 0;
        default: return cli_bad_option("rm", argv, ch);
        }
    }
    if (optind >= argc)
        return cli_usage_error("rm", "missing PATH");
    if (!(c = cli_client(ctx)))
        return 1;
    for (int i = optind; i < argc; i++) {
        char norm[TS_PATH_MAX + 1], split[TS_PATH_MAX + 1];
        const char *name;
        ts_attr a, parent;
        ts_error e;

        if (resolve(c, "rm", argv[i], norm, &a) != 0) {
            rc = 1;
            continue;
        }
        if (strcmp(norm, "/") == 0) {
            cli_error("rm /: refusing to remove the root directory");
            rc = 1;
            continue;
        }
        if (is_dir(&a) && !recursive) {
            cli_error("rm %s: is a directory (use rm -r)", argv[i]);
            rc = 1;
            continue;
        }
        snprintf(split, sizeof(split), "%s", norm);
        if (resolve_parent(c, "rm", argv[i], split, &parent, &name) != 0) {
            rc = 1;
            continue;
        }
        if (is_dir(&a)) {
            if (rm_tree(c, norm, a.ino) != 0) {
                rc = 1;
                continue;
            }
            if (tess_rmdir(c, parent.ino, name, &e) != 0)
                rc = fail_path("rm", argv[i], &e);
        } else if (tess_unlink(c, parent.ino, name, &e) != 0) {
            rc = fail_path("rm", argv[i], &e);
        }
    }
    return rc;
}

/* --------------------------------------------------------------------- mv */

static const char mv_usage[] =
    "usage: tessera mv SRC DST\n"
    "\n"
    "Rename SRC to DST, or move it into DST when DST is a directory.  An\n"
    "existing file DST is replaced.\n"
    "\n"
    "  -h, --help   this help\n";

int cli_cmd_mv(cli_ctx *ctx, int argc, char **argv)
{
    char src[TS_PATH_MAX + 1], dst[TS_PATH_MAX + 1], target[TS_PATH_MAX + 1];
    const char *sname, *dname;
    ts_attr sa, da, sparent, dparent;
    tess_client *c;
    ts_error e;
    int ch;

    if ((ch = cli_parse_help_only("mv", mv_usage, argc, argv)) >= 0)
        return ch;
    if (argc - optind != 2)
        return cli_usage_error("mv", "expected SRC and DST");
    if (!(c = cli_client(ctx)))
        return 1;
    if (resolve(c, "mv", argv[optind], src, &sa) != 0)
        return 1;
    if (strcmp(src, "/") == 0) {
        cli_error("mv /: cannot move the root directory");
        return 1;
    }
    if (tess_path_normalize(argv[optind + 1], dst, &e) != 0)
        return fail_path("mv", argv[optind + 1], &e);
    snprintf(target, sizeof(target), "%s", dst);
    if (tess_resolve(c, dst, &da, &e) == 0 && is_dir(&da)) {
        char base[TS_NAME_MAX + 1];
        tess_path_basename(src, base, sizeof(base));
        if (join(dst, base, target) != 0) {
            cli_error("mv %s %s: path too long", argv[optind], argv[optind + 1]);
            return 1;
        }
    }
    if (resolve_parent(c, "mv", argv[optind], src, &sparent, &sname) != 0 ||
        resolve_parent(c, "mv", argv[optind + 1], target, &dparent, &dname) != 0)
        return 1;
    if (tess_rename(c, sparent.ino, sname, dparent.ino, dname, 0, &e) != 0) {
        char buf[600];
        /* EINVAL (a directory into itself) and the like: the server's words. */
        cli_error("mv %s %s: %s", argv[optind], argv[optind + 1],
                  e.code == TS_EINVAL ? e.msg : cli_errmsg(&e, buf, sizeof(buf)));
        return 1;
    }
    return 0;
}
