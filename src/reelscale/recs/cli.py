"""`reelscale recs ...`: the platform's training job, offline top-k, evaluation, synthetic data.

Human-readable output goes to stderr; the last line on stdout is one JSON object with the
result, so scripts and benchmarks can read it.

`train` reads the platform's titles, signals and profiles through the same sources the
server uses. Recs may not import the services that own them (import-linter's independence
contract), so the top-level CLI, which assembles services like `create_app` does, hands
this module an opener with `use_platform_sources`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from reelscale.core.settings import Settings
from reelscale.recs.errors import DataError

if TYPE_CHECKING:
    from reelscale.recs.pipeline import ModelName
    from reelscale.recs.sources import PlatformSources

#: Opens the platform's sources for a training run (read-only), given the settings.
SourcesOpener = Callable[[Settings], AbstractAsyncContextManager["PlatformSources"]]
_opener: SourcesOpener | None = None


def use_platform_sources(opener: SourcesOpener | None) -> None:
    """Tell `reelscale recs train` how to reach the platform's data (None forgets it)."""
    global _opener
    _opener = opener


# Kept in step with pipeline.MODEL_NAMES (a test checks); importing pipeline here would load
# numpy and scipy for every `reelscale` command.
MODEL_NAMES = ("auto", "ease", "rp3beta", "als", "popularity")

app = typer.Typer(
    help="Recommendations: the training job, offline top-k lists, evaluation, synthetic data.",
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


@app.command("train")
def train_command(
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Artifact directory (default: DATA_DIR/recs/models)."),
    ] = None,
) -> None:
    """Build a model from the platform's data and publish it as the next versioned artifact;
    running servers swap it in within seconds."""
    from reelscale.core.clock import SystemClock
    from reelscale.recs.artifacts import ModelStore, default_directory
    from reelscale.recs.training import train_and_publish

    try:
        settings = Settings()
    except ValidationError as exc:
        console.print(f"[red]Invalid settings:[/red]\n{exc}")
        raise typer.Exit(2) from None
    if _opener is None:
        console.print("[red]this build of reelscale cannot reach the platform's data[/red]")
        raise typer.Exit(2)
    opener = _opener
    store = ModelStore(out or default_directory(settings.data_dir))
    started = time.perf_counter()

    async def run(step: Callable[[str], None]) -> dict[str, Any]:
        async with opener(settings) as sources:
            return await train_and_publish(sources, store, clock=SystemClock(), progress=step)

    try:
        with _steps() as step:
            result = asyncio.run(run(step))
    except Exception as exc:  # a database or disk failure: say what, exit non-zero
        console.print(f"[red]training failed: {type(exc).__name__}: {exc}[/red]")
        raise typer.Exit(1) from None
    console.print(
        f"[green]model {result['version']}[/green] ({result['algorithm']}, context ranker "
        f"{'on' if result['context_ranker'] else 'off'}) from {result['titles']} titles and "
        f"{result['signals']} signals in {time.perf_counter() - started:.1f} s -> {result['path']}"
    )
    _emit(result)


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


class _steps:
    """A Rich spinner naming the step in progress, and a line per finished step."""

    def __enter__(self) -> Callable[[str], None]:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
            console=console, transient=True,
        )  # fmt: skip
        self._progress.start()
        self._task = self._progress.add_task("starting", total=None)
        self._last: tuple[str, float] | None = None
        return self.step

    def step(self, name: str) -> None:
        self._finish()
        self._last = (name, time.perf_counter())
        self._progress.update(self._task, description=name)

    def _finish(self) -> None:
        if self._last is not None:
            name, began = self._last
            self._progress.console.print(f"  {name} [dim]{time.perf_counter() - began:.2f} s[/dim]")

    def __exit__(self, *exc: object) -> None:
        self._finish()
        self._progress.stop()


def _emit(result: dict[str, Any]) -> None:
    typer.echo(json.dumps(result, sort_keys=True))
