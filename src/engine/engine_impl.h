/* engine_impl.h - engine module internals (not installed). */
#ifndef DEFT_ENGINE_IMPL_H
#define DEFT_ENGINE_IMPL_H

#include "deft/engine.h"

/* The values a user means by "the outputs" (the logits role, else every
 * OUTPUT-flagged value, else the last node's) into out[max]: their count,
 * 0 when none, more than max when there are too many. "The input": the
 * image role, else the first INPUT value; -1 when none. */
int deft_engine_pick_outputs(const struct deft_graph *g, int *out, int max);
int deft_engine_pick_input(const struct deft_graph *g);

/* ---- int8 activation scales (engine_int8.c): scale[v] per value of g, 0 = none ---- */
struct cJSON;
struct deft_model;
/* Every value a convolution quantizes has a scale, else an error naming it and `from`. */
enum deft_status engine_scales_check(const struct deft_graph *g, const float *scale, const char *from);
enum deft_status engine_scales_from_cache(const struct deft_graph *g, const char *path, float *scale);
/* Calibrate m on o->cal_image_dir (the graph's input shape is kept). */
enum deft_status engine_scales_calibrate(struct deft_model *m, const char *model_path,
                                         const struct deft_engine_convert_opts *o, float *scale);
/* From ranges per value (amax, 0 none: a quantization-aware model's learned ones). */
enum deft_status engine_scales_from_amax(const struct deft_graph *g, const float *amax, const char *from,
                                         float *scale);
/* From an imported QDQ model's "int8_act_scales" metadata (onnx_qdq.c). */
enum deft_status engine_scales_from_qdq(const struct deft_graph *g, const char *json, const char *from,
                                        float *scale);
struct cJSON *engine_scales_json(const struct deft_graph *g, const float *scale);
/* The entry's "act_scales" object checked into a new array (deft_free). */
enum deft_status engine_scales_read(const struct deft_graph *g, const struct cJSON *o, const char *path,
                                    float **scale);

/* The name the engine was loaded under (messages). */
const char *deft_engine_path(const struct deft_engine *e);

#endif
