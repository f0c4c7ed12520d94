#!/usr/bin/env python3
"""Prints the README's results tables from the committed `notebooks-out/*/claims.csv` and
`summary.csv`: every shipped claim with its kind and verdict, synthetic and Fashion-MNIST side by side,
and the accuracies reached. Standard library only.

    python3 tools/results_table.py > /tmp/results.md
"""
import csv
import os

OUT = "notebooks-out"
TRAIN = ["fig6a_bottleneck_activation", "fig6b_shortcut_placement", "expansion_sweep", "fig7_activation_patterns"]
OTHER = ["fig1_spiral", "theorem1_theory", "memory_table3"]


def rows(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def num(v, d=3):
    try:
        x = float(v)
    except (TypeError, ValueError):
        return v
    if x != x:
        return "n/a"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{d}f}"


def verdict(c):
    v = c["verdict"]
    if c.get("kind") == "exact":
        k, n = c.get("seeds_holding", ""), c.get("seeds_checked", "")
        try:
            k, n = int(float(k)), int(float(n))
            return f"{v} ({k}/{n} seeds)"
        except ValueError:
            return v
    p = num(c.get("p_holm"), 4)
    return f"{v} (Holm p = {p})"


def claims_line(c):
    if c.get("kind") == "exact":
        return f"{num(c['mean_a'])} vs {num(c['mean_b'])}"
    return f"{num(c['mean_a'])} vs {num(c['mean_b'])}, Δ = {num(c['diff'])} [{num(c.get('diff_ci_lo'))}, {num(c.get('diff_ci_hi'))}] ({int(float(c.get('ci_level', 'nan') if c.get('ci_level') else 0) * 100)}% CI)"


def progress(name):
    runs = rows(os.path.join(OUT, name, "runs.csv"))
    return len(runs)


print("| experiment | claim | kind | synthetic | Fashion-MNIST |")
print("|---|---|---|---|---|")
for name in TRAIN:
    syn = {c["id"]: c for c in rows(os.path.join(OUT, name, "claims.csv"))}
    fm = {c["id"]: c for c in rows(os.path.join(OUT, name + "_fashion", "claims.csv"))}
    for cid in list(syn) + [k for k in fm if k not in syn]:
        s, f = syn.get(cid), fm.get(cid)
        kind = (s or f).get("kind", "?")
        cell = lambda c: f"{verdict(c)}: {claims_line(c)}" if c else "—"
        print(f"| `{name}` | {cid} | {kind} | {cell(s)} | {cell(f)} |")
for name in OTHER:
    for c in rows(os.path.join(OUT, name, "claims.csv")):
        print(f"| `{name}` | {c['id']} | {c.get('kind', '?')} | {verdict(c)}: {claims_line(c)} | — |")

print()
print("| experiment | variant | synthetic test accuracy (mean ± sd, n) | Fashion-MNIST test accuracy (mean ± sd, n) |")
print("|---|---|---|---|")
for name in TRAIN:
    syn = {r["variant"]: r for r in rows(os.path.join(OUT, name, "summary.csv")) if r["metric"] == "test_acc"}
    fm = {r["variant"]: r for r in rows(os.path.join(OUT, name + "_fashion", "summary.csv")) if r["metric"] == "test_acc"}
    for v in list(syn) + [k for k in fm if k not in syn]:
        cell = lambda r: f"{num(r['mean'])} ± {num(r['std'])} (n = {r['n']})" if r and r["n"] != "0" else "—"
        print(f"| `{name}` | {v} | {cell(syn.get(v))} | {cell(fm.get(v))} |")
