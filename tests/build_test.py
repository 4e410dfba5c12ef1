"""The repo stays in step with itself: BUILD targets, CI runs the README's
command, and imports run one way (pipelines <- applications -> core)."""

import ast
import glob
import os

import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RULES = ("py_library", "py_test", "py_binary")


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
      "glob": lambda patterns: sorted(
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


def _core_modules() -> list:
  return [os.path.basename(p)[:-3]
          for p in glob.glob(os.path.join(ROOT, "wsram_tf", "*.py"))]


class BuildTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.targets = load_targets()

  def test_every_test_file_has_a_py_test(self):
    tested = {src for t in self.targets if t["kind"] == "py_test"
              for src in t["srcs"]}
    for path in glob.glob(os.path.join(ROOT, "tests", "*_test.py")):
      self.assertIn(os.path.relpath(path, ROOT), tested)

  def test_every_module_has_a_py_library(self):
    libraries = {src for t in self.targets if t["kind"] == "py_library"
                 for src in t["srcs"]}
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
    def imported(path):
      with open(path) as f:
        tree = ast.parse(f.read())
      for node in ast.walk(tree):
        if isinstance(node, ast.Import):
          yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
          yield node.module
          yield from (f"{node.module}.{alias.name}" for alias in node.names)

    forbidden = {
        # The core: neither the data pipelines nor an application.
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
        for name in imported(path):
          self.assertFalse(
              any(name == p or name.startswith(p + ".") for p in prefixes),
              f"{os.path.relpath(path, ROOT)} imports {name}")

  def test_target_names_are_unique(self):
    names = [t["name"] for t in self.targets]
    self.assertEqual(len(names), len(set(names)))


if __name__ == "__main__":
  tf.test.main()
