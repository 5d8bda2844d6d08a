/* dist.c - deft/dist.h over MPI (DEFT_HAVE_MPI), or a world of one.
 *
 * Only this file includes mpi.h (CMake gives it the MPI flags alone), so the
 * rest of the library builds the same with or without MPI. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "deft/dist.h"
#include "dist/dist_internal.h"
#ifdef DEFT_HAVE_MPI
#include <mpi.h>
#endif

static struct {
    bool joined;        /* MPI_Init done by us */
    int rank, size, local_rank, local_size;
    bool thread_ok;     /* MPI granted MPI_THREAD_SERIALIZED */
    double comm_seconds, exposed_seconds;
} W = {.size = 1, .local_size = 1};

bool deft_dist_have_mpi(void) {
#ifdef DEFT_HAVE_MPI
    return true;
#else
    return false;
#endif
}

/* mpirun (Open MPI, MPICH/Hydra) and srun set these in every rank. */
bool deft_dist_launched(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i])) return true;
    return false;
}

int deft_dist_rank(void) { return W.rank; }
int deft_dist_size(void) { return W.size; }
int deft_dist_local_rank(void) { return W.local_rank; }
int deft_dist_local_size(void) { return W.local_size; }
double deft_dist_comm_seconds(void) { return W.comm_seconds; }
double deft_dist_exposed_seconds(void) { return W.exposed_seconds; }
void deft_dist_note_exposed(double s) { W.exposed_seconds += s; }
bool deft_dist_thread_ok(void) { return W.size < 2 || W.thread_ok; }

/* cores / ranks on the node, unless the user chose (OMP_NUM_THREADS). */
__attribute__((unused)) static void default_threads(void) {
    if (W.size < 2 || getenv("OMP_NUM_THREADS")) return;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int n = cores > 0 ? (int)(cores / W.local_size) : 1;
    deft_set_threads(n > 0 ? n : 1);
}

#ifdef DEFT_HAVE_MPI
static enum deft_status mpi_error(int rc, const char *what) {
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return deft_set_error(DEFT_ERR_IO, "MPI %s failed on rank %d: %s", what, W.rank, msg);
}

enum deft_status deft_dist_init(void) {
    if (W.joined || !deft_dist_launched()) return DEFT_OK;
    int inited = 0, provided = 0;
    MPI_Initialized(&inited);
    int rc = inited ? MPI_SUCCESS : MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided);
    if (rc != MPI_SUCCESS) return deft_set_error(DEFT_ERR_IO, "MPI_Init_thread failed (code %d)", rc);
    /* errors come back as codes: the library reports them, the caller aborts */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if (inited) MPI_Query_thread(&provided);
    W.thread_ok = provided >= MPI_THREAD_SERIALIZED;
    MPI_Comm_rank(MPI_COMM_WORLD, &W.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &W.size);
    MPI_Comm node;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, W.rank, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_rank(node, &W.local_rank);
        MPI_Comm_size(node, &W.local_size);
        MPI_Comm_free(&node);
    }
    W.joined = true;
    default_threads();
    return DEFT_OK;
}

void deft_dist_finalize(void) {
    if (!W.joined) return;
    MPI_Finalize();
    W = (__typeof__(W)){.size = 1, .local_size = 1};
}

/* MPI counts are int: large buffers go in chunks. */
#define CHUNK ((size_t)1 << 28)

static enum deft_status allreduce(void *buf, size_t n, size_t elem, MPI_Datatype t, enum deft_dist_op op) {
    if (W.size < 2 || n == 0) return DEFT_OK;
    MPI_Op mop = op == DEFT_DIST_MAX ? MPI_MAX : op == DEFT_DIST_MIN ? MPI_MIN : MPI_SUM;
    double t0 = MPI_Wtime();
    for (size_t off = 0; off < n; off += CHUNK) {
        size_t k = n - off < CHUNK ? n - off : CHUNK;
        int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)buf + off * elem, (int)k, t, mop, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_error(rc, "all-reduce");
    }
    W.comm_seconds += MPI_Wtime() - t0;
    return DEFT_OK;
}

enum deft_status deft_dist_allreduce_f32(float *buf, size_t n, enum deft_dist_op op) {
    enum deft_status s = allreduce(buf, n, sizeof *buf, MPI_FLOAT, op);
    if (!s && op == DEFT_DIST_AVG && W.size > 1) {
        float inv = 1.0f / (float)W.size;
        for (size_t i = 0; i < n; i++) buf[i] *= inv;
    }
    return s;
}

enum deft_status deft_dist_allreduce_f64(double *buf, size_t n, enum deft_dist_op op) {
    enum deft_status s = allreduce(buf, n, sizeof *buf, MPI_DOUBLE, op);
    if (!s && op == DEFT_DIST_AVG && W.size > 1)
        for (size_t i = 0; i < n; i++) buf[i] /= (double)W.size;
    return s;
}

enum deft_status deft_dist_allreduce_i64(int64_t *buf, size_t n, enum deft_dist_op op) {
    enum deft_status s = allreduce(buf, n, sizeof *buf, MPI_INT64_T, op);
    if (!s && op == DEFT_DIST_AVG && W.size > 1)
        for (size_t i = 0; i < n; i++) buf[i] /= W.size;
    return s;
}

enum deft_status deft_dist_broadcast(void *buf, size_t bytes, int root) {
    if (W.size < 2 || bytes == 0) return DEFT_OK;
    if (root < 0 || root >= W.size) return deft_set_error(DEFT_ERR_INVALID_ARG, "broadcast from rank %d of %d", root, W.size);
    double t0 = MPI_Wtime();
    for (size_t off = 0; off < bytes; off += CHUNK) {
        size_t k = bytes - off < CHUNK ? bytes - off : CHUNK;
        int rc = MPI_Bcast((char *)buf + off, (int)k, MPI_BYTE, root, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_error(rc, "broadcast");
    }
    W.comm_seconds += MPI_Wtime() - t0;
    return DEFT_OK;
}

enum deft_status deft_dist_barrier(void) {
    if (W.size < 2) return DEFT_OK;
    int rc = MPI_Barrier(MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? DEFT_OK : mpi_error(rc, "barrier");
}

void deft_dist_abort(int code, const char *msg) {
    fprintf(stderr, "deft: rank %d of %d: %s\n", W.rank, W.size, msg ? msg : "aborting");
    fflush(stderr);
    if (W.joined && W.size > 1) MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
}

#else /* no MPI: a world of one */

enum deft_status deft_dist_init(void) {
    if (deft_dist_launched() && getenv("OMPI_COMM_WORLD_SIZE") && strcmp(getenv("OMPI_COMM_WORLD_SIZE"), "1"))
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "started by mpirun with %s ranks, but this deft was built "
                              "without MPI (install libopenmpi-dev and rebuild)", getenv("OMPI_COMM_WORLD_SIZE"));
    return DEFT_OK;
}
void deft_dist_finalize(void) {}
enum deft_status deft_dist_allreduce_f32(float *buf, size_t n, enum deft_dist_op op) { return DEFT_OK; }
enum deft_status deft_dist_allreduce_f64(double *buf, size_t n, enum deft_dist_op op) { return DEFT_OK; }
enum deft_status deft_dist_allreduce_i64(int64_t *buf, size_t n, enum deft_dist_op op) { return DEFT_OK; }
enum deft_status deft_dist_broadcast(void *buf, size_t bytes, int root) { return DEFT_OK; }
enum deft_status deft_dist_barrier(void) { return DEFT_OK; }
void deft_dist_abort(int code, const char *msg) {
    fprintf(stderr, "deft: %s\n", msg ? msg : "aborting");
    fflush(stderr);
}
#endif
