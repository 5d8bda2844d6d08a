/* commands.c - the table of top-level commands. */
#include <stddef.h>
#include "cli/cli.h"

const struct cli_command cli_commands[] = {
    {NULL, NULL},
};
