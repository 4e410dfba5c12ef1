"""The repo stays in step with itself: BUILD targets, CI runs the README's
command, and imports run one way (pipelines <- tasks -> core)."""

import ast
import glob
import graphlib
import os
import sys

import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RULES = ("py_library", "py_test", "py_binary")
# Top-level import name -> the name requirements.txt gives it, where the two
# differ.
PIP_NAMES = {
    "absl": "absl-py", "ml_collections": "ml-collections", "PIL": "pillow",
    "tensorflow_datasets": "tensorflow-datasets",
    "tensorflow_probability": "tensorflow-probability", "tf_keras": "tf-keras",
}
# Optional and deliberately unpinned, imported inside a try: torch (installed
# by hand on the benchmark machine, BUILD says why), scipy (a cross-check).
UNPINNED = {"scipy", "torch"}


def load_targets():
  """Evaluates BUILD (Starlark-compatible Python) and records every rule."""
  targets = []

  def rule(kind):
    def record(**kwargs):
      targets.append(dict(kwargs, kind=kind))
    return record

  with open(os.path.join(ROOT, "BUILD")) as f:
    source = f.read()
  stubs = {
      "load": lambda *args: None,
      "package": lambda **kwargs: None,
      "requirement": lambda name: "@pip//" + name,
      "glob": lambda patterns, allow_empty=False: sorted(
          os.path.relpath(p, ROOT) for pattern in patterns
          for p in glob.glob(os.path.join(ROOT, pattern))),
  }
  exec(compile(source, "BUILD", "exec"),  # pylint: disable=exec-used
       {kind: rule(kind) for kind in RULES} | stubs)
  return targets


def _through_link(path: str) -> bool:
  """True for a file reached through a symlinked folder (wsram_tf/pipelines
  is pipelines/): it is listed once, under its real path."""
  return os.path.realpath(os.path.dirname(path)) != os.path.abspath(
      os.path.dirname(path))


def _imports(path: str):
  """The modules a file imports, at module level or in a function alike.
  `from a import b` imports module a.b if the repo has one, else (b is a
  name in a) module a."""
  with open(path) as f:
    tree = ast.parse(f.read())
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      for alias in node.names:
        name = f"{node.module}.{alias.name}"
        yield name if _source_of(name) else node.module


def _source_of(module: str):
  """The file an internal module is, by its real path relative to ROOT
  (wsram_tf.pipelines.x is pipelines/x.py), or None: not a module here."""
  path = os.path.join(ROOT, *module.split("."))
  for candidate in (path + ".py", os.path.join(path, "__init__.py")):
    if os.path.isfile(candidate):
      return os.path.relpath(os.path.realpath(candidate), ROOT)
  return None


def _core_modules() -> list:
  return [os.path.basename(p)[:-3]
          for p in glob.glob(os.path.join(ROOT, "wsram_tf", "*.py"))]


class BuildTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.targets = load_targets()

  def _srcs(self, kind: str) -> set:
    return {src for t in self.targets if t["kind"] == kind
            for src in t.get("srcs", [])}

  def test_every_test_file_has_a_py_test(self):
    tested = self._srcs("py_test")
    for path in glob.glob(os.path.join(ROOT, "tests", "*_test.py")):
      self.assertIn(os.path.relpath(path, ROOT), tested)

  def test_every_module_has_a_py_library(self):
    libraries = self._srcs("py_library")
    for package in ("wsram_tf", "pipelines", "configs"):
      for path in glob.glob(os.path.join(ROOT, package, "**", "*.py"),
                            recursive=True):
        if (os.path.basename(path) in ("__init__.py", "main.py")
            or _through_link(path)):
          continue
        self.assertIn(os.path.relpath(path, ROOT), libraries)

  def test_the_package_ships_pipelines_and_configs_under_its_own_name(self):
    # The installed package claims no generic top-level name: the repo's
    # pipelines/ and configs/ are wsram_tf.pipelines and wsram_tf.configs.
    for name in ("pipelines", "configs"):
      link = os.path.join(ROOT, "wsram_tf", name)
      self.assertTrue(os.path.islink(link), link)
      self.assertEqual(os.path.realpath(link), os.path.join(ROOT, name))

  def test_every_source_file_exists(self):
    for target in self.targets:
      for src in target.get("srcs", []):
        self.assertTrue(os.path.exists(os.path.join(ROOT, src)),
                        f"{target['name']}: {src} does not exist")

  def test_every_third_party_dependency_is_pinned(self):
    with open(os.path.join(ROOT, "requirements.txt")) as f:
      pinned = {line.split("=")[0].split(">")[0].split("<")[0].strip().lower()
                for line in f if line.strip() and not line.startswith("#")}
    for target in self.targets:
      for dep in target.get("deps", []):
        if dep.startswith("@pip//"):
          self.assertIn(dep[len("@pip//"):].lower(), pinned, target["name"])

  def test_every_internal_dependency_is_a_target(self):
    names = {":" + t["name"] for t in self.targets}
    for target in self.targets:
      for dep in target.get("deps", []):
        if dep.startswith(":"):
          self.assertIn(dep, names, f"{target['name']} depends on {dep}")

  def test_ci_runs_the_readme_test_command(self):
    with open(os.path.join(ROOT, "README.md")) as f:
      blocks = f.read().split("```sh\n")
    readme_command = blocks[2].split("```")[0].strip()
    with open(os.path.join(ROOT, ".ci", "run")) as f:
      ci_command = f.read().strip().splitlines()[-1]
    self.assertEqual(ci_command, readme_command)

  def test_dependencies_run_one_way(self):
    forbidden = {
        # The core: neither the data pipelines nor a task.
        "wsram_tf/*.py": ("pipelines", "wsram_tf.pipelines",
                          "wsram_tf.classifier", "wsram_tf.captioner"),
        # Pipelines import each other (as wsram_tf.pipelines) and configs.
        "pipelines/*.py": ("wsram_tf.classifier", "wsram_tf.captioner",
                           "pipelines", "configs")
                          + tuple(f"wsram_tf.{m}" for m in _core_modules()),
        "wsram_tf/classifier/*.py": ("wsram_tf.captioner",),
        "wsram_tf/captioner/*.py": ("wsram_tf.classifier",),
    }
    for pattern, prefixes in forbidden.items():
      for path in glob.glob(os.path.join(ROOT, pattern)):
        if path == os.path.join(ROOT, "wsram_tf", "__init__.py"):
          continue  # The package's face: it re-exports the public models.
        for name in _imports(path):
          self.assertFalse(
              any(name == p or name.startswith(p + ".") for p in prefixes),
              f"{os.path.relpath(path, ROOT)} imports {name}")

  def test_every_target_depends_exactly_on_what_it_imports(self):
    owner = {}  # File -> the target that has it: its py_library, if any.
    for target in sorted(self.targets, key=lambda t: t["kind"] != "py_library"):
      for src in target.get("srcs", []):
        owner.setdefault(src, ":" + target["name"])
    # Targets without srcs bundle modules loaded by name (BUILD says which):
    # a dep on one is not an import.
    bundles = {":" + t["name"] for t in self.targets if not t.get("srcs")}
    problems = []
    for target in (t for t in self.targets if t.get("srcs")):
      name, srcs = ":" + target["name"], target["srcs"]
      deps = set(target.get("deps", [])) - bundles
      imported = {}  # Internal dep -> a module it is imported as.
      if all(owner[src] != name for src in srcs):
        # A py_binary of a library's module runs that library, whose deps
        # are its imports.
        imported, srcs = {owner[src]: src for src in srcs}, []
      for src in srcs:
        for module in _imports(os.path.join(ROOT, src)):
          path, top = _source_of(module), module.split(".")[0]
          if path in owner:
            imported.setdefault(owner[path], module)
          elif path is not None:  # Package markers (__init__.py) aside.
            if not path.endswith("__init__.py"):
              problems.append(f"{name} imports {module}: {path} is in no "
                              "target")
          elif os.path.isdir(os.path.join(ROOT, top)):
            problems.append(f"{name} imports {module}: no such module")
          elif top not in sys.stdlib_module_names | UNPINNED:
            pip = PIP_NAMES.get(top, top)
            if "@pip//" + pip not in deps:
              problems.append(f"{name} imports {module}: lacks "
                              f'requirement("{pip}")')
      imported.pop(name, None)
      for dep in sorted(set(imported) - deps):
        problems.append(f"{name} imports {imported[dep]}: lacks {dep}")
      for dep in sorted(d for d in deps - set(imported) if d[0] == ":"):
        problems.append(f"{name} depends on {dep} but imports none of it")
    if problems:
      self.fail("\n".join(problems))

  def test_every_example_has_a_py_binary(self):
    binaries = self._srcs("py_binary")
    for path in glob.glob(os.path.join(ROOT, "examples", "*.py")):
      self.assertIn(os.path.relpath(path, ROOT), binaries)

  def test_targets_form_no_cycle(self):
    # Bazel refuses one: modules that import each other share a target.
    graph = {":" + t["name"]: [d for d in t.get("deps", []) if d[0] == ":"]
             for t in self.targets}
    try:
      graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as e:
      self.fail(f"Cycle: {' -> '.join(e.args[1])}")

  def test_target_names_are_unique(self):
    names = [t["name"] for t in self.targets]
    self.assertEqual(len(names), len(set(names)))


if __name__ == "__main__":
  tf.test.main()
