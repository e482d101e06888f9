#!/usr/bin/env bash
# Ensemble of 4 seeds on 1 vs 2 CPU processes (docs/scaling.md, "Measured figures"), with the runs that
# bound what two processes can gain on this machine. The demo's harmonic well (11 snapshots x 200
# particles, v0), 200 iterations, a small network. Prints the wall time of each whole command and the
# largest weight difference between the 1- and 2-process ensembles.
#
#   bash benchmarks/ensemble_scaling.sh [work folder, default: a new temporary one]
#
# Needs `scwlm` and `torchrun` on PATH (e.g. the .venv of run.sh activated). Run it on a quiet machine.
set -euo pipefail
work="${1:-$(mktemp -d)}"
mkdir -p "$work" && cd "$work"
python -c "
import numpy as np, scwlm.datasets as D
s, t, v = D.harmonic_well(n=200, n_times=11)
np.savez('data.npz', positions=np.stack(s), times=np.asarray(t), velocities=np.stack(v))
"
SET=(--set hidden=32 --set heads=2 --set blocks=2 --set ffn=64 --set particles_per_batch=256 --set progress=false)
port=$(python -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
run() {
  local name=$1; shift
  rm -rf "out_$name"
  local t0; t0=$(date +%s.%N)
  "$@" > "log_$name" 2>&1 || { echo "$name failed, see $work/log_$name"; exit 1; }
  echo "$name: $(python -c "print(round($(date +%s.%N) - $t0, 1))") s"
}
run "1proc_2threads" env OMP_NUM_THREADS=2 scwlm fit data.npz --out out_1proc_2threads --seeds 0 1 2 3 --n-iter 200 --device cpu "${SET[@]}"
run "1proc_1thread" env OMP_NUM_THREADS=1 scwlm fit data.npz --out out_1proc_1thread --seeds 0 1 2 3 --n-iter 200 --device cpu "${SET[@]}"
run "1proc_1thread_2seeds" env OMP_NUM_THREADS=1 scwlm fit data.npz --out out_1proc_1thread_2seeds --seeds 0 1 --n-iter 200 --device cpu "${SET[@]}"
run "2procs_1thread" env OMP_NUM_THREADS=1 torchrun --nproc-per-node 2 --master-addr 127.0.0.1 --master-port "$port" \
  -m scwlm fit data.npz --out out_2procs_1thread --seeds 0 1 2 3 --n-iter 200 --device cpu "${SET[@]}"
run "startup_1iteration" env OMP_NUM_THREADS=1 scwlm fit data.npz --out out_startup_1iteration --seeds 0 --n-iter 1 --device cpu "${SET[@]}"
python -c "
import numpy as np, scwlm
a, b = scwlm.load('out_1proc_2threads'), scwlm.load('out_2procs_1thread')
print('max weight difference, 1 vs 2 processes:', max(float(np.abs(np.asarray(x.to_state()['weights'][k]) - np.asarray(y.to_state()['weights'][k])).max())
      for x, y in zip(a, b) for k in x.to_state()['weights']))
"
