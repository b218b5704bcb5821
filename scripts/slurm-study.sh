#!/usr/bin/env bash
# A pooling study as a Slurm job array: each array task runs one shard of the study's runs
# (convpool study --shard I/N), into OUT/shard-I. When every task has finished, combine them:
#   build/convpool study --merge OUT/shard-0,OUT/shard-1,... --out OUT
#
# Usage (10 tasks; every option after OUT goes to `convpool study`):
#   sbatch --array=0-9 scripts/slurm-study.sh studies/vgg --model models/vgg_bn.cfg \
#          --pools max,avg,avgtopk:k=2,avgtopk:k=3,mixed,lp:p=2,softpool,tmaxavg --seeds 2 --epochs 15
# A task that is cut short resumes when resubmitted with the same array index.
#
# A genetic search (--search genetic) shares one directory instead: every task writes OUT,
# takes its share of each generation, then whatever no running task holds, so tasks that run
# one after another also finish it; there is nothing to merge.
#   sbatch --array=0-3 scripts/slurm-study.sh searches/vgg --search genetic \
#          --model models/vgg_bn.cfg --pools max,avg,avgtopk:k=2,lip_pool --epochs 2
#SBATCH --job-name=convpool-study
#SBATCH --cpus-per-task=8
#SBATCH --time=24:00:00
#SBATCH --output=slurm-%A_%a.out
set -euo pipefail
if [ $# -lt 1 ] || [ -z "${SLURM_ARRAY_TASK_ID:-}" ]; then
  echo "usage: sbatch --array=0-(N-1) scripts/slurm-study.sh OUT [convpool study options]" >&2
  exit 2
fi
out=$1
shift
tasks=${SLURM_ARRAY_TASK_COUNT:-$((SLURM_ARRAY_TASK_MAX + 1))}
binary=${CONVPOOL:-build/convpool}
dir="$out/shard-${SLURM_ARRAY_TASK_ID}"
previous=""
for arg in "$@"; do
  if [ "$arg" = "--search=genetic" ] || { [ "$previous" = "--search" ] && [ "$arg" = "genetic" ]; } ||
     { [ "$previous" = "--config" ] && grep -Eq '^search *= *"?genetic"?' "$arg" 2>/dev/null; }; then
    dir="$out"
  fi
  previous=$arg
done
exec "$binary" study "$@" --threads "${SLURM_CPUS_PER_TASK:-1}" \
     --shard "${SLURM_ARRAY_TASK_ID}/${tasks}" --out "$dir" --no-plot
