#!/usr/bin/env bash
# `make demo`: run a real example flow in a fresh project folder, then inspect it with the CLI.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
kitaru="$here/.venv/bin/kitaru"
python="$here/.venv/bin/python"
demo="$here/demo-project"
rm -rf "$demo" && mkdir -p "$demo" && cd "$demo"
export KITARU_PROJECT_DIR="$demo"

echo "== kitaru init"
"$kitaru" init
echo
echo "== running examples/execution_management/client_execution_management.py"
"$python" "$here/examples/execution_management/client_execution_management.py" | tee run.out
exec_id=$(sed -n 's/^Execution: //p' run.out)
echo
echo "== kitaru executions list"
"$kitaru" executions list
echo
echo "== kitaru executions get $exec_id"
"$kitaru" executions get "$exec_id"
echo
echo "== kitaru doctor"
"$kitaru" doctor
echo
echo "The store is plain files: try  ls -R $demo/.kitaru  or  jq . $demo/.kitaru/executions/*/state.json"
