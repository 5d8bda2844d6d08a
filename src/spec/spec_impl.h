/* spec_impl.h (internal to deft) - the generic spec tree, its two parsers and
 * the schema-table mapper that turns a tree into a typed config struct.
 *
 *   text --prototxt.c / yaml_tree.c--> tree of deft_spec_node (map/list/scalar,
 *   each with file:line:col) --schema.c + a table per struct--> typed struct.
 *
 * Task modules (src/tasks/<net>) describe their config with a
 * `struct deft_spec_schema` table and reuse everything here: defaults,
 * validation (types, ranges, required fields, oneof groups), "did you mean"
 * for unknown keys, `--set` overrides, printing as YAML and --help-spec.
 * Nothing here aborts on user input: every problem is a status plus a message
 * (deft_last_error) that starts with "file:line:col: ".
 */
#ifndef DEFT_SPEC_IMPL_H
#define DEFT_SPEC_IMPL_H

#include <stdio.h>
#include <stddef.h>
#include <stdbool.h>
#include "deft/core.h"
#include "deft/spec.h"

/* Nesting limit for both parsers (maps/lists/messages inside each other). */
#define DEFT_SPEC_MAX_DEPTH 64
/* Spec files larger than this are refused (they are hand-written text). */
#define DEFT_SPEC_MAX_BYTES (16u << 20)

/* ---- generic tree ------------------------------------------------------- */

enum deft_spec_kind {
    DEFT_SPEC_NULL = 0, /* YAML null / ~ / empty value */
    DEFT_SPEC_SCALAR,   /* text in node->text */
    DEFT_SPEC_MAP,      /* kids with ->key set, in file order, keys unique */
    DEFT_SPEC_LIST,     /* kids without keys */
};

struct deft_spec_node {
    enum deft_spec_kind kind;
    const char *file;         /* not owned: outlives the tree (the caller's path) */
    int line, col;            /* 1-based position of the value */
    int key_line, key_col;    /* position of the key when a map member */
    char *key;                /* map member name (NULL otherwise) */
    char *text;               /* scalar text, NUL-terminated (may contain no NUL) */
    bool quoted;              /* scalar was written quoted ('x' / "x") */
    bool repeated;            /* list made by repeating a prototxt field (a: 1 a: 2) */
    struct deft_spec_node **kids;
    int n, cap;
};

struct deft_spec_node *deft_spec_node_new(enum deft_spec_kind kind, const char *file, int line,
                                          int col);
void deft_spec_node_free(struct deft_spec_node *n);
/* Append kid to a map or list (takes ownership; frees kid on failure). */
DEFT_NODISCARD enum deft_status deft_spec_node_push(struct deft_spec_node *parent,
                                                   struct deft_spec_node *kid);
/* Member `key` of a map (NULL when absent or not a map). */
const struct deft_spec_node *deft_spec_map_get(const struct deft_spec_node *map, const char *key);

/* Parsers. `file` names the text in messages and must outlive the tree. On
 * success *out is a MAP (an empty document gives an empty map). */
DEFT_NODISCARD enum deft_status deft_spec_parse_prototxt(const char *text, size_t n,
                                                        const char *file,
                                                        struct deft_spec_node **out);
DEFT_NODISCARD enum deft_status deft_spec_parse_yaml(const char *text, size_t n, const char *file,
                                                    struct deft_spec_node **out);

/* Levenshtein distance (bytes), capped at 99. */
int deft_spec_edit_distance(const char *a, const char *b);

/* ---- schema tables ------------------------------------------------------ */

enum deft_spec_type {
    DEFT_SPEC_T_STRING = 0, /* char * (never NULL after defaults; "" when unset) */
    DEFT_SPEC_T_INT,        /* int */
    DEFT_SPEC_T_FLOAT,      /* double */
    DEFT_SPEC_T_BOOL,       /* bool */
    DEFT_SPEC_T_ENUM,       /* int (an enum), names in field->enums */
    DEFT_SPEC_T_INT_LIST,   /* int * + int count at count_offset */
    DEFT_SPEC_T_FLOAT_LIST, /* double * + int count */
    DEFT_SPEC_T_STRING_LIST,/* char ** + int count */
    DEFT_SPEC_T_FLOAT_MAP,  /* struct deft_spec_kv * + int count (proto map<string,float>) */
    DEFT_SPEC_T_MSG,        /* nested struct at offset, its table in ->sub; optional bool
                               "present" flag at count_offset */
    DEFT_SPEC_T_ANY,        /* anything is accepted and dropped (blocks deft ignores) */
    DEFT_SPEC_T_STRING_MAP, /* struct deft_spec_str_kv * + int count (proto map<string,string>) */
    DEFT_SPEC_T_MSG_LIST,   /* repeated block: array of structs (sub->size bytes each) + int
                               count; in --set, a numeric key picks the element (.0.x=...) */
};

struct deft_spec_enum_val {
    const char *name; /* first entry for a value is the canonical spelling */
    int value;
};

enum {
    DEFT_SPEC_REQUIRED = 1u << 0, /* must appear (for oneof members: one of the group must) */
    DEFT_SPEC_IGNORED = 1u << 1,  /* TAO field deft parses but does not act on (notice) */
    DEFT_SPEC_MIN = 1u << 2,      /* value >= min (lists: every element) */
    DEFT_SPEC_MAX = 1u << 3,      /* value <= max */
    DEFT_SPEC_MIN_EXCL = 1u << 4, /* value > min */
    DEFT_SPEC_DEFT = 1u << 5,     /* deft extension (not in TAO): marked in --help-spec */
};

#define DEFT_SPEC_NO_OFFSET ((size_t)-1)

struct deft_spec_schema;

struct deft_spec_field {
    const char *key;
    enum deft_spec_type type;
    size_t offset;       /* where the value lives (unused for T_ANY) */
    size_t count_offset; /* lists/maps: the int count; T_MSG: bool present flag or NO_OFFSET */
    const char *def;     /* default as text (parsed like a value); NULL = zero/empty */
    double min, max;     /* with DEFT_SPEC_MIN / _MAX */
    unsigned flags;
    const char *help;
    const struct deft_spec_schema *sub;        /* T_MSG */
    const struct deft_spec_enum_val *enums;    /* T_ENUM, ends with {NULL, 0} */
    const char *oneof;                         /* T_MSG members of a oneof share a name */
};

struct deft_spec_schema {
    const char *name; /* for help output ("ModelConfig") */
    const struct deft_spec_field *fields;
    int n_fields;
    size_t size;      /* sizeof the struct: needed when the schema is a T_MSG_LIST element */
};

/* Mapping context: what `apply` needs besides the table. */
struct deft_spec_ctx {
    /* Paths of --set overrides still to come ("train_config.n_epochs"): a
     * required field one of them sets is not reported missing. */
    const char *const *pending;
    int n_pending;
    bool skip_required;     /* overrides: do not check required fields */
    const char *help_cmd;   /* named in unknown-key messages ("deft classification --help-spec") */
    char *ignored;          /* comma-separated paths of IGNORED fields met (deft_malloc) */
};

/* Set every field of obj (a struct described by s) to its default. On
 * failure obj may be half-filled: deft_spec_release it. */
DEFT_NODISCARD enum deft_status deft_spec_defaults(const struct deft_spec_schema *s, void *obj);
/* Free what obj owns (strings, lists, maps), recursively; leaves zeros. */
void deft_spec_release(const struct deft_spec_schema *s, void *obj);
/* Copy tree values into obj (fields absent from the tree keep their value).
 * `path` is the dotted prefix of this block ("" at the top). */
DEFT_NODISCARD enum deft_status deft_spec_apply(const struct deft_spec_schema *s, void *obj,
                                               const struct deft_spec_node *map,
                                               const char *path, struct deft_spec_ctx *ctx);
/* Parse "key.path=value" into a small tree rooted at a MAP whose scalar
 * carries file "--set", line = index (1-based) and col = column in the
 * argument. `label` must outlive the tree. */
DEFT_NODISCARD enum deft_status deft_spec_override_tree(const char *arg, int index,
                                                       const char *label,
                                                       struct deft_spec_node **out,
                                                       char **path_out);
/* Mark the other members of every oneof group set by `tree` as absent (an
 * override `optimizer.adam.lr=..` switches the optimizer to adam). */
void deft_spec_override_oneofs(const struct deft_spec_schema *s, void *obj,
                               const struct deft_spec_node *tree);
/* Write obj as YAML (block style), indented by `indent` spaces. IGNORED
 * fields equal to their value in `defaults` (a defaulted struct; may be
 * NULL) are left out, so unused TAO fields do not clutter the output. */
void deft_spec_print(const struct deft_spec_schema *s, const void *obj, const void *defaults, FILE *f,
                     int indent);
/* --help-spec: one line per field with type, default, range and meaning. */
void deft_spec_help(const struct deft_spec_schema *s, FILE *f, const char *prefix);

/* ---- shared load path (spec_load.c), used by the YOLO spec and later ones --- */

/* Whole file into memory (DEFT_ERR_NOT_FOUND when it does not exist: a wrong
 * -e path is bad input). *text is NUL-terminated; deft_free it. */
DEFT_NODISCARD enum deft_status deft_spec_read_file(const char *path, char **text, size_t *n);
/* Relative paths written in a spec file (fields[i] points at a deft_malloc'd
 * string, names[i] its key) move to the spec's folder when they exist
 * there; one log line lists the moved keys. */
DEFT_NODISCARD enum deft_status deft_spec_resolve_paths(char **const *fields, const char *const *names, int n,
                                                        const char *spec_path, const char *spec_text);
/* Flavour from the name's extension, else from the text (prototxt when the
 * first field opens a block). Never returns AUTO or TAO_PYT. */
enum deft_spec_format deft_spec_detect_format(const char *name, const char *text, size_t n);
/* The node at a dotted path ("a.b.c") under root, NULL when absent. */
const struct deft_spec_node *deft_spec_node_at(const struct deft_spec_node *root, const char *path);
/* "file:line:col" of the value at `path` when the file wrote it, else "file". */
void deft_spec_where(const struct deft_spec_node *root, const char *file, const char *path, char *buf,
                     size_t n);

/* Where a value came from, for the task specs' messages: the parsed tree
 * and the --set overrides in order. */
struct deft_spec_origin {
    const struct deft_spec_node *tree;
    const char *file;
    const char *const *ov;
    int n_ov;
};
/* The last --set touching `path` (either one a dotted prefix of the other), NULL: none. */
const char *deft_spec_override_of(const struct deft_spec_origin *o, const char *path);
/* "--set '...'" when an override wrote `path`, else deft_spec_where's "file:line:col" or "file". */
void deft_spec_origin_where(const struct deft_spec_origin *o, const char *path, char *buf, size_t n);
/* As deft_spec_origin_where, at `fallback` when `path` was neither written nor set (a default). */
void deft_spec_origin_where_or(const struct deft_spec_origin *o, const char *path, const char *fallback, char *buf,
                               size_t n);
/* Element i of the repeated block `list` (a lone block is element 0), or its member `key`:
 * a --set of the element or of the whole list, else its place, else the list's. */
void deft_spec_origin_where_element(const struct deft_spec_origin *o, const char *list, int i, const char *key,
                                    char *buf, size_t n);

/* One spec through schema `s` into obj: overrides checked first, text parsed
 * (fmt AUTO: detected), defaults, the tree applied, the overrides applied in
 * order. On success *tree_out holds the parsed tree (for positions in later
 * checks; deft_spec_node_free it), *ignored_out the IGNORED fields met
 * (deft_malloc'd, never NULL) and *fmt_out the flavour. On failure obj may be
 * half-filled: deft_spec_release it. */
DEFT_NODISCARD enum deft_status deft_spec_load_into(const struct deft_spec_schema *s, void *obj,
                                                   const char *text, size_t n, const char *file,
                                                   enum deft_spec_format fmt,
                                                   const char *const *overrides, int n_overrides,
                                                   const char *help_cmd,
                                                   struct deft_spec_node **tree_out,
                                                   char **ignored_out,
                                                   enum deft_spec_format *fmt_out);

/* A task spec's whole parse: deft_spec_load_into, then resolve(obj, origin)
 * while the tree is alive (positions for its messages), the tree freed. On
 * success *file_out (a copy of name, or "spec") and *ignored_out (never NULL)
 * are the caller's, *fmt_out the flavour; on failure nothing is set and obj
 * may be half-filled (the caller frees it). */
typedef enum deft_status (*deft_spec_resolve_fn)(void *obj, const struct deft_spec_origin *o);
DEFT_NODISCARD enum deft_status deft_spec_parse_resolved(const struct deft_spec_schema *s, void *obj,
                                                        const char *text, size_t n, const char *name,
                                                        enum deft_spec_format fmt, const char *const *overrides,
                                                        int n_overrides, const char *help_cmd,
                                                        deft_spec_resolve_fn resolve, char **file_out,
                                                        char **ignored_out, enum deft_spec_format *fmt_out);

/* Scalar conversions shared with task code. */
bool deft_spec_parse_double(const char *s, double *out);
bool deft_spec_parse_int(const char *s, long long *out);
bool deft_spec_parse_bool(const char *s, bool *out);
/* Shortest text that parses back to exactly v ("0.01", "5e-05"). */
void deft_spec_format_double(double v, char *buf, size_t n);

#endif
