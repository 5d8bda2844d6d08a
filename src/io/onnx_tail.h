/* onnx_tail.h (internal to src/io) - what deft_onnx_export reads from a
 * struct deft_onnx_tail (onnx_tail.c builds it). */
#ifndef DEFT_ONNX_TAIL_H
#define DEFT_ONNX_TAIL_H

#include "deft/io.h"

enum tail_attr_type { TAIL_ATTR_INT, TAIL_ATTR_FLOAT, TAIL_ATTR_INTS, TAIL_ATTR_STRING, TAIL_ATTR_FLOATS };

struct tail_attr {
    char *name;
    enum tail_attr_type type;
    int64_t i;
    float f;
    int64_t *ints;
    int n_ints;
    float *floats;
    int n_floats;
    char *s;
};

struct tail_node {
    char *op, *name;
    char **in, **out;
    int n_in, n_out;
    struct tail_attr *attr;
    int n_attr, cap_attr;
};

struct tail_const {
    char *name;
    enum deft_onnx_dtype type;
    int ndim;
    int64_t dims[DEFT_MAX_DIMS];
    void *data;
    size_t nbytes;
};

struct tail_output {
    char *name;
    enum deft_onnx_dtype type;
    int ndim;
    int64_t dims[DEFT_MAX_DIMS];
};

struct deft_onnx_tail {
    char *prefix;
    int counter;                 /* generated names */
    void **blk;                  /* every allocation, freed together */
    int n_blk, cap_blk;
    struct tail_node *node;
    int n_node, cap_node;
    struct tail_const *cst;
    int n_cst, cap_cst;
    struct tail_output *out;
    int n_out, cap_out;
    enum deft_status status;
};

/* Bytes per element of an ONNX dtype the tail takes (0: not one of them). */
size_t deft_onnx_dtype_size(enum deft_onnx_dtype t);

#endif
