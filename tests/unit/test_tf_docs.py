"""The README's Inputs/Outputs tables are generated from variables.tf/outputs.tf (make docs) and
checked (make test): a stale table fails."""

from __future__ import annotations

import shutil

from tests.support import REPO_ROOT, load_script

GEN = REPO_ROOT / "scripts" / "gen_tf_docs.py"


def _copy(tmp_path):
    for tf in REPO_ROOT.glob("*.tf"):
        shutil.copy2(tf, tmp_path / tf.name)
    shutil.copy2(REPO_ROOT / "README.md", tmp_path / "README.md")
    return tmp_path


def test_readme_tables_match_the_module():
    gen = load_script(GEN)
    assert gen.main(["--check"]) == 0, "README.md's Terraform tables are stale: run `make docs`"
    text = (REPO_ROOT / "README.md").read_text()
    variables = [b.name for b in gen.blocks(REPO_ROOT / "variables.tf", "variable")]
    outputs = [b.name for b in gen.blocks(REPO_ROOT / "outputs.tf", "output")]
    assert len(variables) > 40 and "launcher_config" in outputs
    for name in variables + outputs:  # every one of them, in the tables
        assert f"| `{name}` |" in text, name


def test_a_stale_table_fails_the_check_and_make_docs_fixes_it(tmp_path, capsys):
    gen = load_script(GEN)
    work = _copy(tmp_path)
    with (work / "variables.tf").open("a") as f:
        f.write('\nvariable "new_knob" {\n  description = "A knob | with <brackets>."\n'
                '  type = object({\n    a = string\n  })\n}\n')
    assert gen.main(["--root", str(work), "--check"]) == 1
    assert "run `make docs`" in capsys.readouterr().err
    assert gen.main(["--root", str(work)]) == 0
    assert gen.main(["--root", str(work), "--check"]) == 0
    row = "| `new_knob` | A knob \\| with &lt;brackets&gt;. | `object` | n/a | yes |"
    assert row in (work / "README.md").read_text()


def test_a_readme_without_the_markers_is_an_error(tmp_path, capsys):
    gen = load_script(GEN)
    work = _copy(tmp_path)
    (work / "README.md").write_text("# no tables here\n")
    assert gen.main(["--root", str(work), "--check"]) == 1
    assert "BEGIN_TF_DOCS" in capsys.readouterr().err
