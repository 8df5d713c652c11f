"""`backroom models`: export open_clip checkpoints to ONNX model directories, and check one."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

models_app = typer.Typer(help="CLIP model directories (ONNX): export and check.", no_args_is_help=True)
console = Console()


@models_app.command("export")
def export(
    arch: str = typer.Option("ViT-B-32", "--arch", help="open_clip architecture name."),
    pretrained: str = typer.Option(
        ...,
        "--pretrained",
        help="A hub tag (online), a local checkpoint file "
        "(offline), or 'none' for seeded random weights (benchmarks only).",
    ),
    out: Path = typer.Option(..., "--out", help="The model directory to write."),
    int8: bool = typer.Option(False, "--int8", help="Also write dynamically quantised int8 models (edge)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random weights with --pretrained none."),
) -> None:
    """Export an open_clip checkpoint to image.onnx, text.onnx, the tokenizer and a manifest."""
    try:
        from ml_export.export import ExportError, export_model
    except ImportError as error:
        console.print(f"[red]exporting needs the export extra[/red] (pip install 'backroom\\[export]'): {error}")
        raise typer.Exit(2) from None
    try:
        manifest = export_model(arch, pretrained, out, int8=int8, seed=seed)
    except ExportError as error:
        console.print(f"[red]export failed:[/red] {error}")
        raise typer.Exit(1) from None
    console.print(
        f"exported [bold]{manifest.model_id}[/bold] ({manifest.embed_dim}-d) to {out}: "
        + ", ".join(sorted(manifest.files))
    )
    if not manifest.semantic:
        console.print("[yellow]random weights: these embeddings are not semantic (benchmarks and tests only)[/yellow]")


@models_app.command("check")
def check(
    directory: Path = typer.Argument(None, help="A model directory (default: MODEL_DIR, else the tiny test model)."),
    precision: str = typer.Option("fp32", "--precision", help="fp32 or int8."),
) -> None:
    """Verify a model directory's checksums, open its ONNX sessions and embed a probe text."""
    from ml.clip import ClipModel
    from ml.manifest import TINY_MODEL_DIR, ModelDirError

    if directory is None:
        from config.settings import get_settings

        directory = get_settings().model_dir or TINY_MODEL_DIR
    try:
        model = ClipModel.load(directory, precision="int8" if precision == "int8" else "fp32")
    except ModelDirError as error:
        console.print(f"[red]bad model directory:[/red] {error}")
        raise typer.Exit(1) from None
    vector = model.embed_texts(["a probe"])[0]
    console.print(
        f"[green]ok[/green] {model.model_id}: {model.manifest.embed_dim}-d, |probe| = {float(vector @ vector):.3f}"
        + ("" if model.manifest.semantic else "  [yellow](random weights: not semantic)[/yellow]")
    )
