/* pth_impl.h - io module internals for PyTorch checkpoints: a minimal ZIP
 * reader (zip_reader.c) and a restricted unpickler (pickle.c), used by pth.c.
 * Not installed. */
#ifndef DEFT_PTH_IMPL_H
#define DEFT_PTH_IMPL_H

#include "io_impl.h"

/* ---- ZIP (zip_reader.c) --------------------------------------------------
 * Reads the central directory of an in-memory archive (zip64 included).
 * Every offset and size is checked against the buffer; entry data pointers
 * point into the caller's buffer (which must outlive the zip). */
struct deft_zip_entry {
    char *name;
    unsigned method;             /* 0 = stored; others are refused on read */
    uint32_t crc;
    uint64_t size;               /* uncompressed size */
    uint64_t csize;              /* compressed size */
    const unsigned char *data;   /* csize bytes inside the buffer */
    bool crc_ok;                 /* CRC verified already */
};
struct deft_zip {
    int n;
    struct deft_zip_entry *e;
    struct deft_zip_entry **sorted; /* by name, for deft_zip_find */
};
enum deft_status deft_zip_open(const unsigned char *buf, size_t len, const char *what,
                               struct deft_zip **out);
void deft_zip_free(struct deft_zip *z);
/* Entry by exact name, or NULL. */
struct deft_zip_entry *deft_zip_find(const struct deft_zip *z, const char *name);
/* The bytes of a stored entry (checks the method and, once, the CRC-32). */
enum deft_status deft_zip_data(struct deft_zip_entry *e, const char *what,
                               const unsigned char **data, size_t *len);
uint32_t deft_crc32(uint32_t crc, const unsigned char *p, size_t n);

/* ---- restricted unpickler (pickle.c) -------------------------------------
 * Builds a tree of plain objects; never calls anything. The only globals
 * accepted are listed in pickle.c; any other is refused by name. */
enum pk_kind {
    PK_NONE, PK_BOOL, PK_INT, PK_BIGINT, PK_FLOAT, PK_STR, PK_BYTES,
    PK_TUPLE, PK_LIST, PK_DICT, PK_GLOBAL, PK_STORAGE, PK_TENSOR,
};

/* Accepted globals. */
enum pk_global {
    PKG_ORDERED_DICT, PKG_REBUILD_TENSOR, PKG_REBUILD_TENSOR_V2, PKG_REBUILD_TENSOR_V3,
    PKG_REBUILD_PARAMETER, PKG_STORAGE_TYPE, PKG_DTYPE,
};

/* Element types of torch storages (some have no deft dtype of their own). */
enum pk_elem { PKE_F32, PKE_F64, PKE_F16, PKE_BF16, PKE_I64, PKE_I32, PKE_I16, PKE_I8, PKE_U8,
               PKE_BOOL };
size_t pk_elem_size(enum pk_elem e);

struct pk_obj {
    enum pk_kind kind;
    struct pk_obj *next_alloc; /* arena list */
    union {
        bool b;
        int64_t i;
        double f;
        struct { char *s; size_t len; } str;                       /* STR, BYTES (NUL-terminated) */
        struct { struct pk_obj **items; size_t n, cap; } seq;       /* TUPLE, LIST; DICT: k,v,k,v */
        struct { enum pk_global g; enum pk_elem elem; } global;
        struct {
            enum pk_elem elem;
            char *key;           /* data/<key> */
            int64_t numel;       /* elements of the storage (of the view, for legacy views) */
            int64_t view_offset; /* legacy storage views: element offset into key's storage */
        } storage;
        struct {
            struct pk_obj *storage;
            bool has_dtype;      /* _rebuild_tensor_v3: dtype given apart from the storage */
            enum pk_elem dtype;
            int64_t offset;
            int ndim;
            int64_t size[DEFT_MAX_DIMS], stride[DEFT_MAX_DIMS];
        } tensor;
    } u;
};

/* Owns every object of one or more pickles (legacy files hold several). */
struct pk_arena {
    struct pk_obj *all;
    size_t n_objects, n_items;
};
/* Unpickle one pickle from buf[0..len) (up to its STOP); *used = bytes
 * consumed. `what` names the file in messages. Objects live in the arena. */
enum deft_status pk_load(struct pk_arena *a, const unsigned char *buf, size_t len,
                         const char *what, struct pk_obj **out, size_t *used);
void pk_arena_free(struct pk_arena *a);
/* Value of a string key in a dict, or NULL. */
struct pk_obj *pk_dict_get(const struct pk_obj *d, const char *key);
const char *pk_kind_name(enum pk_kind k);

/* Parse a torch checkpoint from memory (pth.c; zip or legacy format). */
enum deft_status deft_pth_parse_impl(const void *buf, size_t len, const char *name,
                                     struct deft_safetensors **out);

#endif
