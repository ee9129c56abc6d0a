"""``tempo-kit recipes list | show NAME | copy NAME DIR``: the shipped recipes, as ``tune ls`` / ``tune cp``."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", help="the shipped recipes, one per line, with what each trains")
    show = actions.add_parser("show", help="print a shipped recipe's YAML")
    show.add_argument("name", help="recipe name, e.g. stage2")
    copy = actions.add_parser("copy", help="copy a recipe (and the base recipes it builds on) to edit")
    copy.add_argument("name", help="recipe name, e.g. stage2_lora")
    copy.add_argument("folder", help="destination folder (created if missing)")


def run(args: argparse.Namespace) -> int:
    from tempo_kit.recipes.shipped import copy_recipe, describe, shipped_recipe, shipped_recipes

    if args.action == "list":
        recipes = shipped_recipes()
        width = max(map(len, recipes), default=0)
        for name, path in recipes.items():
            print(f"{name:<{width}}  {describe(path)}")
    elif args.action == "show":
        sys.stdout.write(shipped_recipe(args.name).read_text())
    else:
        for target in copy_recipe(args.name, args.folder):
            print(f"wrote {target}")
        print(f"run it with: tempo-kit fit --recipe {target.parent / (args.name + '.yaml')}")
    return 0
