#!/bin/sh
# The dashboard's assets into the folder $1: web/src and the files it uses from the pinned npm
# packages (installed by `npm ci` in web/ first). Used by the Makefile and infra/Dockerfile.
set -eu
web=$(dirname "$0")
mkdir -p "$1"
cp "$web"/node_modules/uplot/dist/uPlot.esm.js "$web"/node_modules/uplot/dist/uPlot.min.css \
    "$web"/src/* "$1"/
cp "$web"/node_modules/uplot/LICENSE "$1"/uPlot.LICENSE
