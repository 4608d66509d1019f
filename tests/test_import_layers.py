"""Imports inside ``plugin/`` only point down (issue 18, item 2; docs/architecture.md).

Layers know nothing of what counts, draws or evaluates them; models nothing of plotting; the data
generators nothing of the evaluation (what both need is in ``structures``, which imports nothing
of the plugin). Every ``import`` and ``from ... import`` of every module (also those inside
functions, relative ones resolved) is read with ``ast``; nothing is imported.
"""
import ast
import os
import os.path as osp
from typing import Iterator, Tuple

import pytest

from conftest import ROOT

PACKAGES = sorted(f'plugin.{name}' for name in os.listdir(osp.join(ROOT, 'plugin'))
                  if osp.isfile(osp.join(ROOT, 'plugin', name, '__init__.py')))
# (package whose modules are checked, packages they must not import)
FORBIDDEN = [
    ('plugin.layers', ('plugin.analysis', 'plugin.visualization', 'plugin.evaluation')),
    ('plugin.models', ('plugin.visualization', )),
    ('plugin.datasets', ('plugin.evaluation', )),
    # what the data generators and the evaluation share: nothing of the plugin beneath it
    ('plugin.structures', tuple(p for p in PACKAGES if p != 'plugin.structures')),
]


def module_name(path: str) -> str:
    """``plugin.layers.dr_conv`` for ``ROOT/plugin/layers/dr_conv.py`` (a package: its
    ``__init__``'s name is the package's)."""
    parts = osp.splitext(osp.relpath(path, ROOT))[0].split(os.sep)
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def imported_modules(source: str, module: str, is_package: bool = False) -> Iterator[str]:
    """Absolute names of what ``source`` (the text of ``module``) imports: ``X`` for ``import X``,
    ``X.a`` for ``from X import a`` (``a`` may be a submodule or a name in ``X``)."""
    package = module if is_package else module.rpartition('.')[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                anchor = package.split('.')
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = '.'.join(anchor + ([base] if base else []))
            yield from (f'{base}.{alias.name}' for alias in node.names)


def plugin_imports() -> Iterator[Tuple[str, str]]:
    """``(module, imported name)`` for every import of every module under plugin/."""
    for folder, _, files in os.walk(osp.join(ROOT, 'plugin')):
        for name in sorted(f for f in files if f.endswith('.py')):
            path = osp.join(folder, name)
            with open(path) as f:
                source = f.read()
            module = module_name(path)
            for imported in imported_modules(source, module, name == '__init__.py'):
                yield module, imported


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + '.')


@pytest.mark.parametrize('importer, forbidden', FORBIDDEN, ids=[rule[0] for rule in FORBIDDEN])
def test_imports_point_down(importer, forbidden):
    upward = sorted({f'{module} imports {target}' for module, imported in plugin_imports()
                     for target in forbidden
                     if within(module, importer) and within(imported, target)})
    assert not upward, '\n'.join(upward)


def test_the_check_sees_relative_absolute_and_nested_imports():
    source = ('from ..analysis.complexity import register_flop_handle\n'
              'import plugin.evaluation.occlusion as occ\n'
              'def f():\n'
              '    from .. import visualization\n'
              'from .inputs import check_input\n')
    assert set(imported_modules(source, 'plugin.layers.dr_conv')) == {
        'plugin.analysis.complexity.register_flop_handle', 'plugin.evaluation.occlusion',
        'plugin.visualization', 'plugin.layers.inputs.check_input'}
    assert set(imported_modules('from . import dr_conv\n', 'plugin.layers', is_package=True)) \
        == {'plugin.layers.dr_conv'}
    assert module_name(osp.join(ROOT, 'plugin', 'layers', '__init__.py')) == 'plugin.layers'
    assert {'plugin.layers', 'plugin.evaluation', 'plugin.structures'} <= set(PACKAGES)
