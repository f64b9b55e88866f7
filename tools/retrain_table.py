#!/usr/bin/env python3
"""`make retrain-limited`'s table: the full-data model and the limited-data arms, read
from their `.train.json` logs (packed 8-bit accuracy on the test images the compiler
evaluated, float accuracy, tiles, cycles), with each arm's gap to the full-data model.

Stops if two runs' options differ in anything but the data fraction and the name, so
the table cannot compare different recipes. The starting model and the teacher compare
by content (sha256) where the files exist: a copy elsewhere is the same recipe.

usage: retrain_table.py FULL.safetensors ARM.safetensors...
"""
import hashlib
import json
import os
import sys

IGNORED = {"sample_ratio", "name", "progress"}


def load(model):
    with open(model + ".train.json") as f:
        return json.load(f)


def by_content(path):
    if path and os.path.exists(path):
        with open(path, "rb") as f:
            return "sha256:" + hashlib.sha256(f.read()).hexdigest()
    return path


def recipe(log):
    r = {k: v for k, v in log["options"].items() if k not in IGNORED}
    r["load"] = by_content(r.get("load"))
    if r.get("teacher"):
        r["teacher"] = dict(r["teacher"], model=by_content(r["teacher"]["model"]))
    return r


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    full_path, arms = sys.argv[1], sys.argv[2:]
    full = load(full_path)
    runs = [(full_path, full)] + [(a, load(a)) for a in arms]
    for path, log in runs[1:]:
        a, b = recipe(full), recipe(log)
        diff = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
        if diff:
            sys.exit(f"{path}: options differ from {full_path} in {', '.join(diff)}")
    base = full["final_eval"]["accuracy"]["packed"]
    print("| data (per class) | training images | float | 8-bit packed | vs full data | tiles | cycles |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for path, log in runs:
        e = log["final_eval"]
        acc = e["accuracy"]
        gap = (acc["packed"] - base) * 100
        print(f"| {log['options']['sample_ratio'] * 100:g}% | {log['train_images']} | "
              f"{acc['float'] * 100:.2f}% | {acc['packed'] * 100:.2f}% | "
              f"{'—' if path == full_path else f'{gap:+.2f}'} | {e['packed_tiles']} | "
              f"{e['packed_cycles']} |")
    n = full["final_eval"]["accuracy"].get("images")
    if n:
        print(f"\n{n} test images; full data: {full_path}")


if __name__ == "__main__":
    main()
