/* detectnet_v2_print.c - the DetectNet_v2 specs for people: --help-spec (the
 * three schemas), the resolved config as YAML, and the --dry_run summaries. */
#include <string.h>
#include "spec/detectnet_v2_spec_impl.h"

void deft_dnv2_config_print(const struct deft_dnv2_config *c, FILE *f) {
    const struct deft_spec_schema *sc = deft_dnv2_schema(DEFT_DNV2_SPEC_EXPERIMENT);
    fprintf(f, "# deft detectnet_v2 spec, resolved%s%s\n", c->source_path ? " from " : "",
            c->source_path ? c->source_path : "");
    struct deft_dnv2_config d;
    memset(&d, 0, sizeof d);
    bool have_d = deft_spec_defaults(sc, &d) == DEFT_OK;
    deft_spec_print(sc, c, have_d ? &d : NULL, f, 0);
    deft_spec_release(sc, &d);
}

void deft_dnv2_config_help(FILE *f) {
    fprintf(f,
            "DetectNet_v2 spec fields (TAO detectnet_v2 names; .txt = TAO protobuf text, .yaml = the same fields\n"
            "as YAML; a proto map is a list of {key, value} entries). Override any field with --set path=value\n"
            "(repeated blocks by index: cost_function_config.target_classes.0.class_weight=2).\n"
            "Defaults: a field TAO accepts at 0 keeps 0; a field TAO rejects at 0 takes TAO's sample value.\n"
            "Classes: cost_function_config.target_classes gives them in output order; bbox_rasterizer_config and\n"
            "postprocessing_config need an entry for each.\n\n");
    static const struct { enum deft_dnv2_spec_kind k; const char *title; } parts[] = {
        {DEFT_DNV2_SPEC_EXPERIMENT, "experiment spec (train, evaluate, prune, export: -e SPEC)"},
        {DEFT_DNV2_SPEC_INFERENCE, "inference spec (inference -e SPEC)"},
        {DEFT_DNV2_SPEC_CONVERT, "dataset_convert spec (dataset_convert -d SPEC)"},
    };
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        fprintf(f, "%s== %s ==\n%-56s %-12s %-12s %s\n", i ? "\n" : "", parts[i].title, "field", "type", "default",
                "meaning");
        deft_spec_help(deft_dnv2_schema(parts[i].k), f, "");
    }
}

static const char *cluster_name(enum deft_dnv2_clustering a) {
    return a == DEFT_DNV2_NMS ? "NMS" : a == DEFT_DNV2_HYBRID ? "HYBRID" : "DBSCAN";
}

static void print_cluster(FILE *f, const struct deft_dnv2_clustering_config *cl) {
    fprintf(f, "%s cov>%g", cluster_name(cl->clustering_algorithm), cl->coverage_threshold);
    if (cl->clustering_algorithm == DEFT_DNV2_NMS)
        fprintf(f, " iou %g conf %g", cl->nms_iou_threshold, cl->nms_confidence_threshold);
    else
        fprintf(f, " eps %g min_samples %d conf %g", cl->dbscan_eps, cl->dbscan_min_samples,
                cl->dbscan_confidence_threshold);
    fprintf(f, " min_h %d", cl->minimum_bounding_box_height);
}

static void print_source(FILE *f, const char *title, const struct deft_dnv2_data_source *s) {
    fprintf(f, "  %-13s: images %s", title, *s->image_directory_path ? s->image_directory_path : "(none)");
    if (*s->tfrecords_path)
        fprintf(f, ", tfrecords_path %s (deft reads the KITTI images and labels, no TFRecords)", s->tfrecords_path);
    if (s->source_weight > 0) fprintf(f, ", weight %g", s->source_weight);
    fputc('\n', f);
}

static double eval_iou(const struct deft_dnv2_evaluation_config *e, const char *cls) {
    for (int i = 0; i < e->n_minimum_detection_ground_truth_overlap; i++)
        if (!strcmp(e->minimum_detection_ground_truth_overlap[i].key, cls))
            return e->minimum_detection_ground_truth_overlap[i].value;
    return 0.5;
}

static void summary_classes(const struct deft_dnv2_config *c, FILE *f) {
    const struct deft_dnv2_cost_function_config *cf = &c->cost_function_config;
    fprintf(f, "  %-13s: %d, in output order:\n", "classes", c->n_classes);
    for (int k = 0; k < c->n_classes; k++) {
        const struct deft_dnv2_target_class *tc = &cf->target_classes[k];
        const struct deft_dnv2_raster_class *r = &c->bbox_rasterizer_config.target_class_config[c->raster_of[k]].value;
        const struct deft_dnv2_clustering_config *cl =
            &c->postprocessing_config.target_class_config[c->postproc_of[k]].value.clustering_config;
        double w[2] = {0, 0};
        for (int j = 0; j < tc->n_objectives; j++) w[strcmp(tc->objectives[j].name, "cov") ? 1 : 0] =
                                                       tc->objectives[j].initial_weight;
        fprintf(f, "    %d %-12s weight %g, fg %g, cov/bbox %g/%g; raster centre (%g, %g) radius (%g, %g) min %g; ",
                k, tc->name, tc->class_weight, tc->coverage_foreground_weight, w[0], w[1], r->cov_center_x,
                r->cov_center_y, r->cov_radius_x, r->cov_radius_y, r->bbox_min_radius);
        print_cluster(f, cl);
        fprintf(f, "; eval IoU %g\n", eval_iou(&c->evaluation_config, tc->name));
    }
}

void deft_dnv2_config_summary(const struct deft_dnv2_config *c, FILE *f) {
    const struct deft_dnv2_model_config *m = &c->model_config;
    const struct deft_dnv2_preprocessing *p = &c->augmentation_config.preprocessing;
    const struct deft_dnv2_training_config *t = &c->training_config;
    const struct deft_dnv2_dataset_config *d = &c->dataset_config;
    fprintf(f, "DetectNet_v2 experiment from %s (%s)\n", c->source_path ? c->source_path : "memory",
            deft_spec_format_name(c->format));
    fprintf(f, "  %-13s: %s", "network", m->arch);
    if (m->num_layers && !strcmp(m->arch, "resnet")) fprintf(f, "%d", m->num_layers);
    fprintf(f, " at output stride 16, heads output_cov (%d, sigmoid) and output_bbox (%d)%s", c->n_classes,
            4 * c->n_classes, m->freeze_bn ? ", freeze_bn" : "");
    for (int i = 0; i < m->n_freeze_blocks; i++)
        fprintf(f, "%s%d", i ? ", " : ", frozen blocks ", (int)m->freeze_blocks[i]);
    fputc('\n', f);
    fprintf(f, "  %-13s: %d x %d x %d (width x height x channels), grid %d x %d\n", "input", p->output_image_width,
            p->output_image_height, p->output_image_channel, p->output_image_width / 16, p->output_image_height / 16);
    fprintf(f, "  %-13s: scale %g, offset %g; deadzone %g\n", "bbox coding", m->objective_set.bbox.scale,
            m->objective_set.bbox.offset, c->bbox_rasterizer_config.deadzone_radius);
    summary_classes(c, f);
    fprintf(f, "  %-13s:", "mapping");
    for (int i = 0; i < d->n_target_class_mapping; i++)
        fprintf(f, "%s %s -> %s", i ? "," : "", d->target_class_mapping[i].key, d->target_class_mapping[i].value);
    fputc('\n', f);
    fprintf(f, "  %-13s: batch %d, %d epochs, checkpoint every %d, seed %d%s%s\n", "training", t->batch_size_per_gpu,
            t->num_epochs, t->checkpoint_interval, c->random_seed, t->enable_qat ? ", QAT" : "",
            c->cost_function_config.enable_autoweighting ? ", autoweighting" : "");
    fprintf(f, "  %-13s: adam (beta1 %g, beta2 %g, epsilon %g)", "optimizer", t->optimizer.adam.beta1,
            t->optimizer.adam.beta2, t->optimizer.adam.epsilon);
    static const char *const reg[] = {"no regularizer", "L1", "L2"};
    if (t->regularizer.type == DEFT_DNV2_REG_NONE) fprintf(f, ", %s\n", reg[0]);
    else fprintf(f, ", %s regularizer %g\n", reg[t->regularizer.type], t->regularizer.weight);
    if (t->learning_rate.kind == DEFT_DNV2_LR_SOFT_START_ANNEALING) {
        const struct deft_dnv2_lr_anneal *l = &t->learning_rate.soft_start_annealing_schedule;
        fprintf(f, "  %-13s: soft start %g -> %g over %g%% of the run, hold, anneal to %g from %g%%\n", "lr schedule",
                l->min_learning_rate, l->max_learning_rate, l->soft_start * 100, l->min_learning_rate,
                l->annealing * 100);
    } else {
        const struct deft_dnv2_lr_early_stop *l = &t->learning_rate.early_stopping_annealing_schedule;
        fprintf(f, "  %-13s: early stopping %g -> %g, soft start %d epochs, annealing from %d, patience %d\n",
                "lr schedule", l->min_learning_rate, l->max_learning_rate, l->soft_start_epochs, l->annealing_epochs,
                l->patience_steps);
    }
    fprintf(f, "  %-13s: %s%s%s\n", "start from", *m->pretrained_model_file ? m->pretrained_model_file : "scratch",
            m->load_graph ? " (graph and weights: a pruned model)" : "",
            m->freeze_pretrained_layers ? ", loaded layers frozen" : "");
    for (int i = 0; i < d->n_data_sources; i++) print_source(f, i ? "" : "train data", &d->data_sources[i]);
    if (d->has_validation_data_source) print_source(f, "val data", &d->validation_data_source);
    else if (d->has_validation_fold) fprintf(f, "  %-13s: fold %d of the converted data\n", "val data", d->validation_fold);
    else fprintf(f, "  %-13s: none\n", "val data");
    const struct deft_dnv2_evaluation_config *e = &c->evaluation_config;
    fprintf(f, "  %-13s: %s, every %d epochs from epoch %d\n", "evaluation",
            e->average_precision_mode == DEFT_DNV2_AP_SAMPLE ? "SAMPLE (11-point AP)" : "INTEGRATE (area AP)",
            e->validation_period_during_training, e->first_validation_epoch);
    if (c->ignored_fields && *c->ignored_fields) fprintf(f, "  %-13s: %s\n", "not used", c->ignored_fields);
}

void deft_dnv2_infer_config_summary(const struct deft_dnv2_infer_config *c, FILE *f) {
    const struct deft_dnv2_inferencer_config *ic = &c->inferencer_config;
    const struct deft_dnv2_bbox_handler_config *bh = &c->bbox_handler_config;
    fprintf(f, "DetectNet_v2 inference spec from %s (%s)\n", c->source_path ? c->source_path : "memory",
            deft_spec_format_name(c->format));
    fprintf(f, "  %-13s: %s\n", "model", ic->tlt_config.model);
    fprintf(f, "  %-13s: %d x %d x %d, batch %d, grid %d x %d\n", "input", ic->image_width, ic->image_height,
            ic->image_channels, ic->batch_size, ic->image_width / 16, ic->image_height / 16);
    fprintf(f, "  %-13s: %d, in output order:\n", "classes", ic->n_target_classes);
    for (int k = 0; k < ic->n_target_classes; k++) {
        const struct deft_dnv2_classwise_entry *e = &bh->classwise_bbox_handler_config[c->handler_of[k]];
        fprintf(f, "    %d %-12s -> '%s' (%s), %s, ", k, ic->target_classes[k],
                *e->value.output_map ? e->value.output_map : ic->target_classes[k],
                strcmp(e->key, "default") ? "own settings" : "default settings", e->value.confidence_model);
        print_cluster(f, &e->value.clustering_config);
        fputc('\n', f);
    }
    fprintf(f, "  %-13s: KITTI labels %s, overlays %s (line width %d)\n", "outputs", bh->kitti_dump ? "yes" : "no",
            bh->disable_overlay ? "no" : "yes", bh->overlay_linewidth);
    if (c->ignored_fields && *c->ignored_fields) fprintf(f, "  %-13s: %s\n", "not used", c->ignored_fields);
}
