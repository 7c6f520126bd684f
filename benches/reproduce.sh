#!/usr/bin/env bash
# Reproduce the README's tables (and the scaling figure) from the committed
# scenario files, with their fixed seeds: one subcommand per table.
#
#   benches/reproduce.sh [--dry-run | --no-run] [--out DIR] TABLE
#
# Run it from the repository root. See `benches/reproduce.sh --help`.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: benches/reproduce.sh [--dry-run | --no-run] [--out DIR] TABLE

Runs the commands behind one of the README's tables and prints the table's
markdown rows, in the README's column order.

Tables:
  quickstart     Quickstart results: moe, hard, soft on scenarios/quickstart.toml
  ds-medium      Medium-scale diffusion-sorption: soft, hard, moe, each with the
                 lifting and projection trained and frozen (6 runs, ~2 h)
  ds-medium-narrow
                 the same six runs with the earlier narrow FNO (~40 min)
  ns-medium      Medium-scale Navier-Stokes: soft, hard, moe at 32² and 64², and
                 soft with an initial-condition loss (4 runs, ~45 min)
  extrapolation  Temporal extrapolation (training.horizon=400): the quickstart's
                 three methods (its earlier narrow FNO, bc = 0.1 and the
                 reference's boundary rows), then the medium scenario's three with the
                 narrow FNO, trained and frozen, and with the paper's FNO
                 (12 runs, ~2 h)
  floor          The physics floor (tessera floor): the quickstart with both
                 boundary placements at BC weights 0.1 and 1, and the medium
                 diffusion-sorption scenario (5 reports, ~15 min)
  resolutions    Evaluation at finer resolutions: scenarios/navier-stokes-small.toml
  ds-medium-tiles
                 The medium diffusion-sorption MoE with time tiles ([4,1], [2,1],
                 [4,1] with the face rows or with local IC/BC rows) next to the
                 protocol's x-tiles and one constraint, [4,1] with twice and
                 with the paper's 4000 steps, and [4,1], [1,4] and one
                 constraint with a second seed, [1,4] and one constraint with
                 a third (13 runs, ~4.5 h; two are ds-medium's)
  ds-medium-grid The medium diffusion-sorption MoE on the paper's 101 time levels
                 and with second-order stencils, next to the protocol (51 levels,
                 the reference's stencils), PI-HC and PI-HC-MoE with two seeds,
                 and each discretisation's physics floor (9 runs and 4 floors,
                 ~4 h; five runs and a floor are other tables')
  ds-medium-inputs
                 The medium diffusion-sorption scenario with the initial
                 condition's logarithm as a second input channel: PI-HC-MoE
                 with three seeds, PI-HC with one (4 runs, ~1 h; the value-only
                 runs are other tables')
  ds-medium-levels
                 The medium diffusion-sorption scenario with the level-balanced
                 PDE loss (training.pde_norm = "levels"): PI-HC-MoE and PI-HC
                 with five seeds, PI-SC with one, each method with the lifting
                 and projection frozen, and the physics floor of that loss;
                 then the quickstart's three methods and floor, and the medium
                 Navier-Stokes PI-HC and PI-HC-MoE, with it (19 runs and 2
                 floors, ~3.5 h; the grid-norm runs are other tables')
  burgers-tiles  Why x-tiles hurt on Burgers: scenarios/burgers-small.toml with one
                 constraint, time tiles and x-tiles, and shorter windows
                 (8 runs, ~3 min)
  custom         The PDEs defined in TOML: scenarios/burgers-small.toml,
                 allen-cahn-small, kdv-small, kuramoto-sivashinsky-small,
                 allen-cahn-2d-small, navier-stokes-toml-small,
                 anisotropic-diffusion-small, zakharov-kuznetsov-small and
                 cahn-hilliard-small, each with moe, hard and soft, and the
                 persistence baseline u(t) = u0 (27 runs, ~12 min with their
                 data)
  scaling        The experts' speed-up figure: tessera bench scaling, writing
                 benches/scaling.json and benches/scaling.png (the table of
                 benches/README.md)
  all            every table above, in that order

Options:
  --dry-run      print the commands, run nothing
  --no-run       print the table from the summaries already in DIR (and, for
                 scaling, from benches/scaling.json), run nothing
  --out DIR      where the runs go (default runs/reproduce); a run whose
                 DIR/LABEL.json already holds a summary line is not run again,
                 so an interrupted table resumes and a table can be rebuilt
                 from saved summary lines
  -h, --help     this help

Environment:
  TESSERA        the tessera command (default: cargo run --release --)

Each run writes its run directory to DIR/LABEL/, its `--json` summary line to
DIR/LABEL.json and the wall seconds of the whole command to DIR/LABEL.wall.
Tables are printed with python3 (standard library only).
EOF
}

DRY=0
NORUN=0
OUT=runs/reproduce
TABLE=
while [ $# -gt 0 ]; do
    case "$1" in
    --dry-run) DRY=1 ;;
    --no-run) NORUN=1 ;;
    --out)
        [ $# -ge 2 ] || { echo "--out needs a directory" >&2; exit 2; }
        OUT=$2
        shift
        ;;
    --out=*) OUT=${1#--out=} ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    *)
        [ -z "$TABLE" ] || { echo "one table at a time (see --help)" >&2; exit 2; }
        TABLE=$1
        ;;
    esac
    shift
done
[ -n "$TABLE" ] || { usage >&2; exit 2; }

# The tessera command, split into words (e.g. "target/release/tessera").
read -r -a TESSERA_CMD <<<"${TESSERA:-cargo run --release --}"

# Print a command as one shell line (arguments with shell characters in single
# quotes).
quote() {
    local out= a
    for a in "$@"; do
        if [[ $a =~ ^[A-Za-z0-9_./=:,+@%-]+$ ]]; then
            out+=" $a"
        else
            out+=" '${a//\'/\'\\\'\'}'"
        fi
    done
    printf '%s\n' "${out# }"
}

# The timed runs must not include compiling the binary: with `cargo run` (the
# default), build it once, untimed, before the first run.
BUILT=0
ensure_built() {
    [ "$BUILT" = 1 ] && return
    BUILT=1
    [ "${TESSERA_CMD[0]}" = cargo ] && [ "${TESSERA_CMD[1]:-}" = run ] || return 0
    local args=() a
    for a in "${TESSERA_CMD[@]:2}"; do
        [ "$a" = -- ] || args+=("$a")
    done
    echo "[build] cargo build ${args[*]}" >&2
    cargo build "${args[@]}" >&2
}

# record LABEL ARGS...: `tessera ARGS... --json`, keeping the last stdout line
# (the summary or report) in DIR/LABEL.json.
record() {
    local label=$1
    shift
    local cmd=("${TESSERA_CMD[@]}" "$@" --json)
    if [ "$DRY" = 1 ]; then
        quote "${cmd[@]}"
        return
    fi
    if [ -s "$OUT/$label.json" ]; then
        echo "[$label] reusing $OUT/$label.json" >&2
        return
    fi
    if [ "$NORUN" = 1 ]; then
        echo "[$label] no summary in $OUT/$label.json (--no-run)" >&2
        exit 1
    fi
    ensure_built
    mkdir -p "$OUT"
    rm -rf "${OUT:?}/$label"
    echo "[$label] $(quote "${cmd[@]}")" >&2
    local start end
    start=$(date +%s)
    "${cmd[@]}" >"$OUT/$label.log"
    end=$(date +%s)
    tail -n 1 "$OUT/$label.log" >"$OUT/$label.json"
    echo $((end - start)) >"$OUT/$label.wall"
}

# run LABEL ARGS...: `tessera run ARGS... --out DIR/LABEL --json`.
run() {
    local label=$1
    shift
    record "$label" run "$@" --out "$OUT/$label"
}

# table KIND LABEL...: print the rows of a table from the saved summaries.
table() {
    [ "$DRY" = 1 ] && return
    python3 - "$OUT" "$@" <<'PY'
import json, os, sys

out, kind, labels = sys.argv[1], sys.argv[2], sys.argv[3:]

def load(label):
    with open(os.path.join(out, label + ".json")) as f:
        s = json.loads(f.read().strip().splitlines()[-1])
    wall = os.path.join(out, label + ".wall")
    s["wall"] = int(open(wall).read()) if os.path.exists(wall) else None
    # Mean LM iterations per solve over the run (every step has the same
    # number of solves): the mean of the steps' means in metrics.jsonl.
    its = []
    metrics = os.path.join(out, label, "metrics.jsonl")
    if os.path.exists(metrics):
        for line in open(metrics):
            if line.strip():
                its.append(json.loads(line)["lm_iterations_mean"])
    s["lm"] = sum(its) / len(its) if its and s.get("method") != "soft" else None
    s["lm_last"] = sum(its[-100:]) / len(its[-100:]) if its else None
    return s

def pm(mean, std, digits=4):
    return f"{mean:.{digits}f} ± {std:.{digits}f}"

def bracket(split):
    """A split written TxX as the README writes it, [T, X]."""
    return "[" + split.replace("x", ", ") + "]"

def physics(s):
    return (f"{s['pde_loss']:.3f} ({s['pde_loss_truth']:.3f})"
            if "pde_loss" in s else "—")

def method(s):
    return f"`{s['method']}`"

def seed(label):
    # A label ending in -seedS ran with seed S; all others with the scenario's 3.
    return label.rsplit("-seed", 1)[1] if "-seed" in label else "3"

def by_u0(label):
    """The median test error and the mean error of the trajectories whose
    initial value u0 (the RMS of the constant IC) lies below 0.05, in
    [0.05, 0.1) and from 0.1 on, with their counts, from the run's
    summary.json ("—" where the run directory or the field is absent)."""
    summary = os.path.join(out, label, "summary.json")
    median, bins = "—", ["—"] * 3
    if os.path.exists(summary):
        full = json.load(open(summary))
        errs = sorted(full["rel_l2"])
        median = f"{(errs[(len(errs) - 1) // 2] + errs[len(errs) // 2]) / 2:.4f}"
        pairs = list(zip(full.get("initial_rms", []), full["rel_l2"]))
        for k, (lo, hi) in enumerate([(0, 0.05), (0.05, 0.1), (0.1, 1.0)]):
            e = [err for u0, err in pairs if lo <= u0 < hi]
            if e:
                bins[k] = f"{sum(e) / len(e):.4f} ({len(e)})"
    return median, " | ".join(bins)

def frozen(label):
    return "frozen (reference)" if label.endswith("-frozen") else "trained"

WHAT = {
    "moe": "PI-HC-MoE, 4 experts × 300 points",
    "hard": "PI-HC, one global constraint",
    "soft": "PI-SC, PDE residual as a loss only",
}
PAPER_DS = {("soft", True): "85.93 % ± 5.07", ("hard", True): "7.55 % ± 8.10",
            ("moe", True): "3.60 % ± 2.93"}
PAPER_NS = {"soft": "18.081 % ± 3.740", "hard": "11.754 % ± 2.951",
            "moe": "8.298 % ± 2.345"}
PAPER_EX = {"soft": "8.05", "hard": "0.48", "moe": "0.148"}

rows = []
if kind == "quickstart":
    rows.append("| method | what it is | test rel. L2 (mean ± std) | training time |")
    rows.append("|---|---|---|---|")
    for label in labels:
        s = load(label)
        rows.append(f"| {method(s)} | {WHAT[s['method']]} | "
                    f"{pm(s['rel_l2_mean'], s['rel_l2_std'])} | {s['wall']} s |")
    s = load(labels[0])
    if "persistence_rel_l2_mean" in s:
        rows.append(f"| persistence | `u(t) = u₀`, no model | "
                    f"{pm(s['persistence_rel_l2_mean'], s['persistence_rel_l2_std'])} | — |")
elif kind == "ds-medium":
    rows.append("| method | lifting and projection | test rel. L2 | training | "
                "LM iterations | failed solves | PDE loss (truth) | paper (full scale) |")
    rows.append("|---|---|---|---|---|---|---|---|")
    for label in labels:
        s = load(label)
        lm = f"{s['lm']:.2f}" if s["lm"] is not None else "—"
        paper = PAPER_DS.get((s["method"], label.endswith("-frozen")), "—")
        rows.append(f"| {method(s)} | {frozen(label)} | "
                    f"{pm(s['rel_l2_mean'], s['rel_l2_std'])} | {s['seconds']:.0f} s | {lm} | "
                    f"{s['failed_solves']} / {s['eval_failed_solves']} | {physics(s)} | {paper} |")
elif kind == "floor":
    rows.append("| scenario | boundary rows | BC weight | distance from the truth (rel. L2) | "
                "training loss: floor (truth) | L-BFGS iterations | largest final gradient |")
    rows.append("|---|---|---|---|---|---|---|")
    for label in labels:
        s = load(label)
        # LABEL = SCENARIO-floor-BOUNDARY-WEIGHT
        scenario, rest = label.split("-floor-")
        boundary = rest.rsplit("-", 1)[0].replace("-", " ")
        rows.append(f"| {scenario} | {boundary} | {s['weights'][2]:g} | "
                    f"{pm(s['rel_l2_mean'], s['rel_l2_std'])} | "
                    f"{s['loss']:.4f} ({s['loss_truth']:.4f}) | {max(s['iterations'])} | "
                    f"{max(s['gradient_norms']):.1e} |")
elif kind == "ns-medium":
    first = load(labels[0])
    res = [r["resolution"] for r in first.get("resolutions", [])]
    rows.append("| method | " + " | ".join(f"test rel. L2 at {r}²" for r in res)
                + " | training | LM iterations | failed solves | paper (256² test) |")
    rows.append("|---" * (len(res) + 5) + "|")
    for label in labels:
        s = load(label)
        lm = f"{s['lm']:.2f}" if s["lm"] is not None else "—"
        errs = " | ".join(pm(r["rel_l2_mean"], r["rel_l2_std"]) for r in s["resolutions"])
        failed = "; ".join(str(r["failed_solves"]) for r in s["resolutions"])
        name = method(s) + (", IC loss 1" if label.endswith("-ic") else "")
        name += ", level-balanced PDE loss" if label.startswith("ns-levels-") else ""
        rows.append(f"| {name} | {errs} | {s['seconds']:.0f} s | {lm} | "
                    f"{s['failed_solves']} / {failed} | {PAPER_NS[s['method']]} |")
elif kind == "extrapolation":
    rows.append("| method | `t ≤ 400` (trained) | `t > 400` (extrapolated) | "
                "whole grid | paper, `t > 400` |")
    rows.append("|---|---|---|---|---|")
    for label in labels:
        s = load(label)
        name = method(s) + (", frozen" if label.endswith("-frozen") else "")
        rows.append(f"| {name} | {pm(s['in_window_rel_l2_mean'], s['in_window_rel_l2_std'])} | "
                    f"{pm(s['extrapolated_rel_l2_mean'], s['extrapolated_rel_l2_std'], 3)} | "
                    f"{pm(s['rel_l2_mean'], s['rel_l2_std'], 3)} | {PAPER_EX[s['method']]} |")
elif kind == "ds-tiles":
    rows.append("| split `[t, x]` | boundary rows | IC/BC rows | seed | steps | test rel. L2 | "
                "training | failed solves | PDE loss (truth) |")
    rows.append("|---|---|---|---|---|---|---|---|---|")
    for label in labels:
        s = load(label)
        split = {"ds-medium-moe": "1x4", "ds-medium-hard": "1x1"}.get(label, label.split("-")[2])
        rows.append(f"| `{bracket(split)}` | "
                    f"{'faces' if label.endswith('-faces') else 'cell centres'} | "
                    f"{'local' if label.endswith('-local') else 'global'} | "
                    f"{seed(label)} | "
                    f"{s['steps']} | {pm(s['rel_l2_mean'], s['rel_l2_std'])} | {s['seconds']:.0f} s | "
                    f"{s['failed_solves']} / {s['eval_failed_solves']} | {physics(s)} |")
elif kind == "ds-grid":
    # A floor label is ...-floor-NT-STENCILS (the protocol's: 51, reference);
    # a run label ds-grid-NT-STENCILS-METHOD[-seedS] (the protocol's grid:
    # ds-medium-METHOD, and ds-tiles-1x4-seed4 / ds-tiles-1x1-seed4 for seed 4).
    def config(label):
        if label.startswith(("ds-medium-", "ds-tiles-")):
            return "51", "reference"
        nt, rest = label.split("-floor-")[-1].split("-", 1) if "-floor-" in label \
            else label[len("ds-grid-"):].split("-", 1)
        return nt, next(f for f in ("reference", "second-order") if rest.startswith(f))
    floors = {config(l): load(l) for l in labels if "-floor-" in l}
    rows.append("| time levels | stencils | method | seed | test rel. L2 | median | "
                "`u0` < 0.05 (n) | 0.05–0.1 | ≥ 0.1 | physics floor | training | "
                "PDE loss (truth) |")
    rows.append("|---" * 12 + "|")
    for label in labels:
        if "-floor-" in label:
            continue
        s, (nt, fd) = load(label), config(label)
        median, bins = by_u0(label)
        f = floors[(nt, fd)]
        rows.append(f"| {nt} | {fd} | {method(s)} | {seed(label)} | "
                    f"{pm(s['rel_l2_mean'], s['rel_l2_std'])} | {median} | {bins} | "
                    f"{pm(f['rel_l2_mean'], f['rel_l2_std'])} | {s['seconds']:.0f} s | {physics(s)} |")
    rows.append("")
    rows.append("| time levels | stencils | physics floor (16 trajectories) | "
                "training loss: floor (truth) |")
    rows.append("|---|---|---|---|")
    for (nt, fd), f in floors.items():
        rows.append(f"| {nt} | {fd} | {pm(f['rel_l2_mean'], f['rel_l2_std'])} | "
                    f"{f['loss']:.4f} ({f['loss_truth']:.4f}) |")
elif kind == "ds-inputs":
    # A label ds-inputs-log-METHOD[-seedS] fed the IC's logarithm too; the
    # others are the ds-medium and ds-medium-tiles runs of the value alone.
    rows.append("| IC input | method | seed | test rel. L2 | median | `u0` < 0.05 (n) | "
                "0.05–0.1 | ≥ 0.1 | training | PDE loss (truth) |")
    rows.append("|---" * 10 + "|")
    for label in labels:
        s = load(label)
        median, bins = by_u0(label)
        ic = "value and log" if label.startswith("ds-inputs-log-") else "value"
        rows.append(f"| {ic} | {method(s)} | {seed(label)} | "
                    f"{pm(s['rel_l2_mean'], s['rel_l2_std'])} | {median} | {bins} | "
                    f"{s['seconds']:.0f} s | {physics(s)} |")
elif kind == "ds-levels":
    # ds-levels-METHOD[-seedS][-frozen] trained with the level-balanced PDE
    # loss, every other run label with the grid norm; a label with -floor is
    # the physics floor of its loss.
    def norm(label):
        return "levels" if label.startswith("ds-levels-") else "grid"
    floors = {norm(l): load(l) for l in labels if "-floor" in l}
    rows.append("| PDE loss | method | lifting and projection | seed | test rel. L2 | median | "
                "`u0` < 0.05 (n) | 0.05–0.1 | ≥ 0.1 | training | PDE loss, grid norm (truth) |")
    rows.append("|---" * 11 + "|")
    for label in labels:
        if "-floor" in label:
            continue
        s = load(label)
        median, bins = by_u0(label)
        rows.append(f"| {norm(label)} | {method(s)} | {frozen(label)} | {seed(label)} | "
                    f"{pm(s['rel_l2_mean'], s['rel_l2_std'])} | {median} | {bins} | "
                    f"{s['seconds']:.0f} s | {physics(s)} |")
    rows.append("")
    rows.append("| PDE loss | physics floor (16 trajectories) | training loss: floor (truth) |")
    rows.append("|---|---|---|")
    for n, f in floors.items():
        rows.append(f"| {n} | {pm(f['rel_l2_mean'], f['rel_l2_std'])} | "
                    f"{f['loss']:.4f} ({f['loss_truth']:.4f}) |")
elif kind == "tiles":
    rows.append("| split `[t, x]` | `t_max` | test rel. L2 | PDE loss of the predictions (truth) | "
                "LM iterations per solve, last 100 steps |")
    rows.append("|---|---|---|---|---|")
    for label in labels:
        s = load(label)
        # LABEL = burgers-tiles-TxX[-tT_MAX]
        parts = label.split("-")[2:]
        t_max = parts[1][1:] if len(parts) > 1 else "0.5"
        rows.append(f"| `{bracket(parts[0])}` | {t_max} | "
                    f"{pm(s['rel_l2_mean'], s['rel_l2_std'])} | "
                    f"{s['pde_loss']:.1f} ({s['pde_loss_truth']:.3f}) | {s['lm_last']:.1f} |")
elif kind == "custom":
    rows.append("| scenario | `moe` | `hard` | `soft` | persistence |")
    rows.append("|---|---|---|---|---|")
    # LABEL = custom-SCENARIO-METHOD, the methods in the order moe, hard, soft.
    for i in range(0, len(labels), 3):
        runs = [load(label) for label in labels[i:i + 3]]
        errors = " | ".join(pm(r["rel_l2_mean"], r["rel_l2_std"], 3) for r in runs)
        rows.append(f"| `{runs[0]['scenario']}` | {errors} | "
                    f"{runs[0]['persistence_rel_l2_mean']:.3f} |")
elif kind == "resolutions":
    s = load(labels[0])
    train = s["resolutions"][0]["resolution"]
    rows.append("| test resolution | rel. L2 (mean ± std) | failed solves |")
    rows.append("|---|---|---|")
    for r in s["resolutions"]:
        what = "the training grid" if r["resolution"] == train else "own grid, never trained on"
        rows.append(f"| {r['resolution']}² ({what}) | "
                    f"{pm(r['rel_l2_mean'], r['rel_l2_std'])} | {r['failed_solves']} |")
elif kind == "scaling":
    reports = json.load(open(labels[0]))
    rows.append("| PDE | P | single fwd | MoE fwd | speed-up fwd | single fwd+bwd | "
                "MoE fwd+bwd | speed-up fwd+bwd | LM iterations single; MoE |")
    rows.append("|---|---|---|---|---|---|---|---|---|")
    names = {"diffusion-sorption": "diffusion–sorption", "navier-stokes": "Navier–Stokes"}
    for report in reports:
        by = {}
        for e in report["entries"]:
            by.setdefault(e["points_total"], {})[e["method"]] = e
        for i, p in enumerate(sorted(by)):
            single, moe = by[p]["single"], by[p]["moe"]
            ms = lambda e, k: e[k] * 1e3
            its_s = ", ".join(str(i) for its in single["iterations"] for i in its)
            its_m = ", ".join(str(i) for its in moe["iterations"] for i in its)
            pde = names.get(report["pde"], report["pde"]) if i == 0 else ""
            rows.append(
                (f"| {pde} | " if pde else "| | ") + f"{p:,} | ".replace(",", " ")
                + f"{ms(single, 'fwd_median_s'):.1f} | {ms(moe, 'fwd_median_s'):.1f} | "
                f"{single['fwd_median_s'] / moe['fwd_median_s']:.2f} | "
                f"{ms(single, 'fwd_bwd_median_s'):.1f} | {ms(moe, 'fwd_bwd_median_s'):.1f} | "
                f"{single['fwd_bwd_median_s'] / moe['fwd_bwd_median_s']:.2f} | {its_s}; {its_m} |")
if kind in ("ds-medium", "ns-medium"):
    s = load(labels[0])
    if "persistence_rel_l2_mean" in s:
        rows.append("")
        rows.append("Persistence (u(t) = u₀ held, the same test trajectories): "
                    f"{pm(s['persistence_rel_l2_mean'], s['persistence_rel_l2_std'])}")
print("\n".join(rows))
PY
}

QS=scenarios/quickstart.toml
DSM=scenarios/diffusion-sorption-medium.toml
NSM=scenarios/navier-stokes-medium.toml
FROZEN=(--set 'training.freeze=["lift","head"]')
# The quickstart before it took the paper's widths and loss weights, with the
# reference's boundary rows: the settings of its extrapolation rows.
QS_EARLIER=(--set pde.boundary=cell-centres --set 'model.widths=[16,32,32,32]'
    --set model.fc_dim=64 --set training.loss.bc=0.1)
# The medium diffusion-sorption FNO before it took the paper's widths.
NARROW=(--set 'model.widths=[16,32,32,32,32]' --set model.fc_dim=64)

quickstart() {
    local m labels=()
    for m in moe hard soft; do
        run "quickstart-$m" "$QS" --set constraint.method=$m
        labels+=("quickstart-$m")
    done
    table quickstart "${labels[@]}"
}

# ds_medium PREFIX ARGS...: the six runs of the medium diffusion-sorption
# table, labelled PREFIX-METHOD[-frozen], each with ARGS added.
ds_medium() {
    local prefix=$1 m labels=()
    shift
    for m in soft hard moe; do
        run "$prefix-$m" "$DSM" --set constraint.method=$m "$@"
        run "$prefix-$m-frozen" "$DSM" --set constraint.method=$m "$@" "${FROZEN[@]}"
        labels+=("$prefix-$m" "$prefix-$m-frozen")
    done
    table ds-medium "${labels[@]}"
}

ns_medium() {
    local m labels=()
    for m in soft hard moe; do
        run "ns-medium-$m" "$NSM" --set constraint.method=$m
        labels+=("ns-medium-$m")
    done
    # The soft model has no initial condition built in: with the protocol's
    # PDE-only loss it can fall to a trivial solution, so also with an IC loss.
    run ns-medium-soft-ic "$NSM" --set constraint.method=soft --set training.loss.ic=1.0
    table ns-medium "${labels[0]}" ns-medium-soft-ic "${labels[@]:1}"
}

extrapolation() {
    local m quick=() medium=() wide=()
    for m in moe hard soft; do
        run "extrapolation-quickstart-$m" "$QS" --set training.horizon=400 --set constraint.method=$m \
            "${QS_EARLIER[@]}"
        quick+=("extrapolation-quickstart-$m")
    done
    for m in moe hard soft; do
        run "extrapolation-medium-$m" "$DSM" --set training.horizon=400 --set constraint.method=$m \
            "${NARROW[@]}"
        medium+=("extrapolation-medium-$m")
    done
    for m in moe hard soft; do
        run "extrapolation-medium-$m-frozen" "$DSM" --set training.horizon=400 \
            --set constraint.method=$m "${NARROW[@]}" "${FROZEN[@]}"
        medium+=("extrapolation-medium-$m-frozen")
    done
    for m in moe hard soft; do
        run "extrapolation-medium-wide-$m" "$DSM" --set training.horizon=400 --set constraint.method=$m
        wide+=("extrapolation-medium-wide-$m")
    done
    [ "$DRY" = 1 ] || echo "Quickstart (26 × 64, 16 test trajectories):"
    table extrapolation "${quick[@]}"
    [ "$DRY" = 1 ] || echo "Medium (51 × 256, 64 test trajectories), narrow FNO:"
    table extrapolation "${medium[@]}"
    [ "$DRY" = 1 ] || echo "Medium, the paper's FNO (the scenario as committed):"
    table extrapolation "${wide[@]}"
}

# The physics floor (`tessera floor`) of the quickstart with either boundary
# placement at either BC weight, and of the medium diffusion-sorption scenario.
floor() {
    local b w labels=()
    for b in faces cell-centres; do
        for w in 0.1 1.0; do
            record "quickstart-floor-$b-$w" floor "$QS" --set pde.boundary=$b \
                --set training.loss.bc=$w --samples 16 --iterations 5000
            labels+=("quickstart-floor-$b-$w")
        done
    done
    record ds-medium-floor-cell-centres-1.0 floor "$DSM" --samples 16 --iterations 5000
    labels+=(ds-medium-floor-cell-centres-1.0)
    table floor "${labels[@]}"
}

resolutions() {
    run resolutions-ns-small scenarios/navier-stokes-small.toml
    table resolutions resolutions-ns-small
}

# Runs the protocol's runs that several tables share, each label defined once so
# that it always means one command: ds-medium-METHOD[-frozen] (seed 3, as
# ds_medium names them) and ds-tiles-SPLIT-seedS (the split 1x1 is PI-HC, one constraint).
shared_runs() {
    local label split seed
    for label in "$@"; do
        case "$label" in
        ds-medium-*-frozen)
            split=${label#ds-medium-}
            run "$label" "$DSM" --set "constraint.method=${split%-frozen}" "${FROZEN[@]}"
            ;;
        ds-medium-*) run "$label" "$DSM" --set "constraint.method=${label#ds-medium-}" ;;
        ds-tiles-*-seed*)
            split=${label#ds-tiles-}
            split=${split%-seed*}
            seed=${label##*-seed}
            if [ "$split" = 1x1 ]; then
                run "$label" "$DSM" --set "seed=$seed" --set constraint.method=hard
            else
                run "$label" "$DSM" --set "seed=$seed" --set "constraint.experts=[${split/x/,}]"
            fi
            ;;
        *)
            echo "no shared run is labelled $label" >&2
            exit 2
            ;;
        esac
    done
}

# The medium diffusion-sorption MoE with tiles in time, next to the protocol's
# x-tiles and one constraint (the ds-medium table's runs of the same labels).
ds_medium_tiles() {
    local split labels=(ds-medium-moe ds-medium-hard)
    shared_runs "${labels[@]}"
    for split in 4x1 2x1; do
        run "ds-tiles-$split" "$DSM" --set "constraint.experts=[${split/x/,}]"
        labels+=("ds-tiles-$split")
    done
    run ds-tiles-4x1-faces "$DSM" --set 'constraint.experts=[4,1]' --set pde.boundary=faces
    run ds-tiles-4x1-3000 "$DSM" --set 'constraint.experts=[4,1]' --set training.steps=3000 \
        --set training.every=600
    run ds-tiles-4x1-4000 "$DSM" --set 'constraint.experts=[4,1]' --set training.steps=4000 \
        --set training.every=800
    run ds-tiles-4x1-local "$DSM" --set 'constraint.experts=[4,1]' --set constraint.rows=local
    labels+=(ds-tiles-4x1-faces ds-tiles-4x1-3000 ds-tiles-4x1-4000 ds-tiles-4x1-local)
    local seeds=(ds-tiles-4x1-seed4 ds-tiles-1x4-seed4 ds-tiles-1x1-seed4 ds-tiles-1x4-seed5
        ds-tiles-1x1-seed5)
    shared_runs "${seeds[@]}"
    labels+=("${seeds[@]}")
    table ds-tiles "${labels[@]}"
}

# The medium diffusion-sorption scenario on a finer time grid (the paper's 101
# levels) and with second-order stencils: each discretisation's physics floor,
# then PI-HC-MoE (and, at 101 levels, PI-HC and a second seed). Labels are
# ds-grid-NT-STENCILS-METHOD[-seedS] and ds-grid-floor-NT-STENCILS; the
# protocol's own run and floor are the ds-medium and floor tables'.
ds_medium_grid() {
    local nt fd shared=(ds-medium-moe ds-medium-hard ds-tiles-1x4-seed4 ds-tiles-1x1-seed4)
    local labels=(ds-medium-floor-cell-centres-1.0 "${shared[@]}")
    record ds-medium-floor-cell-centres-1.0 floor "$DSM" --samples 16 --iterations 5000
    shared_runs "${shared[@]}"
    for nt in 51 101; do
        for fd in reference second-order; do
            [ "$nt/$fd" = 51/reference ] && continue
            [ "$nt/$fd" = 101/second-order ] || {
                run "ds-grid-$nt-$fd-moe" "$DSM" --set grid.nt=$nt --set constraint.fd=$fd
                labels+=("ds-grid-$nt-$fd-moe")
            }
            record "ds-grid-floor-$nt-$fd" floor "$DSM" --set grid.nt=$nt \
                --set constraint.fd=$fd --samples 16 --iterations 5000
            labels+=("ds-grid-floor-$nt-$fd")
        done
    done
    run ds-grid-101-reference-hard "$DSM" --set grid.nt=101 --set constraint.method=hard
    run ds-grid-101-reference-moe-seed4 "$DSM" --set grid.nt=101 --set seed=4
    run ds-grid-101-reference-hard-seed4 "$DSM" --set grid.nt=101 --set seed=4 \
        --set constraint.method=hard
    labels+=(ds-grid-101-reference-hard ds-grid-101-reference-moe-seed4
        ds-grid-101-reference-hard-seed4)
    table ds-grid "${labels[@]}"
}

# The medium diffusion-sorption scenario with the initial condition's logarithm
# as a second input channel (model.ic_features = "value-and-log"), PI-HC-MoE
# with three seeds and PI-HC with one, next to the same runs with the value
# alone (the ds-medium and ds-medium-tiles tables').
ds_medium_inputs() {
    local s labels=()
    shared_runs ds-medium-moe ds-medium-hard ds-tiles-1x4-seed4 ds-tiles-1x4-seed5
    run ds-inputs-log-moe "$DSM" --set model.ic_features=value-and-log
    for s in 4 5; do
        run "ds-inputs-log-moe-seed$s" "$DSM" --set model.ic_features=value-and-log --set seed=$s
    done
    run ds-inputs-log-hard "$DSM" --set model.ic_features=value-and-log --set constraint.method=hard
    labels=(ds-medium-moe ds-tiles-1x4-seed4 ds-tiles-1x4-seed5 ds-inputs-log-moe
        ds-inputs-log-moe-seed4 ds-inputs-log-moe-seed5 ds-medium-hard ds-inputs-log-hard)
    table ds-inputs "${labels[@]}"
}

# The medium diffusion-sorption scenario with the level-balanced PDE loss
# (training.pde_norm = "levels"), labelled ds-levels-METHOD[-seedS][-frozen],
# next to the same runs with the reference's grid norm (the ds-medium and
# ds-medium-tiles tables'), and the physics floor of either loss.
ds_medium_levels() {
    local m s levels=(--set training.pde_norm=levels) labels=() grid=()
    grid=(ds-medium-moe ds-tiles-1x4-seed4 ds-tiles-1x4-seed5 ds-medium-hard
        ds-tiles-1x1-seed4 ds-tiles-1x1-seed5 ds-medium-soft ds-medium-moe-frozen
        ds-medium-hard-frozen ds-medium-soft-frozen)
    record ds-medium-floor-cell-centres-1.0 floor "$DSM" --samples 16 --iterations 5000
    record ds-levels-floor floor "$DSM" "${levels[@]}" --samples 16 --iterations 5000
    shared_runs "${grid[@]}"
    for m in moe hard; do
        run "ds-levels-$m" "$DSM" "${levels[@]}" --set constraint.method=$m
        labels+=("ds-levels-$m")
        for s in 4 5 6 7; do
            run "ds-levels-$m-seed$s" "$DSM" "${levels[@]}" --set constraint.method=$m --set seed=$s
            labels+=("ds-levels-$m-seed$s")
        done
    done
    run ds-levels-soft "$DSM" "${levels[@]}" --set constraint.method=soft
    labels+=(ds-levels-soft)
    for m in moe hard soft; do
        run "ds-levels-$m-frozen" "$DSM" "${levels[@]}" --set constraint.method=$m "${FROZEN[@]}"
        labels+=("ds-levels-$m-frozen")
    done
    table ds-levels ds-medium-floor-cell-centres-1.0 ds-levels-floor "${grid[@]}" "${labels[@]}"
    # The quickstart with the same loss (its grid-norm runs: the quickstart table).
    labels=()
    for m in moe hard soft; do
        run "quickstart-levels-$m" "$QS" "${levels[@]}" --set constraint.method=$m
        labels+=("quickstart-levels-$m")
    done
    record quickstart-levels-floor floor "$QS" "${levels[@]}" --samples 16 --iterations 5000
    [ "$DRY" = 1 ] || echo "Quickstart, level-balanced PDE loss:"
    table quickstart "${labels[@]}"
    # The medium Navier-Stokes hard methods with it (their grid-norm runs: the
    # ns-medium table).
    labels=()
    for m in hard moe; do
        run "ns-levels-$m" "$NSM" "${levels[@]}" --set constraint.method=$m
        labels+=("ns-levels-$m")
    done
    [ "$DRY" = 1 ] || echo "Medium Navier-Stokes, level-balanced PDE loss:"
    table ns-medium "${labels[@]}"
}

# Burgers with one constraint (`[1, 1]`), two time tiles and two or four
# x-tiles, then one constraint against four x-tiles on shorter windows.
burgers_tiles() {
    local b=scenarios/burgers-small.toml split t labels=()
    for split in 1x1 2x1 1x2 1x4; do
        run "burgers-tiles-$split" "$b" --set "constraint.experts=[${split/x/,}]"
        labels+=("burgers-tiles-$split")
    done
    for t in 0.1 0.25; do
        for split in 1x1 1x4; do
            run "burgers-tiles-$split-t$t" "$b" --set "constraint.experts=[${split/x/,}]" \
                --set grid.t_max=$t
            labels+=("burgers-tiles-$split-t$t")
        done
    done
    table tiles "${labels[@]}"
}

# Each PDE defined in TOML with the three methods; the persistence baseline
# comes with every summary.
custom() {
    local scenario m labels=()
    for scenario in burgers-small allen-cahn-small kdv-small kuramoto-sivashinsky-small \
        allen-cahn-2d-small navier-stokes-toml-small anisotropic-diffusion-small \
        zakharov-kuznetsov-small cahn-hilliard-small; do
        for m in moe hard soft; do
            run "custom-$scenario-$m" "scenarios/$scenario.toml" --set constraint.method=$m
            labels+=("custom-$scenario-$m")
        done
    done
    table custom "${labels[@]}"
}

scaling() {
    local cmd=("${TESSERA_CMD[@]}" bench scaling --json benches/scaling.json --plot benches/scaling.png)
    if [ "$DRY" = 1 ]; then
        quote "${cmd[@]}"
        return
    fi
    if [ "$NORUN" = 1 ]; then
        table scaling benches/scaling.json
        return
    fi
    echo "[scaling] $(quote "${cmd[@]}")" >&2
    "${cmd[@]}" >&2
    table scaling benches/scaling.json
}

case "$TABLE" in
quickstart) quickstart ;;
ds-medium) ds_medium ds-medium ;;
ds-medium-narrow) ds_medium ds-medium-narrow "${NARROW[@]}" ;;
ns-medium) ns_medium ;;
extrapolation) extrapolation ;;
floor) floor ;;
resolutions) resolutions ;;
ds-medium-tiles) ds_medium_tiles ;;
ds-medium-grid) ds_medium_grid ;;
ds-medium-inputs) ds_medium_inputs ;;
ds-medium-levels) ds_medium_levels ;;
burgers-tiles) burgers_tiles ;;
custom) custom ;;
scaling) scaling ;;
all)
    quickstart
    ds_medium ds-medium
    ds_medium ds-medium-narrow "${NARROW[@]}"
    ns_medium
    extrapolation
    floor
    resolutions
    ds_medium_tiles
    ds_medium_grid
    ds_medium_inputs
    ds_medium_levels
    burgers_tiles
    custom
    scaling
    ;;
*)
    echo "unknown table: $TABLE (see --help)" >&2
    exit 2
    ;;
esac
