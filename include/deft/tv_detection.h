/* deft/tv_detection.h - torchvision's detection models (0.14) imported and run
 * with torchvision's exact inference: the same transform, network, anchors,
 * box decoding and post-processing, so a torchvision checkpoint gives the
 * detections torchvision gives.
 *
 *     deft model import -i ssd.pth --arch ssd300_vgg16 -o ssd.safetensors
 *     deft model detect -m ssd.safetensors -i images/ -o out/ [--raw]
 *
 *     struct deft_tv_detector *d;
 *     deft_tv_detector_create(m->graph, m->file, &d);   // a loaded model
 *     struct deft_tv_det_result r;
 *     deft_tv_detector_run(d, &img, &r);                // img: RGB8, any size
 *     ... r.boxes[4*i..], r.scores[i], r.labels[i] (original image pixels)
 *     deft_tv_det_result_free(&r);
 *     deft_tv_detector_free(d);
 *
 * Architectures (torchvision's builders and state_dict names):
 *   ssd300_vgg16            VGG16 features (pool 3 in ceil mode), L2Norm x scale_weight
 *                           on conv4_3, pool5 3x3/1 + dilated fc6/fc7, four extra blocks;
 *                           SSDHead 3x3 convs; DefaultBoxGenerator; resize to 300x300;
 *                           softmax, score > 0.01, top 400 per class, batched NMS 0.45,
 *                           200 detections
 *   retinanet_resnet50_fpn  ResNet-50 (FrozenBatchNorm2d), FPN P3-P5 + P6/P7 from P5,
 *                           RetinaNetHead (4 conv+ReLU, 3x3 out); AnchorGenerator 32..512
 *                           x 3 scales x 3 ratios; GeneralizedRCNNTransform (min_size,
 *                           max_size, pad to /32); sigmoid, per level score > 0.05 and
 *                           top 1000, BoxCoder (1,1,1,1), batched NMS 0.5, 300 detections
 *   fasterrcnn_resnet50_fpn ResNet-50 FPN P2-P5 + LastLevelMaxPool; RPNHead; AnchorGenerator
 *                           32..512 x 3 ratios; per level top 1000, NMS 0.7, 1000 proposals;
 *                           MultiScaleRoIAlign (7x7, sampling 2, aligned=False), TwoMLPHead,
 *                           FastRCNNPredictor; BoxCoder (10,10,5,5), softmax, score > 0.05,
 *                           batched NMS 0.5, 100 detections. raw_* hold the RPN's before-NMS
 *                           output (every anchor's proposal, its objectness probability, n_cls 1)
 *   ssdlite320_mobilenet_v3_large  mobilenet_v3_large (BN eps 1e-3, reduced_tail as the
 *                           checkpoint's shapes say) split at C4's expansion, four extra blocks
 *                           (1x1, depthwise 3x3/2, 1x1, BN + ReLU6), SSDLiteHead (depthwise 3x3 +
 *                           BN + ReLU6, 1x1); DefaultBoxGenerator ratios 2, 3, scales 0.2..0.95;
 *                           resize to 320x320, mean = std = 0.5; softmax, score > 0.001, top 300
 *                           per class, batched NMS 0.55, 300 detections
 *   fasterrcnn_mobilenet_v3_large_fpn  mobilenet_v3_large (BN eps 1e-5) with the FPN on
 *                           features[13] and [16] (both 1/32) + LastLevelMaxPool; anchors
 *                           32..512 x 3 ratios on every level (15 per cell); RPN score >= 0.05;
 *                           RoIAlign on FPN map "0" only (LevelMapper(5, 5)); the rest as
 *                           fasterrcnn_resnet50_fpn (min_size 800, max_size 1333 by default)
 *
 * The graph computes the network up to the head outputs (roles "tv_cls_<l>",
 * "tv_reg_<l>" per level); what torchvision does between or after its layers
 * on tensors (SSD's L2 normalisation, anchors, decoding, NMS) runs on the host.
 * ssd300_vgg16's graph runs in two ranges: the L2 norm of conv4_3 (role
 * "tv_l2_src") is fed to the input with role "tv_l2_in". fasterrcnn's runs in three:
 * up to node "roi_heads.box_roi_pool.l0" (the RPN), the proposals (input "tv_rois",
 * 1000 x (0, x1, y1, x2, y2)) pooled on every level ("tv_roi_<l>"), and from node
 * "roi_heads.box_head.flatten" the box head on input "tv_box_feat" (each proposal's
 * own level, chosen on the host) to "tv_box_cls", "tv_box_reg". The detector builds
 * the graph again for each new input size (FPN's upsampling sizes are static)
 * and copies the weights into it by name.
 */
#ifndef DEFT_TV_DETECTION_H
#define DEFT_TV_DETECTION_H

#include "deft/core.h"
#include "deft/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

struct deft_image;
struct deft_safetensors;

struct deft_tv_det_opts {
    const char *arch;        /* one of deft_tv_det_arch_names() */
    int num_classes;         /* with background, as torchvision counts (91 for COCO) */
    /* GeneralizedRCNNTransform's min_size / max_size (retinanet, faster rcnn):
     * 0 = torchvision's 800 / 1333 */
    int min_size, max_size;
    int height, width;       /* the (padded) network input the graph is built for; 0 = a default */
    bool reduced_tail;       /* mobilenet_v3 detectors: torchvision's reduced_tail (C4 on at half
                              * width; the importer reads it from the checkpoint's shapes) */
};

/* NULL-terminated names. */
DEFT_API const char *const *deft_tv_det_arch_names(void);
DEFT_API bool deft_tv_det_known(const char *arch);
/* Build arch's inference graph with torchvision's parameter names and metadata
 * "arch", "num_classes", "tv_det" (the transform sizes). */
DEFT_API DEFT_NODISCARD enum deft_status deft_tv_det_build(const struct deft_tv_det_opts *o,
                                                          struct deft_graph **out);
/* The class count (with background) of arch's tensors in st, 0 when not found. */
DEFT_API int deft_tv_det_num_classes(const char *arch, const struct deft_safetensors *st);

/* A torchvision state dict into arch's graph (every tensor by name, shapes
 * checked): the graph and its f32 weights, as deft_model_import_weights. */
struct deft_model;
DEFT_API DEFT_NODISCARD enum deft_status deft_tv_det_import(const struct deft_safetensors *st, const char *name,
                                                           const struct deft_tv_det_opts *o,
                                                           struct deft_model **out);

struct deft_tv_det_result {
    /* before NMS: every anchor's decoded, clipped box (network-input pixels, before
     * the resize back) and its class scores (SSD softmax incl. background,
     * RetinaNet sigmoid; Faster R-CNN: the RPN's proposals and objectness) */
    int n_raw, n_cls;
    float *raw_boxes, *raw_scores;
    /* after NMS, in the original image's pixels */
    int n_det;
    float *boxes, *scores;
    int *labels;
};
DEFT_API void deft_tv_det_result_free(struct deft_tv_det_result *r);

struct deft_tv_detector;
/* g and w (the weights by name) are borrowed and must outlive the detector. */
DEFT_API DEFT_NODISCARD enum deft_status deft_tv_detector_create(const struct deft_graph *g,
                                                                const struct deft_safetensors *w,
                                                                struct deft_tv_detector **out);
DEFT_API DEFT_NODISCARD enum deft_status deft_tv_detector_run(struct deft_tv_detector *d,
                                                             const struct deft_image *img,
                                                             struct deft_tv_det_result *res);
DEFT_API void deft_tv_detector_free(struct deft_tv_detector *d);

#ifdef __cplusplus
}
#endif
#endif
