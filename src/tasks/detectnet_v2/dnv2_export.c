/* dnv2_export.c - `deft detectnet_v2 export`: a trained DetectNet_v2 as the
 * files TensorRT, DeepStream and onnxruntime take (tao.md §6):
 *   -o OUT.onnx   TAO's names: input input_1 (NCHW, RGB 0..1, letterboxed as
 *                 deft's evaluation, recorded in metadata_props), outputs
 *                 output_cov/Sigmoid [N,K,H/16,W/16] and output_bbox/BiasAdd
 *                 [N,4K,H/16,W/16]; the clustering stays outside the model
 *                 (DeepStream's DetectNet_v2 parser and its cluster-mode)
 *   cal.bin       --data_type int8: TensorRT's calibration cache, every
 *                 activation of the network
 *   labels.txt, nvinfer_config.txt   --gen_ds_config (dnv2_export_ds.c)
 * Checks and calibration finish before the first file is written; a later
 * failure removes what was written. */
#include <stdio.h>
#include <string.h>
#include "deft/graph.h"
#include "deft/quant.h"
#include "tasks/common/calib.h"
#include "tasks/common/det_export.h"
#include "tasks/common/export_files.h"
#include "tasks/detectnet_v2/dnv2_export.h"

/* Calibration images: --cal_image_dir, else the spec's training images. */
static enum deft_status cal_paths(const struct det_export_opts *o, const struct dnv2_setup *d, char ***paths,
                                  int *n) {
    *paths = NULL;
    *n = 0;
    if (o->cal_image_dir) return task_calib_list_images(o->cal_image_dir, paths, n);
    if (!d->cfg_loaded)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "--data_type int8 needs calibration images: --cal_image_dir DIR, "
                              "or -e SPEC (its training images)");
    struct deft_det_dataset ds;
    enum deft_status s = dnv2_read_split(d, false, &ds);
    return s ? s : det_export_take_paths(&ds, paths, n);
}

/* The activation ranges over --batches x --batch_size images letterboxed as evaluation does. */
static enum deft_status calibrate(const struct det_export_opts *o, const struct dnv2_setup *d,
                                  struct dnv2_model *dm, const struct deft_task_args *a, float **amax) {
    char **paths = NULL;
    int n_paths = 0, need = o->batches * o->batch_size;
    float *x = NULL;
    enum deft_status s = cal_paths(o, d, &paths, &n_paths);
    if (!s && n_paths < need)
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "calibration needs %d images (--batches %d x --batch_size %d) but "
                           "only %d were found", need, o->batches, o->batch_size, n_paths);
    if (!s && !(x = deft_malloc((size_t)need * 3 * (size_t)dm->net_h * (size_t)dm->net_w * sizeof *x)))
        s = deft_set_error(DEFT_ERR_NOMEM, "out of memory (calibration images)");
    if (!s) {
        struct deft_det_loader_opts lo;
        dnv2_eval_loader_opts(dm, a->threads, &lo);
        lo.batch_size = o->batch_size;
        struct task_calib_opts co = {.batches = o->batches, .batch_size = o->batch_size,
                                     .calibrator = o->calibrator, .percentile = o->percentile,
                                     .out = a->out ? a->out : stdout};
        uint64_t seed = a->seed_set ? (uint64_t)a->seed : 0;
        if (!(s = det_export_cal_images(&lo, paths, n_paths, need, seed, dm->net_w, dm->net_h, x)))
            s = task_calib_ranges(dm->m, dm->input, dm->net_h, dm->net_w, x, &co, amax);
    }
    deft_free(x);
    deft_string_list_free(paths, n_paths);
    return s;
}

static enum deft_status check_model(const struct dnv2_model *dm, const char *path, const struct dnv2_setup *d) {
    if (deft_qat_enabled(dm->m->graph))
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "%s: exporting a quantization-aware DetectNet_v2 is not finished "
                              "yet (issue 20): export the float model with --data_type int8", path);
    if (!d->cfg_loaded) return DEFT_OK;
    if (d->n_classes != dm->n_classes)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s has %d classes but the spec %s has %d", path, dm->n_classes,
                              d->cfg.source_path, d->n_classes);
    for (int k = 0; k < d->n_classes; k++)
        if (strcasecmp(dm->classes[k], d->cfg.class_names[k]))
            return deft_set_error(DEFT_ERR_INVALID_ARG, "class %d is '%s' in %s but '%s' in the spec", k,
                                  dm->classes[k], path, d->cfg.class_names[k]);
    return DEFT_OK;
}

static char *outputs_doc(const struct dnv2_model *dm) {
    char buf[768];
    snprintf(buf, sizeof buf,
             "output_cov/Sigmoid float [N,%d,%d,%d]: coverage per class and grid cell (stride 16); "
             "output_bbox/BiasAdd float [N,%d,%d,%d]: per class 4 channels x1,y1,x2,y2 as TAO codes them: "
             "x1 = (col*16 + offset - v0*scale), y1 = (row*16 + offset - v1*scale), x2 = (col*16 + offset + "
             "v2*scale), y2 = (row*16 + offset + v3*scale) in input pixels, scale %g, offset %g; clustering "
             "(DBSCAN / NMS) is not in the model",
             dm->n_classes, dm->grid.gh, dm->grid.gw, 4 * dm->n_classes, dm->grid.gh, dm->grid.gw,
             (double)dm->grid.scale, (double)dm->grid.offset);
    return deft_strdup(buf);
}

static enum deft_status write_meta(const struct dnv2_model *dm, struct det_export_meta *mt) {
    struct deft_graph *g = dm->m->graph;
    static const char *const graph_keys[] = {"arch", "backbone", "class_names", "num_classes", "detectnet_v2"};
    for (int i = 0; i < 5; i++) det_export_meta_graph(mt, g, graph_keys[i]);
    enum deft_status s;
    if ((s = det_export_meta_own(mt, "preprocess", det_export_preprocess_json(&dm->pre))) ||
        (s = det_export_meta_own(mt, "letterbox", det_export_letterbox_json(dm->net_w, dm->net_h))))
        return s;
    return det_export_meta_own(mt, "outputs", outputs_doc(dm));
}

/* cal.bin (and calib.json) next to the ONNX, or where --cal_cache_file says. */
static enum deft_status write_cal(const struct det_export_opts *o, const char *cal_path,
                                  const struct deft_onnx_export_info *info, const float *amax, struct export_files *w,
                                  FILE *out) {
    enum deft_status s = task_calib_write_cache(cal_path, o->trt_version, o->calibrator, info, amax);
    if (s) return s;
    export_files_add(w, cal_path);
    fprintf(out, "wrote %s: %s calibration over %d x %d images, %d tensors\n", cal_path,
            deft_calibrator_name(o->calibrator), o->batches, o->batch_size, info->n);
    if (!o->cal_json) return DEFT_OK;
    if ((s = task_calib_write_json(o->cal_json, info, amax))) return s;
    export_files_add(w, o->cal_json);
    return DEFT_OK;
}

enum deft_status dnv2_export(const struct deft_task_args *a) {
    FILE *out = a->out ? a->out : stdout;
    struct det_export_opts o;
    struct dnv2_setup d = {0};
    struct dnv2_model dm = {0};
    struct deft_onnx_export_info info = {0};
    struct export_files w = {0};
    struct det_export_meta mt = {0};
    float *amax = NULL;
    enum deft_status s = det_export_parse_flags(a, "-", "DetectNet_v2", &o);
    if (s) return s;
    if (!a->model || !a->output_file)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "export needs -m MODEL and -o OUT.onnx");
    if (o.gen_ds && !a->spec)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "--gen_ds_config takes the clustering from the spec's "
                              "postprocessing_config: give -e SPEC");
    if (a->threads > 0) deft_set_threads(a->threads);
    if ((a->spec && (s = dnv2_setup_load(&d, a))) || (s = dnv2_model_read(&dm, a->model, 1)) ||
        (s = check_model(&dm, a->model, &d)))
        goto done;
    if (o.int8 && (s = calibrate(&o, &d, &dm, a, &amax))) goto done; /* before anything is written */
    struct deft_graph *g = dm.m->graph;
    struct deft_shape in = deft_shape4(o.static_batch > 0 ? o.static_batch : 1, 3, dm.net_h, dm.net_w);
    if ((s = deft_graph_reshape_input(g, dm.input, &in)) || (s = write_meta(&dm, &mt))) goto done;
    struct deft_onnx_export_opts eo = {.opset = o.opset, .dynamic_batch = o.static_batch < 0, .input_name = "input_1",
                                       .meta = mt.kv, .n_meta = mt.n};
    if ((s = deft_mkdirs_for(a->output_file)) || (s = deft_onnx_export(a->output_file, g, dm.m->file, &eo, &info)))
        goto done;
    export_files_add(&w, a->output_file);
    fprintf(out, "wrote %s: detectnet_v2, input input_1 [%s,3,%d,%d], outputs output_cov/Sigmoid [%d,%d,%d] and "
            "output_bbox/BiasAdd [%d,%d,%d] (opset %d)\n", a->output_file, o.static_batch > 0 ? "" : "batch",
            dm.net_h, dm.net_w, dm.n_classes, dm.grid.gh, dm.grid.gw, 4 * dm.n_classes, dm.grid.gh, dm.grid.gw,
            o.opset);
    char dir[4200], cal_path[4200];
    export_dir_of(a->output_file, dir, sizeof dir);
    snprintf(cal_path, sizeof cal_path, "%s%s", o.cal_cache ? "" : dir, o.cal_cache ? o.cal_cache : "cal.bin");
    if (o.int8 && (s = write_cal(&o, cal_path, &info, amax, &w, out))) goto done;
    if (o.fp16)
        fprintf(out, "note: fp16 is chosen when TensorRT builds the engine (DeepStream network-mode=2); the ONNX "
                "stays fp32\n");
    if (o.gen_ds) {
        struct dnv2_ds_opts dso = {.dir = dir, .onnx = export_base_of(a->output_file),
                                   .cal = o.cal_cache ? cal_path : "cal.bin", .int8 = o.int8, .fp16 = o.fp16};
        if ((s = dnv2_write_ds(&dso, &dm, &d, &w))) goto done;
        fprintf(out, "wrote %slabels.txt and %snvinfer_config.txt\n", dir, dir);
    }
done:
    if (s) export_files_remove_all(&w); /* nothing half-exported stays */
    det_export_meta_free(&mt);
    deft_free(amax);
    deft_onnx_export_info_free(&info);
    dnv2_model_close(&dm);
    dnv2_setup_free(&d);
    return s;
}
