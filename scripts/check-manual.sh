#!/bin/sh
# Check that the manual matches the code:
#   1. every MOTE_API function in include/mote.h is covered by a page under
#      docs/man/ (a page covers the names in its NAME section), and no page
#      names a mote_ function that mote.h no longer declares;
#   2. every covered function's prototype appears in its page's SYNOPSIS
#      exactly as mote.h declares it (whitespace aside);
#   3. links between pages (and from the guide) lead to existing pages;
#   4. every C block in docs/guide.md marked <!-- quote: FILE --> is a
#      verbatim run of lines of FILE, and every examples/guide/*.c is quoted.
# Lists every problem, then exits 1 if there was one.
#
# usage: check-manual.sh [SOURCE_DIR]
set -eu
src=${1:-$(dirname "$0")/..}
header=$src/include/mote.h
mandir=$src/docs/man
guide=$src/docs/guide.md
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
fail() {
    echo "check-manual: $*" >&2
    status=1
}

# Declarations as one normalized line each: "MOTE_API", attributes and
# trailing comments dropped, runs of blanks made one space, none inside the parentheses' ends.
normalize='
function norm(s) {
    sub(/;.*/, ";", s)
    gsub(/[ \t]+/, " ", s); gsub(/\( /, "(", s); gsub(/ \)/, ")", s)
    gsub(/ ;/, ";", s); sub(/^ /, "", s); return s
}
function fname(s,   t) {
    t = s; sub(/\(.*/, "", t); sub(/.*[ *]/, "", t); return t
}'

# 1. name TAB prototype, for every MOTE_API function of mote.h.
awk "$normalize"'
/^MOTE_API / { decl = ""; on = 1 }
on { decl = decl " " $0 }
on && /;/ {
    on = 0
    sub(/^ *MOTE_API /, "", decl)
    sub(/ MOTE_PRINTF\([^)]*\)/, "", decl)
    d = norm(decl); print fname(d) "\t" d
}' "$header" | sort >"$work/api"
[ -s "$work/api" ] || { fail "no MOTE_API declarations found in $header"; exit 1; }
cut -f1 "$work/api" >"$work/api-names"

# 2. For each page: page TAB name for its NAME section, and the normalized
# declarations of its SYNOPSIS's first code block.
: >"$work/covered"
: >"$work/synopsis"
for page in "$mandir"/*.3.md; do
    [ -e "$page" ] || continue
    base=$(basename "$page" .3.md)
    awk -v page="$base" '
    /^# / { sec = $0; next }
    sec == "# NAME" && NF && !named {
        named = 1
        line = $0; sub(/ - .*/, "", line); gsub(/\\/, "", line)
        n = split(line, names, /, */)
        for (i = 1; i <= n; i++) print page "\t" names[i]
    }' "$page" >>"$work/covered"
    awk -v page="$base" "$normalize"'
    /^# / { sec = $0; next }
    sec == "# SYNOPSIS" && /^```/ { if (inblk) { done = 1 } inblk = !inblk; next }
    sec == "# SYNOPSIS" && inblk && !done {
        if ($0 ~ /^#/ || $0 ~ /^[ \t]*\/[\/*]/) next
        decl = decl " " $0
        if ($0 ~ /;/) {
            d = norm(decl); decl = ""
            if (d ~ /^[A-Za-z_].*\(/ && d !~ /^typedef/) print page "\t" fname(d) "\t" d
        }
    }' "$page" >>"$work/synopsis"
    grep -q "^$base	" "$work/covered" || fail "$page: no NAME line (\"name, name - description\")"
done

cut -f2 "$work/covered" | sort -u >"$work/covered-names"
missing=$(comm -23 "$work/api-names" "$work/covered-names")
if [ -n "$missing" ]; then
    fail "MOTE_API functions without a man page (add them to a NAME section under docs/man/):"
    for n in $missing; do echo "    $n" >&2; done
fi
stale=$(grep '^mote_' "$work/covered-names" | comm -13 "$work/api-names" - || true)
if [ -n "$stale" ]; then
    fail "pages name functions mote.h does not declare:"
    for n in $stale; do echo "    $n ($(grep "	$n\$" "$work/covered" | cut -f1 | head -n 1).3.md)" >&2; done
fi

# Every API name a page covers must have its exact prototype in that page.
while IFS='	' read -r page name; do
    proto=$(grep "^$name	" "$work/api" | cut -f2) || continue
    [ -n "$proto" ] || continue
    got=$(awk -F'\t' -v p="$page" -v n="$name" '$1 == p && $2 == n { print $3 }' "$work/synopsis")
    if [ -z "$got" ]; then
        fail "$page.3.md: SYNOPSIS lacks $name"
    elif ! printf '%s\n' "$got" | grep -qxF "$proto"; then
        fail "$page.3.md: SYNOPSIS of $name differs from mote.h:"
        echo "    page:   $(printf '%s\n' "$got" | head -n 1)" >&2
        echo "    mote.h: $proto" >&2
    fi
done <"$work/covered"

# 3. Links between pages (and from the guide) must lead somewhere.
for f in "$mandir"/*.md "$guide"; do
    [ -f "$f" ] || continue
    dir=$(dirname "$f")
    for t in $(grep -o ']([^):#]*\.md' "$f" | sed 's/^](//' | sort -u); do
        [ -f "$dir/$t" ] || fail "$(basename "$f"): link to $t, which does not exist"
    done
done

# 4. The guide's quotes.
if [ -f "$guide" ]; then
    awk -v dir="$work" '
    /<!-- quote: .* -->/ { f = $0; sub(/.*quote: */, "", f); sub(/ *-->.*/, "", f); want = 1; next }
    want && /^```c/ { inblk = 1; want = 0; k++; out = dir "/quote." k; print f > (dir "/quote." k ".file"); next }
    inblk && /^```/ { inblk = 0; close(out); next }
    inblk { print > out }
    ' "$guide"
    for q in "$work"/quote.*.file; do
        [ -e "$q" ] || break
        file=$(cat "$q")
        block=${q%.file}
        echo "$file" >>"$work/quoted"
        if [ ! -f "$src/$file" ]; then
            fail "docs/guide.md quotes $file, which does not exist"
        elif ! awk 'NR == FNR { want[++n] = $0; next }
                   { have[++m] = $0 }
                   END {
                       for (i = 1; i + n - 1 <= m; i++) {
                           for (j = 1; j <= n && have[i + j - 1] == want[j]; j++) ;
                           if (j > n) exit 0
                       }
                       exit 1
                   }' "$block" "$src/$file"; then
            fail "docs/guide.md: a quote of $file is not in the file as it is now:"
            head -n 3 "$block" | sed 's/^/    | /' >&2
        fi
    done
    for f in "$src"/examples/guide/*.c; do
        [ -e "$f" ] || continue
        rel=examples/guide/$(basename "$f")
        grep -qxF "$rel" "$work/quoted" 2>/dev/null || fail "docs/guide.md never quotes $rel"
    done
fi

n=$(wc -l <"$work/api-names")
p=$(ls "$mandir"/*.3.md 2>/dev/null | wc -l)
[ "$status" -eq 0 ] && echo "check-manual: $n functions, $p pages: ok"
exit "$status"
