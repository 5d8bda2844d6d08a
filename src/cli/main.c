/* main.c - the deft command line: argument parsing and dispatch only. */
#include <stdio.h>
#include <string.h>
#include "deft/deft.h"
#include "deft/dist.h"
#include "deft/task.h"
#include "cli/cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "deft %s - transfer learning for computer vision\n\n"
            "usage: deft <command> <action> [flags]\n\n"
            "commands:\n",
            DEFT_VERSION_STRING);
    for (const struct deft_task *const *t = deft_task_list(); *t; t++) {
        char acts[160] = "";
        size_t used = 0;
        for (int i = 0; i < (*t)->n_actions && used < sizeof acts; i++)
            used += (size_t)snprintf(acts + used, sizeof acts - used, "%s%s", i ? "|" : "", (*t)->actions[i].name);
        fprintf(f, "  %s %s -e SPEC ...   (deft %s --help)\n", (*t)->name, acts, (*t)->name);
    }
    fprintf(f,
            "  detection dataset_convert|dataset_validate|score ...  KITTI/COCO/VOC data, mAP of predictions\n"
            "  model run    -m MODEL -i input.npy -o output.npy    run a model on a tensor\n"
            "  model import -i FILE -o OUT [--arch NAME]          pretrained .pth/.onnx/.h5/.safetensors\n"
            "  model download NAME|URL [-o DIR]                   pretrained weights (model list: names)\n"
            "  model info   -m FILE | --arch NAME [--size N]      layers, shapes, params, FLOPs\n"
            "  model convert -m MODEL|FILE.onnx -o OUT.engine    an inference engine (bench infer -m OUT.engine)\n"
            "  bench train|infer --arch NAME [--size 224] [--batch 16] [--threads N] [--steps N]\n"
            "  demo         [--steps N]                           train a small net on generated data\n\n"
            "  deft <command> --help for the flags of a command; deft --version\n\n"
            "backends (--backend): %s;\n"
            "  on a GPU: --backend cuda [--gpu_index I] [--use_amp [bf16|fp16]]\n\n"
            "environment: DEFT_LOG=debug (kernel choices and other internals);\n"
            "  DEFT_CONV_ALGO=direct (cpu: no Winograd for 3x3 stride-1 convolutions)\n",
            deft_backend_names());
}

static int run(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("deft %s (backends: %s; data parallel: %s)\n", DEFT_VERSION_STRING, deft_backend_names(),
               deft_dist_have_mpi() ? "MPI" : "none, a build without MPI");
        return 0;
    }
    for (const struct cli_command *c = cli_commands; c->name; c++)
        if (!strcmp(argv[1], c->name)) return c->run(argc - 1, argv + 1);
    const struct deft_task *t = deft_task_find(argv[1]);
    if (t) return cli_run_task(t, argc - 1, argv + 1);
    fprintf(stderr, "deft: unknown command '%s' (try 'deft --help')\n", argv[1]);
    return 2;
}

/* Under mpirun every rank runs the same command; a rank that fails ends the
 * whole job (the others may wait for it in a collective), naming itself. */
int main(int argc, char **argv) {
    if (deft_dist_init()) {
        fprintf(stderr, "deft: %s\n", deft_last_error());
        return 2;
    }
    int rc = cli_launch(argc, argv);
    if (rc < 0) rc = run(argc, argv);
    if (rc && deft_dist_size() > 1) {
        char msg[96];
        snprintf(msg, sizeof msg, "stopped with exit status %d (its error is above); ending the job", rc);
        deft_dist_abort(rc, msg);
    }
    deft_dist_finalize();
    return rc;
}
