"""The paper's recipes in configs/ (absl flag files) against README.md.

`configs/<dataset>/<method>_1_<n>.flags` holds the training command of one
README recipe (section "Training": the baseline, PseudoSeg with unlabeled
data, PseudoSeg with image-level labels) for one labeled split, without the
machine-specific paths, which users pass after `--flagfile`. These tests build
each command from README.md's text (its command blocks, the notes that give the
splits, step counts and COCO changes, and the `--weakly` section), so a README
edit the files do not follow fails here, and parse both command lines with the
flags of the script they are for: a fresh interpreter imports `train_sup` or
`train_wss` (which defines exactly that script's flags and, for train_wss, its
defaults, and runs no training) and parses with absl, which rejects an unknown
flag. No graph is built.

COCO has no `--weakly` file: the README's COCO note gives the unlabeled
setting, that of the paper's COCO experiments.
"""
import glob
import json
import os
import re
import shlex
import string
import subprocess
import sys

import pytest

from conftest import REPO_ROOT

pytestmark = pytest.mark.e2e  # imports the scripts in subprocesses

CONFIG_DIR = os.path.join(REPO_ROOT, 'configs')
# Left to the command line: they name folders of the user's machine.
PATH_FLAGS = ('tf_initial_checkpoint', 'train_logdir', 'dataset_dir')
# Stand-in values of the README's path variables.
PATH_VARIABLES = {'INIT_FOLDER': '/init', 'TRAIN_LOGDIR': '/train_logdir',
                  'DATASET': '/dataset'}
BASELINE = 'Supervised baseline'
UNLABELED = 'PseudoSeg (w/ unlabeled data)'
WEAKLY = 'PseudoSeg (w/ image-level labeled data)'
# File-name method: the script it is for.
SCRIPTS = {'baseline': 'train_sup.py', 'pseudoseg': 'train_wss.py',
           'pseudoseg_weakly': 'train_wss.py'}
OVERRIDE_RECIPE = 'voc12/pseudoseg_1_16.flags'

# Run by a fresh interpreter in the repository root: imports the script named
# by argv[1] (its flags; `main` runs only under __main__), parses every command
# line of the JSON file argv[2] and writes, for each, the values of all flags
# and the names of those given (or the parse error) to the JSON file argv[3].
_PARSER = r'''
import json
import sys

from absl import flags

script, request_path, result_path = sys.argv[1:]
__import__(script)
FLAGS = flags.FLAGS
with open(request_path) as f:
  requests = json.load(f)
results = {}
for name, argv in requests.items():
  FLAGS.unparse_flags()
  try:
    FLAGS(argv)
  except flags.Error as e:
    results[name] = {'error': '%s: %s' % (type(e).__name__, e)}
    continue
  results[name] = {'values': FLAGS.flag_values_dict(),
                   'given': sorted(n for n in FLAGS if FLAGS[n].present)}
with open(result_path, 'w') as f:
  json.dump(results, f, default=repr)
'''


def _config_files():
  """Every file under configs/, relative to it."""
  return sorted(os.path.relpath(path, CONFIG_DIR) for path in glob.glob(
      os.path.join(CONFIG_DIR, '**', '*'), recursive=True)
                if os.path.isfile(path))


def _sections(readme):
  """{heading: text up to the next heading} of a markdown text ('#' lines in
  fenced code are not headings)."""
  sections, heading, lines, fenced = {}, None, [], False
  for line in readme.splitlines():
    if line.startswith('```'):
      fenced = not fenced
    if not fenced and line.startswith('#'):
      sections[heading] = '\n'.join(lines)
      heading, lines = line.lstrip('#').strip(), []
    else:
      lines.append(line)
  sections[heading] = '\n'.join(lines)
  return sections


def _command(section_text, heading, script, variables):
  """argv (script first) of the one bash block of a README section, with the
  shell variables replaced as the shell would."""
  blocks = re.findall(r'^```bash\n(.*?)^```', section_text, re.M | re.S)
  assert len(blocks) == 1, ('README.md "%s" should hold one bash block, not %d'
                            % (heading, len(blocks)))
  try:
    text = string.Template(blocks[0].replace('\\\n', ' ')).substitute(
        variables)
  except KeyError as e:
    raise AssertionError('README.md "%s" uses ${%s}: give it a value here and '
                         'say in configs/ how it is set' % (heading, e.args[0]))
  words = shlex.split(text)
  assert words[0].endswith('python') and words[1] == script, (
      'README.md "%s" should run %s: %s' % (heading, script, words[:2]))
  return words[1:]


def _flag_name(argument):
  return argument.split('=')[0].lstrip('-')


def _use(argv, flags):
  """argv with each of `flags` (--name=value) in place of that flag's earlier
  values, or added."""
  names = {_flag_name(flag) for flag in flags}
  return [arg for arg in argv if _flag_name(arg) not in names] + list(flags)


def _backticked(text):
  return re.findall(r'`([^`]+)`', text)


def _note(training, pattern, what):
  match = re.search(pattern, training)
  assert match, ('README.md, Training: the note on %s changed; update '
                 'tests/test_flagfiles.py and configs/ to it' % what)
  return match


def readme_recipes():
  """{path under configs/: argv (script first)} of every recipe README.md
  gives."""
  with open(os.path.join(REPO_ROOT, 'README.md')) as f:
    sections = _sections(f.read())
  for heading in ('Training', BASELINE, UNLABELED, WEAKLY):
    assert heading in sections, 'README.md has no section "%s"' % heading
  training = ' '.join(sections['Training'].split())
  voc = _note(training, r'VOC12: `\$\{SPLIT\}` is (.*?) \(1/[^)]*\),? and '
              r'`NUM_ITERATIONS=(\d+)`', 'VOC12')
  coco = _note(training, r'COCO: `\$\{SPLIT\}` is (.*?) \(1/[^)]*\), '
               r'`NUM_ITERATIONS=(\d+)`; add (.*?), and for PseudoSeg use '
               r'(.*?) \(', 'COCO')
  settings = [('voc12', _backticked(voc.group(1)), voc.group(2), [], []),
              ('coco', _backticked(coco.group(1)), coco.group(2),
               _backticked(coco.group(3)), _backticked(coco.group(4)))]
  for dataset, splits, _, extra, extra_wss in settings:
    assert splits and all(re.match(r'\d+_', s) for s in splits), (
        dataset, splits)
    assert all(flag.startswith('--') for flag in extra + extra_wss), (
        dataset, extra, extra_wss)
  weakly_text = sections[WEAKLY]
  weakly = None
  if '```bash' not in weakly_text:
    weakly = _note(' '.join(weakly_text.split()),
                   r'[Tt]he same command with `(--[^`]+)`', '--weakly')
    weakly = weakly.group(1)

  recipes = {}
  for dataset, splits, steps, extra, extra_wss in settings:
    for split in splits:
      variables = dict(PATH_VARIABLES, SPLIT=split, NUM_ITERATIONS=steps)
      name = '%s/%%s_1_%d.flags' % (dataset, int(split.split('_')[0]))
      recipes[name % 'baseline'] = _use(_command(
          sections[BASELINE], BASELINE, 'train_sup.py', variables), extra)
      recipes[name % 'pseudoseg'] = _use(_command(
          sections[UNLABELED], UNLABELED, 'train_wss.py', variables),
                                         extra + extra_wss)
      if dataset == 'voc12':  # the paper's image-level setting
        if weakly:
          argv = _use(_command(sections[UNLABELED], UNLABELED,
                               'train_wss.py', variables), [weakly])
        else:
          argv = _command(sections[WEAKLY], WEAKLY, 'train_wss.py', variables)
        recipes[name % 'pseudoseg_weakly'] = argv
  return recipes


def _path_arguments(argv):
  """The path flags of a README command line, as given."""
  given = [arg for arg in argv if _flag_name(arg) in PATH_FLAGS]
  assert sorted(map(_flag_name, given)) == sorted(PATH_FLAGS), argv
  return given


def _script_of(path):
  method = os.path.basename(path).split('_1_')[0]
  return SCRIPTS.get(method)


@pytest.fixture(scope='module')
def recipes():
  return readme_recipes()


@pytest.fixture(scope='module')
def parsed(recipes, tmp_path_factory):
  """{'readme:<path>' | 'file:<path>' | 'override': parse result} for every
  recipe and config file; both scripts are imported at once."""
  requests = {}
  for path, argv in recipes.items():
    requests.setdefault(argv[0], {})['readme:' + path] = argv
  for path in _config_files():
    script = _script_of(path)
    if script is None or path not in recipes:
      continue  # test_every_file_is_a_readme_recipe reports it
    requests.setdefault(script, {})['file:' + path] = [
        script, '--flagfile=' + os.path.join('configs', path)
    ] + _path_arguments(recipes[path])
  if OVERRIDE_RECIPE in recipes:
    requests['train_wss.py']['override'] = [
        'train_wss.py', '--flagfile=configs/' + OVERRIDE_RECIPE,
        '--num_clones=4', '--atrous_rates=24'] + _path_arguments(
            recipes[OVERRIDE_RECIPE])
  directory = tmp_path_factory.mktemp('flagfiles')
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  running = []
  for script, script_requests in sorted(requests.items()):
    request_path = directory / (script + '.request.json')
    result_path = directory / (script + '.result.json')
    log_path = directory / (script + '.log')
    request_path.write_text(json.dumps(script_requests))
    with open(log_path, 'w') as log:
      process = subprocess.Popen(
          [sys.executable, '-c', _PARSER, script[:-len('.py')],
           str(request_path), str(result_path)],
          cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    running.append((script, process, result_path, log_path))
  results = {}
  for script, process, result_path, log_path in running:
    try:
      process.wait(timeout=600)
    finally:
      if process.poll() is None:
        process.kill()
        process.wait()
    assert process.returncode == 0, 'parsing with %s failed:\n%s' % (
        script, log_path.read_text()[-4000:])
    results.update(json.loads(result_path.read_text()))
  return results


def test_every_readme_recipe_has_a_file(recipes):
  missing = sorted(set(recipes) - set(_config_files()))
  assert not missing, 'README.md recipes without a file in configs/: %s' % (
      missing,)


def test_every_file_is_a_readme_recipe(recipes):
  extra = sorted(set(_config_files()) - set(recipes))
  assert not extra, ('files in configs/ that are no README.md recipe (%s): %s'
                     % ('<dataset>/<baseline|pseudoseg|pseudoseg_weakly>_1_'
                        '<n>.flags', extra))


@pytest.mark.parametrize('path', _config_files())
def test_file_parses_to_the_readme_command(path, recipes, parsed):
  if path not in recipes:
    pytest.skip('not a README recipe (test_every_file_is_a_readme_recipe)')
  readme, config = parsed['readme:' + path], parsed['file:' + path]
  assert 'error' not in readme, 'README command of %s: %s' % (
      path, readme['error'])
  assert 'error' not in config, 'configs/%s with %s: %s' % (
      path, recipes[path][0], config['error'])
  assert config['given'] == readme['given'], (
      'flags given by the README command but not by the file: %s; by the file '
      'but not by the README: %s' % (
          sorted(set(readme['given']) - set(config['given'])),
          sorted(set(config['given']) - set(readme['given']))))
  differing = {name: (readme['values'][name], config['values'].get(name))
               for name in readme['values']
               if readme['values'][name] != config['values'].get(name)}
  assert not differing, '(README, file) values that differ: %s' % differing
  assert config['values'] == readme['values']


@pytest.mark.parametrize('path', _config_files())
def test_file_leaves_the_paths_to_the_command_line(path):
  with open(os.path.join(CONFIG_DIR, path)) as f:
    text = f.read()
  lines = text.splitlines()
  flag_lines = [line for line in lines if line.strip()
                and not line.startswith(('#', '//'))]
  for line in flag_lines:
    assert line == line.strip() and line.startswith('--'), (
        'one --flag=value per line, no indent: %r' % line)
    assert '"' not in line and "'" not in line, (
        'absl does not unquote flag file values: %r' % line)
    assert _flag_name(line) not in PATH_FLAGS, (
        '%s is machine-specific: pass it after --flagfile' % line)
  script = _script_of(path)
  assert script, 'not a recipe file name: %s' % path
  # The comment header shows the command that runs this file.
  usage = '#   .venv/bin/python %s --flagfile=configs/%s \\' % (script, path)
  assert usage in lines, 'the header should show: ' + usage
  for flag in PATH_FLAGS:
    assert '--%s=' % flag in text, 'the header should show --%s' % flag


def test_flags_after_the_file_override_it(parsed, recipes):
  """What the files' headers say: a later flag overrides the file's, and a
  multi-valued one adds to them."""
  if OVERRIDE_RECIPE not in recipes:
    pytest.skip('README.md no longer gives ' + OVERRIDE_RECIPE)
  result = parsed['override']
  assert 'error' not in result, result.get('error')
  assert result['values']['num_clones'] == 4
  assert result['values']['atrous_rates'] == [6, 12, 18, 24]
  assert result['values']['train_split'] == '16_clean_3'


@pytest.mark.parametrize('path', _config_files())
def test_splits_are_registered(path, recipes, parsed):
  """The splits exist in core/data/registry.py, and the labeled one is the
  file name's fraction of the dataset's `train` split."""
  from core.data import registry
  if path not in recipes:
    pytest.skip('not a README recipe (test_every_file_is_a_readme_recipe)')
  values = parsed['file:' + path].get('values')
  assert values, parsed['file:' + path]
  sizes = registry.get_dataset_descriptor(values['dataset']).splits_to_sizes
  assert values['dataset'] == {'voc12': 'pascal_voc_seg',
                               'coco': 'coco'}[path.split('/')[0]]
  assert values['train_split'] in sizes
  if recipes[path][0] == 'train_wss.py':  # train_sup.py reads it with --weakly
    assert values['train_split_cls'] in sizes
  fraction = int(re.search(r'_1_(\d+)\.flags$', path).group(1))
  assert abs(sizes[values['train_split']] -
             sizes['train'] / fraction) <= 1, (path, values['train_split'])
