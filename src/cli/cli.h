/* cli.h (internal to the CLI) - the command table. */
#ifndef DEFT_CLI_H
#define DEFT_CLI_H

struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the command name; returns exit status */
};
extern const struct cli_command cli_commands[];

/* `deft model import` (cmd_import.c). */
int cmd_model_import(int argc, char **argv);

#endif
