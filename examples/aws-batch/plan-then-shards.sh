#!/bin/sh
# Plan once, apply in shards, on AWS Batch: one job lists both sides and saves the plan on the
# shared EFS volume; an array job of 8 children starts when it has succeeded, each child
# carrying out its share of the plan's actions (checked object by object: no child lists).
# Both use job-definition.json (register it first) with their own command.
set -eu

plan_job=$(aws batch submit-job \
  --job-name haul-nightly-plan \
  --job-queue analytics \
  --job-definition haul-nightly \
  --container-overrides '{"command": ["haul", "plan", "/etc/haul/nightly.yaml", "-o", "/shared/analytics/.haul/plan.json"]}' \
  --query jobId --output text)

aws batch submit-job \
  --job-name haul-nightly-shards \
  --job-queue analytics \
  --job-definition haul-nightly \
  --array-properties size=8 \
  --depends-on jobId="$plan_job" \
  --container-overrides '{"command": ["haul", "apply", "/shared/analytics/.haul/plan.json", "--shard", "auto", "--progress-interval", "60", "--report", "/shared/analytics/.haul/report-{shard}.json"]}'
