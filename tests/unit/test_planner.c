/* test_planner.c - the memory planner never overlaps buffers that are live at
 * the same time, reuses memory, and a whole training graph plans smaller
 * than the sum of its buffers. */
#include <string.h>
#include "deft_test.h"
#include "runtime/planner.h"

static bool overlap(const struct deft_plan_item *a, const struct deft_plan_item *b) {
    bool time = a->first <= b->last && b->first <= a->last;
    bool mem = a->offset < b->offset + b->bytes && b->offset < a->offset + a->bytes;
    return time && mem && a->bytes && b->bytes;
}

int main(void) {
    enum { N = 400, STEPS = 200 };
    static struct deft_plan_item it[N];
    uint64_t seed = 7;
    size_t naive = 0;
    for (int i = 0; i < N; i++) {
        int a = (int)(deft_rng_u64(seed, 1, (uint64_t)i) % STEPS);
        int len = (int)(deft_rng_u64(seed, 2, (uint64_t)i) % 40);
        it[i] = (struct deft_plan_item){.bytes = 64 + deft_rng_u64(seed, 3, (uint64_t)i) % 100000,
                                        .first = a, .last = a + len < STEPS ? a + len : STEPS - 1};
        naive += (it[i].bytes + 63) / 64 * 64;
    }
    size_t arena = 0;
    CHECK_OK(deft_plan_memory(it, N, STEPS, false, &arena));
    int bad = 0;
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++) bad += overlap(&it[i], &it[j]);
    int misaligned = 0, outside = 0;
    for (int i = 0; i < N; i++) {
        misaligned += it[i].offset % 64 != 0;
        outside += it[i].offset + it[i].bytes > arena;
    }
    CHECK(bad == 0, "%d overlapping live buffers", bad);
    CHECK(misaligned == 0 && outside == 0, "alignment/bounds");
    CHECK(arena < naive / 2, "arena %zu should be well below naive %zu", arena, naive);
    printf("planner: %d buffers, arena %.1f MB vs %.1f MB without reuse\n", N, arena / 1e6, naive / 1e6);

    /* a step's outputs never alias buffers released at that step */
    struct deft_plan_item two[2] = {{.bytes = 1000, .first = 0, .last = 1}, {.bytes = 1000, .first = 1, .last = 2}};
    CHECK_OK(deft_plan_memory(two, 2, 3, false, &arena));
    CHECK(!overlap(&two[0], &two[1]), "input and output of one step overlap");
    return test_summary();
}
