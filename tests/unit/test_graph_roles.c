/* test_graph_roles.c - roles name a graph's values by meaning and survive
 * clone and the model-file JSON; graphs without roles (older files, imports)
 * fall back to "input_1" / the first 4-D input and the last output. */
#include <string.h>
#include "deft_test.h"
#include "deft/graph.h"
#include "deft/models.h"

int main(void) {
    struct deft_graph *g = NULL;
    CHECK_OK(deft_graph_create(&g));
    int meta_in = deft_input(g, "scale", (struct deft_shape){.ndim = 1, .d = {1}});
    int img = deft_input(g, "pixels", deft_shape4(2, 3, 8, 8));
    struct deft_conv_attr c = {.stride = {1, 1}, .pad = {0, 0, 0, 0}, .dilation = {1, 1}, .groups = 1};
    int a = deft_conv2d(g, "a", img, 4, 1, 1, &c, false);
    int b = deft_conv2d(g, "b", img, 2, 1, 1, &c, false);
    deft_graph_value_mut(g, a)->flags |= DEFT_VF_OUTPUT;
    deft_graph_value_mut(g, b)->flags |= DEFT_VF_OUTPUT;
    CHECK_OK(deft_graph_status(g));
    (void)meta_in;

    /* fallbacks: first 4-D input, last OUTPUT value, nothing for other roles */
    CHECK(deft_graph_find_role(g, DEFT_ROLE_IMAGE) == img, "image falls back to the first 4-D input");
    CHECK(deft_graph_find_role(g, DEFT_ROLE_LOGITS) == b, "logits fall back to the last output");
    CHECK(deft_graph_find_role(g, "head_s8") == -1, "unknown role");
    int outs[2];
    CHECK(deft_graph_outputs(g, outs, 2) == 2 && outs[0] == a && outs[1] == b, "outputs by index without roles");

    CHECK_OK(deft_graph_set_role(g, DEFT_ROLE_IMAGE, img));
    CHECK_OK(deft_graph_set_role(g, "head_s8", b));
    CHECK_OK(deft_graph_set_role(g, DEFT_ROLE_LOGITS, a));
    CHECK_OK(deft_graph_set_role(g, DEFT_ROLE_LOGITS, a)); /* setting twice replaces */
    CHECK(deft_graph_set_role(g, "x", 999) == DEFT_ERR_INVALID_ARG, "out-of-range value refused");
    CHECK(deft_graph_find_role(g, DEFT_ROLE_LOGITS) == a, "declared logits");
    CHECK(deft_graph_outputs(g, outs, 2) == 2 && outs[0] == b && outs[1] == a, "outputs in role order");
    CHECK(deft_graph_outputs(g, NULL, 0) == 2, "count only");

    struct deft_graph *c2 = NULL;
    CHECK_OK(deft_graph_clone(g, &c2));
    CHECK(c2 && deft_graph_find_role(c2, "head_s8") == b, "roles survive clone");
    char *js = NULL;
    CHECK_OK(deft_graph_to_json(g, &js));
    struct deft_graph *back = NULL;
    if (js) CHECK_OK(deft_graph_from_json(js, strlen(js), &back));
    CHECK(back && deft_graph_find_role(back, DEFT_ROLE_IMAGE) == deft_graph_find_value(back, "pixels") &&
              deft_graph_find_role(back, "head_s8") == deft_graph_find_value(back, "b") &&
              deft_graph_find_role(back, DEFT_ROLE_LOGITS) == deft_graph_find_value(back, "a"),
          "roles survive the model-file JSON");

    /* model builders declare their roles */
    struct deft_graph *m = NULL;
    int in = -1, lg = -1;
    CHECK_OK(deft_model_build(&(struct deft_model_opts){.arch = "resnet10", .num_classes = 3, .height = 32,
                                                        .width = 32}, &m, &in, &lg));
    CHECK(m && deft_graph_get_meta(m, "roles") && deft_graph_find_role(m, DEFT_ROLE_IMAGE) == in &&
              deft_graph_find_role(m, DEFT_ROLE_LOGITS) == lg, "builder roles");

    deft_graph_free(m);
    deft_free(js);
    deft_graph_free(back);
    deft_graph_free(c2);
    deft_graph_free(g);
    return test_summary();
}
