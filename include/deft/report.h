/* deft/report.h - what a training run writes into its results directory
 * (design §3): TensorBoard event files, status.json, metrics.csv and plots.
 *
 *     struct deft_events *ev;
 *     deft_events_open(results_dir, &ev);             // events.out.tfevents.<time>.<host>
 *     for (epoch ...) {
 *         deft_events_scalar(ev, "train/loss", epoch, loss);
 *         deft_events_scalar(ev, "val/top1", epoch, top1);
 *         deft_events_flush(ev);                       // once per epoch
 *
 *         struct deft_metric val[] = {{"top1", top1}, {"top5", top5}};
 *         struct deft_epoch_record r = {.epoch = epoch, .step = step, .loss = loss,
 *                                       .lr = lr, .time = elapsed,
 *                                       .val = val, .n_val = 2};
 *         deft_report_epoch(results_dir, &r);          // status.json + metrics.csv
 *     }
 *     deft_events_close(ev);
 *
 *     struct deft_plot_series s[] = {{"train", xs, train_loss, n}, {"val", xs, val_loss, n}};
 *     deft_plot_lines("results/plots/loss", "Loss", "epoch", "loss", s, 2);  // loss.svg + loss.png
 *     deft_plot_confusion("results/plots/confusion", "Confusion matrix", names, k, counts);
 *
 * Crash behaviour. Plots are written atomically (deft_file_write_atomic: a
 * crash leaves the old file or the new one). The three growing files are
 * append-only instead, each record added with one write() and fsync'ed:
 *   - events.out.tfevents.*: a crash can leave at most a torn last record;
 *     TensorBoard ignores it and deft_events_read reports it (truncated = true).
 *     A new writer never appends to an existing file: each deft_events_open
 *     creates a new file (O_EXCL; ".1", ".2" ... suffix on a name clash), so a
 *     torn record is always at the very end of its file.
 *   - status.json and metrics.csv: a crash can leave at most a torn last line.
 *     The next append first terminates such a line with '\n', so the damage
 *     stays confined to that one line (a JSON/CSV reader must skip it).
 */
#ifndef DEFT_REPORT_H
#define DEFT_REPORT_H

#include "deft/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- CRC-32C (Castagnoli), as used by TFRecord ---------------------------- */
/* crc32c("123456789") == 0xE3069283. update: pass the previous result (0 to start). */
DEFT_API uint32_t deft_crc32c_update(uint32_t crc, const void *data, size_t n);
DEFT_API uint32_t deft_crc32c(const void *data, size_t n);
/* LevelDB/TFRecord mask: rotate right by 15, add 0xA282EAD8. */
DEFT_API uint32_t deft_crc32c_mask(uint32_t crc);

/* ---- TensorBoard event files ---------------------------------------------- */
struct deft_events;

/* Create <dir>/events.out.tfevents.<10-digit unix time>.<hostname> (dir must
 * exist) and write the file_version ("brain.Event:2") record. */
DEFT_API DEFT_NODISCARD enum deft_status deft_events_open(const char *dir, struct deft_events **out);
/* Path of the file being written (owned by w). */
DEFT_API const char *deft_events_path(const struct deft_events *w);
/* Queue one scalar (Event{wall_time, step, summary{value{tag, simple_value}}}).
 * Non-finite values are written as they are (TensorBoard shows them). Records
 * are buffered; the buffer is written out when it grows past 64 KiB. */
DEFT_API DEFT_NODISCARD enum deft_status deft_events_scalar(struct deft_events *w, const char *tag,
                                                           int64_t step, float value);
/* Queue an image summary: `png` holds a complete PNG file (height x width,
 * channels 1, 2, 3 or 4). */
DEFT_API DEFT_NODISCARD enum deft_status deft_events_image(struct deft_events *w, const char *tag,
                                                          int64_t step, const void *png, size_t n,
                                                          int height, int width, int channels);
/* Write queued records to the file and fsync it. Call once per epoch. */
DEFT_API DEFT_NODISCARD enum deft_status deft_events_flush(struct deft_events *w);
/* Flush, close and free w (NULL is a no-op). w is freed even on failure. */
DEFT_API DEFT_NODISCARD enum deft_status deft_events_close(struct deft_events *w);

/* Reader (tests, tools). Every record's two CRCs are checked (mismatch:
 * DEFT_ERR_FORMAT naming the record); a torn last record is tolerated and
 * reported in `truncated`. Scalars are every Summary.Value with a
 * simple_value; image values are counted in n_images. */
struct deft_event_scalar {
    char *tag;
    int64_t step;
    double wall_time;
    float value;
};
struct deft_events_data {
    int n_records;          /* complete records */
    char *file_version;     /* from the first record carrying one, or NULL */
    int n_scalars;
    struct deft_event_scalar *scalars;
    int n_images;
    bool truncated;         /* the file ends inside a record */
};
DEFT_API DEFT_NODISCARD enum deft_status deft_events_read(const char *path,
                                                         struct deft_events_data **out);
DEFT_API DEFT_NODISCARD enum deft_status deft_events_parse(const void *buf, size_t len,
                                                          const char *name,
                                                          struct deft_events_data **out);
DEFT_API void deft_events_data_free(struct deft_events_data *d);

/* ---- status.json / metrics.csv -------------------------------------------- */
struct deft_metric {
    const char *name;
    double value;   /* NaN/Inf: JSON null, CSV "nan"/"inf"/"-inf" */
};

struct deft_epoch_record {
    int epoch;
    int64_t step;       /* optimizer steps so far */
    double loss;        /* training loss of the epoch */
    double lr;
    double time;        /* seconds since the run started */
    const struct deft_metric *extra; int n_extra;  /* more top-level keys ("train_top1") */
    const struct deft_metric *val; int n_val;      /* validation metrics ("top1", "mAP") */
    int max_epoch;      /* > 0: status.json adds max_epoch, time_per_epoch and eta (seconds) */
    double time_per_epoch, eta;
};

/* Append one line to <path>:
 *   {"epoch":3,"step":1200,"loss":0.41,"lr":0.01,<extra...>,"val":{"top1":0.8},"time":12.5}
 * ("val" is omitted when n_val == 0). Names are JSON-escaped. */
DEFT_API DEFT_NODISCARD enum deft_status deft_status_json_append(const char *path,
                                                                const struct deft_epoch_record *r);
/* The run's last line in <path>: {"status":"finished"|"interrupted"|"failed",
 * "epoch":E,"max_epoch":N,"time":T[,"best":{"<metric>":v,"epoch":k}][,"message":"..."]}
 * (best when best_epoch > 0), so a monitor tells a finished run from a dead one. */
struct deft_run_end {
    const char *status, *message;   /* message: NULL or the error */
    int epoch, max_epoch;
    double time;
    const char *metric;             /* name of the best-model figure */
    double best;
    int best_epoch;
};
DEFT_API DEFT_NODISCARD enum deft_status deft_status_json_end(const char *path, const struct deft_run_end *r);
/* Append one row to <path>: columns epoch,step,loss,lr,time,<extra names>,
 * val_<val names>. The header is written only when the file is new or empty;
 * appending to a file whose header differs (other metric names) fails with
 * DEFT_ERR_INVALID_ARG and writes nothing, so keep the metric list fixed for a
 * run (use NaN for a metric not computed this epoch). */
DEFT_API DEFT_NODISCARD enum deft_status deft_metrics_csv_append(const char *path,
                                                                const struct deft_epoch_record *r);
/* Both of the above, into <dir>/status.json and <dir>/metrics.csv. */
DEFT_API DEFT_NODISCARD enum deft_status deft_report_epoch(const char *dir,
                                                          const struct deft_epoch_record *r);

/* ---- plots (SVG + PNG) ----------------------------------------------------- */
struct deft_plot_series {
    const char *name;   /* legend entry (NULL or "": not in the legend) */
    const double *x;    /* NULL: 1, 2, ..., n (epochs) */
    const double *y;
    int n;              /* 0 is fine */
};

/* Line plot with axes, ticks, labels and a legend; writes <path>.svg and
 * <path>.png (960 x 600). Points with a non-finite x or y are skipped (the
 * line breaks there); a point with no finite neighbour gets a marker, so a
 * one-point series is visible. Constant or empty data get a default range.
 * title/xlabel/ylabel may be NULL. */
DEFT_API DEFT_NODISCARD enum deft_status deft_plot_lines(const char *path, const char *title,
                                                        const char *xlabel, const char *ylabel,
                                                        const struct deft_plot_series *series,
                                                        int n_series);

/* Confusion-matrix heatmap: counts[true * n + predicted]; rows are true
 * classes, columns predictions; colour = count / row total; counts printed in
 * the cells when they fit, class names on both axes (names may be NULL:
 * indices are used). Writes <path>.svg and <path>.png. */
DEFT_API DEFT_NODISCARD enum deft_status deft_plot_confusion(const char *path, const char *title,
                                                            const char *const *class_names, int n,
                                                            const int64_t *counts);

/* ---- annotated images (inference output) ---- */
struct deft_image;
struct deft_box;
/* Draw each box's outline and a "class score" caption onto the image (pixel
 * coordinates), one colour per class. */
DEFT_API void deft_image_draw_boxes(struct deft_image *im, const struct deft_box *boxes, int n,
                                    const char *const *class_names, int n_classes);
/* Save RGB8 as PNG, atomically. */
DEFT_API DEFT_NODISCARD enum deft_status deft_image_save_png(const struct deft_image *im, const char *path);
/* An outline with a caption at its top-left corner, in rgb. */
DEFT_API void deft_image_draw_frame(struct deft_image *im, int x1, int y1, int x2, int y2, const char *caption,
                                    const unsigned char rgb[3]);

/* ---- validation predictions as TensorBoard images ---- */
struct deft_events;
struct deft_preprocess;
/* Queue an RGB8 image (PNG-encoded) as an image summary. */
DEFT_API DEFT_NODISCARD enum deft_status deft_events_image_rgb(struct deft_events *w, const char *tag, int64_t step,
                                                              const struct deft_image *im);
/* A network input (CHW, preprocessed by p) back into RGB8, averaged down by
 * an integer factor until its longer side is at most max_side (0: full size).
 * A grey input (p->channels 1) has one plane, shown grey. */
DEFT_API DEFT_NODISCARD enum deft_status deft_image_from_input(const float *chw, int h, int w,
                                                              const struct deft_preprocess *p, int max_side,
                                                              struct deft_image *out);
/* n images tiled in rows of cols (2-pixel black gaps) into *out (deft_image_free). */
DEFT_API DEFT_NODISCARD enum deft_status deft_image_grid(const struct deft_image *ims, int n, int cols,
                                                        struct deft_image *out);

#ifdef __cplusplus
}
#endif
#endif
