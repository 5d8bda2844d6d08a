/* commands.c - the table of top-level commands. */
#include <stddef.h>
#include "cli/cli.h"

int cmd_model(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_classification(int argc, char **argv);
int cmd_detection(int argc, char **argv);

const struct cli_command cli_commands[] = {
    {"model", cmd_model},
    {"bench", cmd_bench},
    {"demo", cmd_demo},
    {"classification", cmd_classification},
    {"detection", cmd_detection},
    {NULL, NULL},
};
