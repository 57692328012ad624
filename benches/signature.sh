# Sourced by benches/load.sh and benches/pgo.sh: the secret benches/signed.wf reads and GitHub's
# signature (X-Hub-Signature-256) of the scenario's body under it, computed with openssl, in
# WF_BENCH_SIGNATURE (benches/post.lua sends it when it is set).
export BENCH_SECRET=bench-secret
BENCH_BODY='{"data":{"status":"paid","amount":1250,"currency":"EUR"},"customer":{"email":"a@b.c"}}'
WF_BENCH_SIGNATURE="sha256=$(printf '%s' "$BENCH_BODY" | openssl dgst -sha256 -hmac "$BENCH_SECRET" -r | cut -d' ' -f1)"
