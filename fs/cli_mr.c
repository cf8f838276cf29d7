/*
 * `tessera mr run|status|kill|logs`: MapReduce jobs.  `run` is the job's
 * coordinator (mapreduce/coordinator.h): it lasts as long as the job and
 * shows a progress line on a terminal.  The other commands read the job
 * state the coordinator keeps in the filesystem under /.mr/JOB/, so they
 * work from any machine, during and after the job.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "fs/cli.h"
#include "mapreduce/coordinator.h"

/* ----------------------------------------------------------------- run */

static const char run_usage[] =
    "usage: tessera mr run --input PATH... --output DIR --mapper CMD --reducer CMD\n"
    "                      [--combiner CMD] [--reducers N] [--files FILE...] [--name NAME]\n"
    "                      [--split-size SIZE] [--max-attempts N] [--locality-wait MS]\n"
    "                      [--replicas N] [--quiet]\n"
    "\n"
    "Run a Hadoop-Streaming style job: the mapper and reducer are shell commands\n"
    "(run with /bin/sh -c) reading lines on stdin and writing key<TAB>value lines\n"
    "(a line without a tab is a key with an empty value).  One map task runs per\n"
    "chunk-sized split of the input, on a chunkserver holding the split when a\n"
    "slot frees up in time (delay scheduling); the reducer sees its keys sorted,\n"
    "all values of a key together.  Output: DIR/part-NNNNN and DIR/_SUCCESS,\n"
    "committed when every task is done.  This command is the job's coordinator:\n"
    "it returns when the job ends (0 when it succeeded).\n"
    "\n"
    "  --input PATH       input file, or directory (its files not starting with\n"
    "                     '_' or '.'); repeat or list several after one --input\n"
    "  --output DIR       output directory; must not exist\n"
    "  --mapper CMD       map command\n"
    "  --reducer CMD      reduce command (not needed with --reducers 0)\n"
    "  --combiner CMD     run over each sorted spill of map output (a reducer\n"
    "                     that can run on partial data, e.g. a sum)\n"
    "  --reducers N       reduce tasks [1]; 0 writes the map output as the result\n"
    "  --files FILE...    local files copied into every task's working directory\n"
    "  --name NAME        a name for status/kill/logs [job]\n"
    "  --split-size SIZE  bytes per map task [the client's chunk size]\n"
    "  --max-attempts N   failures of one task before the job fails [4]\n"
    "  --locality-wait MS how long a map waits for a slot on a server holding\n"
    "                     its data before running elsewhere [3000]\n"
    "  --replicas N       replication of the output files [client default]\n"
    "  -q, --quiet        no progress line\n"
    "  -h, --help         this help\n"
    "\n"
    "Tasks also get the environment variables mapreduce_map_input_file (the\n"
    "split's file) and TESSERA_TASK_ID.  Examples: mapreduce/examples/.\n";

struct run_view {
    int quiet, tty;
    int64_t last_ms;
    size_t last_maps_done, last_reduces_done;
    const char *last_phase;
};

static void show_started(void *ctx, const char *job_id)
{
    struct run_view *v = ctx;
    if (!v->quiet)
        fprintf(stderr, "tessera mr: job %s started\n", job_id);
}

static void show_progress(void *ctx, const mr_progress *p)
{
    struct run_view *v = ctx;
    int64_t now = ts_mono_ms();

    if (v->quiet)
        return;
    if (v->tty) {
        if (now - v->last_ms < 250 && strcmp(p->phase, "done") != 0)
            return;
        v->last_ms = now;
        fprintf(stderr, "\r\033[K%s: %s  map %zu/%zu (%zu running, %zu local)  reduce %zu/%zu"
                        "  %.1fs", p->job_id, p->phase, p->maps_done, p->maps, p->maps_running,
                p->local_maps, p->reduces_done, p->reduces, (double)p->elapsed_ms / 1000.0);
        if (strcmp(p->phase, "done") == 0 || strcmp(p->phase, "failed") == 0)
            fputc('\n', stderr);
        return;
    }
    /* Not a terminal (a log): one line per phase change, else every 10 s. */
    if (v->last_phase && strcmp(v->last_phase, p->phase) == 0 && now - v->last_ms < 10000)
        return;
    v->last_ms = now;
    v->last_phase = p->phase;
    fprintf(stderr, "tessera mr: %s: %s  map %zu/%zu (%zu local)  reduce %zu/%zu  %.1fs\n",
            p->job_id, p->phase, p->maps_done, p->maps, p->local_maps, p->reduces_done,
            p->reduces, (double)p->elapsed_ms / 1000.0);
}

/* Collects the arguments after an option that takes several (--input a b). */
static void take_list(int argc, char **argv, const char ***list, size_t *n)
{
    *list = ts_realloc(*list, (*n + 1) * sizeof(**list));
    (*list)[(*n)++] = optarg;
    while (optind < argc && argv[optind][0] != '-') {
        *list = ts_realloc(*list, (*n + 1) * sizeof(**list));
        (*list)[(*n)++] = argv[optind++];
    }
}

static int mr_run(cli_ctx *ctx, int argc, char **argv)
{
    enum { O_INPUT = 1000, O_OUTPUT, O_MAPPER, O_REDUCER, O_COMBINER, O_REDUCERS, O_FILES,
           O_NAME, O_SPLIT, O_ATTEMPTS, O_WAIT, O_REPLICAS };
    static const struct option opts[] = {
        {"input", required_argument, NULL, O_INPUT},
        {"output", required_argument, NULL, O_OUTPUT},
        {"mapper", required_argument, NULL, O_MAPPER},
        {"reducer", required_argument, NULL, O_REDUCER},
        {"combiner", required_argument, NULL, O_COMBINER},
        {"reducers", required_argument, NULL, O_REDUCERS},
        {"files", required_argument, NULL, O_FILES},
        {"name", required_argument, NULL, O_NAME},
        {"split-size", required_argument, NULL, O_SPLIT},
        {"max-attempts", required_argument, NULL, O_ATTEMPTS},
        {"locality-wait", required_argument, NULL, O_WAIT},
        {"replicas", required_argument, NULL, O_REPLICAS},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    mr_job_conf conf = {.locality_wait_ms = -1};
    struct run_view view = {.tty = isatty(STDERR_FILENO)};
    const char **inputs = NULL, **files = NULL;
    size_t ninputs = 0, nfiles = 0;
    unsigned reducers = 1, v;
    char job_id[MR_JOB_ID_MAX];
    int ch, rc = 1;
    ts_error err;
    tess_client *c;

    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":qh", opts, NULL)) != -1) {
        switch (ch) {
        case O_INPUT: take_list(argc, argv, &inputs, &ninputs); break;
        case O_FILES: take_list(argc, argv, &files, &nfiles); break;
        case O_OUTPUT: conf.output = optarg; break;
        case O_MAPPER: conf.mapper = optarg; break;
        case O_REDUCER: conf.reducer = optarg; break;
        case O_COMBINER: conf.combiner = optarg; break;
        case O_NAME: conf.name = optarg; break;
        case O_REDUCERS:
            if (cli_parse_uint("mr run", "--reducers", optarg, 0, 10000, &reducers) != 0)
                goto free_lists;
            break;
        case O_SPLIT:
            if (cli_parse_size("mr run", "--split-size", optarg, &conf.split_size) != 0)
                goto free_lists;
            break;
        case O_ATTEMPTS:
            if (cli_parse_uint("mr run", "--max-attempts", optarg, 1, 100, &conf.max_attempts) != 0)
                goto free_lists;
            break;
        case O_WAIT:
            if (cli_parse_uint("mr run", "--locality-wait", optarg, 0, 3600000, &v) != 0)
                goto free_lists;
            conf.locality_wait_ms = v;
            break;
        case O_REPLICAS:
            if (cli_parse_uint("mr run", "--replicas", optarg, 1, TESS_MAX_REPLICAS, &conf.replicas) != 0)
                goto free_lists;
            break;
        case 'q': view.quiet = 1; break;
        case 'h': fputs(run_usage, stdout); rc = 0; goto free_lists;
        default: rc = cli_bad_option("mr run", argv, ch); goto free_lists;
        }
    }
    if (optind < argc) {
        rc = cli_usage_error("mr run", "unexpected argument '%s'", argv[optind]);
        goto free_lists;
    }
    if (ninputs == 0 || !conf.output || !conf.mapper || (reducers > 0 && !conf.reducer)) {
        rc = cli_usage_error("mr run", "--input, --output, --mapper and --reducer (unless "
                             "--reducers 0) are required");
        goto free_lists;
    }
    if (conf.name && (strlen(conf.name) > 40 || strpbrk(conf.name, "/ \t\n"))) {
        rc = cli_usage_error("mr run", "--name '%s': up to 40 characters, no spaces or '/'",
                             conf.name);
        goto free_lists;
    }
    if (!(c = cli_client(ctx)))
        goto free_lists;
    conf.inputs = inputs;
    conf.ninputs = ninputs;
    conf.files = files;
    conf.nfiles = nfiles;
    conf.reducers = reducers;
    conf.progress = show_progress;
    conf.progress_ctx = &view;
    conf.started = show_started;
    if (mr_job_run(c, &conf, job_id, &err) != 0) {
        if (view.tty && !view.quiet)
            fputc('\n', stderr);
        cli_error("mr run: %s", err.msg);
        rc = 1;
        goto free_lists;
    }
    json_t *st;
    if (mr_status_get(c, job_id, &st, &err) == 0) {
        json_t *b = json_object_get(st, "bytes");
        printf("job %s succeeded in %.1fs: %lld maps (%lld data-local, %.0f%%), %u reduces, "
               "%lld bytes shuffled, output %s\n", job_id,
               (double)json_integer_value(json_object_get(st, "elapsed_ms")) / 1000.0,
               (long long)json_integer_value(json_object_get(json_object_get(st, "maps"), "total")),
               (long long)json_integer_value(json_object_get(st, "data_local_maps")),
               100.0 * json_real_value(json_object_get(st, "data_local_fraction")), reducers,
               (long long)json_integer_value(json_object_get(b, "shuffle")), conf.output);
        json_decref(st);
    } else {
        printf("job %s succeeded, output %s\n", job_id, conf.output);
    }
    rc = 0;
free_lists:
    free(inputs);
    free(files);
    return rc;
}

/* -------------------------------------------------------------- status */

static const char status_usage[] =
    "usage: tessera mr status [JOB] [--json]\n"
    "\n"
    "Without JOB, list the jobs (newest first).  With JOB (an id, or a --name),\n"
    "show its phase, tasks done/running/failed, data-local fraction, bytes read\n"
    "and written, and elapsed time.\n"
    "\n"
    "  --json       the job's status as the coordinator stores it (with JOB), or\n"
    "               an array of them: {\"id\",\"name\",\"state\",\"phase\",\"error\",\n"
    "               \"maps\":{\"total\",\"pending\",\"running\",\"done\"},\"reduces\":{…},\n"
    "               \"data_local_maps\",\"data_local_fraction\",\"failed_attempts\",\n"
    "               \"bytes\":{\"input\",\"read_local\",\"read_remote\",\"map_output\",\n"
    "               \"shuffle\",\"shuffle_remote\",\"output\"},\"elapsed_ms\",\"tasks\":[…]}\n"
    "  -h, --help   this help\n";

static void print_json(const json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s == NULL) {
        cli_error("cannot encode JSON output");
        return;
    }
    printf("%s\n", s);
    free(s);
}

static long long geti(const json_t *j, const char *a, const char *b)
{
    const json_t *x = json_object_get(j, a);
    if (b)
        x = json_object_get(x, b);
    return (long long)json_integer_value(x);
}

static const char *gets_(const json_t *j, const char *k)
{
    const char *s = json_string_value(json_object_get(j, k));
    return s ? s : "";
}

static void print_detail(const json_t *st)
{
    char a[32], b[32], c[32], d[32], e[32];

    printf("job:        %s (%s)\n", gets_(st, "id"), gets_(st, "name"));
    printf("state:      %s, phase %s\n", gets_(st, "state"), gets_(st, "phase"));
    if (*gets_(st, "error"))
        printf("error:      %s\n", gets_(st, "error"));
    printf("output:     %s\n", gets_(st, "output"));
    printf("maps:       %lld done, %lld running, %lld pending of %lld\n",
           geti(st, "maps", "done"), geti(st, "maps", "running"), geti(st, "maps", "pending"),
           geti(st, "maps", "total"));
    printf("reduces:    %lld done, %lld running, %lld pending of %lld\n",
           geti(st, "reduces", "done"), geti(st, "reduces", "running"),
           geti(st, "reduces", "pending"), geti(st, "reduces", "total"));
    printf("failed:     %lld attempt(s)\n", geti(st, "failed_attempts", NULL));
    printf("data-local: %lld of %lld maps (%.0f%%)\n", geti(st, "data_local_maps", NULL),
           geti(st, "maps", "done"),
           100.0 * json_real_value(json_object_get(st, "data_local_fraction")));
    printf("read:       %s input, %s local, %s remote\n",
           ts_format_size((uint64_t)geti(st, "bytes", "input"), a, sizeof a),
           ts_format_size((uint64_t)geti(st, "bytes", "read_local"), b, sizeof b),
           ts_format_size((uint64_t)geti(st, "bytes", "read_remote"), c, sizeof c));
    printf("shuffle:    %s (%s between servers); written %s\n",
           ts_format_size((uint64_t)geti(st, "bytes", "shuffle"), d, sizeof d),
           ts_format_size((uint64_t)geti(st, "bytes", "shuffle_remote"), e, sizeof e),
           ts_format_size((uint64_t)geti(st, "bytes", "output"), a, sizeof a));
    printf("elapsed:    %.1fs\n", (double)geti(st, "elapsed_ms", NULL) / 1000.0);
}

static int mr_status(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int json = 0, ch;
    tess_client *c;
    json_t *st;
    ts_error err;

    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (ch) {
        case 'j': json = 1; break;
        case 'h': fputs(status_usage, stdout); return 0;
        default: return cli_bad_option("mr status", argv, ch);
        }
    }
    if (argc - optind > 1)
        return cli_usage_error("mr status", "unexpected argument '%s'", argv[optind + 1]);
    if (!(c = cli_client(ctx)))
        return 1;
    if (optind < argc) {
        if (mr_status_get(c, argv[optind], &st, &err) != 0) {
            cli_error("mr status %s: %s", argv[optind], err.msg);
            return 1;
        }
        if (json)
            print_json(st);
        else
            print_detail(st);
        json_decref(st);
        return 0;
    }
    if (mr_status_list(c, &st, &err) != 0) {
        cli_error("mr status: %s", err.msg);
        return 1;
    }
    if (json) {
        print_json(st);
    } else {
        printf("%-28s %-12s %-9s %-7s %9s %9s %6s %8s\n", "JOB", "NAME", "STATE", "PHASE", "MAPS",
               "REDUCES", "LOCAL", "ELAPSED");
        for (size_t i = 0; i < json_array_size(st); i++) {
            const json_t *j = json_array_get(st, i);
            char maps[32], reds[32];
            snprintf(maps, sizeof maps, "%lld/%lld", geti(j, "maps", "done"), geti(j, "maps", "total"));
            snprintf(reds, sizeof reds, "%lld/%lld", geti(j, "reduces", "done"),
                     geti(j, "reduces", "total"));
            printf("%-28s %-12s %-9s %-7s %9s %9s %5.0f%% %7.1fs\n", gets_(j, "id"),
                   gets_(j, "name"), gets_(j, "state"), gets_(j, "phase"), maps, reds,
                   100.0 * json_real_value(json_object_get(j, "data_local_fraction")),
                   (double)geti(j, "elapsed_ms", NULL) / 1000.0);
        }
    }
    json_decref(st);
    return 0;
}

/* ---------------------------------------------------------------- kill */

static const char kill_usage[] =
    "usage: tessera mr kill JOB\n"
    "\n"
    "Stop a running job (an id or a --name): its coordinator stops every task,\n"
    "removes the partial output and exits with an error.  If the coordinator is\n"
    "gone, the job's tasks are stopped directly and the job marked killed.\n"
    "\n"
    "  -h, --help   this help\n";

static int mr_kill(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    tess_client *c;
    ts_error err;
    int ch;

    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (ch == 'h') {
            fputs(kill_usage, stdout);
            return 0;
        }
        return cli_bad_option("mr kill", argv, ch);
    }
    if (argc - optind != 1)
        return cli_usage_error("mr kill", "expected one JOB");
    if (!(c = cli_client(ctx)))
        return 1;
    if (mr_job_kill_request(c, argv[optind], &err) != 0) {
        cli_error("mr kill %s: %s", argv[optind], err.msg);
        return 1;
    }
    printf("job %s killed\n", argv[optind]);
    return 0;
}

/* ---------------------------------------------------------------- logs */

static const char logs_usage[] =
    "usage: tessera mr logs JOB TASK\n"
    "\n"
    "Print the stderr of every finished attempt of TASK (m-00003, r-00000, or\n"
    "just the number of a map, 3) of JOB (an id or a --name).\n"
    "\n"
    "  -h, --help   this help\n";

static int mr_logs(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    tess_client *c;
    ts_error err;
    json_t *st;
    char task[32], *text = NULL;
    size_t len;
    int ch;

    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (ch == 'h') {
            fputs(logs_usage, stdout);
            return 0;
        }
        return cli_bad_option("mr logs", argv, ch);
    }
    if (argc - optind != 2)
        return cli_usage_error("mr logs", "expected JOB and TASK");
    const char *t = argv[optind + 1];
    char *end;
    unsigned long num = strtoul(t, &end, 10);
    if (*t && *end == '\0')
        snprintf(task, sizeof task, "m-%05lu", num);
    else if ((t[0] == 'm' || t[0] == 'r') && t[1] == '-' && strlen(t) < 16)
        snprintf(task, sizeof task, "%s", t);
    else
        return cli_usage_error("mr logs", "TASK '%s': expected m-NNNNN, r-NNNNN or a number", t);
    if (!(c = cli_client(ctx)))
        return 1;
    if (mr_status_get(c, argv[optind], &st, &err) != 0) {
        cli_error("mr logs %s: %s", argv[optind], err.msg);
        return 1;
    }
    char *path = ts_sprintf("%s/%s/logs/%s", MR_STATE_DIR, gets_(st, "id"), task);
    int rc = mr_fs_read(c, path, &text, &len, &err);
    json_decref(st);
    free(path);
    if (rc == TS_ENOENT) {
        cli_error("mr logs: no finished attempt of %s in job %s yet", task, argv[optind]);
        return 1;
    }
    if (rc != 0) {
        cli_error("mr logs: %s", err.msg);
        return 1;
    }
    fwrite(text, 1, len, stdout);
    free(text);
    return 0;
}

/* ------------------------------------------------------------ dispatch */

static const char mr_usage[] =
    "usage: tessera mr COMMAND [ARGS]\n"
    "\n"
    "MapReduce jobs scheduled next to the data.\n"
    "\n"
    "Commands:\n"
    "  run      run a job (this process coordinates it until it ends)\n"
    "  status   list jobs, or show one\n"
    "  kill     stop a running job\n"
    "  logs     print the stderr of a job's task\n"
    "\n"
    "`tessera mr COMMAND --help` for each.\n";

int cli_cmd_mr(cli_ctx *ctx, int argc, char **argv)
{
    static const struct {
        const char *name;
        cli_cmd_fn fn;
    } subs[] = {{"run", mr_run}, {"status", mr_status}, {"kill", mr_kill}, {"logs", mr_logs}};

    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(mr_usage, argc < 2 ? stderr : stdout);
        return argc < 2;
    }
    for (size_t i = 0; i < TS_ARRAY_LEN(subs); i++)
        if (strcmp(subs[i].name, argv[1]) == 0)
            return subs[i].fn(ctx, argc - 1, argv + 1);
    return cli_usage_error("mr", "unknown command '%s'", argv[1]);
}
