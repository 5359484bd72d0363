#!/usr/bin/env bash
# Play a scenario split over SEGMENTS pods on the current kubectl context,
# follow the merge, copy the merged result out, exit with the verdict
# (0 every SLO held · 1 an SLO failed · 2 bad input · 3 partial or not
# carried out).
#
#   ci/kubernetes/run.sh                           # ci/kubernetes/scenario.toml
#   ci/kubernetes/run.sh scenarios/black-friday.toml
#   NAMESPACE=perf START_IN=300 ci/kubernetes/run.sh my.toml
#   ci/kubernetes/run.sh --render /tmp/k my.toml   # only prepare: kubectl kustomize /tmp/k
#
# Settings come from ci/kubernetes/settings.env; this script fills in
# START_AT (now + START_IN seconds, default 120) and RUN_ID (default
# run-<UTC time>) in a copy, so the files here are never edited.
# Environment: NAMESPACE (default: the context's), START_IN, RUN_ID,
# RESULTS (where the merged result is copied, default reports/), FETCH_IMAGE
# (an image with tar that mounts the volume to copy it, default busybox:1.36).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
render_only=
if [[ ${1:-} == --render ]]; then
    render_only=${2:?"--render DIR [SCENARIO]"}
    shift 2
fi
scenario=${1:-$here/scenario.toml}
[[ -f $scenario ]] || { echo "run.sh: no scenario file $scenario" >&2; exit 2; }
start_in=${START_IN:-120}
[[ $start_in =~ ^[0-9]+$ ]] || { echo "run.sh: START_IN=$start_in: expected seconds" >&2; exit 2; }
at=$(( $(date +%s) + start_in ))
# GNU date (-d @T), else BSD/macOS date (-r T).
start_at=$(date -u -d "@$at" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u -r "$at" +%Y-%m-%dT%H:%M:%SZ)
run_id=${RUN_ID:-run-$(date -u +%Y%m%dT%H%M%SZ)}
[[ $run_id =~ ^[A-Za-z0-9._-]+$ ]] || { echo "run.sh: RUN_ID=$run_id: letters, digits, . _ - only" >&2; exit 2; }

# The kustomization, in a copy with this run's start and id.
if [[ -n $render_only ]]; then
    dir=$render_only
    mkdir -p "$dir"
else
    dir=$(mktemp -d)
    trap 'rm -rf "$dir"' EXIT
fi
cp "$here"/kustomization.yaml "$here"/results-pvc.yaml "$here"/run-job.yaml \
    "$here"/merge-job.yaml "$here"/settings.env "$dir"/
cp "$scenario" "$dir"/scenario.toml
sed -i -e "s/^START_AT=.*/START_AT=$start_at/" -e "s/^RUN_ID=.*/RUN_ID=$run_id/" "$dir"/settings.env
if [[ -n $render_only ]]; then
    echo "run.sh: prepared $dir (start $start_at, run $run_id)"
    exit 0
fi

ns=()
[[ -n ${NAMESPACE:-} ]] && ns=(--namespace "$NAMESPACE")
k() { kubectl "${ns[@]}" "$@"; }

# Jobs are immutable: the previous run's go first (its results stay on the volume).
k delete job stampede-run stampede-merge --ignore-not-found --wait=true
k apply -k "$dir"
echo "run.sh: run $run_id starts at $start_at; the pods' progress:"
echo "  kubectl ${ns[*]} logs -l job-name=stampede-run --prefix -f --max-log-requests 100"

# The merge waits on the volume for the segments; its log ends with the verdict.
for _ in $(seq 300); do
    phase=$(k get pods -l job-name=stampede-merge -o jsonpath='{.items[0].status.phase}' 2>/dev/null || true)
    [[ $phase == Running || $phase == Succeeded || $phase == Failed ]] && break
    sleep 2
done
k logs -f job/stampede-merge || true
code=
for _ in $(seq 60); do
    code=$(k get pods -l job-name=stampede-merge \
        -o jsonpath='{.items[0].status.containerStatuses[0].state.terminated.exitCode}')
    [[ -n $code ]] && break
    sleep 2
done
[[ -n $code ]] || { echo "run.sh: the merge pod did not end" >&2; exit 3; }

# Copy the merged result out of the shared volume.
results=${RESULTS:-reports}
fetch=stampede-fetch-$run_id
fetch=${fetch,,}
k run "$fetch" --image="${FETCH_IMAGE:-busybox:1.36}" --restart=Never \
    --overrides='{"spec":{"containers":[{"name":"fetch","image":"'"${FETCH_IMAGE:-busybox:1.36}"'","command":["sleep","600"],"volumeMounts":[{"name":"results","mountPath":"/results"}]}],"volumes":[{"name":"results","persistentVolumeClaim":{"claimName":"stampede-results"}}]}}' >/dev/null
if k wait --for=condition=Ready "pod/$fetch" --timeout=5m >/dev/null &&
    k cp "$fetch:/results/$run_id/merged" "$results/$run_id-merged" >/dev/null; then
    echo "run.sh: merged result: $results/$run_id-merged (report.html, summary.json, junit.xml, summary.md)"
else
    echo "run.sh: could not copy /results/$run_id/merged out; it is on the volume stampede-results" >&2
fi
k delete pod "$fetch" --wait=false >/dev/null || true
echo "run.sh: verdict: exit $code"
exit "$code"
