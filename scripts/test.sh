#!/usr/bin/env bash
# Type-checks src, test, bench and fuzz, lints, runs the whole test suite (jest) and ends
# with one plain summary line,
# `tests: N passed, N failed, N skipped`, that CI reads. Extra arguments go to jest.
# FHIRGUARD_SOAK=1 adds the long soak and load runs.
set -uo pipefail
cd "$(dirname "$0")/.."
report=$(mktemp)
trap 'rm -f "$report"' EXIT
# Tests and benchmarks are type-checked too (jest's transform checks nothing: isolatedModules),
# and the code is linted (eslint) and formatted (prettier) as the repository says.
npx tsc -p tsconfig.test.json
typecheck=$?
[ $typecheck -eq 0 ] || echo "typecheck: tsc -p tsconfig.test.json found errors (above)" >&2
# Both keep a cache in node_modules/.cache: a second run checks only what changed.
npx eslint --cache --cache-location node_modules/.cache/eslint/ . && npx prettier --check --cache . >/dev/null
lint=$?
[ $lint -eq 0 ] || echo "lint: eslint or prettier --check found problems (above; npm run format fixes the formatting)" >&2
npx jest --ci --maxWorkers=2 --json --outputFile="$report" "$@"
status=$?
[ $typecheck -eq 0 ] && [ $lint -eq 0 ] || status=1
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const skipped = r.numPendingTests + r.numTodoTests;
console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
if (r.numTotalTests === 0) { console.error("no test ran"); process.exit(1); }
' "$report" || status=1
exit $status
