/*
 * `tessera`: the command-line tool.  This file holds the entry point: global
 * options (--conf, --help, --version), the command table and dispatch.  The
 * commands live by family in cli_files.c (ls, put, get, …), cli_admin.c
 * (admin …), cli_local.c (local up/down/status) and cli_mr.c (mr …).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/http_client.h"
#include "common/log.h"
#include "common/util.h"
#include "fs/cli.h"

static const struct {
    const char *name;
    cli_cmd_fn fn;
    const char *summary;
} commands[] = {
    {"ls", cli_cmd_ls, "list a directory"},
    {"stat", cli_cmd_stat, "show a file's attributes"},
    {"mkdir", cli_cmd_mkdir, "create directories"},
    {"put", cli_cmd_put, "copy a local file (or stdin) into the cluster"},
    {"get", cli_cmd_get, "copy a file out of the cluster (or to stdout)"},
    {"cat", cli_cmd_cat, "print files"},
    {"rm", cli_cmd_rm, "remove files or directories"},
    {"mv", cli_cmd_mv, "rename or move a file or directory"},
    {"admin", cli_cmd_admin, "cluster administration (status, chunks)"},
    {"local", cli_cmd_local, "run a whole cluster on this machine (up, down, status)"},
    {"mr", cli_cmd_mr, "MapReduce jobs run next to the data (run, status, kill, logs)"},
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: tessera [--conf FILE] COMMAND [ARGS]\n"
            "\n"
            "Tessera distributed filesystem client.\n"
            "\n"
            "Commands:\n");
    for (size_t i = 0; i < TS_ARRAY_LEN(commands); i++)
        fprintf(out, "  %-7s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\n"
            "Global options:\n"
            "  --conf FILE   client configuration (default: $TESSERA_CONF, else\n"
            "                ./" CLI_DEFAULT_LOCAL_DIR "/client.conf as written by `tessera local up`)\n"
            "  -v, --verbose log what the client does (retries, redirects) to stderr\n"
            "  -h, --help    this help; `tessera COMMAND --help` for a command\n"
            "  --version     print the version\n");
}

/* mount.fuse3 runs `tessera CONF MOUNTPOINT -o OPTS` for `mount -t
 * fuse.tessera` and fstab entries: an existing file then an existing
 * directory where a command would be. */
static int is_mount_helper_call(int argc, char **argv)
{
    struct stat a, b;

    return argc >= 3 && stat(argv[1], &a) == 0 && S_ISREG(a.st_mode) && stat(argv[2], &b) == 0 &&
           S_ISDIR(b.st_mode);
}

int main(int argc, char **argv)
{
    cli_ctx ctx = {0};
    int verbose = 0, i, rc;

    if (is_mount_helper_call(argc, argv))
        return cli_mount_helper(argc, argv);

    /* A closed pipe (tessera cat f | head) must end us quietly with EPIPE
     * on write, not kill us with a signal mid-way through cleanup. */
    signal(SIGPIPE, SIG_IGN);
    ts_log_init("tessera", TS_LOG_ERROR);

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--conf") == 0) {
            if (i + 1 >= argc)
                return cli_usage_error("", "--conf needs a file name");
            ctx.conf = argv[++i];
        } else if (strncmp(a, "--conf=", 7) == 0) {
            ctx.conf = a + 7;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--version") == 0) {
            printf("tessera %s\n", PACKAGE_VERSION);
            return 0;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            verbose++;
        } else {
            return cli_usage_error("", "unknown option '%s'", a);
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 1;
    }
    if (strcmp(argv[i], "help") == 0) {
        if (i + 1 < argc) {
            /* `tessera help put` is `tessera put --help`. */
            char *help_argv[] = {argv[i + 1], (char *)"--help", NULL};
            for (size_t k = 0; k < TS_ARRAY_LEN(commands); k++)
                if (strcmp(commands[k].name, argv[i + 1]) == 0)
                    return commands[k].fn(&ctx, 2, help_argv);
            return cli_usage_error("", "unknown command '%s'", argv[i + 1]);
        }
        usage(stdout);
        return 0;
    }
    /* Warnings (a replica that failed and was skipped) are shown: the
     * command still succeeds, but the operator should know. */
    ts_log_init("tessera", verbose ? TS_LOG_DEBUG : TS_LOG_WARN);
    for (size_t k = 0; k < TS_ARRAY_LEN(commands); k++) {
        if (strcmp(commands[k].name, argv[i]) != 0)
            continue;
        ts_http_client_global_init();
        rc = commands[k].fn(&ctx, argc - i, argv + i);
        tess_client_close(ctx.client);
        ts_http_client_thread_cleanup();
        if (fflush(stdout) != 0 && rc == 0) {
            cli_error("write to stdout: %s", strerror(errno));
            rc = 1;
        }
        return rc;
    }
    return cli_usage_error("", "unknown command '%s'", argv[i]);
}
