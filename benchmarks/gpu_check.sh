#!/usr/bin/env bash
# One prepared GPU check (docs/performance.md, issue 14): the speed side by side, ours against the
# authors' code, on every workload (boids_k49 and a 15-model EB ensemble included), float32 and bf16
# products, torch.compile of the force (with CUDA graphs: compile-cg), and the CUDA-graph capture of a
# whole iteration as a TODO row (not built). Writes one JSON per step and the rendered Markdown table
# (speed_table.md) under the output directory; a step that fails or does not fit the time budget is a
# row of the table saying so. Installs nothing.
#
#   SCWLM_AUTHORS_SRC=/path/to/guanton/WLM bash benchmarks/gpu_check.sh [OUTDIR]
#
# Environment:
#   SCWLM_AUTHORS_SRC        checkout of the authors' code (without it only ours is measured, with a warning)
#   SCWLM_GPU_CHECK_OUT      output directory (default: $1, else $OUT/gpu_check, else benchmarks/results/gpu_check)
#   SCWLM_GPU_CHECK_BUDGET_S total time budget in seconds (default 450: 8 minutes with a margin)
#   SCWLM_GPU_CHECK_TINY=1   CPU smoke test: the tiny workload, 1 iteration (a few seconds; used by the tests)
#   SCWLM_EXTRA_PYTHONPATH   prepended to PYTHONPATH (e.g. a carried copy of geomloss)
#   PYTHON                   interpreter (default: python3)
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONPATH="${SCWLM_EXTRA_PYTHONPATH:+$SCWLM_EXTRA_PYTHONPATH:}$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
OUTDIR=${SCWLM_GPU_CHECK_OUT:-${1:-${OUT:+$OUT/gpu_check}}}
OUTDIR=${OUTDIR:-benchmarks/results/gpu_check}
BUDGET=${SCWLM_GPU_CHECK_BUDGET_S:-450}
TINY=${SCWLM_GPU_CHECK_TINY:-0}
AUTHORS=${SCWLM_AUTHORS_SRC:-}
mkdir -p "$OUTDIR"
rm -f "$OUTDIR"/[0-9][0-9]_*.json "$OUTDIR/speed_table.md"
SECONDS=0
log() { echo "[gpu_check ${SECONDS}s] $*" >&2; }

if [ "$TINY" = "1" ]; then
    DEVICE=cpu
else
    DEVICE=cuda
    if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
        log "no CUDA device visible to $PY (torch.cuda.is_available() is False); nothing measured"
        exit 2
    fi
    "$PY" -c "import geomloss" 2>/dev/null || log "WARNING: geomloss is not importable: the authors' rows and the geomloss variant will fail"
fi
AUTH=()
if [ -n "$AUTHORS" ]; then
    if [ -f "$AUTHORS/potential_energy_models.py" ]; then AUTH=(--authors-src "$AUTHORS"); else
        log "WARNING: SCWLM_AUTHORS_SRC=$AUTHORS has no potential_energy_models.py: authors' code not measured"; fi
else
    log "WARNING: SCWLM_AUTHORS_SRC is not set: the authors' code is not measured (no speed-up column)"
fi

# step NAME EST_S ARGS...: one benchmarks.speed run writing OUTDIR/NAME.json, skipped (as a row of the
# table) when fewer than EST_S seconds of the budget are left; its workers get the time that is left
step() {
    local name=$1 est=$2; shift 2
    local left=$((BUDGET - SECONDS))
    if [ "$left" -lt "$est" ]; then
        log "skip $name: ${left}s of the budget left, needs about ${est}s"
        "$PY" - "$OUTDIR/$name.json" "$name" "$left" "$est" "$@" <<'PYEOF'
import json, sys
out, name, left, est, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
wl = args[args.index("--workloads") + 1] if "--workloads" in args else "(all)"
row = {"workload": wl, "impl": "ours", "variant": name, "failed": f"skipped: {left} s of the time budget left, step needs about {est} s"}
json.dump({"machine": {"command": f"skipped {name}"}, "results": [row]}, open(out, "w"))
PYEOF
        return 0
    fi
    log "run $name (about ${est}s): $*"
    timeout --kill-after=10 "$((left + 5))" "$PY" -m benchmarks.speed --device "$DEVICE" --timeout "$left" \
        --json "$OUTDIR/$name.json" "$@" > "$OUTDIR/$name.log" 2>&1 || log "$name exited with status $? (see $name.log)"
}

if [ "$TINY" = "1" ]; then
    TINYOPT='{"hidden": 16, "ffn": 16, "heads": 1, "blocks": 1, "compile_force": false}'
    step 01_tiny 5 --workloads oceans_small_interp --iters 1 --warmup 0 --authors-iters 1 "${AUTH[@]}" \
        --options "$TINYOPT" --variants fp32 bf16 cudagraph --ensemble 2 --ensemble-workload oceans_small_interp \
        --ensemble-variants fp32 --threads 1
else
    # per-workload iterations sized for about 8 minutes in all on one H200 (authors' code: 0.19-2.2 s/iter there)
    step 01_oceans_small_interp 30 --workloads oceans_small_interp --iters 10 --warmup 2 --authors-iters 10 "${AUTH[@]}" --variants fp32 bf16 cudagraph
    step 02_eb_like_ensemble15 60 --workloads eb_like --iters 8 --warmup 2 --authors-iters 8 "${AUTH[@]}" --variants fp32 bf16 \
        --ensemble 15 --authors-workloads eb_like
    step 03_gf_sde 30 --workloads gf_sde --iters 8 --warmup 2 --authors-iters 8 "${AUTH[@]}" --variants fp32 bf16
    step 04_boids_k10 30 --workloads boids_k10 --iters 8 --warmup 2 --authors-iters 8 "${AUTH[@]}" --variants fp32 bf16 autograd
    step 05_boids_k49 60 --workloads boids_k49 --iters 3 --warmup 1 --authors-iters 3 "${AUTH[@]}" --variants fp32 bf16 \
        --authors-workloads boids_k49
    # torch.compile of the analytic force (the first warm-up iterations include the compilation)
    step 06_boids_k10_compile 120 --workloads boids_k10 --iters 5 --warmup 3 --variants compile compile-cg
fi

shopt -s nullglob
files=("$OUTDIR"/[0-9][0-9]_*.json)
if [ "${#files[@]}" -eq 0 ]; then
    log "no results were written"
    exit 1
fi
"$PY" -m benchmarks.speed --render "${files[@]}" --append "$OUTDIR/speed_table.md" > /dev/null || { log "rendering failed"; exit 1; }
log "done: $OUTDIR/speed_table.md and ${#files[@]} JSON file(s)"
