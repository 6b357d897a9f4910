#!/usr/bin/env bash
# Everything a session lent a CUDA GPU runs, in one command (device time is scarce: one start, one call).
#
#   bash benchmarks/gpu_session.sh OUT_DIR TRAIN_BUDGET_S BENCH_LIMIT_S [RECIPE ...]
#
# 1. GPU training runs of benchmarks/train_fashion.py RECIPEs (in parallel, each fitted to TRAIN_BUDGET_S) while the
#    GPU tests (pytest -m gpu) run: correctness does not care about sharing the card;
# 2. then (unless BENCH_LIMIT_S is 0), alone on the card, benchmarks/gpu_throughput.py (bnn-hw bench gpu) on runs/demo/model.bnn when present.
# Logs, the bench JSON and one tar per training run (checkpoint without optimizer state, metrics, curve) go to
# OUT_DIR. Fashion-MNIST comes from .devdata/*.gz (copies of the Debian files) when the machine has no Debian package.
set -u
OUT_DIR=${1:?OUT_DIR}; BUDGET=${2:?TRAIN_BUDGET_S}; BENCH_LIMIT=${3:?BENCH_LIMIT_S}; shift 3
PY=${PYTHON:-python3}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
if [ -d .devdata ] && [ ! -d /usr/share/datasets/fashion-mnist ]; then
    export BNN_HW_CACHE=$PWD/.devcache
    mkdir -p "$BNN_HW_CACHE/FashionMNIST/raw"
    for f in .devdata/*.gz; do gunzip -c "$f" > "$BNN_HW_CACHE/FashionMNIST/raw/$(basename "$f" .gz)"; done
fi
mkdir -p runs
{ date -u; nvidia-smi; $PY -c "import sys, torch, cupy, numpy; print(sys.version); print('torch', torch.__version__,
'cupy', cupy.__version__, 'numpy', numpy.__version__, torch.cuda.get_device_name())"; } > "$OUT_DIR/env.txt" 2>&1

for recipe in "$@"; do
    $PY benchmarks/train_fashion.py "$recipe" --device cuda --threads 2 --time-budget "$BUDGET" --quiet \
        --out "runs/${RUN_PREFIX:-gpu-}$recipe" > "runs/${RUN_PREFIX:-gpu-}$recipe.log" 2>&1 &
done
timeout 240 $PY -m pytest -m gpu -q -p no:cacheprovider tests/test_cuda_kernels.py tests/test_cuda_network.py \
    tests/test_bench_gpu.py > "$OUT_DIR/pytest.log" 2>&1
echo "pytest exit $?" >> "$OUT_DIR/pytest.log"
wait
for recipe in "$@"; do
    d=runs/${RUN_PREFIX:-gpu-}$recipe
    [ -f "$d/checkpoint.pt" ] && $PY -c "import sys, torch; p = torch.load(sys.argv[1], map_location='cpu',
weights_only=True); p['optimizer'] = None; torch.save(p, sys.argv[1])" "$d/checkpoint.pt"
    tar -cf "$OUT_DIR/train-$recipe.tar" "$d" "$d.log" 2>/dev/null
done

if [ "$BENCH_LIMIT" -gt 0 ]; then  # 0: training and tests only
    model=()
    [ -f runs/demo/model.bnn ] && model=(--model runs/demo/model.bnn)
    timeout "$BENCH_LIMIT" $PY benchmarks/gpu_throughput.py "${model[@]}" --quiet > "$OUT_DIR/bench.log" 2>&1
    echo "bench exit $?" >> "$OUT_DIR/bench.log"
    cp benchmarks/gpu_throughput.json "$OUT_DIR/" 2>/dev/null
fi
ls -la "$OUT_DIR"
