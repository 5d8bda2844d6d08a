/* ssd_task.h (internal) - the ssd actions (src/tasks/ssd): the spec resolved
 * into maps, priors, loss settings and transforms; a saved model opened for
 * evaluation and inference; detections of a batch in image pixels. */
#ifndef DEFT_TASKS_SSD_TASK_H
#define DEFT_TASKS_SSD_TASK_H

#include <stdio.h>
#include "deft/det_data.h"
#include "deft/det_loader.h"
#include "deft/io.h"
#include "deft/runtime.h"
#include "deft/ssd.h"
#include "deft/ssd_model.h"
#include "deft/ssd_spec.h"
#include "deft/retinanet_model.h"
#include "deft/task.h"
#include "tasks/common/det_export.h"
#include "tasks/common/det_results.h"

#define DEFT_SSD_NOT_FINISHED "not finished yet (issue 20)"

/* What decoding needs: the maps (SSD six, RetinaNet five) and their priors for one input size. */
struct ssd_geom {
    int net_w, net_h;
    int n_classes;                 /* with background */
    int n_maps;
    bool sigmoid;                  /* RetinaNet: sigmoid class scores (SSD: softmax) */
    struct deft_ssd_map maps[DEFT_SSD_LAYERS];
    float *priors;                 /* 8 floats each */
    long n_priors;
};
void ssd_geom_free(struct ssd_geom *g);

struct ssd_setup {
    struct deft_ssd_config cfg;
    bool cfg_loaded;
    struct ssd_geom geom;
    struct deft_ssd_loss_config loss;
    struct deft_retinanet_loss_config focal; /* retina */
    bool retina;                             /* a retinanet spec (the retinanet network) */
    struct deft_preprocess pre;
};
/* Load the spec (--set, --seed), refuse DSSD, resolve maps, priors, loss, preprocessing;
 * retina: TAO's retinanet spec. */
enum deft_status ssd_setup_load(struct ssd_setup *s, const struct deft_task_args *a, bool retina);
/* The network's name for messages, run folders and metadata. */
static inline const char *ssd_net_name(bool retina) { return retina ? "retinanet" : "ssd"; }
void ssd_setup_free(struct ssd_setup *s);
void ssd_transform(const struct ssd_setup *s, bool train, struct deft_det_transform *t);
/* Graph metadata "ssd": input, priors' layer parameters, preprocessing. */
char *ssd_meta_json(const struct ssd_setup *s);
/* The geometry and preprocessing back from a model's "ssd" metadata (priors recomputed). */
enum deft_status ssd_geom_from_meta(const char *json, const char *path, int n_classes, struct ssd_geom *g,
                                    struct deft_preprocess *pre);

struct ssd_nms {
    float conf, iou;
    int top_k;
};
/* Detections of image b of a batch, in the image's pixels (*boxes deft_malloc'ed). */
enum deft_status ssd_detect_image(const struct ssd_geom *g, const float *const *outs, int b,
                                  const struct deft_letterbox *lb, const struct ssd_nms *nms, struct deft_box **boxes,
                                  int *n);

/* A saved model ready to run. */
struct ssd_model {
    struct deft_model *m;
    struct deft_runtime *rt;
    struct ssd_geom geom;
    struct deft_preprocess pre;
    char **classes;                /* object classes (no background) */
    int n_classes, batch, input;
    int out[2 * DEFT_SSD_LAYERS];
    float *outs[2 * DEFT_SSD_LAYERS];
};
/* The model, its geometry and outputs, without a runtime (export). */
enum deft_status ssd_model_read(struct ssd_model *sm, const char *path, int batch);
enum deft_status ssd_model_open(struct ssd_model *sm, const char *path, int batch, const struct deft_task_args *a);
enum deft_status ssd_model_run(struct ssd_model *sm, const float *images, int n);
/* DEFT_ERR_INVALID_ARG when the model is not the network the command names. */
enum deft_status ssd_model_check_net(const struct ssd_model *sm, const char *path, bool retina);
void ssd_model_close(struct ssd_model *sm);

/* The actions; retina: the same for TAO's retinanet (src/tasks/retinanet). */
enum deft_status ssd_train_net(const struct deft_task_args *a, bool retina);
enum deft_status ssd_validate_net(const struct deft_task_args *a, bool retina, double *map);
enum deft_status ssd_inference_net(const struct deft_task_args *a, bool retina);
enum deft_status ssd_export_net(const struct deft_task_args *a, bool retina);
enum deft_status ssd_dry_run_net(const struct deft_task_args *a, bool retina);
enum deft_status ssd_train(const struct deft_task_args *a);
enum deft_status ssd_evaluate(const struct deft_task_args *a);
enum deft_status ssd_validate(const struct deft_task_args *a, double *map);
enum deft_status ssd_inference(const struct deft_task_args *a);
/* ---- export (ssd_export*.c) ---- */
/* The decode and NMS after the twelve head outputs, as ONNX nodes. */
struct ssd_tail_opts {
    const struct ssd_geom *geom;
    const char *const *out_names; /* conf_0..5, loc_0..5 in the ONNX graph */
    enum det_nms_mode mode;
    struct ssd_nms nms;
    int score_bits; /* trt: scoreBits, the spec's infer_nms_score_bits */
};
/* *out is freed with deft_onnx_tail_free. */
enum deft_status ssd_export_tail(const struct ssd_tail_opts *o, struct deft_onnx_tail **out);
/* The plugin's topK (boxes per class entering NMS): TAO's 2 * top_k, at most 4096. */
int ssd_trt_topk(int top_k);
enum deft_status ssd_export(const struct deft_task_args *a);
/* --dry_run of train (ssd_setup.c). */
enum deft_status ssd_dry_run(const struct deft_task_args *a);
/* The evaluate / inference / export flags and loss terms that ssd and retinanet share (ssd_tasks.c). */
extern const struct deft_task_flag ssd_eval_flags[], ssd_infer_flags[], ssd_export_flags[];
extern const char *const ssd_loss_terms[2];
#endif
