"""``tempo-kit components``: every registered component by kind, with the package it comes from.

Plugins that failed to import are listed last with their error, so a broken third-party package
is visible without stopping anything else.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", nargs="?", default=None, help="only this kind (compressors, projectors, video_backends, ...)")


def run(args: argparse.Namespace) -> int:
    from tempo_kit.errors import ConfigError, did_you_mean
    from tempo_kit.registry import REGISTRIES

    registries = {registry.kind: registry for registry in REGISTRIES}
    if args.kind is not None and args.kind not in registries:
        raise ConfigError(
            f"unknown kind {args.kind!r}{did_you_mean(args.kind, registries)}; kinds: {', '.join(registries)}"
        )
    broken = []
    for kind, registry in registries.items():
        if args.kind not in (None, kind):
            continue
        print(f"{kind} (entry-point group {registry.entry_point_group}):")
        names = registry.list()
        width = max(map(len, names), default=0)
        for name in names:
            print(f"  {name:<{width}}  {registry.origin(name)}")
        broken += [f"  {kind}/{name}: {error}" for name, error in registry.broken().items()]
    if broken:
        print("broken plugins (set aside):")
        print("\n".join(broken))
    return 0
