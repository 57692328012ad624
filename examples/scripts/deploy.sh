#!/bin/sh
# Run by examples/deploy.wf and examples/slack_deploy.wf as: deploy.sh SERVICE REVISION.
# wf starts it directly (no shell in between), in its own process group, with only PATH,
# WF_EXECUTION, WF_WORKFLOW and the workflow's `env` lines set. Replace the body with your
# deployment; whatever it prints comes back as the step's stdout.
set -eu
service="$1"
revision="$2"
echo "deploying ${service} at ${revision} (${WF_WORKFLOW} ${WF_EXECUTION}, ref ${DEPLOY_REF:-none})"
