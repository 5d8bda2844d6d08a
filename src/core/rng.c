/* rng.c - counter-based random numbers: a pure function of (seed, stream,
 * index), so results never depend on thread scheduling. Mixing is SplitMix64
 * applied twice (a well-studied 64-bit finalizer). */
#include <math.h>
#include "deft/core.h"

static uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t deft_rng_u64(uint64_t seed, uint64_t stream, uint64_t index) {
    return mix64(mix64(seed ^ mix64(stream)) + index);
}

float deft_rng_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
    return (float)(deft_rng_u64(seed, stream, index) >> 40) * (1.0f / 16777216.0f);
}

float deft_rng_normal(uint64_t seed, uint64_t stream, uint64_t index) {
    /* Box-Muller on two independent uniforms derived from the same counter. */
    uint64_t r = deft_rng_u64(seed, stream, index);
    double u1 = ((double)(r >> 40) + 1.0) / 16777217.0;
    double u2 = (double)(deft_rng_u64(seed ^ 0x5bd1e995u, stream, index) >> 40) / 16777216.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}
