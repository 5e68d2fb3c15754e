#!/usr/bin/env bash
# One prepared GPU run of the v2 model (issue 9): train from scratch (PCA start), k-means,
# quantization-aware stage 2, then bring the weights back under the device tool's limits
# (at most 8 files of 16 MiB, 64 MiB together): fp16 network weights + fp32 codebook,
# split into 15 MB parts. See training/gpu/README.md for how it is carried and called.
#   usage (on the device, from the folder that holds training/ and data/):
#     bash training/gpu/run.sh STAGE1_SECONDS STAGE2_SECONDS
set -euo pipefail
S1=${1:-300}
S2=${2:-150}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
nvidia-smi -L || true
python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name(0))'
set -o pipefail
python3 training/train_v2.py --run /tmp/run --data pack:data --device cuda --bf16 --batch 256 \
  --stage1-seconds "$S1" --stage2-seconds "$S2" --log-every 100 --eval-every 500 2>&1 | tee "$OUT/train.log" | grep -v '"kind": "stage[12]"' || true
cp /tmp/run/log.jsonl "$OUT/log.jsonl" || true
python3 training/gpu/pack_weights.py split /tmp/run/final.pt "$OUT"
ls -la "$OUT"
