/* engine_image.c - an image file into one engine input item, preprocessed as
 * the model records it (the same transform `deft classification inference`
 * and `deft model preprocess` use, so an embedding program sees what deft's
 * own tools see). */
#include "deft/data.h"
#include "deft/engine.h"
#include "deft/io.h"
#include "tasks/classification/cls_common.h"
#include "engine_impl.h"

enum deft_status deft_engine_preprocess_image(const struct deft_engine *e, const char *path, float *dst) {
    if (!e || !path || !dst) return deft_set_error(DEFT_ERR_INVALID_ARG, "preprocessing an image: NULL argument");
    struct deft_engine_info in;
    deft_engine_get_info(e, &in);
    struct deft_transform tf;
    enum deft_status s = cls_transform_from_meta(in.graph, deft_engine_path(e), &tf);
    if (s) return s;
    int ch = deft_preprocess_channels(&tf.pre);
    const struct deft_shape *is = &in.input_shape;
    if (is->ndim != 4 || is->d[1] != ch || is->d[2] != tf.out_h || is->d[3] != tf.out_w) {
        char a[96];
        return deft_set_error(DEFT_ERR_SHAPE, "%s: the preprocessing makes %dx%dx%d images, the engine takes %s "
                              "(convert it at the model's own size)", deft_engine_path(e), ch, tf.out_h, tf.out_w,
                              deft_shape_str(is, a, sizeof a));
    }
    void *buf;
    size_t len;
    if ((s = deft_file_read(path, 256u << 20, &buf, &len))) return s;
    s = deft_transform_bytes(&tf, buf, len, 0, 0, dst);
    deft_free(buf);
    return s ? deft_wrap_error(s, "%s", path) : DEFT_OK;
}
