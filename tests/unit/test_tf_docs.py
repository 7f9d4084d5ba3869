"""docs/terraform.md's Inputs/Outputs tables are generated from the module's *.tf files (make docs)
and checked (make lint, make test): a stale table fails."""

from __future__ import annotations

import shutil

from tests.support import REPO_ROOT, load_script

GEN = REPO_ROOT / "scripts" / "gen_tf_docs.py"
DOC = REPO_ROOT / "docs" / "terraform.md"


def _copy(tmp_path):
    for tf in REPO_ROOT.glob("*.tf"):
        shutil.copy2(tf, tmp_path / tf.name)
    (tmp_path / "docs").mkdir()
    shutil.copy2(DOC, tmp_path / "docs" / "terraform.md")
    return tmp_path


def test_the_tables_match_the_module():
    gen = load_script(GEN)
    assert gen.main(["--check"]) == 0, "docs/terraform.md's Terraform tables are stale: run `make docs`"
    text = DOC.read_text()
    module = sorted(REPO_ROOT.glob("*.tf"))  # whichever file of the module holds a block
    variables = [b.name for tf in module for b in gen.blocks(tf, "variable")]
    outputs = [b.name for tf in module for b in gen.blocks(tf, "output")]
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
    assert row in (work / "docs" / "terraform.md").read_text()


def test_a_page_without_the_markers_is_an_error(tmp_path, capsys):
    gen = load_script(GEN)
    work = _copy(tmp_path)
    (work / "docs" / "terraform.md").write_text("# no tables here\n")
    assert gen.main(["--root", str(work), "--check"]) == 1
    assert "BEGIN_TF_DOCS" in capsys.readouterr().err
