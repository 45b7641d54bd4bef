"""`reelscale recs ...`: offline top-k, evaluation and synthetic data.

Human-readable output goes to stderr; the last line on stdout is one JSON object with the
result, so scripts and benchmarks can read it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich.console import Console
from rich.table import Table

from reelscale.recs.errors import DataError

if TYPE_CHECKING:
    from reelscale.recs.pipeline import ModelName

# Kept in step with pipeline.MODEL_NAMES (a test checks); importing pipeline here would load
# numpy and scipy for every `reelscale` command.
MODEL_NAMES = ("auto", "ease", "rp3beta", "als", "popularity")

app = typer.Typer(
    help="Recommendations: offline top-k lists, evaluation, synthetic data.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = Console(stderr=True)

ItemsOpt = Annotated[
    Path | None,
    typer.Option("--items", help="Items CSV: item,title,genres,year (genres split by |)."),
]
ModelOpt = Annotated[
    str,
    typer.Option("--model", help="auto (EASE + ranker), ease, rp3beta, als or popularity."),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the splits.")]


@app.command("topk")
def topk_command(
    train: Annotated[
        Path, typer.Option("--train", help="Interactions CSV: user,item[,rating,timestamp].")
    ],
    out: Annotated[Path, typer.Option("--out", help="Where to write user,item,rank.")],
    items: ItemsOpt = None,
    k: Annotated[int, typer.Option("--k", min=1, max=1000, help="Items per user.")] = 10,
    model: ModelOpt = "auto",
    seed: SeedOpt = 42,
) -> None:
    """Write k items per user, none from that user's training rows; tuning uses TRAIN only."""
    from reelscale.recs.offline import topk

    result = _run(lambda: topk(train, items, k, out, model=_model(model), seed=seed))
    console.print(
        f"[green]wrote[/green] {result['rows']} rows for {result['users']} users to {out} "
        f"with {result['model']}"
    )
    _emit(result)


@app.command("evaluate")
def evaluate_command(
    interactions: Annotated[Path, typer.Option("--interactions", help="Interactions CSV.")],
    items: ItemsOpt = None,
    model: ModelOpt = "auto",
    k: Annotated[int, typer.Option("--k", min=1, max=100)] = 10,
    stratify: Annotated[
        str, typer.Option("--stratify", help="user (the default) or item.")
    ] = "user",
    seed: SeedOpt = 42,
    drop_unknown_items: Annotated[
        bool, typer.Option(help="Drop test rows of items that never occur in train.")
    ] = False,
) -> None:
    """MAP, nDCG@k, Precision@k, Recall@k under a stratified 75/25 random split."""
    from reelscale.recs.offline import evaluate

    if stratify not in ("user", "item"):
        console.print("[red]--stratify must be user or item[/red]")
        raise typer.Exit(2)
    result = _run(
        lambda: evaluate(
            interactions,
            items,
            model=_model(model),
            k=k,
            seed=seed,
            stratify="user" if stratify == "user" else "item",
            drop_unknown_items=drop_unknown_items,
        )
    )
    table = Table(title=f"{result['model']} on {interactions.name}")
    for name in ("map", f"map_at_{k}", f"ndcg_at_{k}", f"precision_at_{k}", f"recall_at_{k}"):
        table.add_column(name, justify="right")
    table.add_column("train s", justify="right")
    table.add_row(
        *(f"{result[n]:.4f}" for n in ("map", f"map_at_{k}", f"ndcg_at_{k}")),
        *(f"{result[n]:.4f}" for n in (f"precision_at_{k}", f"recall_at_{k}")),
        f"{result['train_seconds']:.2f}",
    )
    console.print(table)
    _emit(result)


@app.command("synthetic")
def synthetic_command(
    out: Annotated[Path, typer.Option("--out", help="Directory for interactions.csv, items.csv.")],
    seed: SeedOpt = 42,
) -> None:
    """Write a MovieLens-100k-shaped data set with planted structure (for trials and benches)."""
    from reelscale.recs.synthetic import SyntheticConfig, generate, write_csv

    data = generate(SyntheticConfig(seed=seed))
    out.mkdir(parents=True, exist_ok=True)
    write_csv(data, out / "interactions.csv", out / "items.csv")
    console.print(f"[green]wrote[/green] {len(data.interactions)} interactions to {out}")
    _emit(
        {
            "interactions": str(out / "interactions.csv"),
            "items": str(out / "items.csv"),
            "rows": len(data.interactions),
        }
    )


def _model(name: str) -> ModelName:
    if name not in MODEL_NAMES:
        console.print(f"[red]--model must be one of {', '.join(MODEL_NAMES)}[/red]")
        raise typer.Exit(2)
    return cast("ModelName", name)


def _run(job: Any) -> dict[str, Any]:
    try:
        result: dict[str, Any] = job()
    except DataError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    return result


def _emit(result: dict[str, Any]) -> None:
    typer.echo(json.dumps(result, sort_keys=True))
