/* fake_quant.h (internal) - the int8 grid of DEFT_OP_FAKE_QUANT and the range
 * update of FAKE_QUANT / OBSERVE, shared by the backends so that every one of
 * them rounds, clips and tracks ranges bit for bit alike (see deft_fq_attr in
 * deft/graph.h for the semantics). */
#ifndef DEFT_BACKEND_FAKE_QUANT_H
#define DEFT_BACKEND_FAKE_QUANT_H

#include <math.h>
#include <stdbool.h>

/* Activations: ONNX QuantizeLinear saturates int8 to [-128, 127]; weights are
 * exported in [-127, 127] (symmetric, as TensorRT wants them). */
#define FQ_ACT_QMIN (-128.0f)
#define FQ_ACT_QMAX 127.0f
#define FQ_W_QMAX 127.0f
#define FQ_LEVELS 127.0f /* scale = amax / 127 */

/* The range after a batch whose max|x| is batch_amax: TAO's moving average,
 * except that the first batch sets it (TAO starts from 6.0, a ReLU6 bound;
 * deft keeps ReLU, and a fine-tune of a few hundred steps at decay 0.999
 * would still carry most of that guess). */
static inline float fq_range_next(float state, float batch_amax, float decay, bool training) {
    if (!training) return state;
    if (!(state > 0)) return batch_amax;
    return (float)((double)decay * (double)state + (1.0 - (double)decay) * (double)batch_amax);
}

/* One element: round(x / scale) as x * inv (PyTorch's fake_quantize does the
 * same), round half to even (nearbyintf in the default rounding mode), clip,
 * dequantize. NaN stays NaN so the trainer sees it. */
static inline float fq_value(float x, float scale, float inv, float qmin, float qmax) {
    float r = nearbyintf(x * inv);
    r = r < qmin ? qmin : r > qmax ? qmax : r;
    return r * scale;
}

/* Straight-through gradient mask: the rounded value inside the clip range. */
static inline bool fq_inside(float x, float inv, float qmin, float qmax) {
    float r = nearbyintf(x * inv);
    return r >= qmin && r <= qmax;
}

#endif
