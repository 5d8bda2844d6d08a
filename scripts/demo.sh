#!/bin/sh
# make demo: generate a small labelled image set, then train -> evaluate ->
# inference with deft classification, ending with the accuracy reached.
BUILD=${1:-build}
set -e
"$BUILD/deft" demo -r ${DIR:-runs/demo} ${EPOCHS:+--epochs $EPOCHS}
echo
echo "next: '$BUILD/deft classification --help', the spec is ${DIR:-runs/demo}/spec.yaml;"
echo "      plots are in ${DIR:-runs/demo}/plots, TensorBoard events in ${DIR:-runs/demo}."
