/* prototxt.c - protobuf text format (as TAO's .txt specs use it) -> spec tree.
 *
 * Grammar accepted (a superset of what protoc's TextFormat writes):
 *   message := { field [',' | ';'] }
 *   field   := NAME [':'] ( '{' message '}' | '<' message '>' )
 *            | NAME ':' ( scalar | '[' [item {',' item}] ']' )
 *   scalar  := STRING {STRING} | NUMBER | IDENT      ("a" "b" concatenate)
 * Comments run from '#' to the end of the line. A field given several times
 * (`freeze_blocks: 0  freeze_blocks: 1`) becomes one LIST node marked
 * `repeated`, so the schema mapper can accept it for repeated fields and
 * reject it (naming both lines) for singular ones. Hand-written lexer over a
 * bounded buffer: any byte sequence gives a tree or a status, never a crash. */
#include <string.h>
#include "spec/spec_impl.h"

enum tok_kind { TK_EOF = 0, TK_IDENT, TK_NUMBER, TK_STRING, TK_PUNCT, TK_ERROR };

struct tok {
    enum tok_kind kind;
    int line, col;
    const char *start; /* IDENT/NUMBER: in the source */
    size_t len;
    char punct;
};

struct parser {
    const char *src, *file;
    size_t n, pos;
    int line, col;
    struct tok cur;
    char *sbuf; /* decoded string of the current STRING token */
    size_t slen, scap;
    enum deft_status err; /* set once an error was recorded */
};

#define MAX_MAP_MEMBERS 10000

static enum deft_status fail(struct parser *p, int line, int col, const char *fmt, const char *a,
                             const char *b) {
    char msg[512];
    snprintf(msg, sizeof msg, fmt, a ? a : "", b ? b : "");
    p->err = deft_set_error(DEFT_ERR_PARSE, "%s:%d:%d: %s", p->file, line, col, msg);
    return p->err;
}

static int peekc(const struct parser *p, size_t off) {
    return p->pos + off < p->n ? (unsigned char)p->src[p->pos + off] : -1;
}

static void bump(struct parser *p) {
    if (p->src[p->pos] == '\n') {
        p->line++;
        p->col = 1;
    } else {
        p->col++;
    }
    p->pos++;
}

static bool is_ident_start(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_ident(int c) { return is_ident_start(c) || (c >= '0' && c <= '9'); }
static bool is_digit(int c) { return c >= '0' && c <= '9'; }

static enum deft_status sbuf_put(struct parser *p, char c) {
    if (p->slen + 1 >= p->scap) {
        size_t cap = p->scap ? p->scap * 2 : 64;
        char *b = deft_realloc(p->sbuf, cap);
        if (!b) return p->err = deft_set_error(DEFT_ERR_NOMEM, "out of memory reading %s", p->file);
        p->sbuf = b;
        p->scap = cap;
    }
    p->sbuf[p->slen++] = c;
    p->sbuf[p->slen] = 0;
    return DEFT_OK;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Lex a quoted string, appending its decoded bytes to sbuf. */
static enum deft_status lex_string(struct parser *p) {
    int line = p->line, col = p->col;
    char q = p->src[p->pos];
    bump(p);
    for (;;) {
        int c = peekc(p, 0);
        if (c < 0 || c == '\n')
            return fail(p, line, col, "unterminated string: add the closing %s", q == '"' ? "\"" : "'",
                        NULL);
        if (c == 0) return fail(p, p->line, p->col, "NUL byte inside a string%s", NULL, NULL);
        if (c == q) {
            bump(p);
            return DEFT_OK;
        }
        if (c != '\\') {
            if (sbuf_put(p, (char)c)) return p->err;
            bump(p);
            continue;
        }
        int eline = p->line, ecol = p->col;
        bump(p);
        c = peekc(p, 0);
        if (c < 0) continue; /* reported as unterminated above */
        int v;
        switch (c) {
        case 'n': v = '\n'; break;
        case 't': v = '\t'; break;
        case 'r': v = '\r'; break;
        case 'a': v = '\a'; break;
        case 'b': v = '\b'; break;
        case 'f': v = '\f'; break;
        case 'v': v = '\v'; break;
        case '\\': v = '\\'; break;
        case '\'': v = '\''; break;
        case '"': v = '"'; break;
        case '?': v = '?'; break;
        case 'x': case 'X': {
            bump(p);
            int h1 = hexval(peekc(p, 0));
            if (h1 < 0) return fail(p, eline, ecol, "bad escape: \\x needs hex digits%s", NULL, NULL);
            bump(p);
            v = h1;
            int h2 = hexval(peekc(p, 0));
            if (h2 >= 0) {
                v = v * 16 + h2;
                bump(p);
            }
            if (v == 0) return fail(p, eline, ecol, "NUL byte inside a string%s", NULL, NULL);
            if (sbuf_put(p, (char)v)) return p->err;
            continue;
        }
        default:
            if (c >= '0' && c <= '7') {
                v = 0;
                for (int k = 0; k < 3 && peekc(p, 0) >= '0' && peekc(p, 0) <= '7'; k++) {
                    v = v * 8 + (peekc(p, 0) - '0');
                    bump(p);
                }
                if (v == 0 || v > 255)
                    return fail(p, eline, ecol, "bad octal escape in string%s", NULL, NULL);
                if (sbuf_put(p, (char)v)) return p->err;
                continue;
            }
            {
                char e[8];
                snprintf(e, sizeof e, "\\%c", c >= 32 && c < 127 ? c : '?');
                return fail(p, eline, ecol, "unknown escape '%s' in string", e, NULL);
            }
        }
        if (sbuf_put(p, (char)v)) return p->err;
        bump(p);
    }
}

/* Read the next token into p->cur. */
static enum deft_status next(struct parser *p) {
    struct tok *t = &p->cur;
    for (;;) {
        int c = peekc(p, 0);
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v') {
            bump(p);
        } else if (c == '#') {
            while (peekc(p, 0) >= 0 && peekc(p, 0) != '\n') bump(p);
        } else {
            break;
        }
    }
    t->line = p->line;
    t->col = p->col;
    t->start = p->src + p->pos;
    t->len = 0;
    int c = peekc(p, 0);
    if (c < 0) {
        t->kind = TK_EOF;
        return DEFT_OK;
    }
    if (c != 0 && strchr("{}<>[]:,;", c)) {
        t->kind = TK_PUNCT;
        t->punct = (char)c;
        bump(p);
        return DEFT_OK;
    }
    if (c == '"' || c == '\'') {
        t->kind = TK_STRING;
        p->slen = 0;
        if (sbuf_put(p, 0)) return p->err;
        p->slen = 0;
        if (lex_string(p)) return p->err;
        /* adjacent strings concatenate */
        for (;;) {
            size_t save = p->pos;
            int sl = p->line, sc = p->col;
            while (peekc(p, 0) == ' ' || peekc(p, 0) == '\t' || peekc(p, 0) == '\r' ||
                   peekc(p, 0) == '\n')
                bump(p);
            if (peekc(p, 0) == '"' || peekc(p, 0) == '\'') {
                if (lex_string(p)) return p->err;
            } else {
                p->pos = save;
                p->line = sl;
                p->col = sc;
                break;
            }
        }
        return DEFT_OK;
    }
    if (is_ident_start(c)) {
        while (is_ident(peekc(p, 0))) bump(p);
        t->kind = TK_IDENT;
        t->len = (size_t)(p->src + p->pos - t->start);
        return DEFT_OK;
    }
    if (is_digit(c) || c == '.' || c == '-' || c == '+') {
        if (c == '-' || c == '+') bump(p);
        int prev = 0;
        while (peekc(p, 0) >= 0) {
            int d = peekc(p, 0);
            bool exp_sign = (d == '-' || d == '+') && (prev == 'e' || prev == 'E');
            if (!(is_ident(d) || d == '.' || exp_sign)) break;
            prev = d;
            bump(p);
        }
        t->kind = TK_NUMBER;
        t->len = (size_t)(p->src + p->pos - t->start);
        if (t->len == 1 && (c == '-' || c == '+' || c == '.'))
            return fail(p, t->line, t->col, "'%s' is not a number", c == '-' ? "-" : c == '+' ? "+" : ".",
                        NULL);
        return DEFT_OK;
    }
    char b[32];
    if (c >= 32 && c < 127)
        snprintf(b, sizeof b, "'%c'", c);
    else
        snprintf(b, sizeof b, "byte 0x%02x", (unsigned)c);
    return fail(p, t->line, t->col, "unexpected %s: is this a protobuf text spec?", b, NULL);
}

static void describe(const struct parser *p, char *buf, size_t n) {
    const struct tok *t = &p->cur;
    switch (t->kind) {
    case TK_EOF: snprintf(buf, n, "end of file"); break;
    case TK_PUNCT: snprintf(buf, n, "'%c'", t->punct); break;
    case TK_STRING: snprintf(buf, n, "string \"%.40s\"", p->sbuf ? p->sbuf : ""); break;
    default: snprintf(buf, n, "'%.*s'", (int)(t->len > 40 ? 40 : t->len), t->start); break;
    }
}

static char *dup_n(const char *s, size_t n) {
    char *d = deft_malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

/* Scalar node from the current token (STRING, NUMBER or IDENT). */
static enum deft_status scalar_node(struct parser *p, struct deft_spec_node **out) {
    struct deft_spec_node *n = deft_spec_node_new(DEFT_SPEC_SCALAR, p->file, p->cur.line, p->cur.col);
    if (!n) return p->err = deft_set_error(DEFT_ERR_NOMEM, "out of memory reading %s", p->file);
    if (p->cur.kind == TK_STRING) {
        n->text = dup_n(p->sbuf ? p->sbuf : "", p->slen);
        n->quoted = true;
    } else {
        n->text = dup_n(p->cur.start, p->cur.len);
    }
    if (!n->text) {
        deft_spec_node_free(n);
        return p->err = deft_set_error(DEFT_ERR_NOMEM, "out of memory reading %s", p->file);
    }
    *out = n;
    return DEFT_OK;
}

/* Add `kid` (key already set) to map, folding repeated fields into a list. */
static enum deft_status add_field(struct parser *p, struct deft_spec_node *map,
                                  struct deft_spec_node *kid) {
    for (int i = 0; i < map->n; i++) {
        struct deft_spec_node *old = map->kids[i];
        if (strcmp(old->key, kid->key) != 0) continue;
        if (old->kind == DEFT_SPEC_LIST) {
            old->repeated = true;
            if (kid->kind == DEFT_SPEC_LIST) { /* a: [1]  a: [2] -> [1, 2] */
                for (int k = 0; k < kid->n; k++) {
                    enum deft_status s = deft_spec_node_push(old, kid->kids[k]);
                    kid->kids[k] = NULL;
                    if (s) {
                        deft_spec_node_free(kid);
                        return p->err = s;
                    }
                }
                kid->n = 0;
                deft_spec_node_free(kid);
                return DEFT_OK;
            }
            return p->err = deft_spec_node_push(old, kid);
        }
        struct deft_spec_node *list = deft_spec_node_new(DEFT_SPEC_LIST, p->file, old->line, old->col);
        struct deft_spec_node **kids = deft_malloc(4 * sizeof *kids);
        if (!list || !kids) {
            deft_spec_node_free(list);
            deft_free(kids);
            deft_spec_node_free(kid);
            return p->err = deft_set_error(DEFT_ERR_NOMEM, "out of memory reading %s", p->file);
        }
        list->kids = kids;
        list->cap = 4;
        list->repeated = true;
        list->key = old->key;
        list->key_line = old->key_line;
        list->key_col = old->key_col;
        old->key = NULL;
        list->kids[list->n++] = old;
        map->kids[i] = list;
        return p->err = deft_spec_node_push(list, kid);
    }
    if (map->n >= MAX_MAP_MEMBERS) {
        fail(p, kid->key_line, kid->key_col, "too many fields in one block%s%s", NULL, NULL);
        deft_spec_node_free(kid);
        return p->err;
    }
    return p->err = deft_spec_node_push(map, kid);
}

static enum deft_status parse_fields(struct parser *p, struct deft_spec_node *map, int depth,
                                     char closer, const char *opener_name, int oline, int ocol);

/* Value after "name:" starting at the current token; *out gets the node. */
static enum deft_status parse_value(struct parser *p, const char *name, bool colon, int depth,
                                    struct deft_spec_node **out) {
    char d[64];
    *out = NULL;
    if (p->cur.kind == TK_PUNCT && (p->cur.punct == '{' || p->cur.punct == '<')) {
        if (depth >= DEFT_SPEC_MAX_DEPTH)
            return fail(p, p->cur.line, p->cur.col, "blocks nested too deeply (limit 64) at '%s'%s",
                        name, NULL);
        char closer = p->cur.punct == '{' ? '}' : '>';
        struct deft_spec_node *m = deft_spec_node_new(DEFT_SPEC_MAP, p->file, p->cur.line, p->cur.col);
        if (!m) return p->err = deft_set_error(DEFT_ERR_NOMEM, "out of memory reading %s", p->file);
        int ol = p->cur.line, oc = p->cur.col;
        if (next(p) || parse_fields(p, m, depth + 1, closer, name, ol, oc)) {
            deft_spec_node_free(m);
            return p->err;
        }
        if (next(p)) { /* past the closer */
            deft_spec_node_free(m);
            return p->err;
        }
        *out = m;
        return DEFT_OK;
    }
    if (!colon) {
        describe(p, d, sizeof d);
        return fail(p, p->cur.line, p->cur.col, "expected ':' or '{' after field '%s', got %s", name, d);
    }
    if (p->cur.kind == TK_PUNCT && p->cur.punct == '[') {
        if (depth >= DEFT_SPEC_MAX_DEPTH)
            return fail(p, p->cur.line, p->cur.col, "lists nested too deeply (limit 64) at '%s'%s",
                        name, NULL);
        struct deft_spec_node *l = deft_spec_node_new(DEFT_SPEC_LIST, p->file, p->cur.line, p->cur.col);
        if (!l) return p->err = deft_set_error(DEFT_ERR_NOMEM, "out of memory reading %s", p->file);
        int ol = p->cur.line, oc = p->cur.col;
        if (next(p)) goto list_fail;
        if (p->cur.kind == TK_PUNCT && p->cur.punct == ']') {
            if (next(p)) goto list_fail;
            *out = l;
            return DEFT_OK;
        }
        for (;;) {
            struct deft_spec_node *item = NULL;
            if (p->cur.kind == TK_EOF) {
                char pos[32];
                snprintf(pos, sizeof pos, "%d:%d", ol, oc);
                fail(p, p->cur.line, p->cur.col, "unterminated list '%s' opened at %s: add ']'", name, pos);
                goto list_fail;
            }
            if (p->cur.kind == TK_PUNCT && (p->cur.punct == '{' || p->cur.punct == '<')) {
                if (parse_value(p, name, true, depth + 1, &item)) goto list_fail;
            } else if (p->cur.kind == TK_STRING || p->cur.kind == TK_NUMBER || p->cur.kind == TK_IDENT) {
                if (scalar_node(p, &item)) goto list_fail;
                if (next(p)) {
                    deft_spec_node_free(item);
                    goto list_fail;
                }
            } else {
                describe(p, d, sizeof d);
                fail(p, p->cur.line, p->cur.col, "expected a list item in '%s', got %s", name, d);
                goto list_fail;
            }
            if (deft_spec_node_push(l, item)) {
                p->err = DEFT_ERR_NOMEM;
                goto list_fail;
            }
            if (p->cur.kind == TK_PUNCT && p->cur.punct == ',') {
                if (next(p)) goto list_fail;
                continue;
            }
            if (p->cur.kind == TK_PUNCT && p->cur.punct == ']') {
                if (next(p)) goto list_fail;
                *out = l;
                return DEFT_OK;
            }
            describe(p, d, sizeof d);
            fail(p, p->cur.line, p->cur.col, "expected ',' or ']' in list '%s', got %s", name, d);
            goto list_fail;
        }
    list_fail:
        deft_spec_node_free(l);
        return p->err;
    }
    if (p->cur.kind == TK_STRING || p->cur.kind == TK_NUMBER || p->cur.kind == TK_IDENT) {
        if (scalar_node(p, out)) return p->err;
        if (next(p)) {
            deft_spec_node_free(*out);
            *out = NULL;
            return p->err;
        }
        return DEFT_OK;
    }
    describe(p, d, sizeof d);
    return fail(p, p->cur.line, p->cur.col, "expected a value for '%s', got %s", name, d);
}

/* Fields until `closer` (0: end of file). On return p->cur is the closer. */
static enum deft_status parse_fields(struct parser *p, struct deft_spec_node *map, int depth,
                                     char closer, const char *opener_name, int oline, int ocol) {
    char d[64];
    for (;;) {
        if (p->cur.kind == TK_EOF) {
            if (!closer) return DEFT_OK;
            char pos[32];
            snprintf(pos, sizeof pos, "%d:%d", oline, ocol);
            return fail(p, p->cur.line, p->cur.col,
                        "unterminated block '%s' (opened at line:col %s): add the missing '}'",
                        opener_name, pos);
        }
        if (p->cur.kind == TK_PUNCT && closer && p->cur.punct == closer) return DEFT_OK;
        if (p->cur.kind == TK_PUNCT && (p->cur.punct == ',' || p->cur.punct == ';')) {
            if (next(p)) return p->err;
            continue;
        }
        if (p->cur.kind != TK_IDENT) {
            describe(p, d, sizeof d);
            if (p->cur.kind == TK_PUNCT && (p->cur.punct == '}' || p->cur.punct == '>'))
                return fail(p, p->cur.line, p->cur.col, "unexpected %s: no block is open here%s", d,
                            closer ? " (wrong closing bracket?)" : " (one '}' too many?)");
            return fail(p, p->cur.line, p->cur.col, "expected a field name, got %s%s", d, NULL);
        }
        char *name = dup_n(p->cur.start, p->cur.len);
        if (!name) return p->err = deft_set_error(DEFT_ERR_NOMEM, "out of memory reading %s", p->file);
        int kl = p->cur.line, kc = p->cur.col;
        bool colon = false;
        struct deft_spec_node *val = NULL;
        if (next(p)) goto fail_name;
        if (p->cur.kind == TK_PUNCT && p->cur.punct == ':') {
            colon = true;
            if (next(p)) goto fail_name;
        }
        if (parse_value(p, name, colon, depth, &val)) goto fail_name;
        val->key = name;
        val->key_line = kl;
        val->key_col = kc;
        if (add_field(p, map, val)) return p->err;
        continue;
    fail_name:
        deft_free(name);
        return p->err;
    }
}

enum deft_status deft_spec_parse_prototxt(const char *text, size_t n, const char *file,
                                          struct deft_spec_node **out) {
    *out = NULL;
    if (n > DEFT_SPEC_MAX_BYTES)
        return deft_set_error(DEFT_ERR_PARSE, "%s: spec file too large (%zu bytes)", file, n);
    struct parser p = {.src = text, .file = file, .n = n, .line = 1, .col = 1};
    struct deft_spec_node *root = deft_spec_node_new(DEFT_SPEC_MAP, file, 1, 1);
    if (!root) return deft_set_error(DEFT_ERR_NOMEM, "out of memory reading %s", file);
    enum deft_status s = next(&p);
    if (!s) s = parse_fields(&p, root, 0, 0, "", 1, 1);
    deft_free(p.sbuf);
    if (s) {
        deft_spec_node_free(root);
        return s;
    }
    *out = root;
    return DEFT_OK;
}
