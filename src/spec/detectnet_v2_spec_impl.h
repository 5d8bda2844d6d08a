/* detectnet_v2_spec_impl.h (internal to the spec module) - the three
 * DetectNet_v2 schema tables (detectnet_v2_spec.c), shared with the loader
 * and checks (detectnet_v2_check.c) and the printers (detectnet_v2_print.c). */
#ifndef DEFT_SPEC_DETECTNET_V2_SPEC_IMPL_H
#define DEFT_SPEC_DETECTNET_V2_SPEC_IMPL_H

#include "deft/detectnet_v2_spec.h"
#include "spec/spec_impl.h"

#define DEFT_DNV2_HELP_CMD "deft detectnet_v2 --help-spec"

const struct deft_spec_schema *deft_dnv2_schema(enum deft_dnv2_spec_kind k);

#endif
