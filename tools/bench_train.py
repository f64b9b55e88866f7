#!/usr/bin/env python3
"""`make bench-train`: time per training epoch of `ccc train` on a fixed subset of
Fashion-MNIST, extrapolated to the 60 000-image epoch, and, where PyTorch imports
(Debian's python3-torch, CPU), the same network in PyTorch in the same run, rounds
interleaved so that both see the same machine load. Prints a table and the ratio.

It is a benchmark, not a test: nothing here asserts a time.
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile

FULL_EPOCH = 60000


def run_ccc(args, threads, out, extra):
    cmd = [
        args.ccc, "train", "--train-limit", str(args.images), "--eval-limit", "100",
        "--seed", "1", "--name", "bench", "-o", out,
    ] + extra
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    p = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.exit(f"bench-train: {' '.join(cmd)} failed:\n{p.stderr}")
    with open(out + ".train.json") as f:
        return json.load(f)


def run_torch(args, threads, steps):
    cmd = [args.python, os.path.join(os.path.dirname(__file__), "bench_torch.py"),
           str(threads), str(steps)]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        return None
    return json.loads(p.stdout.strip().splitlines()[-1])


def torch_available(python):
    p = subprocess.run([python, "-c", "import torch"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    return p.returncode == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ccc", default="target/release/ccc")
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--images", type=int, default=6400)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--dense", help="trained dense model: also time a joint-optimization epoch")
    ap.add_argument("--recipe", default="--flip --translate 2",
                    help="training flags of the dense recipe (augmentation)")
    args = ap.parse_args()
    steps = math.ceil(args.images / 128)
    have_torch = torch_available(args.python)
    rust, torch, joint = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            log = run_ccc(args, args.threads, f"{tmp}/dense.safetensors",
                          ["--groups", "1,1,1,1", "--epochs", "1"] + args.recipe.split())
            rust.append(log["epochs"][0]["train_seconds"])
            print(f"round {r + 1}: ccc dense {rust[-1]:.2f} s for {args.images} images",
                  flush=True)
            if have_torch:
                t = run_torch(args, args.threads, steps)
                if t:
                    torch.append(t["seconds"])
                    print(f"round {r + 1}: torch {t['torch']} {torch[-1]:.2f} s for "
                          f"{steps * 128} images", flush=True)
            if args.dense:
                # Epoch 2 of 2: masks in place (the prune steps fall in the first half),
                # teacher forward included, as in the shipped retraining recipe.
                log = run_ccc(args, args.threads, f"{tmp}/cc.safetensors",
                              ["--load", args.dense, "--teacher", args.dense, "--groups",
                               "1,1,4,8", "--gamma", "1.75", "--epochs", "2"]
                              + args.recipe.split())
                joint.append(log["epochs"][1]["train_seconds"])
                print(f"round {r + 1}: ccc joint optimization {joint[-1]:.2f} s for "
                      f"{args.images} images", flush=True)

    def row(name, secs, images):
        m = statistics.mean(secs)
        epoch = m / images * FULL_EPOCH
        print(f"| {name} | {args.threads} | {epoch:.1f} | {images / m:.0f} | "
              f"{', '.join(f'{s:.2f}' for s in secs)} |")
        return epoch

    print()
    print(f"Fixed subset: {args.images} training images, batch 128, {args.rounds} rounds "
          f"interleaved; s/epoch extrapolated to {FULL_EPOCH} images.")
    print()
    print("| run | threads | s/epoch | images/s | seconds per round |")
    print("|---|---:|---:|---:|---|")
    ours = row("ccc train, dense (" + args.recipe + ")", rust, args.images)
    if joint:
        row("ccc train, joint optimization (α 4/8, teacher)", joint, args.images)
    if torch:
        theirs = row("PyTorch, same network (no augmentation)", torch, steps * 128)
        print()
        print(f"ratio ccc / PyTorch per dense epoch: {ours / theirs:.2f} (means)")
        # PyTorch's OpenMP threads degrade far more than ccc's under other load, so a
        # busy moment in one round swings the means; the per-round ratios show it.
        per_round = [(r / args.images) / (t / (steps * 128)) for r, t in zip(rust, torch)]
        print(f"per-round ratios: {', '.join(f'{x:.2f}' for x in per_round)}; "
              f"median {statistics.median(per_round):.2f}")
    elif not have_torch:
        print()
        print(f"PyTorch not importable with {args.python} (apt-get install python3-torch): "
              "no side-by-side figure")


if __name__ == "__main__":
    main()
