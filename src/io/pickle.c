/* pickle.c - io module: a restricted unpickler for torch state dicts.
 *
 * A stack machine over the pickle opcodes of protocols 2-5 that torch.save
 * emits (reference/formats.md §6.2). It builds plain objects (None, bool,
 * int, float, str, bytes, tuple, list, dict, storage, tensor) and NEVER calls
 * anything: GLOBAL/STACK_GLOBAL resolve against a fixed allow-list
 * (collections.OrderedDict, torch._utils._rebuild_tensor{,_v2,_v3},
 * torch._utils._rebuild_parameter, torch.<X>Storage, torch.<dtype>); REDUCE
 * and NEWOBJ interpret those few callables by hand. Any other global (e.g.
 * posix.system, builtins.eval) stops the load with an error naming it, before
 * anything else happens. Opcodes of protocols 0/1 that only make sense for
 * code (INST, OBJ, PERSID, EXT*) are refused too.
 *
 * Limits keep hostile input bounded: objects + container items, memo index,
 * stack depth and string length are capped (below); every read is checked
 * against the buffer. All objects live in an arena freed at once, so cycles
 * (a list appended to itself) cannot leak or loop a destructor.
 */
#include <stdio.h>
#include <string.h>
#include "pth_impl.h"

#define PK_MAX_UNITS (1u << 24)   /* objects + container items */
#define PK_MAX_MEMO (1u << 20)    /* memo indices (torch uses ~6 per tensor) */
#define PK_MAX_STACK (1u << 20)   /* stack + mark depth */
#define PK_MAX_STR (64u << 20)    /* one string / bytes object */
#define PK_MAX_GLOBAL_NAME 256

size_t pk_elem_size(enum pk_elem e) {
    static const size_t sz[] = {4, 8, 2, 2, 8, 4, 2, 1, 1, 1};
    return sz[e];
}

const char *pk_kind_name(enum pk_kind k) {
    static const char *n[] = {"None", "bool", "int", "int", "float", "str", "bytes",
                              "tuple", "list", "dict", "global", "storage", "tensor"};
    return n[k];
}

void pk_arena_free(struct pk_arena *a) {
    struct pk_obj *o = a->all;
    while (o) {
        struct pk_obj *nx = o->next_alloc;
        switch (o->kind) {
        case PK_STR: case PK_BYTES: deft_free(o->u.str.s); break;
        case PK_TUPLE: case PK_LIST: case PK_DICT: deft_free(o->u.seq.items); break;
        case PK_STORAGE: deft_free(o->u.storage.key); break;
        default: break;
        }
        deft_free(o);
        o = nx;
    }
    a->all = NULL;
    a->n_objects = a->n_items = 0;
}

struct pk_obj *pk_dict_get(const struct pk_obj *d, const char *key) {
    if (!d || d->kind != PK_DICT) return NULL;
    struct pk_obj *found = NULL;
    for (size_t i = 0; i + 1 < d->u.seq.n; i += 2) {
        const struct pk_obj *k = d->u.seq.items[i];
        if (k->kind == PK_STR && !strcmp(k->u.str.s, key)) found = d->u.seq.items[i + 1];
    }
    return found; /* the last one wins, as in Python */
}

/* ---- the machine --------------------------------------------------------- */

struct pk {
    struct pk_arena *a;
    const unsigned char *buf;
    size_t len, pos;
    const char *what;
    struct pk_obj **stack;
    size_t sp, scap;
    size_t *marks;
    size_t nmarks, mcap;
    struct pk_obj **memo;
    size_t memo_cap;      /* allocated slots */
    size_t memo_next;     /* MEMOIZE index */
};

static enum deft_status fmt(struct pk *p, const char *msg) {
    return deft_set_error(DEFT_ERR_FORMAT, "%s: corrupt pickle (data.pkl) at byte %zu: %s", p->what,
                          p->pos, msg);
}
static enum deft_status nomem(struct pk *p) {
    return deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory unpickling", p->what);
}

static struct pk_obj *new_obj(struct pk *p, enum pk_kind k) {
    if (p->a->n_objects + p->a->n_items >= PK_MAX_UNITS) return NULL;
    struct pk_obj *o = deft_calloc(1, sizeof *o);
    if (!o) return NULL;
    o->kind = k;
    o->next_alloc = p->a->all;
    p->a->all = o;
    p->a->n_objects++;
    return o;
}

/* new_obj failed: out of memory or over the object limit */
static enum deft_status obj_fail(struct pk *p) {
    if (p->a->n_objects + p->a->n_items >= PK_MAX_UNITS) return fmt(p, "too many objects");
    return nomem(p);
}

static enum deft_status seq_push(struct pk *p, struct pk_obj *c, struct pk_obj *x) {
    if (p->a->n_objects + p->a->n_items >= PK_MAX_UNITS) return fmt(p, "too many objects");
    if (c->u.seq.n == c->u.seq.cap) {
        size_t nc = c->u.seq.cap ? c->u.seq.cap * 2 : 4;
        struct pk_obj **ni = deft_realloc(c->u.seq.items, nc * sizeof *ni);
        if (!ni) return nomem(p);
        c->u.seq.items = ni;
        c->u.seq.cap = nc;
    }
    c->u.seq.items[c->u.seq.n++] = x;
    p->a->n_items++;
    return DEFT_OK;
}

static enum deft_status push(struct pk *p, struct pk_obj *o) {
    if (!o) return obj_fail(p);
    if (p->sp + p->nmarks >= PK_MAX_STACK) return fmt(p, "stack too deep");
    if (p->sp == p->scap) {
        size_t nc = p->scap ? p->scap * 2 : 64;
        struct pk_obj **ns = deft_realloc(p->stack, nc * sizeof *ns);
        if (!ns) return nomem(p);
        p->stack = ns;
        p->scap = nc;
    }
    p->stack[p->sp++] = o;
    return DEFT_OK;
}

/* Objects above the innermost mark are stack[base..sp). */
static size_t cur_base(struct pk *p) { return p->nmarks ? p->marks[p->nmarks - 1] : 0; }

static enum deft_status pop(struct pk *p, struct pk_obj **o) {
    if (p->sp <= cur_base(p)) return fmt(p, "stack underflow");
    *o = p->stack[--p->sp];
    return DEFT_OK;
}
static enum deft_status top(struct pk *p, struct pk_obj **o) {
    if (p->sp <= cur_base(p)) return fmt(p, "stack underflow");
    *o = p->stack[p->sp - 1];
    return DEFT_OK;
}
/* Pop to the innermost mark: the items are stack[*from .. p->sp) until the next push. */
static enum deft_status pop_mark(struct pk *p, size_t *from) {
    if (!p->nmarks) return fmt(p, "missing MARK");
    *from = p->marks[--p->nmarks];
    return DEFT_OK;
}

static bool need(struct pk *p, size_t n) { return n <= p->len - p->pos; }

static enum deft_status memo_put(struct pk *p, uint64_t idx) {
    if (idx >= PK_MAX_MEMO) return fmt(p, "memo index too large");
    struct pk_obj *o;
    enum deft_status s = top(p, &o);
    if (s) return s;
    if (idx >= p->memo_cap) {
        size_t nc = p->memo_cap ? p->memo_cap : 64;
        while (nc <= idx) nc *= 2;
        struct pk_obj **nm = deft_realloc(p->memo, nc * sizeof *nm);
        if (!nm) return nomem(p);
        memset(nm + p->memo_cap, 0, (nc - p->memo_cap) * sizeof *nm);
        p->memo = nm;
        p->memo_cap = nc;
    }
    p->memo[idx] = o;
    return DEFT_OK;
}
static enum deft_status memo_get(struct pk *p, uint64_t idx) {
    if (idx >= p->memo_cap || !p->memo[idx]) return fmt(p, "memo lookup of an undefined index");
    return push(p, p->memo[idx]);
}

static enum deft_status push_str(struct pk *p, enum pk_kind k, uint64_t n) {
    if (n > PK_MAX_STR) return fmt(p, "string too long");
    if (!need(p, n)) return fmt(p, "string runs past the end (truncated?)");
    struct pk_obj *o = new_obj(p, k);
    if (!o) return obj_fail(p);
    o->u.str.s = deft_malloc((size_t)n + 1);
    if (!o->u.str.s) return nomem(p);
    memcpy(o->u.str.s, p->buf + p->pos, (size_t)n);
    o->u.str.s[n] = 0;
    o->u.str.len = (size_t)n;
    p->pos += (size_t)n;
    return push(p, o);
}

static enum deft_status push_int(struct pk *p, int64_t v) {
    struct pk_obj *o = new_obj(p, PK_INT);
    if (!o) return obj_fail(p);
    o->u.i = v;
    return push(p, o);
}

/* n-byte little-endian two's complement (LONG1/LONG4) */
static enum deft_status push_long(struct pk *p, uint64_t n) {
    if (!need(p, n)) return fmt(p, "integer runs past the end");
    if (n > 8) { /* only the legacy magic number is this big; keep it opaque */
        if (n > 4096) return fmt(p, "integer too long");
        p->pos += (size_t)n;
        struct pk_obj *o = new_obj(p, PK_BIGINT);
        if (!o) return obj_fail(p);
        return push(p, o);
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= (uint64_t)p->buf[p->pos + i] << (8 * i);
    if (n > 0 && n < 8 && (p->buf[p->pos + n - 1] & 0x80)) v |= ~(uint64_t)0 << (8 * n);
    p->pos += (size_t)n;
    return push_int(p, (int64_t)v);
}

static enum deft_status make_seq(struct pk *p, enum pk_kind k, size_t from) {
    struct pk_obj *o = new_obj(p, k);
    if (!o) return obj_fail(p);
    for (size_t i = from; i < p->sp; i++) {
        enum deft_status s = seq_push(p, o, p->stack[i]);
        if (s) return s;
    }
    p->sp = from;
    return push(p, o);
}

/* ---- globals ------------------------------------------------------------- */

static const struct { const char *name; enum pk_elem e; } storage_types[] = {
    {"FloatStorage", PKE_F32},  {"DoubleStorage", PKE_F64}, {"HalfStorage", PKE_F16},
    {"BFloat16Storage", PKE_BF16}, {"LongStorage", PKE_I64}, {"IntStorage", PKE_I32},
    {"ShortStorage", PKE_I16},  {"CharStorage", PKE_I8},    {"ByteStorage", PKE_U8},
    {"BoolStorage", PKE_BOOL},
};
static const struct { const char *name; enum pk_elem e; } dtypes[] = {
    {"float32", PKE_F32}, {"float", PKE_F32},  {"float64", PKE_F64}, {"double", PKE_F64},
    {"float16", PKE_F16}, {"half", PKE_F16},   {"bfloat16", PKE_BF16}, {"int64", PKE_I64},
    {"long", PKE_I64},    {"int32", PKE_I32},  {"int", PKE_I32},     {"int16", PKE_I16},
    {"short", PKE_I16},   {"int8", PKE_I8},    {"uint8", PKE_U8},    {"bool", PKE_BOOL},
};

static enum deft_status push_global(struct pk *p, const char *mod, const char *name) {
    struct pk_obj *o = new_obj(p, PK_GLOBAL);
    if (!o) return obj_fail(p);
    if (!strcmp(mod, "collections") && !strcmp(name, "OrderedDict")) {
        o->u.global.g = PKG_ORDERED_DICT;
        return push(p, o);
    }
    if (!strcmp(mod, "torch._utils")) {
        static const struct { const char *n; enum pk_global g; } fns[] = {
            {"_rebuild_tensor", PKG_REBUILD_TENSOR},
            {"_rebuild_tensor_v2", PKG_REBUILD_TENSOR_V2},
            {"_rebuild_tensor_v3", PKG_REBUILD_TENSOR_V3},
            {"_rebuild_parameter", PKG_REBUILD_PARAMETER},
        };
        for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
            if (!strcmp(name, fns[i].n)) {
                o->u.global.g = fns[i].g;
                return push(p, o);
            }
    }
    if (!strcmp(mod, "torch")) {
        for (size_t i = 0; i < sizeof storage_types / sizeof storage_types[0]; i++)
            if (!strcmp(name, storage_types[i].name)) {
                o->u.global.g = PKG_STORAGE_TYPE;
                o->u.global.elem = storage_types[i].e;
                return push(p, o);
            }
        for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
            if (!strcmp(name, dtypes[i].name)) {
                o->u.global.g = PKG_DTYPE;
                o->u.global.elem = dtypes[i].e;
                return push(p, o);
            }
    }
    if (!strcmp(mod, "torch.storage") && !strcmp(name, "_load_from_bytes"))
        return deft_set_error(DEFT_ERR_UNSUPPORTED,
                              "%s: tensors are stored with torch.storage._load_from_bytes (a "
                              "nested torch.save, e.g. a pickled nn.Module); deft only reads "
                              "tensor state dicts: save model.state_dict() instead", p->what);
    /* name it as Python 3 would (protocol 2 writes Python 2 module names) */
    if (!strcmp(mod, "__builtin__")) mod = "builtins";
    else if (!strcmp(mod, "copy_reg")) mod = "copyreg";
    return deft_set_error(DEFT_ERR_UNSUPPORTED,
                          "%s: refusing to load: the file references the Python global '%s.%s'; "
                          "deft only reads tensor state dicts (save model.state_dict())",
                          p->what, mod, name);
}

/* Read a "text\n" line of GLOBAL into dst. */
static enum deft_status read_line(struct pk *p, char *dst, size_t cap) {
    const unsigned char *s = p->buf + p->pos;
    const unsigned char *nl = memchr(s, '\n', p->len - p->pos);
    if (!nl) return fmt(p, "GLOBAL name runs past the end");
    size_t n = (size_t)(nl - s);
    if (n == 0 || n >= cap) return fmt(p, "bad GLOBAL name length");
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7e) return fmt(p, "GLOBAL name is not printable ASCII");
    memcpy(dst, s, n);
    dst[n] = 0;
    p->pos += n + 1;
    return DEFT_OK;
}

/* ---- torch objects -------------------------------------------------------- */

static bool int_arg(const struct pk_obj *o, int64_t *v) {
    if (o->kind == PK_INT) { *v = o->u.i; return true; }
    if (o->kind == PK_BOOL) { *v = o->u.b; return true; }
    return false;
}

static enum deft_status int_tuple(struct pk *p, const struct pk_obj *t, const char *what_,
                                  int64_t *dst, int *n) {
    if (t->kind != PK_TUPLE && t->kind != PK_LIST) {
        char m[96];
        snprintf(m, sizeof m, "tensor %s is not a tuple", what_);
        return fmt(p, m);
    }
    if (t->u.seq.n > DEFT_MAX_DIMS)
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "%s: a tensor has %zu dimensions; deft supports "
                              "at most %d", p->what, t->u.seq.n, DEFT_MAX_DIMS);
    for (size_t i = 0; i < t->u.seq.n; i++)
        if (!int_arg(t->u.seq.items[i], &dst[i]) || dst[i] < 0) {
            char m[96];
            snprintf(m, sizeof m, "tensor %s holds a non-integer or negative value", what_);
            return fmt(p, m);
        }
    *n = (int)t->u.seq.n;
    return DEFT_OK;
}

/* _rebuild_tensor{,_v2,_v3}(storage, offset, size, stride, ...) */
static enum deft_status rebuild_tensor(struct pk *p, enum pk_global g, const struct pk_obj *args) {
    size_t n = args->u.seq.n;
    size_t lo = g == PKG_REBUILD_TENSOR ? 4 : g == PKG_REBUILD_TENSOR_V2 ? 6 : 7;
    if (n < lo || n > lo + 1) return fmt(p, "tensor rebuild call with a wrong argument count");
    struct pk_obj *const *a = args->u.seq.items;
    if (a[0]->kind != PK_STORAGE) return fmt(p, "tensor rebuild without a storage");
    struct pk_obj *t = new_obj(p, PK_TENSOR);
    if (!t) return obj_fail(p);
    t->u.tensor.storage = a[0];
    if (!int_arg(a[1], &t->u.tensor.offset) || t->u.tensor.offset < 0)
        return fmt(p, "bad tensor storage offset");
    int nd, ns;
    enum deft_status s = int_tuple(p, a[2], "size", t->u.tensor.size, &nd);
    if (!s) s = int_tuple(p, a[3], "stride", t->u.tensor.stride, &ns);
    if (s) return s;
    if (nd != ns) return fmt(p, "tensor size and stride differ in length");
    t->u.tensor.ndim = nd;
    if (g == PKG_REBUILD_TENSOR_V3) {
        if (a[6]->kind != PK_GLOBAL || a[6]->u.global.g != PKG_DTYPE)
            return fmt(p, "_rebuild_tensor_v3 without a dtype");
        t->u.tensor.has_dtype = true;
        t->u.tensor.dtype = a[6]->u.global.elem;
    }
    return push(p, t);
}

/* callable(args): only the allow-listed globals, interpreted by hand */
static enum deft_status call(struct pk *p, struct pk_obj *fn, struct pk_obj *args) {
    if (fn->kind != PK_GLOBAL) return fmt(p, "REDUCE of a non-callable object");
    if (args->kind != PK_TUPLE) return fmt(p, "REDUCE arguments are not a tuple");
    switch (fn->u.global.g) {
    case PKG_ORDERED_DICT: {
        struct pk_obj *d = new_obj(p, PK_DICT);
        if (!d) return obj_fail(p);
        if (args->u.seq.n > 1) return fmt(p, "OrderedDict() with more than one argument");
        if (args->u.seq.n == 1) { /* OrderedDict([(k, v), ...]) */
            struct pk_obj *l = args->u.seq.items[0];
            if (l->kind != PK_LIST && l->kind != PK_TUPLE) return fmt(p, "bad OrderedDict argument");
            for (size_t i = 0; i < l->u.seq.n; i++) {
                struct pk_obj *kv = l->u.seq.items[i];
                if (kv->kind != PK_TUPLE || kv->u.seq.n != 2) return fmt(p, "bad OrderedDict item");
                enum deft_status s = seq_push(p, d, kv->u.seq.items[0]);
                if (!s) s = seq_push(p, d, kv->u.seq.items[1]);
                if (s) return s;
            }
        }
        return push(p, d);
    }
    case PKG_REBUILD_TENSOR:
    case PKG_REBUILD_TENSOR_V2:
    case PKG_REBUILD_TENSOR_V3:
        return rebuild_tensor(p, fn->u.global.g, args);
    case PKG_REBUILD_PARAMETER:
        if (args->u.seq.n != 3 || args->u.seq.items[0]->kind != PK_TENSOR)
            return fmt(p, "bad _rebuild_parameter arguments");
        return push(p, args->u.seq.items[0]);
    default:
        return fmt(p, "REDUCE of a torch type that is not a function");
    }
}

/* BINPERSID: ("storage", <storage type>, key, location, numel[, view_metadata]) */
static enum deft_status persistent_load(struct pk *p, struct pk_obj *pid) {
    if (pid->kind != PK_TUPLE || pid->u.seq.n < 5 || pid->u.seq.n > 6)
        return fmt(p, "persistent id is not a storage tuple");
    struct pk_obj *const *a = pid->u.seq.items;
    if (a[0]->kind != PK_STR || strcmp(a[0]->u.str.s, "storage"))
        return fmt(p, "persistent id is not a storage");
    if (a[1]->kind != PK_GLOBAL || a[1]->u.global.g != PKG_STORAGE_TYPE)
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "%s: a storage has a type deft does not know "
                              "(untyped or exotic dtype)", p->what);
    if (a[2]->kind != PK_STR || a[2]->u.str.len == 0 || a[2]->u.str.len > 64)
        return fmt(p, "bad storage key");
    for (size_t i = 0; i < a[2]->u.str.len; i++) {
        char c = a[2]->u.str.s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '_'))
            return fmt(p, "bad character in storage key");
    }
    int64_t numel;
    if (!int_arg(a[4], &numel) || numel < 0) return fmt(p, "bad storage size");
    struct pk_obj *st = new_obj(p, PK_STORAGE);
    if (!st) return obj_fail(p);
    st->u.storage.elem = a[1]->u.global.elem;
    st->u.storage.numel = numel;
    const struct pk_obj *key = a[2];
    if (pid->u.seq.n == 6 && a[5]->kind != PK_NONE) { /* legacy view: (view_key, offset, size) */
        const struct pk_obj *v = a[5];
        int64_t off, sz;
        if (v->kind != PK_TUPLE || v->u.seq.n != 3 || v->u.seq.items[0]->kind != PK_STR ||
            !int_arg(v->u.seq.items[1], &off) || !int_arg(v->u.seq.items[2], &sz) || off < 0 ||
            sz < 0 || sz > INT64_MAX - off || off + sz > numel)
            return fmt(p, "bad storage view");
        st->u.storage.view_offset = off;
        st->u.storage.numel = sz;
        /* the storage itself is key (the root); the view's own key only names the view */
    }
    st->u.storage.key = deft_strdup(key->u.str.s);
    if (!st->u.storage.key) return nomem(p);
    return push(p, st);
}

/* ---- main loop ------------------------------------------------------------ */

static uint32_t u32le(const unsigned char *b) {
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static enum deft_status run(struct pk *p, struct pk_obj **out) {
    enum deft_status s = DEFT_OK;
    struct pk_obj *a, *b, *c;
    size_t from = 0;
    for (;;) {
        if (p->pos >= p->len) return fmt(p, "no STOP opcode (truncated?)");
        unsigned op = p->buf[p->pos++];
        switch (op) {
        case 0x80: /* PROTO */
            if (!need(p, 1)) return fmt(p, "truncated PROTO");
            if (p->buf[p->pos] > 5) return fmt(p, "unknown pickle protocol");
            p->pos++;
            break;
        case 0x95: /* FRAME: an 8-byte length, then ordinary opcodes */
            if (!need(p, 8)) return fmt(p, "truncated FRAME");
            p->pos += 8;
            break;
        case '.': /* STOP */
            if ((s = pop(p, &a))) return s;
            *out = a;
            return DEFT_OK;
        case '(': /* MARK */
            if (p->sp + p->nmarks >= PK_MAX_STACK) return fmt(p, "stack too deep");
            if (p->nmarks == p->mcap) {
                size_t nc = p->mcap ? p->mcap * 2 : 16;
                size_t *nm = deft_realloc(p->marks, nc * sizeof *nm);
                if (!nm) return nomem(p);
                p->marks = nm;
                p->mcap = nc;
            }
            p->marks[p->nmarks++] = p->sp;
            break;
        case '0': /* POP */
            if (p->sp > cur_base(p)) {
                p->sp--;
            } else if (p->nmarks) { /* POP of a mark */
                p->nmarks--;
            } else {
                return fmt(p, "stack underflow");
            }
            break;
        case '1': /* POP_MARK */
            if ((s = pop_mark(p, &from))) return s;
            p->sp = from;
            break;
        case '2': /* DUP */
            if ((s = top(p, &a))) return s;
            if ((s = push(p, a))) return s;
            break;
        case 'N': s = push(p, new_obj(p, PK_NONE)); break;
        case 0x88: case 0x89: /* NEWTRUE / NEWFALSE */
            a = new_obj(p, PK_BOOL);
            if (a) a->u.b = op == 0x88;
            s = push(p, a);
            break;
        case 'K':
            if (!need(p, 1)) return fmt(p, "truncated BININT1");
            s = push_int(p, p->buf[p->pos]);
            p->pos += 1;
            break;
        case 'M':
            if (!need(p, 2)) return fmt(p, "truncated BININT2");
            s = push_int(p, p->buf[p->pos] | p->buf[p->pos + 1] << 8);
            p->pos += 2;
            break;
        case 'J':
            if (!need(p, 4)) return fmt(p, "truncated BININT");
            s = push_int(p, (int32_t)u32le(p->buf + p->pos));
            p->pos += 4;
            break;
        case 0x8a: /* LONG1 */
            if (!need(p, 1)) return fmt(p, "truncated LONG1");
            s = push_long(p, p->buf[p->pos++]);
            break;
        case 0x8b: /* LONG4 */
            if (!need(p, 4)) return fmt(p, "truncated LONG4");
            p->pos += 4;
            s = push_long(p, u32le(p->buf + p->pos - 4));
            break;
        case 'G': { /* BINFLOAT: big-endian double */
            if (!need(p, 8)) return fmt(p, "truncated BINFLOAT");
            uint64_t v = 0;
            for (int i = 0; i < 8; i++) v = v << 8 | p->buf[p->pos + i];
            p->pos += 8;
            a = new_obj(p, PK_FLOAT);
            if (a) memcpy(&a->u.f, &v, 8);
            s = push(p, a);
            break;
        }
        case 'X': case 'B': case 'T': /* BINUNICODE / BINBYTES / BINSTRING: u32 length */
            if (!need(p, 4)) return fmt(p, "truncated string length");
            p->pos += 4;
            s = push_str(p, op == 'B' ? PK_BYTES : PK_STR, u32le(p->buf + p->pos - 4));
            break;
        case 0x8c: case 'C': case 'U': /* SHORT_BINUNICODE / SHORT_BINBYTES / SHORT_BINSTRING */
            if (!need(p, 1)) return fmt(p, "truncated string length");
            p->pos += 1;
            s = push_str(p, op == 'C' ? PK_BYTES : PK_STR, p->buf[p->pos - 1]);
            break;
        case 0x8d: case 0x8e: case 0x96: { /* BINUNICODE8 / BINBYTES8 / BYTEARRAY8 */
            if (!need(p, 8)) return fmt(p, "truncated string length");
            uint64_t n = u32le(p->buf + p->pos) | (uint64_t)u32le(p->buf + p->pos + 4) << 32;
            p->pos += 8;
            s = push_str(p, op == 0x8d ? PK_STR : PK_BYTES, n);
            break;
        }
        case ')': s = push(p, new_obj(p, PK_TUPLE)); break;
        case ']': s = push(p, new_obj(p, PK_LIST)); break;
        case '}': s = push(p, new_obj(p, PK_DICT)); break;
        case 0x8f: s = push(p, new_obj(p, PK_LIST)); break; /* EMPTY_SET: a list will do */
        case 't': case 'l': case 0x91: /* TUPLE / LIST / FROZENSET from mark */
            if ((s = pop_mark(p, &from))) return s;
            s = make_seq(p, op == 't' ? PK_TUPLE : PK_LIST, from);
            break;
        case 0x85: case 0x86: case 0x87: { /* TUPLE1..3 */
            size_t n = op - 0x84;
            if (p->sp < cur_base(p) + n) return fmt(p, "stack underflow");
            s = make_seq(p, PK_TUPLE, p->sp - n);
            break;
        }
        case 'd': /* DICT from mark */
            if ((s = pop_mark(p, &from))) return s;
            if ((p->sp - from) % 2) return fmt(p, "DICT with an odd number of items");
            s = make_seq(p, PK_DICT, from);
            break;
        case 'a': /* APPEND */
            if ((s = pop(p, &b)) || (s = top(p, &a))) return s;
            if (a->kind != PK_LIST) return fmt(p, "APPEND to a non-list");
            s = seq_push(p, a, b);
            break;
        case 'e': case 0x90: /* APPENDS / ADDITEMS */
            if ((s = pop_mark(p, &from))) return s;
            if (from <= cur_base(p)) return fmt(p, "APPENDS without a list");
            a = p->stack[from - 1];
            if (a->kind != PK_LIST) return fmt(p, "APPENDS to a non-list");
            for (size_t i = from; i < p->sp && !s; i++) s = seq_push(p, a, p->stack[i]);
            p->sp = from;
            break;
        case 's': /* SETITEM */
            if ((s = pop(p, &c)) || (s = pop(p, &b)) || (s = top(p, &a))) return s;
            if (a->kind != PK_DICT) return fmt(p, "SETITEM on a non-dict");
            if (!(s = seq_push(p, a, b))) s = seq_push(p, a, c);
            break;
        case 'u': /* SETITEMS */
            if ((s = pop_mark(p, &from))) return s;
            if (from <= cur_base(p)) return fmt(p, "SETITEMS without a dict");
            a = p->stack[from - 1];
            if (a->kind != PK_DICT) return fmt(p, "SETITEMS on a non-dict");
            if ((p->sp - from) % 2) return fmt(p, "SETITEMS with an odd number of items");
            for (size_t i = from; i < p->sp && !s; i++) s = seq_push(p, a, p->stack[i]);
            p->sp = from;
            break;
        case 'q': /* BINPUT, LONG_BINPUT, BINGET, LONG_BINGET: a 1- or 4-byte memo index */
        case 'r':
        case 'h':
        case 'j': {
            size_t w = op == 'q' || op == 'h' ? 1 : 4;
            if (!need(p, w)) return fmt(p, "truncated memo opcode");
            uint64_t idx = w == 1 ? p->buf[p->pos] : u32le(p->buf + p->pos);
            p->pos += w;
            s = op == 'q' || op == 'r' ? memo_put(p, idx) : memo_get(p, idx);
            break;
        }
        case 0x94: /* MEMOIZE */
            s = memo_put(p, p->memo_next);
            if (!s) p->memo_next++;
            break;
        case 'c': { /* GLOBAL module\nname\n */
            char mod[PK_MAX_GLOBAL_NAME], name[PK_MAX_GLOBAL_NAME];
            if ((s = read_line(p, mod, sizeof mod)) || (s = read_line(p, name, sizeof name)))
                return s;
            s = push_global(p, mod, name);
            break;
        }
        case 0x93: /* STACK_GLOBAL */
            if ((s = pop(p, &b)) || (s = pop(p, &a))) return s;
            if (a->kind != PK_STR || b->kind != PK_STR || a->u.str.len >= PK_MAX_GLOBAL_NAME ||
                b->u.str.len >= PK_MAX_GLOBAL_NAME || strlen(a->u.str.s) != a->u.str.len ||
                strlen(b->u.str.s) != b->u.str.len)
                return fmt(p, "bad STACK_GLOBAL names");
            s = push_global(p, a->u.str.s, b->u.str.s);
            break;
        case 'R': /* REDUCE */
            if ((s = pop(p, &b)) || (s = pop(p, &a))) return s;
            s = call(p, a, b);
            break;
        case 0x81: /* NEWOBJ cls args */
            if ((s = pop(p, &b)) || (s = pop(p, &a))) return s;
            if (a->kind != PK_GLOBAL || a->u.global.g != PKG_ORDERED_DICT)
                return fmt(p, "NEWOBJ of a type other than OrderedDict");
            s = call(p, a, b);
            break;
        case 0x92: /* NEWOBJ_EX cls args kwargs */
            if ((s = pop(p, &c)) || (s = pop(p, &b)) || (s = pop(p, &a))) return s;
            if (a->kind != PK_GLOBAL || a->u.global.g != PKG_ORDERED_DICT)
                return fmt(p, "NEWOBJ_EX of a type other than OrderedDict");
            s = call(p, a, b);
            break;
        case 'b': /* BUILD: state applied to the object; ignored (OrderedDict _metadata) */
            if ((s = pop(p, &b)) || (s = top(p, &a))) return s;
            break;
        case 'Q': /* BINPERSID */
            if ((s = pop(p, &a))) return s;
            s = persistent_load(p, a);
            break;
        default: {
            char m[128];
            snprintf(m, sizeof m, "unsupported pickle opcode 0x%02x (deft reads torch.save "
                     "pickles, protocols 2-5)", op);
            p->pos--;
            return fmt(p, m);
        }
        }
        if (s) return s;
    }
}

enum deft_status pk_load(struct pk_arena *a, const unsigned char *buf, size_t len,
                         const char *what, struct pk_obj **out, size_t *used) {
    *out = NULL;
    struct pk p = {.a = a, .buf = buf, .len = len, .what = what};
    enum deft_status s = run(&p, out);
    if (used) *used = p.pos;
    if (s) *out = NULL;
    deft_free(p.stack);
    deft_free(p.marks);
    deft_free(p.memo);
    return s;
}
