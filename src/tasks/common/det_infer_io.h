/* det_infer_io.h (internal) - detection inference I/O (det_infer_io.c). */
#ifndef DEFT_TASKS_COMMON_DET_INFER_IO_H
#define DEFT_TASKS_COMMON_DET_INFER_IO_H
#include <cjson/cJSON.h>
#include "deft/det_data.h"
#include "deft/det_loader.h"
#include "deft/detection.h"

/* The file name of path without directory and extension, into buf. */
const char *det_base_stem(const char *path, char *buf, size_t n);
/* --dump_input: the network input as dir/<stem>.npy [1,3,h,w] and its letterbox as dir/<stem>.json. */
enum deft_status det_dump_input(const char *dir, const char *image, const float *x, int h, int w,
                                const struct deft_letterbox *lb);
/* The images of a directory (sorted) or one image, as a dataset without boxes. */
enum deft_status det_images_dataset(const char *in, struct deft_det_dataset *ds);
/* The image with its boxes drawn, as a PNG at dst. */
enum deft_status det_write_annotated(const char *img_path, const char *dst, const struct deft_box *boxes, int n,
                                     char *const *classes, int n_classes);
/* {"image": ..., "detections": [{"class", "score", "bbox"}]} appended to arr. */
void det_json_dets(cJSON *arr, const char *image, const struct deft_box *b, int n, char *const *classes,
                   int n_classes);
#endif
