/* spec_fields.h (internal to deft) - the shorthand every spec module writes
 * its schema tables with: one macro per field type, filling struct
 * deft_spec_field (spec_impl.h) from a struct member's name and offset. */
#ifndef DEFT_SPEC_FIELDS_H
#define DEFT_SPEC_FIELDS_H

#include <stddef.h>
#include "spec/spec_impl.h"

#define NO_OFF DEFT_SPEC_NO_OFFSET
#define REQ DEFT_SPEC_REQUIRED
#define IGN DEFT_SPEC_IGNORED
#define EXT DEFT_SPEC_DEFT
#define GE DEFT_SPEC_MIN
#define LE DEFT_SPEC_MAX
#define GT DEFT_SPEC_MIN_EXCL

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define F_STR(T, m, def, fl, help) {#m, DEFT_SPEC_T_STRING, offsetof(T, m), NO_OFF, def, 0, 0, fl, help, NULL, NULL, NULL}
#define F_INT(T, m, def, lo, hi, fl, help) {#m, DEFT_SPEC_T_INT, offsetof(T, m), NO_OFF, def, lo, hi, fl, help, NULL, NULL, NULL}
#define F_FLT(T, m, def, lo, hi, fl, help) {#m, DEFT_SPEC_T_FLOAT, offsetof(T, m), NO_OFF, def, lo, hi, fl, help, NULL, NULL, NULL}
#define F_BOOL(T, m, def, fl, help) {#m, DEFT_SPEC_T_BOOL, offsetof(T, m), NO_OFF, def, 0, 0, fl, help, NULL, NULL, NULL}
#define F_ENUM(T, m, def, vals, fl, help) {#m, DEFT_SPEC_T_ENUM, offsetof(T, m), NO_OFF, def, 0, 0, fl, help, NULL, vals, NULL}
#define F_FLIST(T, m, cnt, lo, hi, fl, help) {#m, DEFT_SPEC_T_FLOAT_LIST, offsetof(T, m), offsetof(T, cnt), NULL, lo, hi, fl, help, NULL, NULL, NULL}
#define F_ILIST(T, m, cnt, lo, hi, fl, help) {#m, DEFT_SPEC_T_INT_LIST, offsetof(T, m), offsetof(T, cnt), NULL, lo, hi, fl, help, NULL, NULL, NULL}
#define F_MAP(T, m, cnt, lo, fl, help) {#m, DEFT_SPEC_T_FLOAT_MAP, offsetof(T, m), offsetof(T, cnt), NULL, lo, 0, fl, help, NULL, NULL, NULL}
/* a float map whose values are bounded on both sides (fl: GE | LE) */
#define F_MAPR(T, m, cnt, lo, hi, fl, help) {#m, DEFT_SPEC_T_FLOAT_MAP, offsetof(T, m), offsetof(T, cnt), NULL, lo, hi, fl, help, NULL, NULL, NULL}
#define F_SMAP(T, m, cnt, fl, help) {#m, DEFT_SPEC_T_STRING_MAP, offsetof(T, m), offsetof(T, cnt), NULL, 0, 0, fl, help, NULL, NULL, NULL}
#define F_MSG(T, m, sub, fl, help) {#m, DEFT_SPEC_T_MSG, offsetof(T, m), NO_OFF, NULL, 0, 0, fl, help, &sub, NULL, NULL}
#define F_OPT(T, m, has, sub, fl, help) {#m, DEFT_SPEC_T_MSG, offsetof(T, m), offsetof(T, has), NULL, 0, 0, fl, help, &sub, NULL, NULL}
#define F_ONEOF(T, m, has, sub, group, fl, help) {#m, DEFT_SPEC_T_MSG, offsetof(T, m), offsetof(T, has), NULL, 0, 0, fl, help, &sub, NULL, group}
#define F_LIST(T, m, cnt, sub, fl, help) {#m, DEFT_SPEC_T_MSG_LIST, offsetof(T, m), offsetof(T, cnt), NULL, 0, 0, fl, help, &sub, NULL, NULL}
#define F_SLIST(T, m, cnt, def, fl, help) {#m, DEFT_SPEC_T_STRING_LIST, offsetof(T, m), offsetof(T, cnt), def, 0, 0, fl, help, NULL, NULL, NULL}
#define F_ANY(key, help) {key, DEFT_SPEC_T_ANY, 0, NO_OFF, NULL, 0, 0, IGN, help, NULL, NULL, NULL}
#define SCHEMA(T, name, fields) {name, fields, N_OF(fields), sizeof(T)}

#endif
