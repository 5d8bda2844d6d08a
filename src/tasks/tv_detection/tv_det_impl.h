/* tv_det_impl.h (internal) - the host side of torchvision's detectors:
 * what the runner (tv_det_run.c) hands the per-architecture post-processing
 * (tv_ssd_post.c, tv_retinanet_post.c, tv_fasterrcnn_post.c). */
#ifndef DEFT_TV_DET_TASK_IMPL_H
#define DEFT_TV_DET_TASK_IMPL_H

#include "deft/tv_detection.h"

#define TV_MAX_LEVELS 8

/* The heads' outputs flattened as torchvision's heads flatten them: per level
 * (N, A*K, H, W) -> (H, W, A, K), levels concatenated. */
struct tv_heads {
    int n_levels;
    int fh[TV_MAX_LEVELS], fw[TV_MAX_LEVELS]; /* feature map sizes */
    int start[TV_MAX_LEVELS + 1];             /* first anchor of each level */
    int n_cls;                                /* K of the classification head */
    float *cls;                               /* [start[n_levels], n_cls] */
    float *reg;                               /* [start[n_levels], 4] */
};

struct tv_frame {
    int in_h, in_w;     /* network input tensor (padded) */
    int img_h, img_w;   /* the resized image inside it (clipping) */
    int orig_h, orig_w; /* the image as given (boxes mapped back to it) */
};

/* Fill res (raw and final detections) from the heads. */
enum deft_status deft_tv_ssd_post(const struct tv_heads *h, const struct tv_frame *f,
                                  struct deft_tv_det_result *res);
enum deft_status deft_tv_ssdlite_post(const struct tv_heads *h, const struct tv_frame *f,
                                      struct deft_tv_det_result *res);
enum deft_status deft_tv_retinanet_post(const struct tv_heads *h, const struct tv_frame *f,
                                        struct deft_tv_det_result *res);
/* Faster R-CNN: h holds the RPN's outputs (range 1 has run); runs the RoI
 * ranges of g on rt (tv_fasterrcnn.c). */
struct deft_runtime;
struct deft_tv_frcnn_cfg {
    bool all_sizes;         /* anchors 32..512 on every level (mobilenet) or 32 << level (resnet) */
    float rpn_score_thresh; /* 0 (resnet50_fpn), 0.05 (mobilenet_v3_large_fpn) */
    int n_roi, roi_k_min;   /* MultiScaleRoIAlign levels (graph roles tv_roi_<l>) and the first one's k */
};
enum deft_status deft_tv_fasterrcnn_post(const struct deft_tv_frcnn_cfg *c, struct deft_runtime *rt, const struct deft_graph *g, const struct tv_heads *h,
                                         const struct tv_frame *f, struct deft_tv_det_result *res);

/* torchvision's transform.postprocess (resize_boxes): boxes from the resized image back to the original. */
void deft_tv_resize_boxes(float *boxes, int n, const struct tv_frame *f);
/* box_ops.clip_boxes_to_image to the resized image. */
void deft_tv_clip_boxes(float *boxes, int n, int h, int w);
/* Tensor.topk(k) order of the n scores at idx (in place): descending, ties by lower index. */
void deft_tv_sort_desc(const float *score, int *idx, int n);
/* batched NMS and the first `max_det` kept into res (boxes still to be resized). */
enum deft_status deft_tv_nms_into(const float *boxes, const float *scores, const int *labels, int n, float iou,
                                  int max_det, const struct tv_frame *f, struct deft_tv_det_result *res);

#endif
