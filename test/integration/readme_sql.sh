#!/usr/bin/env bash
# README.md's SQL runs as written and gives the results it states.
#
# Every ```sql block of the README runs, in README order, in one psql session
# (psql -X -v ON_ERROR_STOP=1, so psql variables set with \gset carry from block to block) on a
# fresh database without sp_users (the API tour creates it), unless the nearest non-blank line
# above the block is
#     <!-- not run: <reason> -->
# A statement states its result with a comment that starts with an arrow, on one of its lines:
#     SELECT email FROM sp_users.find_user('alan');   -- → alan@example.com
#     SELECT a, b FROM ...;                           -- → t | f  -- an optional remark
# The expected text runs to the end of the line or to a further " -- " remark. It is what psql
# prints unaligned: columns separated by " | ", rows by "; ", NULL as NULL, "(no rows)" for an
# empty result. A statement without an arrow must merely succeed. A backslash command (\gset)
# cannot carry a comment: psql would read it as an argument.
#
#   test/integration/readme_sql.sh [README]     (default: the checkout's README.md)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
README=$(cd "$(dirname "${1:-$ROOT/README.md}")" && pwd)/$(basename "${1:-$ROOT/README.md}")
DB=sp_users_readme
PGOPTIONS="-c client_min_messages=warning" psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
trap 'psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true' EXIT

python3 - "$README" "$DB" <<'PY'
import os, re, subprocess, sys, tempfile

readme, db = sys.argv[1], sys.argv[2]
name = os.path.basename(readme)
lines = open(readme, encoding="utf-8").read().split("\n")
failures = []

def code_and_comment(line):
    """Split a SQL line at the first -- outside quotes."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif line.startswith("--", i):
            return line[:i], line[i + 2:]
    return line, None

# 1. The ```sql blocks, with the README line of each of their lines.
blocks, skipped, i = [], [], 0
while i < len(lines):
    m = re.match(r"^(\s*)```sql\s*$", lines[i])
    if not m:
        i += 1
        continue
    start, indent = i + 1, len(m.group(1))
    j = start
    while j < len(lines) and not re.match(r"^\s*```\s*$", lines[j]):
        j += 1
    if j == len(lines):
        sys.exit(f"{name}:{start}: unterminated ```sql block")
    k = i - 1
    while k >= 0 and not lines[k].strip():
        k -= 1
    marker = re.match(r"^\s*<!--\s*not run:\s*(.*?)\s*-->\s*$", lines[k]) if k >= 0 else None
    if marker is not None:
        if not marker.group(1):
            sys.exit(f"{name}:{k + 1}: <!-- not run: --> needs a reason")
        skipped.append((start, marker.group(1)))
    else:
        blocks.append([(n + 1, lines[n][indent:]) for n in range(start, j)])
    i = j + 1

# 2. Statements: a statement ends on a line whose code ends with ";" or with a backslash command.
stmts = []  # (first README line, last README line, text, expected or None)
for block in blocks:
    cur, expected, first = [], None, None
    for lineno, line in block:
        code, comment = code_and_comment(line)
        meta = re.search(r"\\[a-z]+[^'\"]*$", code) and not code.strip().startswith("--")
        if meta and comment is not None:
            failures.append(f"{name}:{lineno}: a backslash command cannot carry a comment: {line.strip()}")
        arrow = None
        if comment is not None and comment.lstrip().startswith("→"):
            arrow = comment.lstrip()[1:].split(" -- ")[0].strip()
            if not code.strip():
                failures.append(f"{name}:{lineno}: '-- →' must follow the statement it describes")
        if code.strip():
            if first is None:
                first = lineno
            cur.append(line)
            if arrow is not None:
                if expected is not None:
                    failures.append(f"{name}:{lineno}: two stated results for one statement")
                expected = arrow
            if code.rstrip().endswith(";") or meta:
                stmts.append((first, lineno, "\n".join(cur), expected))
                cur, expected, first = [], None, None
        elif cur:
            cur.append(line)
    if cur and any(code_and_comment(l)[0].strip() for l in cur):
        failures.append(f"{name}:{first}: statement without a terminating ';'")

# 3. One psql script: every statement followed by a marker, output read back per statement.
script, script_line_to_readme = ["\\pset format unaligned", "\\pset tuples_only on",
                                 "\\pset fieldsep ' | '", "\\pset null NULL", "\\pset pager off"], {}
for n, (first, last, text, _) in enumerate(stmts):
    for off, l in enumerate(text.split("\n")):
        script.append(l)
        script_line_to_readme[len(script)] = first + off
    script.append(f"\\echo '@@readme_sql {n}'")
with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
    f.write("\n".join(script) + "\n")
    path = f.name
r = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-f", path],
                   capture_output=True, text=True)
os.unlink(path)
outputs, cur = {}, []
for l in r.stdout.split("\n"):
    m = re.match(r"^@@readme_sql (\d+)$", l)
    if m:
        outputs[int(m.group(1))] = cur
        cur = []
    else:
        cur.append(l)
if r.returncode != 0:
    def where(m):
        return f"{name}:{script_line_to_readme.get(int(m.group(1)), '?')}:"
    err = re.sub(re.escape(path) + r":(\d+):", where, r.stderr)
    err = "\n".join(l for l in err.split("\n") if not re.match(r"^psql:\S+ (NOTICE|INFO):", l))
    failures.append(f"psql stopped (exit {r.returncode}) on the README's SQL:\n{err.rstrip()}")

# 4. Stated results against actual ones.
checked = 0
for n, (first, last, text, expected) in enumerate(stmts):
    if expected is None or n not in outputs:
        continue
    got = "; ".join(outputs[n]) if outputs[n] else "(no rows)"
    checked += 1
    if got != expected:
        sql = " ".join(code_and_comment(l)[0].strip() for l in text.split("\n")).strip()
        failures.append(f"{name}:{last}: {sql}\n"
                        f"    README states: {expected}\n    psql gives:    {got}")
    else:
        print(f"ok - {name}:{last} → {expected}")

if checked == 0 and not failures:
    failures.append("no stated result was checked: the README lost its '-- →' results, or this test its parser")
for s_line, reason in skipped:
    print(f"skip - {name}:{s_line} block not run: {reason}")
if failures:
    print("\n".join("FAIL: " + f for f in failures))
    print(f"readme_sql: {len(failures)} failed, {checked} stated results checked, {len(stmts)} statements in {len(blocks)} blocks")
    sys.exit(1)
print(f"readme_sql: {checked} stated results checked, {len(stmts)} statements in {len(blocks)} blocks run, {len(skipped)} blocks not run")
PY
