/* spec_eval_list.c - TAO's SSD specs hold Python lists in strings and TAO
 * eval()s them; deft evaluates only numbers, + - * /, unary signs and
 * parentheses, with one level of nested lists or tuples (deft/ssd_spec.h).
 * Recursive descent over the text; nothing else is ever run. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "deft/ssd_spec.h"

struct cur {
    const char *s, *p;
    int depth;
    const char *err;
};

static void ws(struct cur *c) {
    while (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r') c->p++;
}

static bool fail(struct cur *c, const char *why) {
    if (!c->err) c->err = why;
    return false;
}

static bool expr(struct cur *c, double *v);

static bool number(struct cur *c, double *v) {
    char *end;
    if (!((*c->p >= '0' && *c->p <= '9') || *c->p == '.')) return fail(c, "expected a number");
    *v = strtod(c->p, &end);
    if (end == c->p) return fail(c, "expected a number");
    c->p = end;
    return true;
}

static bool primary(struct cur *c, double *v) {
    ws(c);
    if (*c->p == '-' || *c->p == '+') {
        bool neg = *c->p++ == '-';
        if (!primary(c, v)) return false;
        if (neg) *v = -*v;
        return true;
    }
    if (*c->p == '(') {
        if (++c->depth > 32) return fail(c, "too deeply nested");
        c->p++;
        if (!expr(c, v)) return false;
        ws(c);
        if (*c->p != ')') return fail(c, "expected ')'");
        c->p++;
        c->depth--;
        return true;
    }
    return number(c, v);
}

static bool term(struct cur *c, double *v) {
    if (!primary(c, v)) return false;
    for (;;) {
        ws(c);
        char op = *c->p;
        if (op != '*' || c->p[1] == '*') {
            if (op != '/' || c->p[1] == '/') break;
        }
        c->p++;
        double r;
        if (!primary(c, &r)) return false;
        if (op == '/' && r == 0) return fail(c, "division by zero");
        *v = op == '*' ? *v * r : *v / r;
    }
    return true;
}

static bool expr(struct cur *c, double *v) {
    if (!term(c, v)) return false;
    for (;;) {
        ws(c);
        char op = *c->p;
        if (op != '+' && op != '-') break;
        c->p++;
        double r;
        if (!term(c, &r)) return false;
        *v = op == '+' ? *v + r : *v - r;
    }
    if (!isfinite(*v)) return fail(c, "the value is not finite");
    return true;
}

/* A '(' opens a tuple when a ',' follows its first expression. */
static bool opens_tuple(struct cur *c) {
    struct cur t = *c;
    t.p++;
    double v;
    if (!expr(&t, &v)) return false;
    ws(&t);
    return *t.p == ',';
}

static bool seq(struct cur *c, char close, struct deft_spec_list_item *it) {
    it->is_seq = true;
    it->n = 0;
    c->p++;
    for (;;) {
        ws(c);
        if (*c->p == close) break;
        if (it->n >= DEFT_SSD_MAX_AR) return fail(c, "too many numbers in one inner list");
        if (!expr(c, &it->v[it->n])) return false;
        it->n++;
        ws(c);
        if (*c->p == ',') {
            c->p++;
            continue;
        }
        if (*c->p != close) return fail(c, close == ']' ? "expected ',' or ']'" : "expected ',' or ')'");
    }
    c->p++;
    if (it->n == 0) return fail(c, "empty inner list");
    return true;
}

static bool item(struct cur *c, struct deft_spec_list_item *it) {
    ws(c);
    if (*c->p == '[') return seq(c, ']', it);
    if (*c->p == '(' && opens_tuple(c)) return seq(c, ')', it);
    it->is_seq = false;
    it->n = 1;
    return expr(c, &it->v[0]);
}

enum deft_status deft_spec_eval_list(const char *text, struct deft_spec_list_item *out, int max, int *n,
                                     int *err_at) {
    struct cur c = {text ? text : "", text ? text : "", 0, NULL};
    *n = 0;
    *err_at = 0;
    ws(&c);
    bool bracket = *c.p == '[';
    if (bracket) c.p++;
    bool ok = true;
    for (;;) {
        ws(&c);
        if ((bracket && *c.p == ']') || (!bracket && !*c.p)) break;
        if (*n >= max) {
            ok = fail(&c, "too many items");
            break;
        }
        if (!(ok = item(&c, &out[*n]))) break;
        (*n)++;
        ws(&c);
        if (*c.p == ',') {
            c.p++;
            continue;
        }
        if ((bracket && *c.p != ']') || (!bracket && *c.p)) {
            ok = fail(&c, bracket ? "expected ',' or ']'" : "expected ','");
            break;
        }
    }
    if (ok && bracket) {
        c.p++;
        ws(&c);
        if (*c.p) ok = fail(&c, "unexpected text after the list");
    }
    if (ok && *n == 0) ok = fail(&c, "the list is empty");
    if (ok) return DEFT_OK;
    *err_at = (int)(c.p - c.s);
    return deft_set_error(DEFT_ERR_INVALID_ARG, "%s at offset %d (only numbers, + - * / and parentheses are "
                          "evaluated)", c.err, *err_at);
}
