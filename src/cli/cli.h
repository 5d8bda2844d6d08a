/* cli.h (internal to the CLI) - the command table. */
#ifndef DEFT_CLI_H
#define DEFT_CLI_H
#include <stdbool.h>

struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the command name; returns exit status */
};
extern const struct cli_command cli_commands[];

/* `--gpus N` / `--num_processes N` on a train command: run it again under
 * mpirun -np N (launch.c). Returns -1 to go on in this process, else the
 * exit status (an error; on success exec does not return). */
int cli_launch(int argc, char **argv);

struct deft_task;
/* `deft <task> <action> ...` for a task of the registry (commands.c). */
int cli_run_task(const struct deft_task *t, int argc, char **argv);

/* `deft classification export` (cmd_export.c). */
int cmd_cls_export(int argc, char **argv);

/* `deft model init` and `deft model preprocess` (cmd_model_tools.c). */
int cmd_model_init(int argc, char **argv);
int cmd_model_preprocess(int argc, char **argv);

/* `deft model import` (cmd_import.c). */
int cmd_model_import(int argc, char **argv);
/* `deft model detect` (cmd_model_detect.c): imported torchvision detectors. */
int cmd_model_detect(int argc, char **argv);

/* `deft model download` and `deft model list` (cmd_download.c). */
int cmd_model_download(int argc, char **argv);
int cmd_model_list(int argc, char **argv);

/* `deft classification prune` (cmd_prune.c). */
int cmd_task_prune(int argc, char **argv); /* argv[0]: the task name */

struct deft_safetensors;
/* The deft architecture whose parameters the file matches best by name and
 * shape (every named match must also match in shape), or NULL; *matched of
 * its *total parameter/state tensors are in the file. */
const char *cli_guess_arch(const struct deft_safetensors *st, int *num_classes, int *matched,
                           int *total);

struct deft_runtime;
/* deft bench (cmd_bench.c): one JSON line of timings; YOLO networks (cmd_bench_yolo.c) */
int bench_report(const char *mode, const char *what, long long sz, long long b, long long st, const double *lat,
                 struct deft_runtime *rt, bool profile);
bool bench_is_yolo(const char *arch);
int bench_yolo(const char *arch, bool train, long long sz, long long b, long long st, long long wu, int classes,
               const char *backend, bool profile);

/* Engines (cmd_engine.c): `deft model convert`, `model run` and `bench infer` on an engine file. */
struct deft_tensor;
int cmd_model_convert(int argc, char **argv);
int cli_model_run_engine(const char *path, const struct deft_tensor *x, const char *out, const char *backend);
int cli_bench_engine(const char *path, int batch, int steps, int warmup, const char *backend, bool profile);

#endif
