#!/bin/sh
# Run the tour and the seed examples under valgrind: no memory errors and
# nothing still allocated at exit (mote frees everything at shutdown).
set -e
cd "$(dirname "$0")/.."
build=${1:-build}
for ex in "$build"/examples/tour "$build"/examples/seeds/*; do
    [ -x "$ex" ] || continue
    valgrind -q --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all \
        --error-exitcode=9 "$ex" > /dev/null
    echo "valgrind: $(basename "$ex") clean"
done
