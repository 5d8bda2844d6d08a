/* args.h (internal to the CLI) - tiny flag parsing helpers. */
#ifndef DEFT_CLI_ARGS_H
#define DEFT_CLI_ARGS_H

#include <stdbool.h>
#include <stdint.h>

/* If argv[*i] is one of the names ("-m", "--model"), store its value (the
 * next argument, or after '=') in *val, advance *i and return true. Sets
 * *err when the value is missing. */
bool arg_str(int argc, char **argv, int *i, const char *short_name, const char *long_name,
             const char **val, bool *err);
/* Parse an integer / float flag value; false (and a message) when invalid. */
bool arg_parse_int(const char *flag, const char *s, long long lo, long long hi, long long *out);
/* --use_amp [bf16|fp16] at argv[*i] (bf16 when no mode follows): true and
 * *amp (enum deft_amp) set if it is that flag; *err (message printed) when
 * another word follows it. */
bool arg_amp(int argc, char **argv, int *i, int *amp, bool *err);
bool arg_parse_float(const char *flag, const char *s, double *out);
struct deft_task;
struct deft_task_action;
struct deft_task_args;
/* The one parser of TAO's flags (-e -r -m -i -o -k --gpus --gpu_index
 * --use_amp --log_file --threads --seed --set --dry_run --resume
 * --resume_from --overwrite --backend --fatal_corrupt) and the action's own flags, from
 * argv[first]. sets holds DEFT_TASK_MAX_SETS --set values. Returns -1 when
 * the action should run, else the exit status (0 after --help, 2 on an error,
 * printed). */
int cli_parse_task_args(const struct deft_task *t, const struct deft_task_action *act, int argc, char **argv,
                        int first, struct deft_task_args *a, const char **sets);
/* Print "deft: <msg>" with the last library error and return the exit code. */
int cli_fail(int status, const char *what);
/* Peak resident set size of this process in MiB. */
double cli_peak_rss_mib(void);

#endif
