/* deft/dist.h - data-parallel communication over MPI.
 *
 * One process per rank, started by mpirun; deft_dist_init joins the job when
 * the environment says mpirun (or another PMI launcher) started us, and
 * otherwise stays a world of one, so a plain `deft` never touches MPI. With
 * a world of one every call below is the identity. A build without MPI
 * (CMake did not find it) is always a world of one; deft_dist_have_mpi says
 * which build this is.
 *
 *     deft_dist_init();                           // once, at program start
 *     deft_dist_allreduce_f32(grads, n, DEFT_DIST_AVG);
 *     if (deft_dist_rank() == 0) write_checkpoint();
 *     deft_dist_finalize();
 *
 * The collectives are blocking and must be called by every rank in the same
 * order. A rank that fails calls deft_dist_abort, which ends the whole job
 * (the others may be waiting in a collective).
 */
#ifndef DEFT_DIST_H
#define DEFT_DIST_H

#include "deft/core.h"

#ifdef __cplusplus
extern "C" {
#endif

enum deft_dist_op { DEFT_DIST_SUM = 0, DEFT_DIST_AVG, DEFT_DIST_MAX, DEFT_DIST_MIN };

/* Whether this build has MPI. */
DEFT_API bool deft_dist_have_mpi(void);
/* Whether the environment says a launcher (mpirun, srun) started this process. */
DEFT_API bool deft_dist_launched(void);
/* Join the job when launched (MPI_Init_thread, MPI_THREAD_SERIALIZED), else
 * a world of one. Idempotent. When the world is larger than one and
 * OMP_NUM_THREADS is unset, the compute threads per rank become the cores
 * of the node over the ranks on the node. Errors: launched by mpirun but
 * this build has no MPI (DEFT_ERR_UNSUPPORTED), MPI_Init failed. */
DEFT_API DEFT_NODISCARD enum deft_status deft_dist_init(void);
/* Leave MPI (when joined). After it the world is one again. */
DEFT_API void deft_dist_finalize(void);
DEFT_API int deft_dist_rank(void);
DEFT_API int deft_dist_size(void);
/* Ranks on this node and this rank's index among them (1, 0 when alone). */
DEFT_API int deft_dist_local_size(void);
DEFT_API int deft_dist_local_rank(void);

/* In-place all-reduce of n values (AVG: the sum divided by the world size). */
DEFT_API DEFT_NODISCARD enum deft_status deft_dist_allreduce_f32(float *buf, size_t n, enum deft_dist_op op);
DEFT_API DEFT_NODISCARD enum deft_status deft_dist_allreduce_f64(double *buf, size_t n, enum deft_dist_op op);
DEFT_API DEFT_NODISCARD enum deft_status deft_dist_allreduce_i64(int64_t *buf, size_t n, enum deft_dist_op op);
/* Rank root's bytes into every rank's buf. */
DEFT_API DEFT_NODISCARD enum deft_status deft_dist_broadcast(void *buf, size_t bytes, int root);
DEFT_API DEFT_NODISCARD enum deft_status deft_dist_barrier(void);
/* End the whole job: the message goes to stderr prefixed with this rank,
 * then MPI_Abort(code). Without a job it only prints and returns (the
 * caller exits as it would have). */
DEFT_API void deft_dist_abort(int code, const char *msg);

/* Seconds spent inside the reductions since the start (profiling), and
 * the part of them the computation waited for (not hidden behind backward). */
DEFT_API double deft_dist_comm_seconds(void);
DEFT_API double deft_dist_exposed_seconds(void);
/* Whether a helper thread may make the MPI calls while the main thread
 * computes (MPI granted MPI_THREAD_SERIALIZED), true in a world of one. */
DEFT_API bool deft_dist_thread_ok(void);

/* Gradient buckets reduced while the backward pass still runs (as PyTorch
 * DDP): the trainable gradients are cut into buckets of about bucket_bytes,
 * in reverse order of the parameters; at create time each bucket learns the
 * last backward node writing one of its gradients, and when that node has
 * run a communication thread (the only thread calling MPI during a step)
 * all-reduces the bucket to its mean. bucket_bytes 0: the default (4 MB, or
 * DEFT_DIST_BUCKET_MB). The buckets are sent in the same order on every
 * rank, so every rank sums the same numbers in the same order.
 *
 *     deft_dist_buckets_arm(b, accum);   // the next run reduces (accum: added first, then zeroed)
 *     deft_runtime_run(rt);              // buckets leave as their gradients are done
 *     deft_dist_buckets_wait(b, true);   // all reduced: the optimizer may step
 */
struct deft_runtime;
struct deft_dist_buckets;
DEFT_API DEFT_NODISCARD enum deft_status deft_dist_buckets_create(struct deft_runtime *rt, size_t bucket_bytes,
                                                                 struct deft_dist_buckets **out);
DEFT_API void deft_dist_buckets_free(struct deft_dist_buckets *b);
/* In-place sum of n doubles over the ranks during a run (sync_bn), made by
 * the communication thread after the buckets handed over so far. */
DEFT_API DEFT_NODISCARD enum deft_status deft_dist_buckets_sum(struct deft_dist_buckets *b, double *buf, size_t n);
DEFT_API int deft_dist_buckets_count(const struct deft_dist_buckets *b);
/* Reduce the buckets of the next run; accum (the gradient-accumulation
 * buffer, same layout as the gradient block, or NULL) is added to each
 * bucket before it is sent and zeroed. Without arming, runs reduce nothing. */
DEFT_API void deft_dist_buckets_arm(struct deft_dist_buckets *b, float *accum);
/* Wait for the armed run's buckets (all: send those not sent yet first, so
 * every rank makes the same calls); disarms. The first error of the thread. */
DEFT_API DEFT_NODISCARD enum deft_status deft_dist_buckets_wait(struct deft_dist_buckets *b, bool all);

#ifdef __cplusplus
}
#endif
#endif
