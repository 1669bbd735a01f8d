#!/bin/sh
# The kube-opex-analytics stand-in image's entrypoint (tools/nodes/build.sh, "opex"):
# started as the real image starts its app, `sh ./entrypoint.sh` in /koa, by whatever
# user the pod runs as (the image, like the real one, has no USER line). The real
# script runs the app's WSGI server on :5483; this one runs the stand-in.
LC_ALL=C.UTF-8 LANG=C.UTF-8 exec python3 -u ./opex_standin.py
