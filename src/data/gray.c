/* gray.c - colour to grey for one-channel models. TAO's classification reads
 * images with PIL in mode 'L' (Keras load_img color_mode="grayscale"), so
 * deft uses PIL's rule exactly: ITU-R 601 luma in 16-bit fixed point,
 * L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16, which is the documented
 * R*299/1000 + G*587/1000 + B*114/1000 rounded. The grey level goes back into
 * all three channels, so the rest of the pipeline (resampling, flips,
 * rotation, jitter) runs unchanged on three equal planes. */
#include "deft/data.h"

void deft_image_to_gray(struct deft_image *img) {
    if (!img || !img->rgb) return;
    size_t n = (size_t)img->w * (size_t)img->h;
    uint8_t *p = img->rgb;
    for (size_t i = 0; i < n; i++, p += 3) {
        uint32_t l = ((uint32_t)p[0] * 19595u + (uint32_t)p[1] * 38470u + (uint32_t)p[2] * 7471u + 0x8000u) >> 16;
        p[0] = p[1] = p[2] = (uint8_t)l;
    }
}
