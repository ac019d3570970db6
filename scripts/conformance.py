#!/usr/bin/env python3
"""Generates docs/conformance.md: every normative statement of MQTT 5.0 and MQTT 3.1.1 with
the tests that cover it.

A test covers an MQTT 5.0 statement when its function name starts with the id in snake case
(`fn mqtt_3_1_2_3_...` covers MQTT-3.1.2-3), and an MQTT 3.1.1 statement when it starts with
`mqtt311_` (`fn mqtt311_3_1_2_24_...`). Any line inside a test may also say
`covers: [MQTT-x.y.z-n]` or `covers: [v311:MQTT-x.y.z-n]` (for ids a name cannot carry, or a
test that covers several). Python tests use the same names with a `test_` prefix.
Who owns each statement comes from docs/conformance-notes.txt; why a statement has no test
(not applicable to a server, or owned by a later issue) from docs/conformance-pending*.txt.

  scripts/conformance.py          rewrite docs/conformance.md
  scripts/conformance.py --check  fail if docs/conformance.md is out of date (CI runs this)
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
IDS = ROOT / "docs/spec/mqtt-5.0-statement-ids.txt"
NOTES = ROOT / "docs/conformance-notes.txt"
# Why a statement has no test yet ("<id> <reason>" lines; v3.1.1 ids prefixed "v311:").
PENDING = sorted((ROOT / "docs").glob("conformance-pending*.txt"))
OUT = ROOT / "docs/conformance.md"
SCAN = ["crates", "tests"]

FN = re.compile(r"\b(?:fn|def)\s+(?:test_)?(mqtt(?:311)?(?:_\d+)+)_[a-z]")
DEF = re.compile(r"\b(?:fn|def)\s+(\w+)")
COVERS = re.compile(r"covers:\s*((?:\[(?:v311:)?MQTT-[0-9.]+-\d+\]\s*)+)")
TAG = re.compile(r"\[((?:v311:)?MQTT-[0-9.]+-\d+)\]")


def load_notes():
    """(v5 ids in order, v311 ids in order, id -> (who, paraphrase))."""
    v5, v311, info = [], [], {}
    for line in NOTES.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        sid, _, rest = line.partition(" ")
        who, _, text = rest.partition(":")
        info[sid] = (who.strip(), text.strip())
        (v311 if sid.startswith("v311:") else v5).append(sid)
    return v5, v311, info


def fn_name_to_id(name, known):
    """mqtt_3_1_2_3 -> MQTT-3.1.2-3, mqtt311_3_1_2_24 -> v311:MQTT-3.1.2-24; tries every split
    so ids such as MQTT-4.2-1 work too."""
    head, *parts = name.split("_")
    prefix = "v311:" if head == "mqtt311" else ""
    for cut in range(len(parts) - 1, 0, -1):
        candidate = prefix + "MQTT-" + ".".join(parts[:cut]) + "-" + "-".join(parts[cut:])
        if candidate in known:
            return candidate
    return None


def scan(known):
    coverage = {}
    for top in SCAN:
        for path in sorted((ROOT / top).rglob("*")):
            if path.suffix not in (".rs", ".py") or "target" in path.parts:
                continue
            rel = path.relative_to(ROOT).as_posix()
            current = None
            for line in path.read_text(errors="replace").splitlines():
                definition = DEF.search(line)
                if definition:
                    current = definition.group(1)
                    named = FN.search(line)
                    if named:
                        sid = fn_name_to_id(named.group(1), known)
                        if sid:
                            coverage.setdefault(sid, set()).add(f"{rel}::{current}")
                tagged = COVERS.search(line)
                if tagged and current:
                    for sid in TAG.findall(tagged.group(1)):
                        if sid in known:
                            coverage.setdefault(sid, set()).add(f"{rel}::{current}")
    return coverage


def load_pending():
    reasons = {}
    for path in PENDING:
        for line in path.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                sid, _, reason = line.partition(" ")
                reasons[sid.strip()] = reason.strip()
    return reasons


def table(title, ids, coverage, info, pending):
    server_side = [s for s in ids if info[s][0] in ("server", "both", "codec")]
    covered = [s for s in ids if s in coverage]
    covered_server = [s for s in server_side if s in coverage]
    lines = [
        f"## {title}",
        "",
        f"Covered: **{len(covered)} of {len(ids)}** statements; server-side (server, both, codec): "
        f"**{len(covered_server)} of {len(server_side)}**.",
        "",
        "| statement | who | what it asks (paraphrase) | tests |",
        "|---|---|---|---|",
    ]
    for sid in ids:
        who, text = info[sid]
        tests = sorted(coverage.get(sid, ()))
        if tests:
            cell = "<br>".join(f"`{t}`" for t in tests)
        elif sid in pending:
            cell = pending[sid]
        elif who == "client":
            cell = "client-side: owned by the client library (linnet-client), not yet built"
        else:
            cell = "not covered yet"
        lines.append(f"| {sid.removeprefix('v311:')} | {who} | {text.replace('|', '/')} | {cell} |")
    return lines


def render():
    v5, v311, info = load_notes()
    expected = [l.strip() for l in IDS.read_text().splitlines() if l.strip() and not l.startswith("#")]
    if v5 != expected:
        sys.exit("docs/conformance-notes.txt does not list the MQTT 5.0 ids of docs/spec in order")
    coverage = scan(set(v5) | set(v311))
    lines = [
        "# Conformance: MQTT 5.0 and 3.1.1 normative statements",
        "",
        "Generated by `scripts/conformance.py` from the test names; CI fails when this file is",
        "stale. A test covers a 5.0 statement when its name starts with the id in snake case",
        "(`mqtt_3_1_2_3_...`), a 3.1.1 statement when it starts with `mqtt311_`, or when it",
        "carries a `covers: [MQTT-x.y.z-n]` / `covers: [v311:MQTT-x.y.z-n]` line. The paraphrases",
        "and owners come from `docs/conformance-notes.txt` (read the standard for the text).",
        "",
    ]
    pending = load_pending()
    lines += table("MQTT 5.0", v5, coverage, info, pending)
    lines += [""]
    lines += table("MQTT 3.1.1", v311, coverage, info, pending)
    return "\n".join(lines) + "\n"


def main():
    text = render()
    if "--check" in sys.argv:
        if not OUT.exists() or OUT.read_text() != text:
            sys.exit("docs/conformance.md is out of date: run scripts/conformance.py and commit it")
        print("docs/conformance.md is up to date")
        return
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
