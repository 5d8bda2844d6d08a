/* pth.c - io module: PyTorch checkpoints (torch.save) without Python.
 *
 * Two container formats (reference/formats.md §6.1, §6.3):
 *   - zip (torch >= 1.6): <root>/data.pkl + <root>/data/<key> storages;
 *   - legacy (torch < 1.6): magic pickle, protocol pickle, sys_info pickle,
 *     the object pickle, the sorted storage key list, then each storage as
 *     int64 numel + raw little-endian bytes.
 * The object pickle is read by the restricted unpickler (pickle.c), which
 * never executes anything. The dict of tensors is then located: the value of
 * "state_dict", "model_state_dict" or "model" when that is a dict holding
 * tensors (repeatedly, so {"model": {"state_dict": ...}} works), else the
 * top-level dict. A leading "module." (DataParallel) is stripped from names.
 * Non-tensor entries (epoch, optimizer, ...) are ignored.
 *
 * Tensors keep their dtype (f32, f64, f16, bf16, i64, i32, i8, u8); i16
 * becomes i32 and bool becomes u8 (0/1), which deft has no dtype for. Views
 * (storage offsets, strides, shared storages) are gathered into contiguous
 * tensors, after checking that every element lies inside its storage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "pth_impl.h"

#define PTH_MAX_FILE ((size_t)1 << 40)
#define PTH_SEARCH_DEPTH 4

/* Storage bytes by key. */
struct blob {
    const char *key;
    enum pk_elem elem;
    const unsigned char *data;
    uint64_t numel;
};

static int cmp_storage(const void *a, const void *b) {
    return strcmp((*(const struct pk_obj *const *)a)->u.storage.key,
                  (*(const struct pk_obj *const *)b)->u.storage.key);
}
static int cmp_blob(const void *a, const void *b) {
    return strcmp(((const struct blob *)a)->key, ((const struct blob *)b)->key);
}

struct pth {
    const char *name;
    const unsigned char *buf;
    size_t len;
    struct pk_arena arena;
    struct deft_zip *zip;
    char root[4200];           /* zip: "<root>/" */
    struct blob *blobs;        /* legacy: every storage in the file */
    size_t n_blobs;
    uint64_t out_bytes;        /* total output, for the absurd-allocation guard */
};

static enum deft_dtype out_dtype(enum pk_elem e) {
    switch (e) {
    case PKE_F32: return DEFT_F32;
    case PKE_F64: return DEFT_F64;
    case PKE_F16: return DEFT_F16;
    case PKE_BF16: return DEFT_BF16;
    case PKE_I64: return DEFT_I64;
    case PKE_I32: case PKE_I16: return DEFT_I32;
    case PKE_I8: return DEFT_I8;
    case PKE_U8: case PKE_BOOL: return DEFT_U8;
    }
    return DEFT_F32;
}

/* Bytes of storage `key` (zip entry data/<key> or a legacy blob). */
static enum deft_status storage_bytes(struct pth *p, const struct pk_obj *st,
                                      const unsigned char **data, uint64_t *numel) {
    const char *key = st->u.storage.key;
    size_t es = pk_elem_size(st->u.storage.elem);
    if (p->zip) {
        char nm[4300];
        snprintf(nm, sizeof nm, "%sdata/%s", p->root, key);
        struct deft_zip_entry *e = deft_zip_find(p->zip, nm);
        if (!e)
            return deft_set_error(DEFT_ERR_FORMAT, "%s: storage '%s' is missing (no entry %s)",
                                  p->name, key, nm);
        size_t n;
        enum deft_status s = deft_zip_data(e, p->name, data, &n);
        if (s) return s;
        if (n % es)
            return deft_set_error(DEFT_ERR_FORMAT, "%s: storage '%s' holds %zu bytes, not a "
                                  "multiple of its element size %zu", p->name, key, n, es);
        *numel = n / es;
        return DEFT_OK;
    }
    struct blob kb = {.key = key};
    const struct blob *b = p->n_blobs ? bsearch(&kb, p->blobs, p->n_blobs, sizeof kb, cmp_blob) : NULL;
    if (b) {
        if (b->elem != st->u.storage.elem)
            return deft_set_error(DEFT_ERR_FORMAT, "%s: storage '%s' is used with two element "
                                  "types", p->name, key);
        *data = b->data;
        *numel = b->numel;
        return DEFT_OK;
    }
    return deft_set_error(DEFT_ERR_FORMAT, "%s: storage '%s' is missing", p->name, key);
}

static void convert_elem(enum pk_elem e, const unsigned char *src, unsigned char *dst) {
    switch (e) {
    case PKE_I16: {
        int16_t v;
        memcpy(&v, src, 2);
        int32_t w = v;
        memcpy(dst, &w, 4);
        break;
    }
    case PKE_BOOL: *dst = *src != 0; break;
    default: memcpy(dst, src, pk_elem_size(e)); break;
    }
}

/* A tensor object -> a new contiguous host tensor. */
static enum deft_status build_tensor(struct pth *p, const char *tname, const struct pk_obj *t,
                                     struct deft_tensor **out) {
    *out = NULL;
    const struct pk_obj *st = t->u.tensor.storage;
    enum pk_elem e = st->u.storage.elem;
    if (t->u.tensor.has_dtype && t->u.tensor.dtype != e)
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "%s: tensor '%s' reinterprets its storage "
                              "as another dtype", p->name, tname);
    const unsigned char *data;
    uint64_t have;
    enum deft_status s = storage_bytes(p, st, &data, &have);
    if (s) return s;
    /* the pickle's numel (of the view, for legacy views) must fit the bytes */
    uint64_t base = (uint64_t)st->u.storage.view_offset, numel = (uint64_t)st->u.storage.numel;
    if (base > have || numel > have - base)
        return deft_set_error(DEFT_ERR_FORMAT, "%s: storage '%s' claims %llu elements but holds "
                              "%llu", p->name, st->u.storage.key, (unsigned long long)numel,
                              (unsigned long long)have);
    struct deft_shape shp = {.ndim = t->u.tensor.ndim};
    uint64_t n = 1, last = (uint64_t)t->u.tensor.offset; /* index of the last element */
    bool empty = false;
    for (int i = 0; i < shp.ndim; i++) {
        int64_t d = t->u.tensor.size[i];
        shp.d[i] = d;
        if (d == 0) empty = true;
    }
    size_t es = pk_elem_size(e);
    if (!empty) {
        for (int i = 0; i < shp.ndim; i++) {
            uint64_t d = (uint64_t)shp.d[i], ext;
            if (__builtin_mul_overflow(n, d, &n) ||
                __builtin_mul_overflow(d - 1, (uint64_t)t->u.tensor.stride[i], &ext) ||
                __builtin_add_overflow(last, ext, &last))
                return deft_set_error(DEFT_ERR_FORMAT, "%s: tensor '%s': size overflows",
                                      p->name, tname);
        }
        if (last >= numel)
            return deft_set_error(DEFT_ERR_FORMAT, "%s: tensor '%s' reaches element %llu of a "
                                  "storage of %llu elements", p->name, tname,
                                  (unsigned long long)last, (unsigned long long)numel);
    } else {
        n = 0;
    }
    enum deft_dtype dt = out_dtype(e);
    /* Outputs larger than the input need stride-0 views; bound them. */
    uint64_t ob = n * deft_dtype_size(dt);
    if (n > ((uint64_t)1 << 36) || ob > (uint64_t)p->len * 4 + ((uint64_t)256 << 20) ||
        p->out_bytes + ob > (uint64_t)p->len * 4 + ((uint64_t)256 << 20))
        return deft_set_error(DEFT_ERR_FORMAT, "%s: tensor '%s' expands to %llu elements, far "
                              "more than the file holds", p->name, tname, (unsigned long long)n);
    p->out_bytes += ob;
    struct deft_tensor *o;
    if ((s = deft_tensor_create(dt, &shp, &o))) return deft_wrap_error(s, "%s: tensor '%s'", p->name, tname);
    const unsigned char *src = data + base * es;
    unsigned char *dst = o->data;
    size_t os = deft_dtype_size(dt);
    bool contig = true;
    int64_t want = 1;
    for (int i = shp.ndim - 1; i >= 0; i--) {
        if (shp.d[i] != 1 && t->u.tensor.stride[i] != want) contig = false;
        want *= shp.d[i];
    }
    if (n && contig && os == es) {
        memcpy(dst, src + (size_t)t->u.tensor.offset * es, (size_t)n * es);
    } else if (n) {
        int64_t idx[DEFT_MAX_DIMS] = {0};
        uint64_t off = (uint64_t)t->u.tensor.offset;
        for (uint64_t k = 0; k < n; k++) {
            convert_elem(e, src + off * es, dst + k * os);
            for (int i = shp.ndim - 1; i >= 0; i--) {
                off += (uint64_t)t->u.tensor.stride[i];
                if (++idx[i] < shp.d[i]) break;
                off -= (uint64_t)t->u.tensor.stride[i] * (uint64_t)shp.d[i];
                idx[i] = 0;
            }
        }
    }
    *out = o;
    return DEFT_OK;
}

static bool has_tensors(const struct pk_obj *d) {
    if (!d || d->kind != PK_DICT) return false;
    for (size_t i = 0; i + 1 < d->u.seq.n; i += 2)
        if (d->u.seq.items[i]->kind == PK_STR && d->u.seq.items[i + 1]->kind == PK_TENSOR)
            return true;
    return false;
}

static const char *const preferred_keys[] = {"state_dict", "model_state_dict", "model"};

/* A dict that holds tensors, or a preferred key leading (within depth) to one. */
static bool leads_to_tensors(const struct pk_obj *d, int depth) {
    if (!d || d->kind != PK_DICT || depth > PTH_SEARCH_DEPTH) return false;
    if (has_tensors(d)) return true;
    for (size_t k = 0; k < sizeof preferred_keys / sizeof preferred_keys[0]; k++)
        if (leads_to_tensors(pk_dict_get(d, preferred_keys[k]), depth + 1)) return true;
    return false;
}

static const struct pk_obj *find_state_dict(const struct pk_obj *top) {
    const struct pk_obj *d = top;
    for (int depth = 0; depth < PTH_SEARCH_DEPTH; depth++) {
        const struct pk_obj *next = NULL;
        for (size_t k = 0; k < sizeof preferred_keys / sizeof preferred_keys[0] && !next; k++) {
            const struct pk_obj *v = pk_dict_get(d, preferred_keys[k]);
            if (leads_to_tensors(v, depth + 1)) next = v;
        }
        if (!next) break;
        d = next;
    }
    return d;
}

static void free_out(struct deft_safetensors *st) { deft_safetensors_free(st); }

static enum deft_status collect(struct pth *p, const struct pk_obj *top, const char *format,
                                struct deft_safetensors **out) {
    if (top->kind == PK_TENSOR)
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "%s holds a single tensor, not a state dict "
                              "of named tensors", p->name);
    if (top->kind != PK_DICT)
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "%s holds a %s, not a state dict (a dict of "
                              "tensors)", p->name, pk_kind_name(top->kind));
    const struct pk_obj *d = find_state_dict(top);
    size_t nt = 0;
    for (size_t i = 0; i + 1 < d->u.seq.n; i += 2)
        if (d->u.seq.items[i]->kind == PK_STR && d->u.seq.items[i + 1]->kind == PK_TENSOR) nt++;
    if (nt == 0) {
        char keys[256] = "";
        size_t kl = 0;
        for (size_t i = 0; i + 1 < d->u.seq.n && kl < 200; i += 2)
            if (d->u.seq.items[i]->kind == PK_STR)
                kl += (size_t)snprintf(keys + kl, sizeof keys - kl, "%s'%.40s'", kl ? ", " : "",
                                       d->u.seq.items[i]->u.str.s);
        return deft_set_error(DEFT_ERR_NOT_FOUND, "%s: no tensors found in the checkpoint (its "
                              "keys: %s)", p->name, kl ? keys : "none");
    }
    if (nt > INT32_MAX / 2)
        return deft_set_error(DEFT_ERR_FORMAT, "%s: too many tensors", p->name);
    struct deft_safetensors *st = deft_calloc(1, sizeof *st);
    if (!st) return deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory", p->name);
    st->tensors = deft_calloc(nt, sizeof *st->tensors);
    st->meta = deft_calloc(1, sizeof *st->meta);
    enum deft_status s = DEFT_OK;
    if (!st->tensors || !st->meta) goto oom;
    st->meta[0].key = deft_strdup("source_format");
    st->meta[0].value = deft_strdup(format);
    st->n_meta = 1;
    if (!st->meta[0].key || !st->meta[0].value) goto oom;
    for (size_t i = 0; i + 1 < d->u.seq.n; i += 2) {
        const struct pk_obj *k = d->u.seq.items[i], *v = d->u.seq.items[i + 1];
        if (k->kind != PK_STR || v->kind != PK_TENSOR) continue;
        const char *nm = k->u.str.s;
        if (!strncmp(nm, "module.", 7) && nm[7]) nm += 7;
        if (strlen(nm) != k->u.str.len - (size_t)(nm - k->u.str.s) || !*nm) {
            s = deft_set_error(DEFT_ERR_FORMAT, "%s: a tensor name is empty or holds a NUL byte",
                               p->name);
            goto fail;
        }
        struct deft_named_tensor *nt_ = &st->tensors[st->n_tensors];
        if ((s = build_tensor(p, nm, v, &nt_->tensor))) goto fail;
        nt_->name = deft_strdup(nm);
        st->n_tensors++;
        if (!nt_->name) goto oom;
    }
    /* names must be unique (after stripping "module.") */
    if ((s = deft_io_check_unique_names(st, p->name, " (after removing a 'module.' prefix)")))
        goto fail;
    *out = st;
    return DEFT_OK;
oom:
    s = deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory", p->name);
fail:
    free_out(st);
    return s;
}

/* ---- zip ------------------------------------------------------------------ */

static enum deft_status parse_zip(struct pth *p, struct deft_safetensors **out) {
    enum deft_status s = deft_zip_open(p->buf, p->len, p->name, &p->zip);
    if (s) return s;
    if (p->zip->n == 0) return deft_set_error(DEFT_ERR_FORMAT, "%s: empty ZIP archive", p->name);
    const char *first = p->zip->e[0].name, *slash = strchr(first, '/');
    if (!slash || (size_t)(slash - first) + 2 > sizeof p->root)
        return deft_set_error(DEFT_ERR_FORMAT, "%s: not a torch.save archive (entry '%.80s' is "
                              "not inside a folder)", p->name, first);
    memcpy(p->root, first, (size_t)(slash - first) + 1);
    p->root[slash - first + 1] = 0;
    char nm[4300];
    snprintf(nm, sizeof nm, "%sconstants.pkl", p->root);
    if (deft_zip_find(p->zip, nm))
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "%s is a TorchScript archive (torch.jit.save); "
                              "deft reads torch.save state dicts: save model.state_dict() with "
                              "torch.save", p->name);
    snprintf(nm, sizeof nm, "%sbyteorder", p->root);
    struct deft_zip_entry *e = deft_zip_find(p->zip, nm);
    const unsigned char *d;
    size_t n;
    if (e) {
        if ((s = deft_zip_data(e, p->name, &d, &n))) return s;
        if (!(n == 6 && !memcmp(d, "little", 6)))
            return deft_set_error(DEFT_ERR_UNSUPPORTED, "%s: big-endian checkpoints are not "
                                  "supported", p->name);
    }
    snprintf(nm, sizeof nm, "%sdata.pkl", p->root);
    if (!(e = deft_zip_find(p->zip, nm)))
        return deft_set_error(DEFT_ERR_FORMAT, "%s: not a torch.save archive (no %s)", p->name, nm);
    if ((s = deft_zip_data(e, p->name, &d, &n))) return s;
    struct pk_obj *top;
    size_t used;
    if ((s = pk_load(&p->arena, d, n, p->name, &top, &used))) return s;
    return collect(p, top, "pytorch zip", out);
}

/* ---- legacy ----------------------------------------------------------------- */

static const unsigned char legacy_magic[15] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                               0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};


/* The element type of a storage key, from the storage objects the pickle
 * made (sorted by key). */
static bool key_elem(struct pk_obj **sts, size_t n, const char *key, enum pk_elem *e) {
    struct pk_obj k = {.kind = PK_STORAGE}, *kp = &k;
    k.u.storage.key = (char *)key;
    struct pk_obj **f = bsearch(&kp, sts, n, sizeof *sts, cmp_storage);
    if (!f) return false;
    *e = (*f)->u.storage.elem;
    return true;
}

static enum deft_status read_blobs(struct pth *p, const struct pk_obj *keys, struct pk_obj **sts,
                                   size_t ns, size_t *posp);

static enum deft_status parse_legacy(struct pth *p, struct deft_safetensors **out) {
    size_t pos = sizeof legacy_magic, used;
    struct pk_obj *o;
    enum deft_status s;
    if ((s = pk_load(&p->arena, p->buf + pos, p->len - pos, p->name, &o, &used))) return s;
    pos += used;
    if (o->kind != PK_INT || o->u.i != 1001)
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "%s: unknown legacy torch.save protocol "
                              "version", p->name);
    if ((s = pk_load(&p->arena, p->buf + pos, p->len - pos, p->name, &o, &used))) return s;
    pos += used;
    if (o->kind != PK_DICT)
        return deft_set_error(DEFT_ERR_FORMAT, "%s: legacy sys_info is not a dict", p->name);
    const struct pk_obj *le = pk_dict_get(o, "little_endian");
    if (le && le->kind == PK_BOOL && !le->u.b)
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "%s: big-endian checkpoints are not "
                              "supported", p->name);
    struct pk_obj *top, *keys;
    if ((s = pk_load(&p->arena, p->buf + pos, p->len - pos, p->name, &top, &used))) return s;
    pos += used;
    if ((s = pk_load(&p->arena, p->buf + pos, p->len - pos, p->name, &keys, &used))) return s;
    pos += used;
    if (keys->kind != PK_LIST)
        return deft_set_error(DEFT_ERR_FORMAT, "%s: legacy storage key list is not a list", p->name);
    size_t nk = keys->u.seq.n;
    if (nk > (p->len - pos) / 8)
        return deft_set_error(DEFT_ERR_FORMAT, "%s: more storages than the file can hold", p->name);
    size_t ns = 0;
    for (const struct pk_obj *q = p->arena.all; q; q = q->next_alloc) ns += q->kind == PK_STORAGE;
    struct pk_obj **sts = deft_malloc((ns ? ns : 1) * sizeof *sts);
    if (!sts) return deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory", p->name);
    ns = 0;
    for (struct pk_obj *q = p->arena.all; q; q = q->next_alloc)
        if (q->kind == PK_STORAGE) sts[ns++] = q;
    if (ns > 1) qsort(sts, ns, sizeof *sts, cmp_storage);
    s = read_blobs(p, keys, sts, ns, &pos);
    deft_free(sts);
    if (s) return s;
    if (pos != p->len)
        return deft_set_error(DEFT_ERR_FORMAT, "%s: %zu unexpected bytes after the last storage",
                              p->name, p->len - pos);
    if (p->n_blobs > 1) qsort(p->blobs, p->n_blobs, sizeof *p->blobs, cmp_blob);
    for (size_t i = 1; i < p->n_blobs; i++)
        if (!strcmp(p->blobs[i - 1].key, p->blobs[i].key))
            return deft_set_error(DEFT_ERR_FORMAT, "%s: storage '%.40s' appears twice", p->name,
                                  p->blobs[i].key);
    return collect(p, top, "pytorch legacy", out);
}

static enum deft_status read_blobs(struct pth *p, const struct pk_obj *keys, struct pk_obj **sts,
                                   size_t ns, size_t *posp) {
    size_t nk = keys->u.seq.n, pos = *posp;
    if (nk) {
        p->blobs = deft_calloc(nk, sizeof *p->blobs);
        if (!p->blobs) return deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory", p->name);
    }
    for (size_t i = 0; i < nk; i++) {
        const struct pk_obj *k = keys->u.seq.items[i];
        if (k->kind != PK_STR)
            return deft_set_error(DEFT_ERR_FORMAT, "%s: a legacy storage key is not a string",
                                  p->name);
        enum pk_elem e;
        if (!key_elem(sts, ns, k->u.str.s, &e))
            return deft_set_error(DEFT_ERR_FORMAT, "%s: storage '%.40s' is not used by any tensor",
                                  p->name, k->u.str.s);
        if (p->len - pos < 8)
            return deft_set_error(DEFT_ERR_FORMAT, "%s: truncated legacy storage '%.40s'",
                                  p->name, k->u.str.s);
        uint64_t numel = 0;
        for (int b = 7; b >= 0; b--) numel = numel << 8 | p->buf[pos + (size_t)b];
        pos += 8;
        size_t es = pk_elem_size(e);
        if (numel > (p->len - pos) / es)
            return deft_set_error(DEFT_ERR_FORMAT, "%s: legacy storage '%.40s' runs past the end "
                                  "of the file (truncated?)", p->name, k->u.str.s);
        p->blobs[i] = (struct blob){.key = k->u.str.s, .elem = e, .data = p->buf + pos,
                                    .numel = numel};
        p->n_blobs++;
        pos += (size_t)numel * es;
    }
    *posp = pos;
    return DEFT_OK;
}

/* ---- entry points ------------------------------------------------------------ */

enum deft_status deft_pth_parse_impl(const void *buf, size_t len, const char *name,
                                     struct deft_safetensors **out) {
    *out = NULL;
    struct pth p = {.name = name, .buf = buf, .len = len};
    enum deft_status s;
    if (len >= 4 && !memcmp(buf, "PK\x03\x04", 4))
        s = parse_zip(&p, out);
    else if (len >= sizeof legacy_magic && !memcmp(buf, legacy_magic, sizeof legacy_magic))
        s = parse_legacy(&p, out);
    else
        s = deft_set_error(DEFT_ERR_FORMAT, "%s is not a PyTorch checkpoint (neither a torch.save "
                           "ZIP archive nor the legacy format)", name);
    pk_arena_free(&p.arena);
    deft_zip_free(p.zip);
    deft_free(p.blobs);
    return s;
}

enum deft_status deft_pth_parse(const void *buf, size_t len, const char *name,
                                struct deft_safetensors **out) {
    if (!buf || !name || !out) {
        if (out) *out = NULL;
        return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_pth_parse: NULL argument");
    }
    return deft_pth_parse_impl(buf, len, name, out);
}

enum deft_status deft_pth_read(const char *path, struct deft_safetensors **out) {
    *out = NULL;
    void *buf;
    size_t len;
    enum deft_status s = deft_file_read(path, PTH_MAX_FILE, &buf, &len);
    if (s) return s;
    s = deft_pth_parse_impl(buf, len, path, out);
    deft_free(buf);
    return s;
}

/* ---- format detection ------------------------------------------------------ */

enum deft_status deft_weights_format(const char *path, const char **format) {
    *format = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return deft_set_error(errno == ENOENT ? DEFT_ERR_NOT_FOUND : DEFT_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || S_ISDIR(sb.st_mode)) {
        fclose(f);
        return deft_set_error(DEFT_ERR_IO, "cannot read %s: %s", path,
                              S_ISDIR(sb.st_mode) ? "it is a directory" : strerror(errno));
    }
    unsigned char h[16] = {0};
    size_t n = fread(h, 1, sizeof h, f);
    long long size = (long long)sb.st_size;
    fclose(f);
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--) hn = hn << 8 | h[i];
    if (n >= 4 && !memcmp(h, "PK\x03\x04", 4))
        *format = "pth";
    else if (n >= 15 && !memcmp(h, legacy_magic, 15))
        *format = "pth-legacy";
    else if (n >= 8 && !memcmp(h, "\x89HDF\r\n\x1a\n", 8))
        *format = "hdf5";
    else if (n >= 9 && h[8] == '{' && size > 8 && hn <= (uint64_t)size - 8)
        *format = "safetensors";
    else if (n >= 2 && h[0] == 0x80 && h[1] >= 2 && h[1] <= 5)
        *format = "pickle";
    else if (n >= 2 && h[0] == 0x08 && h[1] >= 1 && h[1] <= 12)
        *format = "onnx"; /* ModelProto starts with ir_version (field 1, varint) */
    else
        *format = "unknown";
    return DEFT_OK;
}

enum deft_status deft_weights_read(const char *path, struct deft_safetensors **out) {
    *out = NULL;
    const char *fmt;
    enum deft_status s = deft_weights_format(path, &fmt);
    if (s) return s;
    if (!strcmp(fmt, "pth") || !strcmp(fmt, "pth-legacy")) return deft_pth_read(path, out);
    if (!strcmp(fmt, "safetensors")) return deft_safetensors_read(path, out);
    if (!strcmp(fmt, "hdf5")) return deft_keras_h5_read(path, out);
    if (!strcmp(fmt, "onnx")) {
        /* names as the graph importer gives them ("layer1.0.conv1.weight" for a
         * generated "onnx::Conv_191"); the raw initializers when the graph has
         * an op deft does not convert */
        struct deft_graph *g = NULL;
        s = deft_onnx_read(path, &g, out);
        deft_graph_free(g);
        if (s == DEFT_ERR_UNSUPPORTED || s == DEFT_ERR_SHAPE) {
            deft_clear_error();
            s = deft_onnx_read(path, NULL, out);
        }
        return s;
    }
    if (!strcmp(fmt, "pickle"))
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "%s is a bare Python pickle, not a torch.save "
                              "file: save the state dict with torch.save", path);
    return deft_set_error(DEFT_ERR_FORMAT, "%s: unrecognized weights format (expected a PyTorch "
                          ".pth/.pt, a .safetensors, a Keras .h5 or an ONNX file)", path);
}
