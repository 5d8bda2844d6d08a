/* registry.c - every network deft knows, by TAO's name. Adding one is one
 * line here (and its struct in src/tasks/<network>/). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "deft/task.h"

extern const struct deft_task deft_task_classification;
extern const struct deft_task deft_task_yolo_v4;
extern const struct deft_task deft_task_yolo_v4_tiny;
extern const struct deft_task deft_task_unet;
extern const struct deft_task deft_task_faster_rcnn;
extern const struct deft_task deft_task_ssd;
extern const struct deft_task deft_task_retinanet;
extern const struct deft_task deft_task_detectnet_v2;

static const struct deft_task *const tasks[] = {
    &deft_task_classification,
    &deft_task_yolo_v4,
    &deft_task_yolo_v4_tiny,
    &deft_task_unet,
    &deft_task_faster_rcnn,
    &deft_task_ssd,
    &deft_task_retinanet,
    &deft_task_detectnet_v2,
    NULL,
};

const struct deft_task *const *deft_task_list(void) { return tasks; }

const struct deft_task *deft_task_find(const char *name) {
    for (int i = 0; name && tasks[i]; i++)
        if (!strcmp(tasks[i]->name, name)) return tasks[i];
    return NULL;
}

const struct deft_task_action *deft_task_action(const struct deft_task *t, const char *name) {
    for (int i = 0; t && name && i < t->n_actions; i++)
        if (!strcmp(t->actions[i].name, name)) return &t->actions[i];
    return NULL;
}

const char *deft_task_arg(const struct deft_task_args *a, const char *long_name) {
    for (int i = a->n_extra - 1; i >= 0; i--)
        if (!strcmp(a->extra_name[i], long_name)) return a->extra_value[i];
    return NULL;
}

enum deft_status deft_task_arg_int(const struct deft_task_args *a, const char *long_name, long lo, long hi, int dflt,
                                   int *out) {
    const char *v = deft_task_arg(a, long_name);
    *out = dflt;
    if (!v) return DEFT_OK;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s expects an integer in [%ld, %ld], got '%s'", long_name, lo, hi,
                              v);
    *out = (int)x;
    return DEFT_OK;
}

void deft_task_print_usage(const struct deft_task *t, FILE *f) {
    if (t->print_help) {
        t->print_help(f);
        return;
    }
    fprintf(f, "usage: deft %s <action> [flags]\n\nactions:\n", t->name);
    for (int i = 0; i < t->n_actions; i++)
        fprintf(f, "  %-10s %s\n  %-10s %s\n", t->actions[i].name, t->actions[i].usage ? t->actions[i].usage : "",
                "", t->actions[i].help ? t->actions[i].help : "");
    fprintf(f, "\ncommon flags (TAO's): -e SPEC, -r DIR, -m MODEL, -o FILE, -k KEY (ignored), --gpus 1, --gpu_index I,\n"
               "  --use_amp [bf16|fp16], --log_file F, --threads N, --seed N, --set key.path=value, --dry_run,\n"
               "  --backend cpu|ref|cuda|cuda-emu, --help-spec\n"
               "--dry_run prints the resolved spec and exits 0 only when a real run would start (2 otherwise)\n");
}

/* A dry run's verdict: exit 0 only when a real run would start (a user's CI can rely on it). */
enum deft_status deft_dry_run_verdict(bool would_stop) {
    if (!would_stop) return DEFT_OK;
    return deft_set_error(DEFT_ERR_INVALID_ARG, "dry run: a real run would stop here (the warnings above say why)");
}
