/* det_voc.c - Pascal VOC XML annotations (src/data), through libxml2:
 * <annotation><filename/><size><width/><height/></size>
 * <object><name/><difficult/><bndbox><xmin/><ymin/><xmax/><ymax/></bndbox></object>...
 * Documents with a DTD are refused (entity expansion is never needed for
 * VOC and is how XML bombs work); text is read from text nodes only. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include "deft/io.h"
#include "data/det_impl.h"

/* The element's direct text (text and CDATA children), trimmed, into buf. */
static const char *text_of(const xmlNode *n, char *buf, size_t cap) {
    size_t len = 0;
    for (const xmlNode *c = n ? n->children : NULL; c; c = c->next) {
        if ((c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE) || !c->content) continue;
        for (const xmlChar *p = c->content; *p && len + 1 < cap; p++) buf[len++] = (char)*p;
    }
    buf[len] = 0;
    char *a = buf;
    while (*a == ' ' || *a == '\t' || *a == '\n' || *a == '\r') a++;
    char *e = a + strlen(a);
    while (e > a && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r')) *--e = 0;
    return a;
}

static const xmlNode *child(const xmlNode *n, const char *name) {
    for (const xmlNode *c = n ? n->children : NULL; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && !strcmp((const char *)c->name, name)) return c;
    return NULL;
}

static int line_of(const xmlNode *n) {
    long l = xmlGetLineNo(n);
    return l > 0 && l < INT_MAX ? (int)l : 0;
}

static bool num_of(const xmlNode *n, double *out) {
    char buf[64];
    const char *t = text_of(n, buf, sizeof buf);
    char *end;
    double v = strtod(t, &end);
    if (!*t || *end || !isfinite(v) || fabs(v) > 1e9) return false;
    *out = v;
    return true;
}

static enum deft_status read_object(struct det_raw *r, struct det_rimage *im, const xmlNode *o,
                                    const char *path) {
    static const char *const tags[4] = {"xmin", "ymin", "xmax", "ymax"};
    char name[256];
    const char *nm = text_of(child(o, "name"), name, sizeof name);
    int line = line_of(o);
    if (!*nm) return det_bad(r, path, line, "<object> without a <name>");
    if (strlen(nm) >= sizeof name - 2) return det_bad(r, path, line, "<name> is too long");
    const xmlNode *bb = child(o, "bndbox");
    if (!bb) return det_bad(r, path, line, "<object> '%s' without a <bndbox>", nm);
    double v[4];
    for (int k = 0; k < 4; k++) {
        const xmlNode *e = child(bb, tags[k]);
        if (!e) return det_bad(r, path, line_of(bb), "<bndbox> without <%s>", tags[k]);
        if (!num_of(e, &v[k]))
            return det_bad(r, path, line_of(e), "<%s> is not a number in [-1e9, 1e9]", tags[k]);
    }
    double diff = 0;
    const xmlNode *d = child(o, "difficult");
    if (d && !num_of(d, &diff)) return det_bad(r, path, line_of(d), "<difficult> is not 0 or 1");
    return det_rimage_add_box(im, nm, strlen(nm), v, diff != 0, 1.0f, line);
}

static enum deft_status read_size(struct det_raw *r, struct det_rimage *im, const xmlNode *root,
                                  const char *path) {
    const xmlNode *sz = child(root, "size");
    if (!sz) return DEFT_OK;
    double w = 0, h = 0;
    const xmlNode *wn = child(sz, "width"), *hn = child(sz, "height");
    if ((wn && !num_of(wn, &w)) || (hn && !num_of(hn, &h)) || w < 0 || h < 0 || w > 1e6 ||
        h > 1e6 || w != floor(w) || h != floor(h))
        return det_bad(r, path, line_of(sz), "<size> width/height must be integers in [0, 1e6]");
    im->width = (int)w;
    im->height = (int)h;
    im->size_line = line_of(sz);
    return DEFT_OK;
}

enum deft_status det_voc_parse(struct det_raw *r, struct det_rimage *im, const char *text,
                               size_t len, const char *path) {
    if (len > INT_MAX) return det_bad(r, path, 0, "file too large");
    xmlParserCtxtPtr ctx = xmlNewParserCtxt();
    if (!ctx) return deft_set_error(DEFT_ERR_NOMEM, "out of memory parsing %s", path);
    xmlDocPtr doc = xmlCtxtReadMemory(ctx, text, (int)len, path, NULL,
                                      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    enum deft_status st = DEFT_OK;
    if (!doc) {
        const xmlError *e = xmlCtxtGetLastError(ctx);
        char msg[200] = "not well-formed XML";
        int line = e && e->line > 0 ? e->line : 0;
        if (e && e->message) {
            snprintf(msg, sizeof msg, "not well-formed XML: %s", e->message);
            size_t l = strlen(msg);
            while (l && (msg[l - 1] == '\n' || msg[l - 1] == ' ')) msg[--l] = 0;
        }
        st = det_bad(r, path, line, "%s", msg);
        goto done;
    }
    if (doc->intSubset || doc->extSubset) {
        st = det_bad(r, path, 1, "a DTD (<!DOCTYPE>) is not accepted in a VOC annotation");
        goto done;
    }
    const xmlNode *root = xmlDocGetRootElement(doc);
    if (!root || strcmp((const char *)root->name, "annotation")) {
        st = det_bad(r, path, root ? line_of(root) : 1, "the root element is not <annotation>");
        goto done;
    }
    if ((st = read_size(r, im, root, path))) goto done;
    for (const xmlNode *o = root->children; o; o = o->next) {
        if (o->type != XML_ELEMENT_NODE || strcmp((const char *)o->name, "object")) continue;
        if ((st = read_object(r, im, o, path))) break;
    }
    if (!st && !im->image) {
        char fn[1024];
        const char *f = text_of(child(root, "filename"), fn, sizeof fn);
        if (*f && !strchr(f, '/') && !(im->image = deft_strdup(f)))
            st = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
done:
    if (doc) xmlFreeDoc(doc);
    xmlFreeParserCtxt(ctx);
    return st;
}

/* ---- writing --------------------------------------------------------------- */

static bool add_text(xmlNodePtr parent, const char *name, const char *value) {
    return xmlNewTextChild(parent, NULL, (const xmlChar *)name, (const xmlChar *)value) != NULL;
}

static bool add_num(xmlNodePtr parent, const char *name, float v) {
    char b[32];
    det_fmt_float(b, sizeof b, v, false);
    return add_text(parent, name, b);
}

static bool add_int(xmlNodePtr parent, const char *name, int v) {
    char b[16];
    snprintf(b, sizeof b, "%d", v);
    return add_text(parent, name, b);
}

static bool fill_doc(xmlNodePtr root, const struct deft_det_dataset *d,
                     const struct deft_det_sample *s, const char *stem) {
    const char *fn = s->image ? strrchr(s->image, '/') : NULL;
    fn = fn ? fn + 1 : s->image;
    char def[1100];
    if (!fn) {
        snprintf(def, sizeof def, "%s.jpg", stem);
        fn = def;
    }
    bool ok = add_text(root, "filename", fn);
    xmlNodePtr size = ok ? xmlNewChild(root, NULL, (const xmlChar *)"size", NULL) : NULL;
    ok = size && add_int(size, "width", s->width) &&
              add_int(size, "height", s->height) && add_int(size, "depth", 3) &&
              add_int(root, "segmented", 0);
    for (int k = 0; ok && k < s->n_boxes; k++) {
        const struct deft_box *b = &s->boxes[k];
        xmlNodePtr o = xmlNewChild(root, NULL, (const xmlChar *)"object", NULL);
        xmlNodePtr bb = o ? xmlNewChild(o, NULL, (const xmlChar *)"bndbox", NULL) : NULL;
        ok = bb && add_text(o, "name", d->class_names[b->cls]) && add_text(o, "pose", "Unspecified") &&
             add_int(o, "truncated", 0) && add_int(o, "difficult", b->difficult ? 1 : 0) &&
             add_num(bb, "xmin", b->x1) && add_num(bb, "ymin", b->y1) && add_num(bb, "xmax", b->x2) &&
             add_num(bb, "ymax", b->y2);
        /* bndbox after the scalar fields, as VOC's own files have it */
        if (ok) {
            xmlUnlinkNode(bb);
            ok = xmlAddChild(o, bb) != NULL;
        }
    }
    return ok;
}

static enum deft_status write_one(const struct deft_det_dataset *d, const struct deft_det_sample *s,
                                  const char *dir) {
    char stem[1024], name[1100];
    deft_det_sample_stem(s, stem, sizeof stem);
    if (s->width <= 0 || s->height <= 0)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: image size unknown (VOC needs <size>: "
                              "give the image directory)", stem);
    for (int k = 0; k < s->n_boxes; k++)
        if (s->boxes[k].cls < 0 || s->boxes[k].cls >= d->n_classes)
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: box class out of range", stem);
    xmlDocPtr doc = xmlNewDoc((const xmlChar *)"1.0");
    xmlNodePtr root = doc ? xmlNewNode(NULL, (const xmlChar *)"annotation") : NULL;
    enum deft_status st = DEFT_OK;
    if (!root) {
        xmlFreeDoc(doc);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory writing %s", stem);
    }
    xmlDocSetRootElement(doc, root);
    xmlChar *mem = NULL;
    int n = 0;
    if (fill_doc(root, d, s, stem)) xmlDocDumpFormatMemoryEnc(doc, &mem, &n, "UTF-8", 1);
    if (!mem) st = deft_set_error(DEFT_ERR_NOMEM, "out of memory writing %s", stem);
    snprintf(name, sizeof name, "%s.xml", stem);
    char *path = st ? NULL : det_join(dir, name);
    if (!st && !path) st = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    if (!st) st = deft_file_write_atomic(path, mem, (size_t)n);
    deft_free(path);
    xmlFree(mem);
    xmlFreeDoc(doc);
    return st;
}

enum deft_status det_voc_write(const struct deft_det_dataset *d, const char *dir) {
    enum deft_status st = det_mkdirs(dir);
    for (int i = 0; !st && i < d->n; i++) st = write_one(d, &d->samples[i], dir);
    return st;
}
