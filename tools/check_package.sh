#!/usr/bin/env bash
# The package as a user gets it: build the wheel (isolated, as pip builds it), install it (not editable)
# into a fresh virtual environment and run it from there, so a module, package-data file or entry point
# missing from the wheel fails here rather than on a user's machine.
#
# The fresh environment borrows the project venv's installed dependencies through a .pth line (its
# site-packages appended to sys.path, so none of its own .pth files run and the editable install of
# cnn-tui there stays invisible): reinstalling TensorFlow would cost minutes and a gigabyte and test
# pip, not the package. `pip check` then confirms the wheel's declared dependencies are satisfied.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV_PYTHON=${VENV_PYTHON:-.venv/bin/python}
OUT=build/package-check
rm -rf "$OUT"
mkdir -p "$OUT"

# Built from a copy of what a clean checkout holds (tracked and new files, nothing ignored): the editable
# install's src/cnn_tui.egg-info and setuptools' build/lib would otherwise add files the checkout lacks.
# sdist first, then the wheel from the unpacked sdist, as pip builds one from PyPI.
mkdir -p "$OUT/tree"
git ls-files -z --cached --others --exclude-standard | xargs -0 -I{} sh -c 'test -e "{}" && echo "{}"' \
    | tar -cf - -T - | tar -xf - -C "$OUT/tree"
"$VENV_PYTHON" -m build --outdir "$OUT/dist" "$OUT/tree" > "$OUT/build.log" 2>&1 || { cat "$OUT/build.log"; exit 1; }
if grep -E "Deprecat|deprecated" "$OUT/build.log"; then
    echo "check_package: building the wheel warns of a deprecation (above); see $OUT/build.log" >&2
    exit 1
fi
wheel=$(ls "$OUT"/dist/cnn_tui-*.whl)

"$VENV_PYTHON" -m venv --without-pip "$OUT/venv"
fresh="$OUT/venv/bin/python"
fresh_site=$("$fresh" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
deps_site=$("$VENV_PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
"$VENV_PYTHON" -m pip --python "$fresh" install --quiet --no-deps --no-index "$wheel"
echo "$(cd "$deps_site" && pwd)" > "$fresh_site/zz_project_dependencies.pth"
"$VENV_PYTHON" -m pip --python "$fresh" check

# It is the wheel that runs, not the working tree.
"$fresh" - "$OUT/venv" <<'PY'
import sys, importlib, importlib.resources, pathlib, pkgutil
import cnn_tui
root = pathlib.Path(cnn_tui.__file__).resolve()
assert pathlib.Path(sys.argv[1]).resolve() in root.parents, f"cnn_tui imported from {root}, not the wheel"
# every module of the package imports from the wheel (a package without __init__.py would be missing)
source = pathlib.Path("src/cnn_tui")
expected = {".".join(p.relative_to("src").with_suffix("").parts) for p in source.rglob("*.py") if p.name != "__main__.py"}
expected = {m.removesuffix(".__init__") for m in expected}
found = {m.name for m in pkgutil.walk_packages(cnn_tui.__path__, "cnn_tui.")} | {"cnn_tui"}
missing = sorted(m for m in expected if m not in found and not m.endswith("__main__"))
assert not missing, f"modules missing from the wheel: {missing}"
for name in ("cnn_tui.tui.app", "cnn_tui.tui.screens.main"):
    importlib.import_module(name)
for data in ("py.typed",):
    assert importlib.resources.files("cnn_tui").joinpath(data).is_file(), data
styles = [p.name for p in source.joinpath("tui").glob("*.tcss")]
for name in styles:
    assert importlib.resources.files("cnn_tui.tui").joinpath(name).is_file(), f"{name} missing from the wheel"
print(f"check_package: {len(found)} modules and {len(styles)} stylesheet(s) from {root.parent}")
PY

version=$("$OUT/venv/bin/cnn-tui" --version)
expected=$("$VENV_PYTHON" -c 'import cnn_tui; print(cnn_tui.__version__)')
[[ "$version" == *"$expected"* ]] || { echo "check_package: cnn-tui --version says '$version', expected $expected" >&2; exit 1; }
demo_dir=$(mktemp -d)
trap 'rm -rf "$demo_dir"' EXIT
(cd "$demo_dir" && "$OLDPWD/$OUT/venv/bin/cnn-tui" demo --quiet)
test -f "$demo_dir/app_input/digits_data_params.json" -a -d "$demo_dir/datasets/digits/training"
echo "check_package: $(basename "$wheel") installs, '$version', and cnn-tui demo wrote the demo set"
