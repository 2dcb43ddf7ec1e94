"""The analyses, from the MLflow store, as one command:

    python -m analysis figures [--run-missing] [--quick] ...   # the thesis's chapter 4 figures (make_figures)
    python -m analysis eval [--run-missing] [--quick] ...      # chapter 5: are the images what was asked? (make_eval)
    python -m analysis egan                                    # E-GAN vs DCGAN (egan)
    python -m analysis facegen                                 # FaceGen's pixel GA vs VAE vs DCGAN (facegen)

Each reads the store of a conf/paths/ option (--paths, as run.py's paths=; default: the
project's) or --store; `python -m analysis <command> --help` lists its options."""

from __future__ import annotations

import argparse

from latentevo.cli import ArgumentParser, exit_on_error

from . import egan, facegen, make_eval, make_figures

COMMANDS = {"figures": make_figures, "eval": make_eval, "egan": egan, "facegen": facegen}


def parser() -> ArgumentParser:
    top = ArgumentParser(prog="python -m analysis", description=__doc__,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = top.add_subparsers(dest="command", required=True, metavar="|".join(COMMANDS))
    for name, module in COMMANDS.items():
        doc = module.__doc__ or ""
        module.add_arguments(commands.add_parser(name, help=doc.splitlines()[0], description=doc,
                                                 formatter_class=argparse.RawDescriptionHelpFormatter))
    return top


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    COMMANDS[args.command].main(args)


if __name__ == "__main__":
    exit_on_error(main)
