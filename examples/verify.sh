#!/bin/sh
# Check every hand derivation in hand_derivations.txt (next to this script) with
# `mcalc check --batch`, in denominator layout. Prints one line per derivation and
# exits with mcalc's status: 0 when all hold, 1 when some do not, 2 on bad input.
# Extra arguments go to mcalc check (e.g. --exact, --format json, --seed 3).
set -u
here=$(cd "$(dirname "$0")" && pwd)
mcalc check --batch "$here/hand_derivations.txt" --layout denominator "$@"
status=$?
case $status in
  0) echo "verify: every hand derivation holds" ;;
  1) echo "verify: some hand derivations do not hold" >&2 ;;
  *) echo "verify: some lines could not be checked (exit status $status)" >&2 ;;
esac
exit $status
