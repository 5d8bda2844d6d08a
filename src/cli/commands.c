/* commands.c - the top-level commands: a few tools (model, bench, demo) and
 * one command per task in the registry (deft/task.h), whose actions are
 * dispatched here after the one TAO flag parser (args.c). */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include "deft/task.h"
#include "cli/args.h"
#include "cli/cli.h"

int cmd_model(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_detection(int argc, char **argv);

const struct cli_command cli_commands[] = {
    {"model", cmd_model},
    {"bench", cmd_bench},
    {"demo", cmd_demo},
    {"detection", cmd_detection},
    {NULL, NULL},
};

static int cls_export(int argc, char **argv) { return cmd_cls_export(argc - 1, argv + 1); }

/* Actions the CLI still implements with their own flags (run == NULL in the task). */
static const struct {
    const char *task, *action;
    int (*run)(int argc, char **argv); /* argv[0] is the task name */
} cli_actions[] = {
    {"classification", "export", cls_export},
    {"classification", "prune", cmd_task_prune},
    {"yolo_v4", "prune", cmd_task_prune},
    {"yolo_v4_tiny", "prune", cmd_task_prune},
    {"unet", "prune", cmd_task_prune},
    {"ssd", "prune", cmd_task_prune},
    {"retinanet", "prune", cmd_task_prune},
    {"faster_rcnn", "prune", cmd_task_prune},
    {"detectnet_v2", "prune", cmd_task_prune},
};

static volatile sig_atomic_t stop_requested;

static void on_sigint(int sig) {
    (void)sig;
    if (stop_requested) signal(SIGINT, SIG_DFL); /* a second Ctrl-C kills at once */
    stop_requested = 1;
}

static void action_names(const struct deft_task *t, char *buf, size_t n) {
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < t->n_actions && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s%s", i ? ", " : "", t->actions[i].name);
}

int cli_run_task(const struct deft_task *t, int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        deft_task_print_usage(t, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--help-spec") && t->spec_help) {
        t->spec_help(stdout);
        return 0;
    }
    const char *name = argv[1];
    const struct deft_task_action *act = deft_task_action(t, name);
    if (!act) {
        char names[256];
        action_names(t, names, sizeof names);
        fprintf(stderr, "deft %s: unknown action '%s' (%s)\n", t->name, name, names);
        return 2;
    }
    if (!act->run) {
        for (size_t i = 0; i < sizeof cli_actions / sizeof cli_actions[0]; i++)
            if (!strcmp(cli_actions[i].task, t->name) && !strcmp(cli_actions[i].action, name))
                return cli_actions[i].run(argc, argv);
        fprintf(stderr, "deft %s %s: not available in this build\n", t->name, name);
        return 1;
    }
    struct deft_task_args a;
    const char *sets[DEFT_TASK_MAX_SETS];
    int rc = cli_parse_task_args(t, act, argc, argv, 2, &a, sets);
    if (rc >= 0) return rc;
    a.out = stdout;
    a.argc = argc;
    a.argv = argv;
    if (act->traps_sigint) {
        a.stop = &stop_requested;
        signal(SIGINT, on_sigint);
        signal(SIGTERM, on_sigint);
    }
    enum deft_status s = act->run(&a);
    if (s == DEFT_ERR_CANCELLED) return 130;
    return s ? cli_fail(s, NULL) : 0;
}
