#!/usr/bin/env bash
# Everything a session lent a CUDA GPU runs, in one command (device time is scarce: one start, one call).
#
#   bash benchmarks/gpu_session.sh OUT_DIR TRAIN_BUDGET_S BENCH_LIMIT_S [RECIPE ...]
#
# 1. GPU training runs of benchmarks/train_fashion.py RECIPEs (in parallel, each fitted to TRAIN_BUDGET_S and killed
#    at TRAIN_BUDGET_S + 60 s at the latest) while the GPU tests (pytest -m gpu) run: correctness does not care about
#    sharing the card (SKIP_TESTS=1 leaves them out);
# 2. each trained run exported (`bnn-hw export`) and verified bit for bit (`bnn-hw verify`, on the CPU: all 10,000
#    test images for MLPs, the first VERIFY_LIMIT_CONV (2000) for ConvNets, whose checkpoints come back to be verified
#    in full) in the background, while
# 3. (unless BENCH_LIMIT_S is 0) benchmarks/gpu_throughput.py (bnn-hw bench gpu) runs alone on the card, on
#    runs/demo/model.bnn when present.
# Everything (logs, bench JSON, run folders: checkpoints without optimizer state as long as the total stays under
# KEEP_MB, 56 by default, smallest first) goes into one tar, split into 15 MB parts OUT_DIR/results.tar.part-*
# (the device tool brings back 8 files of 16 MiB at most). Rejoin: cat results.tar.part-* | tar -x.
# Fashion-MNIST comes from .devdata/*.gz (copies of the Debian files) when the machine has no Debian package.
# DEVICE=cpu runs the same flow without a GPU (a dry run of this script).
set -u
OUT_DIR=${1:?OUT_DIR}; BUDGET=${2:?TRAIN_BUDGET_S}; BENCH_LIMIT=${3:?BENCH_LIMIT_S}; shift 3
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
PREFIX=${RUN_PREFIX:-gpu-}
KEEP_MB=${KEEP_MB:-56}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
if [ -d .devdata ] && [ ! -d /usr/share/datasets/fashion-mnist ]; then
    export BNN_HW_CACHE=$PWD/.devcache
    mkdir -p "$BNN_HW_CACHE/FashionMNIST/raw"
    for f in .devdata/*.gz; do gunzip -c "$f" > "$BNN_HW_CACHE/FashionMNIST/raw/$(basename "$f" .gz)"; done
fi
WORK=runs/${PREFIX}session; rm -rf "$WORK"; mkdir -p "$WORK"
{ date -u; nvidia-smi; $PY -c "import sys, torch, numpy; print(sys.version); print('torch', torch.__version__,
'numpy', numpy.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU');
import cupy; print('cupy', cupy.__version__)"; } > "$WORK/env.txt" 2>&1

for recipe in "$@"; do
    timeout $((BUDGET + 60)) $PY benchmarks/train_fashion.py "$recipe" --device "$DEVICE" --threads 2 \
        --time-budget "$BUDGET" --quiet --out "runs/$PREFIX$recipe" > "runs/$PREFIX$recipe.log" 2>&1 &
done
if [ "${SKIP_TESTS:-0}" != 1 ]; then
    timeout 240 $PY -m pytest -m gpu -q -p no:cacheprovider tests/test_cuda_kernels.py tests/test_cuda_network.py \
        tests/test_bench_gpu.py > "$WORK/pytest.log" 2>&1
    echo "pytest exit $?" >> "$WORK/pytest.log"
fi
wait
echo "training done: $(date -u)" >> "$WORK/env.txt"

for recipe in "$@"; do
    d=runs/$PREFIX$recipe
    [ -f "$d/checkpoint.pt" ] || continue
    (
        $PY -c "import sys, torch; p = torch.load(sys.argv[1], map_location='cpu', weights_only=True)
p['optimizer'] = None; torch.save(p, sys.argv[1])" "$d/checkpoint.pt"
        limit=(); case $recipe in *vgg*|*cnn*) limit=(--limit "${VERIFY_LIMIT_CONV:-2000}");; esac
        OMP_NUM_THREADS=2 nice $PY -m bnn_hw export "$d" && OMP_NUM_THREADS=2 nice $PY -m bnn_hw verify \
            "$d/model.bnn" --against "$d/checkpoint.pt" "${limit[@]}" --json "$d/verify.json"
    ) > "$d.post.log" 2>&1 &
done

if [ "$BENCH_LIMIT" -gt 0 ]; then  # 0: training and tests only
    model=()
    [ -f runs/demo/model.bnn ] && model=(--model runs/demo/model.bnn)
    timeout "$BENCH_LIMIT" $PY benchmarks/gpu_throughput.py "${model[@]}" --quiet > "$WORK/bench.log" 2>&1
    echo "bench exit $?" >> "$WORK/bench.log"
    grep -q "bench exit 0" "$WORK/bench.log" && cp benchmarks/gpu_throughput.json "$WORK/"
fi
wait
echo "all done: $(date -u)" >> "$WORK/env.txt"

# One tar: everything but the checkpoints, then checkpoints smallest first while the total stays under KEEP_MB.
list=("$WORK")
for recipe in "$@"; do
    d=runs/$PREFIX$recipe
    [ -d "$d" ] || continue
    for f in "$d"/* "$d".log "$d".post.log; do [ -e "$f" ] && [ "$(basename "$f")" != checkpoint.pt ] && list+=("$f"); done
done
total=$(du -cb "${list[@]}" | tail -1 | cut -f1)
for ckpt in $(ls -S -r runs/"$PREFIX"*/checkpoint.pt 2>/dev/null); do
    size=$(stat -c %s "$ckpt")
    case " $* " in *" $(basename "$(dirname "$ckpt")" | sed "s/^$PREFIX//") "*) ;; *) continue;; esac
    if [ $((total + size)) -lt $((KEEP_MB * 1000000)) ]; then list+=("$ckpt"); total=$((total + size)); fi
done
tar -cf - "${list[@]}" 2>/dev/null | split -b 15000000 -d - "$OUT_DIR/results.tar.part-"
ls -la "$OUT_DIR"
tail -n 3 "$WORK"/pytest.log "$WORK"/bench.log runs/"$PREFIX"*.log 2>/dev/null
