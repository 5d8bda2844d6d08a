/* deft/trainer.h - one object that owns everything a training run needs:
 * the model graph, the training graph (model + loss + generated backward),
 * the runtime, the optimizer and the learning-rate schedule; with
 * checkpoints that resume bit-identically.
 *
 *     struct deft_trainer *t;
 *     deft_trainer_create(&(struct deft_trainer_opts){
 *         .model = {.arch = "resnet18", .num_classes = 10, .batch = 16, .training = true},
 *         .optim = {.kind = DEFT_OPTIM_SGD, .momentum = 0.9f},
 *         .lr = {.kind = DEFT_LR_COSINE, .lr = 0.01f, .total_steps = 1000}, .seed = 1}, &t);
 *     for (...) deft_trainer_step(t, images, labels, &loss);
 *     deft_trainer_save(t, "runs/x/weights/latest.safetensors");
 *
 * Determinism: the same seed, data and thread count give bit-identical
 * weights; a checkpoint stores params, BN statistics, optimizer buffers and
 * the step counter, so resuming continues exactly where the run stopped.
 */
#ifndef DEFT_TRAINER_H
#define DEFT_TRAINER_H

#include "deft/models.h"
#include "deft/optim.h"
#include "deft/quant.h"
#include "deft/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A loss computed on the host (detection losses: matching, CIoU, NMS-free
 * terms that are not graph ops). The trainer runs the forward nodes, hands
 * every model output (deft_graph_outputs order: declared roles first, plain
 * NCHW f32, shapes[i]) to the callback, which writes d(loss)/d(output i) into
 * grads[i] (same shapes, zero-filled before the call), the total loss into
 * *loss and up to DEFT_MAX_LOSS_TERMS named parts into terms (the task names
 * them). `targets` is the opaque per-batch pointer given to
 * deft_trainer_step_targets. A non-OK return stops the step before the
 * backward pass (weights and BN statistics untouched). */
#define DEFT_MAX_LOSS_TERMS 8
typedef enum deft_status (*deft_host_loss_fn)(void *user, int n_outputs, const float *const *outputs,
                                              const struct deft_shape *shapes, const void *targets,
                                              float *const *grads, double *loss, double *terms);

/* A host step between two ranges of forward nodes (two-stage detectors: the
 * region proposals are computed on the host from the first stage's outputs
 * and fed to the second stage as an input). With opts.mid_forward set, a
 * host-loss step runs the forward nodes before the first node that reads the
 * INPUT value with role opts.mid_input_role, calls mid_forward with the
 * training runtime and graph (it reads what it needs, values found by name or
 * role, and sets that input with deft_runtime_set_input), then runs the other
 * forward nodes, the host loss and the backward pass. That input gets no
 * gradient. `targets` is the step's (deft_trainer_step_targets). A non-OK
 * return stops the step as a host-loss failure does. */
typedef enum deft_status (*deft_mid_forward_fn)(void *user, struct deft_runtime *rt, const struct deft_graph *g,
                                                const void *targets);

struct deft_trainer_opts {
    struct deft_model_opts model;       /* .training is forced on */
    struct deft_optim_config optim;
    struct deft_lr_schedule lr;
    struct deft_loss_attr loss;         /* default: softmax cross-entropy */
    const char *backend;                /* "cpu" (default), "ref", "cuda", "cuda-emu" */
    int device_index;                   /* cuda: GPU index */
    int amp;                            /* enum deft_amp; fp16 adds dynamic loss scaling */
    float loss_scale;                   /* fp16: initial loss scale, 0 -> 65536 (GradScaler's) */
    uint64_t seed;                      /* parameter initialization */
    int accum_steps;                    /* micro-batches per optimizer step (gradient accumulation), 0 -> 1 */
    const char *const *freeze_prefixes; /* NULL-terminated: params whose names start with these are frozen */
    bool soft_targets;                  /* labels are [batch, classes] probabilities (mixup) instead of ids */
    /* Train this forward graph (a pruned model's, with irregular channel
     * counts) instead of building model.arch: it is cloned, its input
     * (its "image" role: see deft_graph_find_role) set to model.batch (and
     * model.height/width when nonzero), batch norm to model.bn_mode, dropout
     * on; model.num_classes, when nonzero, must match its output. */
    const struct deft_graph *graph;
    /* Set: train with a host-computed loss over all model outputs
     * (deft_trainer_step_targets) instead of the in-graph loss. */
    deft_host_loss_fn host_loss;
    void *host_loss_user;
    /* Set (with host_loss): the mid-forward host step above, before the first
     * reader of the input with role mid_input_role. */
    deft_mid_forward_fn mid_forward;
    void *mid_forward_user;
    const char *mid_input_role;
    /* Set: quantization-aware training (deft_qat_insert on the model graph,
     * unless it is quantization-aware already); the ranges are STATE values,
     * so checkpoints and resume keep them. Batch-norm modes are the caller's
     * (model.bn_mode: DEFT_BN_FROZEN to train on the deployed statistics). */
    const struct deft_qat_opts *qat;
};

struct deft_trainer;

DEFT_API DEFT_NODISCARD enum deft_status deft_trainer_create(const struct deft_trainer_opts *o,
                                                            struct deft_trainer **out);
DEFT_API void deft_trainer_free(struct deft_trainer *t);
/* One micro-batch: images [batch, C, H, W] plain f32, labels [batch] class ids
 * (as floats). Runs forward + backward; every accum_steps micro-batches it
 * applies the optimizer. *loss receives the batch loss. A NaN/Inf loss gives
 * DEFT_ERR_NUMERIC and leaves the weights untouched. */
DEFT_API DEFT_NODISCARD enum deft_status deft_trainer_step(struct deft_trainer *t, const float *images,
                                                          const float *labels, float *loss);
/* One micro-batch with a host loss (opts.host_loss): images as above,
 * targets passed through to the callback. Same accumulation, fp16 loss
 * scaling and NaN handling as deft_trainer_step (a non-finite loss gives
 * DEFT_ERR_NUMERIC and leaves the weights untouched). */
DEFT_API DEFT_NODISCARD enum deft_status deft_trainer_step_targets(struct deft_trainer *t, const float *images,
                                                                  const void *targets, float *loss);
/* The loss terms the host loss reported in the last step (DEFT_MAX_LOSS_TERMS). */
DEFT_API const double *deft_trainer_loss_terms(const struct deft_trainer *t);
/* Model outputs, in deft_graph_outputs order (count, and each one's shape at
 * the training batch size). */
DEFT_API int deft_trainer_num_outputs(const struct deft_trainer *t);
DEFT_API const struct deft_shape *deft_trainer_output_shape(const struct deft_trainer *t, int i);
/* Multi-output inference with the current weights: n <= batch images in;
 * outs[i] receives n x (numel of output i / batch) floats. */
DEFT_API DEFT_NODISCARD enum deft_status deft_trainer_predict_outputs(struct deft_trainer *t, const float *images,
                                                                     int n, float *const *outs);
/* Number of optimizer steps taken so far. */
DEFT_API int64_t deft_trainer_steps(const struct deft_trainer *t);
/* The current dynamic loss scale (1 unless fp16 AMP). */
DEFT_API float deft_trainer_loss_scale(const struct deft_trainer *t);
/* Count a batch that was left out (a non-finite loss the caller chose to
 * skip) as a step without an update, so the LR schedule and the resume
 * position stay aligned with the data. */
DEFT_API void deft_trainer_skip_step(struct deft_trainer *t);
DEFT_API struct deft_runtime *deft_trainer_runtime(struct deft_trainer *t);
DEFT_API const struct deft_graph *deft_trainer_model_graph(const struct deft_trainer *t);
/* Logits of the last step ([batch, classes]), n = batch * classes. */
DEFT_API DEFT_NODISCARD enum deft_status deft_trainer_logits(struct deft_trainer *t, float *dst, size_t n);
/* Inference with the current weights (BN running statistics, no dropout):
 * n <= batch images in, n x classes logits out. The evaluation runtime is
 * built on first use and refreshed from the training weights when they moved. */
DEFT_API DEFT_NODISCARD enum deft_status deft_trainer_predict(struct deft_trainer *t, const float *images,
                                                             int n, float *logits);
/* L2 norm of the gradient reaching the classifier (its weight) in the last
 * step: ~0 means no gradient reaches the head (a dead ReLU before it). */
DEFT_API double deft_trainer_head_grad_norm(struct deft_trainer *t);
DEFT_API int deft_trainer_batch(const struct deft_trainer *t);
/* Set a metadata entry (JSON text) on the model graph saved in checkpoints
 * (class names, preprocessing ...). */
DEFT_API DEFT_NODISCARD enum deft_status deft_trainer_set_meta(struct deft_trainer *t, const char *key,
                                                              const char *json);
DEFT_API int deft_trainer_num_classes(const struct deft_trainer *t);
/* Load weights by name and shape from a pretrained file (.pth/.pt/.onnx/.h5/
 * .safetensors/deft model): tensors whose name and shape match are copied,
 * the rest keep their initialization; prints one line per tensor and a
 * count to out, warns when nothing matched. */
DEFT_API DEFT_NODISCARD enum deft_status deft_trainer_load_pretrained(struct deft_trainer *t, const char *path,
                                                                     FILE *out);
/* Atomic checkpoint: model graph + weights + optimizer state + step. */
DEFT_API DEFT_NODISCARD enum deft_status deft_trainer_save(struct deft_trainer *t, const char *path);
/* The same with the training loop's state (JSON: best score, history, ...)
 * stored as the "run_state" metadata entry; NULL stores none. */
DEFT_API DEFT_NODISCARD enum deft_status deft_trainer_save_run(struct deft_trainer *t, const char *path,
                                                              const char *run_state);
/* The "run_state" of the checkpoint last resumed from; NULL when it had none. */
DEFT_API const char *deft_trainer_resumed_run_state(const struct deft_trainer *t);
/* Data-parallel training (deft/dist.h, a world of more than one): each step
 * averages the gradients of all ranks before the optimizer (once per
 * optimizer step, after accumulation) and the reported loss is the ranks'
 * mean. deft_trainer_broadcast copies rank 0's weights, batch-norm
 * statistics, optimizer state and step to every rank (call it after
 * initialization, pretrained loading or resume); deft_trainer_broadcast_state
 * only the batch-norm statistics (before validation, as DDP's buffers).
 * Both are no-ops in a world of one. */
DEFT_API DEFT_NODISCARD enum deft_status deft_trainer_broadcast(struct deft_trainer *t);
DEFT_API DEFT_NODISCARD enum deft_status deft_trainer_broadcast_state(struct deft_trainer *t);
/* Restore a checkpoint written by deft_trainer_save for the same model. */
DEFT_API DEFT_NODISCARD enum deft_status deft_trainer_resume(struct deft_trainer *t, const char *path);

#ifdef __cplusplus
}
#endif
#endif
