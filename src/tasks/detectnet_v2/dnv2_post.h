/* dnv2_post.h - DetectNet_v2's ground truth, cost and post-processing
 * (../shared/reference/tao.md §3.2-3.4, detection.md §4), on plain structs
 * that a spec (or a test) fills:
 *
 *   dnv2_rasterize    GT boxes of one image -> cov, cov_norm, bbox, loss mask
 *   dnv2_cost         the two outputs vs the targets -> loss and gradients;
 *                     dnv2_cost_accumulate / dnv2_cost_epoch_end: auto-weighting
 *   dnv2_cluster      cov + bbox of one image -> detections (DBSCAN or NMS)
 *
 * Layout (TAO's, channels first): for K classes on a gh x gw grid, cov is
 * [K, gh, gw] and bbox is [4K, gh, gw] with class k's L, T, R, B at 4k..4k+3.
 * Cell (i, j) (column i, row j) has its centre at (i*stride_x + offset,
 * j*stride_y + offset) input pixels, stride = in / grid per axis; the bbox
 * channels are the distances from that centre to the box edges over scale.
 */
#ifndef DEFT_DNV2_POST_H
#define DEFT_DNV2_POST_H

#include <stdbool.h>
#include "deft/core.h"
#include "deft/detection.h"

/* The network's input and output grid and the bbox objective's coding. */
struct dnv2_grid {
    int in_w, in_h; /* input, pixels */
    int gw, gh;     /* output grid */
    float scale;    /* model_config.objective_set.bbox.scale (spec 35) */
    float offset;   /* ...bbox.offset (spec 0.5) */
};

/* Checks sizes > 0 and scale > 0, all finite. */
enum deft_status dnv2_grid_check(const struct dnv2_grid *g);

/* ---- rasterizer (dnv2_raster.c) ---------------------------------------- */

/* bbox_rasterizer_config.target_class_config[class] */
struct dnv2_raster_class {
    float cov_center_x, cov_center_y; /* coverage centre in the box, 0..1 (0.5) */
    float cov_radius_x, cov_radius_y; /* coverage radii over the centre-to-edge distance */
    float bbox_min_radius;            /* least coverage radius, grid cells */
};

struct dnv2_raster_config {
    int n_classes;
    const struct dnv2_raster_class *cls; /* n_classes entries */
    float deadzone_radius;               /* bbox_rasterizer_config.deadzone_radius */
    /* Loss mask (TAO's loss_mask_label_filter): cells inside a mask box take
     * mask_multiplier (0: don't care), others 1; with preserve_ground_truth a
     * cell with coverage > 0 keeps 1. */
    float mask_multiplier;
    bool preserve_ground_truth;
};

/* Per-image targets, caller-allocated: cov, cov_norm, mask [K, gh, gw];
 * bbox [4K, gh, gw]. For a batch the cost takes N of these back to back. */
struct dnv2_targets {
    float *cov, *cov_norm, *bbox, *mask;
};

/* Rasterizes one image. boxes: GT in input pixels, cls in [0, K) (a box
 * with x2 <= x1 or y2 <= y1 still draws its 0.1-cell minimum ellipse, as
 * TAO's). mask_boxes (may be NULL): regions whose loss mask becomes
 * mask_multiplier, for class cls, or every class when cls < 0; a cell is
 * inside when its centre (i + 0.5, j + 0.5) in grid units is inside
 * [x1, x2) x [y1, y2) divided by the stride.
 * Boxes are drawn per class in ymax-ascending order (stable: equal ymax
 * keep input order; TAO's std::sort leaves that order unspecified). */
DEFT_NODISCARD enum deft_status dnv2_rasterize(const struct dnv2_grid *g,
                                               const struct dnv2_raster_config *c,
                                               const struct deft_box *boxes, int n_boxes,
                                               const struct deft_box *mask_boxes, int n_mask,
                                               const struct dnv2_targets *out);

/* ---- costs (dnv2_cost.c) ----------------------------------------------- */

enum { DNV2_OBJ_COV = 0, DNV2_OBJ_BBOX = 1, DNV2_N_OBJ = 2 };

/* cost_function_config.target_classes[class] */
struct dnv2_cost_class {
    float class_weight;
    float coverage_foreground_weight; /* BCE weight where target > 0.5, 1 - it elsewhere */
    float initial_weight[DNV2_N_OBJ]; /* objectives {cov, bbox}.initial_weight */
    float weight_target[DNV2_N_OBJ];  /* objectives {cov, bbox}.weight_target */
};

struct dnv2_cost_config {
    int n_classes;
    const struct dnv2_cost_class *cls;
    bool enable_autoweighting;
    float min_objective_weight, max_objective_weight;
    /* What pred_cov holds. false (TAO): the sigmoid output p, and grad_cov is
     * d loss / d p (the model's sigmoid backpropagates it). true: logits z,
     * p = sigmoid(z) is taken here and grad_cov is d loss / d z. */
    bool cov_is_logits;
};

/* The weights in force: class weights normalised to sum 1, objective
 * weights (initial_weight / their sum per class, then auto-weighted), and the
 * epoch's sums of per-batch mean costs. */
struct dnv2_cost_state {
    int n_classes;
    float *class_w;  /* [K] */
    float *obj_w;    /* [K][DNV2_N_OBJ] */
    double *cost_sum; /* [K][DNV2_N_OBJ] */
};

DEFT_NODISCARD enum deft_status dnv2_cost_state_init(struct dnv2_cost_state *s,
                                                     const struct dnv2_cost_config *c);
void dnv2_cost_state_free(struct dnv2_cost_state *s);

/* One batch's costs: total = sum_k class_w[k] * sum_o obj_w[k][o] * mean[k][o]. */
struct dnv2_cost_terms {
    double total;
    double *mean; /* caller's [K][DNV2_N_OBJ] or NULL: each objective's mean cost */
};

/* Loss of a batch of n images. pred_cov [n, K, gh, gw], pred_bbox
 * [n, 4K, gh, gw]; t: targets of the n images back to back (t->mask may be
 * NULL: all ones). grad_cov / grad_bbox (same shapes, either may be NULL):
 * d total / d input, overwritten. The cov cost is TAO's weighted BCE with
 * 1e-5 inside both logs, the bbox cost |pred - target| * cov_norm; each is
 * times the loss mask and averaged over all its elements (n*gh*gw for cov,
 * n*4*gh*gw for bbox). */
DEFT_NODISCARD enum deft_status dnv2_cost(const struct dnv2_cost_state *s,
                                          const struct dnv2_cost_config *c, int n, int gh,
                                          int gw, const float *pred_cov, const float *pred_bbox,
                                          const struct dnv2_targets *t, float *grad_cov,
                                          float *grad_bbox, struct dnv2_cost_terms *terms);

/* Adds a batch's mean costs ([K][DNV2_N_OBJ]) to the epoch sums. */
void dnv2_cost_accumulate(struct dnv2_cost_state *s, const double *mean);
/* Epoch end: with auto-weighting, obj_w[k][o] = weight_target / cost_sum
 * (0 where the sum is 0), normalised to sum 1 per class and clamped to
 * [min, max]; a class whose weights sum to 0 keeps its old ones. The sums
 * are reset either way. */
void dnv2_cost_epoch_end(struct dnv2_cost_state *s, const struct dnv2_cost_config *c);

/* ---- clustering (dnv2_cluster.c) --------------------------------------- */

enum dnv2_cluster_algo { DNV2_CLUSTER_DBSCAN = 0, DNV2_CLUSTER_NMS = 1, DNV2_CLUSTER_HYBRID = 2 };

/* postprocessing_config.target_class_config[class].clustering_config */
struct dnv2_cluster_class {
    enum dnv2_cluster_algo algo;
    float coverage_threshold;          /* candidates: cells with cov > this */
    float minimum_bounding_box_height; /* DBSCAN: drop clusters with height <= this */
    float dbscan_eps;                  /* neighbours: 1 - IoU <= eps */
    float dbscan_min_samples;          /* core: coverage sum of neighbours >= max(int(it), 1) */
    float dbscan_confidence_threshold; /* drop clusters whose coverage sum is below */
    float nms_iou_threshold;           /* NMS: suppress IoU (+1 pixel) > this */
    float nms_confidence_threshold;    /* NMS: keep coverage > this */
};

/* Candidates per class are capped: the top max_candidates cells by
 * coverage (ties: grid order), so the pairwise neighbour bitmap stays
 * max_candidates^2 / 8 bytes (2 MiB at the default). */
#define DNV2_MAX_CANDIDATES 4096

struct dnv2_cluster_config {
    int n_classes;
    const struct dnv2_cluster_class *cls;
    int max_candidates; /* 0: DNV2_MAX_CANDIDATES */
};

/* What a cluster was made of (TAO's Detection fields beside the box). */
struct dnv2_cluster_stats {
    float cov_mean;      /* mean coverage of the members */
    float bbox_variance; /* sqrt(mean_c sum_i w_i (b_ic - mean_c)^2 / max(area, 1e-3)) */
    int n_raw;           /* members; NMS: 1 */
};

/* Clusters one image: cov [K, gh, gw], bbox [4K, gh, gw]. *out gets the
 * detections (deft_free), class by class, each class by confidence
 * descending (stable); score = coverage sum (aggregate_cov) for DBSCAN, the
 * cell's coverage for NMS. stats (may be NULL) gets a parallel array
 * (deft_free). HYBRID is refused (DEFT_ERR_UNSUPPORTED). */
DEFT_NODISCARD enum deft_status dnv2_cluster(const struct dnv2_grid *g,
                                             const struct dnv2_cluster_config *c,
                                             const float *cov, const float *bbox,
                                             struct deft_box **out,
                                             struct dnv2_cluster_stats **stats, int *n_out);

/* The box of cell (i, j) from its L, T, R, B (input pixels, clipped to the
 * image and to x2 >= x1, y2 >= y1; TAO's predictions_to_absolute). */
void dnv2_decode_cell(const struct dnv2_grid *g, int i, int j, float l, float t, float r,
                      float b, double box[4]);

/* DBSCAN on n boxes ([n][4], x1 y1 x2 y2) with distance 1 - IoU (IoU =
 * inter / (union + 1e-5), TAO's), weights w: labels[i] = cluster id
 * (0, 1, ... in sklearn's order) or -1 (noise). *n_clusters may be NULL. */
DEFT_NODISCARD enum deft_status dnv2_dbscan(const double *boxes, const float *w, int n,
                                            double eps, double min_samples, int *labels,
                                            int *n_clusters);

#endif
