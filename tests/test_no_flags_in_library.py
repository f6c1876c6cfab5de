"""Library code reads no flag: only core/flags/ and the entry scripts do.

A static scan of the sources (no import, no TensorFlow): every module under
core/ outside core/flags/, under deeplab/ and under utils/ is parsed, and any
import of absl's flags, any `FLAGS` name or attribute and any `DEFINE_*` call
fails the test with its file and line.
"""
import ast
import glob
import os

from conftest import REPO_ROOT

LIBRARY_PACKAGES = ('core', 'deeplab', 'utils')
FLAG_PACKAGE = os.path.join('core', 'flags')


def _library_modules():
  """Paths (relative to the repository) of the library's modules."""
  paths = []
  for package in LIBRARY_PACKAGES:
    pattern = os.path.join(REPO_ROOT, package, '**', '*.py')
    for path in glob.glob(pattern, recursive=True):
      relative = os.path.relpath(path, REPO_ROOT)
      if not relative.startswith(FLAG_PACKAGE + os.sep):
        paths.append(relative)
  return sorted(paths)


def _flag_uses(source):
  """(line, what) of every use of absl flags in a module's source."""
  uses = []
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, ast.Import):
      uses += [(node.lineno, 'import ' + alias.name) for alias in node.names
               if alias.name.startswith('absl.flags')]
    elif isinstance(node, ast.ImportFrom):
      module = node.module or ''
      if module.startswith('absl.flags') or (
          module == 'absl' and any(a.name == 'flags' for a in node.names)):
        uses.append((node.lineno, 'from %s import flags' % module))
    elif isinstance(node, ast.Name) and node.id == 'FLAGS':
      uses.append((node.lineno, 'FLAGS'))
    elif isinstance(node, ast.Attribute) and (
        node.attr == 'FLAGS' or node.attr.startswith('DEFINE')):
      uses.append((node.lineno, '.' + node.attr))
  return uses


def test_the_scan_finds_every_kind_of_flag_use():
  source = ('from absl import flags\nimport absl.flags\n'
            'x = flags.FLAGS.seed\nFLAGS = None\n'
            "flags.DEFINE_integer('n', 1, 'n')\n")
  assert sorted({line for line, _ in _flag_uses(source)}) == [1, 2, 3, 4, 5]
  assert not _flag_uses('"""Reads no flag: FLAGS.x, flags.DEFINE_x."""\n'
                        '# FLAGS.seed\n')


def test_no_library_module_reads_or_defines_a_flag():
  modules = _library_modules()
  assert os.path.join('core', 'train', 'loop.py') in modules
  assert os.path.join('deeplab', 'common.py') in modules
  found = []
  for relative in modules:
    with open(os.path.join(REPO_ROOT, relative)) as stream:
      found += ['%s:%d: %s' % (relative, line, what)
                for line, what in _flag_uses(stream.read())]
  assert not found, ('flags are read at the edge only (core/flags/ and the '
                     'entry scripts):\n' + '\n'.join(found))
