/* launch.c - TAO's `--gpus N` / `--num_processes N` for users who do not call
 * mpirun themselves: `deft <task> train ... --gpus N` runs itself again as
 * `mpirun -np N deft <task> train ...` (the flag left out); under mpirun the
 * flag must match the job's size. A build without MPI says it needs one. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "deft/dist.h"
#include "cli/cli.h"

/* The value of --gpus/--num_processes (N, "--gpus N" or "--gpus=N") at argv[i], or NULL. */
static const char *procs_flag(int argc, char **argv, int i, int *width) {
    static const char *const names[] = {"--gpus", "--num_processes"};
    for (int k = 0; k < 2; k++) {
        size_t n = strlen(names[k]);
        if (!strncmp(argv[i], names[k], n) && argv[i][n] == '=') return *width = 1, argv[i] + n + 1;
        if (!strcmp(argv[i], names[k]) && i + 1 < argc) return *width = 2, argv[i + 1];
    }
    return NULL;
}

static int parse_procs(const char *v) {
    char *end;
    long n = strtol(v, &end, 10);
    return *end || end == v || n < 1 || n > 4096 ? -1 : (int)n;
}

int cli_launch(int argc, char **argv) {
    if (argc < 3 || strcmp(argv[2], "train")) return -1;
    int at = -1, width = 0, n = 1;
    for (int i = 3; i < argc; i++) {
        const char *v = procs_flag(argc, argv, i, &width);
        if (!v) continue;
        if ((n = parse_procs(v)) < 0) {
            fprintf(stderr, "deft: %s %s: give a number of processes (1 or more)\n", argv[i], v);
            return 2;
        }
        at = i;
        break;
    }
    if (at < 0 || n == 1) return -1;
    if (deft_dist_launched()) {
        if (n == deft_dist_size()) return -1;
        fprintf(stderr, "deft: %s %d, but mpirun started %d processes\n", argv[at], n, deft_dist_size());
        return 2;
    }
    if (!deft_dist_have_mpi()) {
        fprintf(stderr, "deft: %s %d needs the MPI build of deft (apt-get install libopenmpi-dev openmpi-bin, "
                "then rebuild); this one trains in one process\n", argv[at], n);
        return 2;
    }
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) snprintf(exe, sizeof exe, "%s", argv[0]);
    else exe[len] = 0;
    char np[16];
    snprintf(np, sizeof np, "%d", n);
    char **av = calloc((size_t)argc + 12, sizeof *av);
    if (!av) return 2;
    int k = 0;
    av[k++] = "mpirun";
    if (geteuid() == 0) av[k++] = "--allow-run-as-root";
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores > 0 && n > cores) av[k++] = "--oversubscribe";
    av[k++] = "--bind-to";
    av[k++] = "none"; /* each rank's threads spread over the cores it shares */
    av[k++] = "-np";
    av[k++] = np;
    av[k++] = exe;
    for (int i = 1; i < argc; i++)
        if (i < at || i >= at + width) av[k++] = argv[i];
    fprintf(stderr, "deft: %s %d: starting mpirun -np %d\n", argv[at], n, n);
    fflush(stderr);
    execvp("mpirun", av);
    fprintf(stderr, "deft: %s %d: cannot run mpirun (%s): install openmpi-bin, or start deft with mpirun -np %d\n",
            argv[at], n, strerror(errno), n);
    free(av);
    return 2;
}
