/* deft/deft.h - include everything public. */
#ifndef DEFT_H
#define DEFT_H
#include "deft/core.h"
#include "deft/tensor.h"
#include "deft/graph.h"
#include "deft/autograd.h"
#include "deft/runtime.h"
#include "deft/optim.h"
#include "deft/models.h"
#include "deft/io.h"
#include "deft/trainer.h"
#include "deft/quant.h"
#endif
#include "deft/engine.h"
